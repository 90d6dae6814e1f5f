"""``albert-edge pretrain / finetune / finetune-qa / evaluate / classify``: thin commands over
:mod:`albert_edge.workflows` and :mod:`albert_edge.classifier`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from albert_edge._io import check_writable
from albert_edge.cli_args import read_texts
from albert_edge.errors import TrainingError
from albert_edge.training_args import OPTIMIZERS, TrainingArgs


def _training_args(a: argparse.Namespace) -> TrainingArgs:
    return TrainingArgs(steps=a.steps, batch_size=a.batch_size, grad_accum=a.grad_accum, lr=a.lr,
                        warmup_steps=a.warmup_steps, weight_decay=a.weight_decay,
                        max_grad_norm=a.max_grad_norm, optimizer=a.optimizer, seed=a.seed,
                        log_every=a.log_every, eval_every=a.eval_every, save_every=a.save_every,
                        progress=not a.quiet,
                        # finetune's distillation options (other commands leave TrainingArgs' defaults)
                        **{k: getattr(a, k) for k in ("distill_alpha", "distill_temperature") if hasattr(a, k)})


def _add_training_options(p: argparse.ArgumentParser, *, steps: int, batch_size: int, lr: float) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
    g.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"examples per optimizer step over all processes and micro-batches (default {batch_size})")
    g.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step on each process (default 1)")
    g.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    g.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps, then linear decay (default 0)")
    g.add_argument("--weight-decay", type=float, default=0.01, help="decoupled weight decay (default 0.01)")
    g.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm, 0 = off (default 1.0)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="default adamw")
    g.add_argument("--seed", type=int, default=0, help="data order, initialisation and dropout (default 0)")
    g.add_argument("--log-every", type=int, default=10, help="steps between log lines (default 10)")
    g.add_argument("--eval-every", type=int, default=0, help="steps between evaluations, 0 = at the end (default 0)")
    g.add_argument("--save-every", type=int, default=100, help="steps between checkpoints (default 100)")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out from its checkpoint, exactly (its arguments "
                        "and data must be the same; a run that differs is refused, naming what changed)")
    g.add_argument("--resume-changed", action="store_true",
                   help="with --resume: continue even though arguments or data differ from the run's (the "
                        "result then is not what one uninterrupted run would give)")
    g.add_argument("--quiet", action="store_true", help="no progress line")


def cmd_pretrain(a: argparse.Namespace) -> None:
    from albert_edge.config import PRESETS, AlbertConfig
    from albert_edge.pretraining_data import MaskingConfig
    from albert_edge.workflows import pretrain, read_text_documents

    check_writable(Path(a.out), "--out", TrainingError)  # before reading and tokenizing the corpus

    if a.text:
        docs = read_text_documents(a.text)
        eval_docs = read_text_documents(a.eval_text) if a.eval_text else None
    else:
        from albert_edge import corpora

        docs = [list(d.sentences) for d in corpora.pretraining_documents("train")]
        eval_docs = [list(d.sentences) for d in corpora.pretraining_documents("valid")]
    if a.init is not None and a.config is not None:
        raise TrainingError("--config and --init exclude each other (with --init the checkpoint's "
                            "config.json is used)")
    name = a.config or "tiny"
    config = AlbertConfig.from_name(name) if name in PRESETS else AlbertConfig.load(name)
    masking = MaskingConfig(max_seq_len=a.max_seq_len, dupe_factor=a.dupe_factor)
    result = pretrain(a.out, docs, config, _training_args(a), tokenizer_file=a.spm, vocab_size=a.vocab_size,
                      masking=masking, eval_documents=eval_docs, resume=a.resume, resume_changed=a.resume_changed, init=a.init)
    _print_result(a.out, result)


def cmd_finetune(a: argparse.Namespace) -> None:
    from albert_edge.workflows import finetune

    check_writable(Path(a.out), "--out", TrainingError)  # before a teacher or the data is prepared

    labels = a.labels.split(",") if a.labels else None
    result = finetune(a.model, a.out, a.data, _training_args(a), valid_file=a.valid, labels=labels,
                      text_column=a.text_column, label_column=a.label_column,
                      text_pair_column=a.text_pair_column, max_seq_len=a.max_seq_len, dropout=a.dropout,
                      resume=a.resume, resume_changed=a.resume_changed, teacher=a.teacher,
                      teacher_steps=a.teacher_steps, augment=a.augment, exits=a.exits)
    _print_result(a.out, result)


def cmd_finetune_qa(a: argparse.Namespace) -> None:
    from albert_edge.checkpoint import resolve_model_path
    from albert_edge.config import AlbertConfig
    from albert_edge.qa import QASettings
    from albert_edge.qa_data import read_qa
    from albert_edge.workflows import evaluate_qa, finetune_qa

    check_writable(Path(a.out), "--out", TrainingError)  # before a teacher or the data is prepared
    stride = {"doc_stride": a.doc_stride} if a.doc_stride else {}
    settings = (QASettings.for_length(a.max_seq_len, **stride) if a.max_seq_len else
                QASettings.for_positions(AlbertConfig.load(resolve_model_path(a.model)).max_position_embeddings, **stride))
    train_examples = read_qa(a.data)
    valid = read_qa(a.valid) if a.valid else []
    result = finetune_qa(a.model, a.out, train_examples, _training_args(a), settings=settings, valid_examples=valid,
                         dropout=a.dropout, resume=a.resume, resume_changed=a.resume_changed, teacher=a.teacher,
                         teacher_steps=a.teacher_steps)
    _print_result(a.out, result)
    if valid:
        scores = evaluate_qa(Path(a.out) / "model", valid, settings)
        print(f"{a.valid}: exact match {scores['exact_match']:.1f}, F1 {scores['f1']:.1f} "
              f"({scores['questions']} questions)")


def _print_result(out: str, result: dict) -> None:
    figures = {k: round(v, 4) for k, v in result.items() if isinstance(v, float)}
    print(f"model written to {Path(out) / 'model'}; log {Path(out) / 'log.jsonl'}")
    if figures:
        print("evaluation: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    if "exits" in result:
        ex = result["exits"]
        print(f"early exits written to {Path(out) / 'model' / 'exits.safetensors'}; on the {ex['chosen_on']} rows:")
        print(f"  {'rule':<16} {'accuracy':>8} {'agreement':>9} {'mean depth':>10} {'p90 depth':>9}")
        for row in ex["rules"]:
            print(f"  {row['label']:<16} {row['accuracy']:>8.4f} {row['agreement']:>9.4f} {row['mean_depth']:>10.2f} "
                  f"{row['p90_depth']:>9.1f}")
        rec = ex["recommended"]
        print("  recommended: " + (f"{rec['kind']}={rec['value']}" if rec else
                                   "none (no rule kept agreement >= 99.5% without losing accuracy): run full depth"))


def cmd_evaluate(a: argparse.Namespace) -> None:
    from albert_edge.workflows import evaluate_file

    r = evaluate_file(a.model, a.data, text_column=a.text_column, label_column=a.label_column,
                      text_pair_column=a.text_pair_column, limit=a.limit)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"examples   {r['examples']}")
    print(f"accuracy   {r['accuracy']:.4f}")
    print(f"macro-F1   {r['macro_f1']:.4f}")
    width = max(len(k) for k in r["per_class"])
    print(f"{'class':<{width}}  precision  recall  f1     support")
    for name, pc in r["per_class"].items():
        print(f"{name:<{width}}  {pc['precision']:.3f}      {pc['recall']:.3f}   {pc['f1']:.3f}  {pc['support']}")


def cmd_classify(a: argparse.Namespace) -> None:
    from albert_edge.classifier import TextClassifier

    clf = TextClassifier.from_pretrained(a.model)
    texts = read_texts(a.text)
    for r in clf.classify(texts):
        if a.json:
            print(json.dumps(r, ensure_ascii=False, allow_nan=False))
        else:
            probs = "  ".join(f"{k} {v:.3f}" for k, v in r["probs"].items())
            print(f"{r['label']:<10} {probs}  {r['text']}")


def _add_data_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", default="text", help="column (or JSON key) of the text (default text)")
    p.add_argument("--label-column", default="label", help="column of the label (default label)")
    p.add_argument("--text-pair-column", default=None, help="column of a second text, for pair tasks")


def _add_distill_mix(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--distill-alpha", type=float, default=0.5,
                   help="weight of the labels' cross-entropy; 1 - it weighs the teacher's (default 0.5)")
    g.add_argument("--distill-temperature", type=float, default=2.0,
                   help="softmax temperature of the teacher and student distributions (default 2.0)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain an ALBERT (n-gram MLM + sentence order), from scratch or --init",
                       description="Pretrain AlbertForPreTraining on text files in ALBERT's input format "
                                   "(one sentence per line, blank line between documents), or on the offline "
                                   "corpora (`make corpora`) when no --text is given. Runs under torchrun "
                                   "for several processes (DDP, gloo).")
    p.add_argument("--out", required=True, help="run folder: checkpoint/, model/, log.jsonl, metrics.json")
    p.add_argument("--text", nargs="+", default=None, metavar="FILE", help="training text files")
    p.add_argument("--eval-text", nargs="+", default=None, metavar="FILE", help="held-out text files")
    p.add_argument("--config", default=None, help="a preset name or a config.json (default tiny); "
                                                  "vocab_size follows the tokenizer")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights, config and spiece.model instead of from "
                        "scratch (continued pretraining, or a second phase at a longer --max-seq-len); "
                        "the optimizer starts fresh")
    p.add_argument("--spm", default=None, help="an spiece.model to use; default: train one into --out "
                                               "(with --init: the checkpoint's)")
    p.add_argument("--vocab-size", type=int, default=8000, help="pieces of the trained tokenizer (default 8000)")
    p.add_argument("--max-seq-len", type=int, default=128, help="example length in tokens (default 128)")
    p.add_argument("--dupe-factor", type=int, default=1, help="passes over the text with new masks (default 1)")
    _add_training_options(p, steps=1000, batch_size=32, lr=5e-4)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a sequence classifier on a labelled file",
                       description="Fine-tune AlbertForSequenceClassification from a checkpoint's encoder "
                                   "on a CSV, TSV or JSON Lines file with text and label columns.")
    p.add_argument("model", metavar="MODEL", help="checkpoint folder with its tokenizer, or 'default'")
    p.add_argument("--data", required=True, help="training file (.csv, .tsv, .jsonl)")
    p.add_argument("--valid", default=None, help="validation file, evaluated during and after training")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--labels", default=None, help="comma-separated label names in id order "
                                                  "(default: sorted labels of --data)")
    p.add_argument("--max-seq-len", type=int, default=None,
                   help="truncate inputs to this many tokens (default: 128 or the model's maximum if smaller)")
    p.add_argument("--dropout", type=float, default=None, help="hidden dropout while fine-tuning (default: the config's)")
    g = p.add_argument_group("distillation (build time; needs transformers)")
    g.add_argument("--teacher", default=None, metavar="CHECKPOINT",
                   help="a Hugging Face BERT checkpoint folder, or 'default' (all-MiniLM-L6-v2, `make teacher`): "
                        "fine-tuned on --data first, then the classifier learns from its logits too")
    g.add_argument("--teacher-steps", type=int, default=1000, help="the teacher's fine-tuning steps (default 1000)")
    g.add_argument("--augment", type=int, default=0, metavar="N",
                   help="N perturbed copies of each training text (words deleted or swapped, some cut short) "
                        "labelled by the teacher join the training rows: transfer text (default 0)")
    _add_distill_mix(g)
    p.add_argument("--exits", action="store_true",
                   help="then train early-exit heads (adaptive depth: a classifier after every layer step, the "
                        "model itself untouched) into OUT/model/exits.safetensors; the exit rule is chosen on --valid")
    _add_data_columns(p)
    _add_training_options(p, steps=500, batch_size=32, lr=2e-4)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("finetune-qa", help="fine-tune an extractive question-answering model on SQuAD-style questions",
                       description="Fine-tune AlbertForQuestionAnswering from a checkpoint's encoder on a SQuAD "
                                   "v1.1/v2.0 JSON or JSON Lines file (question, context, answers). Contexts are "
                                   "cut into windows as `ask` and `export` read them; with --valid the model's "
                                   "exact match and F1 on it are printed.")
    p.add_argument("model", metavar="MODEL", help="checkpoint folder with its tokenizer, or 'default'")
    p.add_argument("--data", required=True, help="training questions (SQuAD .json or .jsonl)")
    p.add_argument("--valid", default=None, help="validation questions: window accuracy during training, EM/F1 after")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--max-seq-len", type=int, default=None,
                   help="window length in tokens (default: 384 or the model's maximum if smaller)")
    p.add_argument("--doc-stride", type=int, default=None,
                   help="tokens of overlap between a context's windows (default half the window, at most 128)")
    p.add_argument("--dropout", type=float, default=None, help="hidden dropout while fine-tuning (default: the config's)")
    g = p.add_argument_group("distillation (build time; needs transformers)")
    g.add_argument("--teacher", default=None, metavar="CHECKPOINT",
                   help="a Hugging Face BERT checkpoint folder with a fast tokenizer, or 'default' "
                        "(all-MiniLM-L6-v2, `make teacher`): fine-tuned on --data first (windows of 256 "
                        "tokens), then the model learns its start/end distributions too, carried across "
                        "tokenizers by character offsets")
    g.add_argument("--teacher-steps", type=int, default=1000,
                   help="the teacher's fine-tuning steps of 16 questions (default 1000)")
    _add_distill_mix(g)
    _add_training_options(p, steps=1000, batch_size=32, lr=1e-3)
    p.set_defaults(func=cmd_finetune_qa)

    p = sub.add_parser("evaluate", help="accuracy and macro-F1 of a classifier on a labelled file",
                       description="Evaluate a sequence classifier (eager PyTorch) on a CSV, TSV or JSON "
                                   "Lines file: accuracy, macro-F1, per-class precision/recall/F1.")
    p.add_argument("model", metavar="MODEL", help="classifier checkpoint folder, or 'default'")
    p.add_argument("--data", required=True, help="labelled file (.csv, .tsv, .jsonl)")
    p.add_argument("--limit", type=int, default=None, help="first N rows only")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    _add_data_columns(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("classify", help="label texts with the default model (or another classifier)",
                       description="Print the label and class probabilities of each text (eager PyTorch).")
    p.add_argument("text", nargs="*", help="texts; default: one per line from stdin")
    p.add_argument("--model", default="default", help="classifier checkpoint folder (default: the shipped model)")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.set_defaults(func=cmd_classify)
