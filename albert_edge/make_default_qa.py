"""The recipe that produces the shipped question-answering model ``default-qa``, as one command:

    python -m albert_edge.make_default_qa --out out/default-qa --install     (or: make default-qa-model)

Stages (each writes into OUT and is skipped when its result is there, so an interrupted run
continues; fine-tuning resumes from its checkpoint):

1. data: cloze questions (``albert_edge.cloze``: a date, year, number or name cut out of a sentence
   and asked for with a wh-phrase, against the whole passage) from the pretraining corpora's
   passages, split as pretraining split them (by document): questions over train documents for
   training, over valid documents for validation, over test documents, which neither pretraining
   nor fine-tuning ever saw, for the held-out figures. OUT/data/{train,valid,test}.jsonl.
2. fine-tuning: ``AlbertForQuestionAnswering`` from the encoder of the shipped default model
   (``albert_edge/default_model``) with ``workflows.finetune_qa``, windows of 128 tokens.
3. evaluation: exact match and F1 on the test questions, eager fp32.
4. baseline: the sliding-window word-overlap answerer (``baseline.sliding_window_answers``).
5. int8: the test questions through the exported fp32 and int8 programs (EM/F1 of each).
6. ``MODEL_CARD.md`` + ``card.json``; with ``--install`` the model goes into the package
   (``albert_edge/default_qa_model/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from albert_edge import corpora
from albert_edge._io import atomic_write_json, atomic_write_text, replaced_dir
from albert_edge._machine import cpu_name
from albert_edge.baseline import sliding_window_answers
from albert_edge.checkpoint import DEFAULT_MODEL_DIR, DEFAULT_QA_MODEL_DIR, load_pretrained
from albert_edge.qa import QASettings
from albert_edge.qa_data import QAExample, cloze_split, read_qa, squad_scores, write_qa_jsonl
from albert_edge.training import CHECKPOINT_DIR, TrainingArgs, read_log
from albert_edge.workflows import answer_eagerly, finetune_qa

log = logging.getLogger(__name__)

MAX_SEQ_LEN = 128  # the shipped encoder's position embeddings
SETTINGS = QASettings.for_length(MAX_SEQ_LEN, max_answer_len=15)
VALID_QUESTIONS = 600  # validated during training (a sample, for speed)
# About 1.5 windows per question: ~77,000 windows, a little over one epoch of the train questions.
FINETUNE = TrainingArgs(steps=2400, batch_size=32, lr=3e-4, warmup_steps=240, weight_decay=0.01,
                        log_every=50, eval_every=800, save_every=100, seed=0)
FINETUNE_DROPOUT = 0.1


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
        examples = cloze_split(split)
        stats[split] = {"documents": len(docs), "questions": len(examples),
                        "documents_by_source": {s: sum(d.source == s for d in docs) for s in corpora.PRETRAINING_SOURCES}}
        write_qa_jsonl(paths[split], examples)
    atomic_write_json(d / "stats.json", stats)
    return paths


def finetune(out: Path, data: dict[str, Path], args: TrainingArgs) -> Path:
    """Stage 2: OUT/finetune/model."""
    d = out / "finetune"
    if (d / "model" / "config.json").exists() and (d / "metrics.json").exists():
        return d / "model"
    valid = read_qa(data["valid"])[:VALID_QUESTIONS]
    finetune_qa(DEFAULT_MODEL_DIR, d, read_qa(data["train"]), args, settings=SETTINGS, valid_examples=valid,
                dropout=FINETUNE_DROPOUT, resume=(d / CHECKPOINT_DIR).exists())
    return d / "model"


def _cached(path: Path, make: Any) -> Any:
    if path.exists():
        return json.loads(path.read_text())
    result = make()
    atomic_write_json(path, result)
    return result


def evaluate(out: Path, model: Path, test: list[QAExample]) -> dict[str, Any]:
    """Stage 3: EM/F1 of the eager fp32 model on the test questions."""
    return _cached(out / "eval" / "test.json", lambda: squad_scores(test, answer_eagerly(model, test, SETTINGS)))


def baseline(out: Path, test: list[QAExample]) -> dict[str, Any]:
    """Stage 4: EM/F1 of the sliding-window word-overlap answerer on the test questions."""
    return _cached(out / "eval" / "baseline.json", lambda: squad_scores(test, sliding_window_answers(test)))


def run(out: Path, *, finetune_args: TrainingArgs = FINETUNE, install: bool = False) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = json.loads((out / "timings.json").read_text()) if (out / "timings.json").exists() else {}

    def done(name: str, t0: float) -> None:
        times.setdefault(name, round(time.time() - t0, 1))
        atomic_write_json(out / "timings.json", times)

    t0 = time.time()
    data = make_data(out)
    done("data", t0)
    t0 = time.time()
    model = finetune(out, data, finetune_args)
    done("finetune", t0)
    test = read_qa(data["test"])
    t0 = time.time()
    tuned = evaluate(out, model, test)
    done("evaluate", t0)
    t0 = time.time()
    base = baseline(out, test)
    done("baseline", t0)
    card = {"tuned": tuned, "baseline": base, "timings": times}
    atomic_write_json(out / "card.json", card)
    return card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m albert_edge.make_default_qa", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/default-qa"), help="work folder (resumable)")
    p.add_argument("--install", action="store_true", help="copy the result into albert_edge/default_qa_model/")
    p.add_argument("--finetune-steps", type=int, default=FINETUNE.steps)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    card = run(a.out, finetune_args=dataclasses.replace(FINETUNE, steps=a.finetune_steps), install=a.install)
    print(json.dumps(card, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
