"""Pretraining, fine-tuning and evaluation as single calls over files, for the CLI and for users.

* :func:`pretrain`: documents of sentences (from text files in ALBERT's input format, one sentence
  per line and a blank line between documents, or the offline corpora) -> tokenizer (trained
  unless given) -> examples (:func:`pretraining_examples`) -> training (:func:`pretrain_examples`).
* :func:`finetune`: a checkpoint + a labelled CSV/TSV/JSONL file -> a sequence classifier
  (:func:`finetune_rows` for rows in memory).
* :func:`evaluate_file`: a classifier + a labelled file -> accuracy, macro-F1, per-class figures
  (:func:`evaluate_rows`).
* :func:`finetune_qa`: a checkpoint + questions (``qa_data.read_qa``) -> an extractive QA model;
  :func:`evaluate_qa`: its SQuAD exact match and F1.

The shipped default model is built by these same functions (``albert_edge.make_default``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from albert_edge._io import atomic_write_json
from albert_edge.augment import augment_texts
from albert_edge.checkpoint import CheckpointError, load_pretrained, resolve_model_path
from albert_edge.config import AlbertConfig
from albert_edge.datasets import DataError, Row, encode_rows, read_labelled, read_text
from albert_edge.exit_rules import default_rules, pick_rule, rule_figures
from albert_edge.exits import encode_batches, load_exits, save_exits, step_logits, train_exits
from albert_edge.model import AlbertForPreTraining, AlbertForQuestionAnswering, AlbertForSequenceClassification
from albert_edge.pretraining_data import MaskingConfig, PretrainingVocab, create_examples, tokenize_documents
from albert_edge.qa import QASettings, answer_question
from albert_edge.qa_data import QAExample, squad_scores, training_features
from albert_edge.qa_teacher import QATeacher, distillation_features, finetune_qa_teacher, save_targets, with_targets
from albert_edge.teacher import finetune_teacher, teacher_logits
from albert_edge.tokenizer import SPIECE_MODEL, AlbertTokenizer, train_sentencepiece
from albert_edge.training import (
    TrainingArgs,
    check_run_folder,
    classification_task,
    evaluate,
    pretraining_task,
    question_answering_task,
    train,
)

log = logging.getLogger(__name__)

TEACHER_LOGITS = "teacher_logits.json"  # in a distilled fine-tuning's run folder
QA_TEACHER_TARGETS = "teacher_targets.safetensors"  # in a distilled QA fine-tuning's run folder


def read_text_documents(paths: Sequence[str | os.PathLike]) -> list[list[str]]:
    """ALBERT's input format: one sentence per line, documents separated by blank lines."""
    docs: list[list[str]] = []
    for p in paths:
        current: list[str] = []
        for line in read_text(Path(p)).splitlines():
            line = line.strip()
            if line:
                current.append(line)
            elif current:
                docs.append(current)
                current = []
        if current:
            docs.append(current)
    if not docs:
        raise DataError(f"no text in {', '.join(map(str, paths))} (expected one sentence per line, "
                        "blank lines between documents)")
    return docs


def pretraining_examples(documents: list[list[str]], tokenizer: AlbertTokenizer, masking: MaskingConfig,
                         seed: int, limit: int | None = None) -> list[Any]:
    """ALBERT's pretraining examples (SOP pairs, n-gram masking) from documents of sentences,
    ``masking.dupe_factor`` passes with their own masks, drawn from ``random.Random(seed)``; the
    first ``limit`` of them if given. ``tokenizer`` should split special tokens (plain text: a
    literal "[MASK]" in it is text, not the mask id)."""
    vocab = PretrainingVocab.from_tokenizer(tokenizer)
    examples = create_examples(tokenize_documents(documents, tokenizer), vocab, masking, random.Random(seed))
    return examples if limit is None else examples[:limit]


def pretrain(
    out_dir: str | os.PathLike,
    documents: list[list[str]],
    config: AlbertConfig,
    args: TrainingArgs,
    *,
    tokenizer_file: str | os.PathLike | None = None,
    vocab_size: int = 8000,
    masking: MaskingConfig = MaskingConfig(),
    eval_documents: list[list[str]] | None = None,
    resume: bool = False,
    resume_changed: bool = False,
    init: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Pretrain ``AlbertForPreTraining`` (MLM + SOP) on documents of sentences. From scratch with
    `config`, or, with `init`, from that checkpoint's weights (its config and, unless
    `tokenizer_file` is given, its tokenizer; heads it lacks start fresh; the optimizer always
    starts fresh): continued pretraining on new text, or a second phase at a longer
    `masking.max_seq_len`.

    Without `tokenizer_file` (and `init`), a SentencePiece model of `vocab_size` pieces is trained
    on `documents` into OUT/spiece.model. Training examples are drawn with ``args.seed``,
    evaluation examples (one pass, ``dupe_factor`` 1) with ``args.seed + 1``. See
    ``pretrain_examples`` for the rest."""
    out = Path(out_dir)
    check_run_folder(out, resume)  # before minutes of tokenizer training
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer_file is None and init is not None:
        tokenizer_file = Path(init) / SPIECE_MODEL
        if not tokenizer_file.is_file():
            raise CheckpointError(f"{init}: no {SPIECE_MODEL} to pretrain with; give the checkpoint's "
                                  "SentencePiece model as tokenizer_file (--spm)")
    if tokenizer_file is None:
        tokenizer_file = out / SPIECE_MODEL
        if not (resume and Path(tokenizer_file).exists()):
            train_sentencepiece((s for d in documents for s in d), tokenizer_file, vocab_size)
    text_tokenizer = AlbertTokenizer.from_file(tokenizer_file, split_special_tokens=True)
    train_ex = pretraining_examples(documents, text_tokenizer, masking, args.seed)
    eval_ex = (pretraining_examples(eval_documents, text_tokenizer, dataclasses.replace(masking, dupe_factor=1),
                                    args.seed + 1) if eval_documents else [])
    return pretrain_examples(out, train_ex, config, args, tokenizer_file=tokenizer_file, eval_examples=eval_ex,
                             max_seq_len=masking.max_seq_len, resume=resume, resume_changed=resume_changed,
                             init=init)


def pretrain_examples(
    out_dir: str | os.PathLike,
    train_examples: Sequence[Any],
    config: AlbertConfig,
    args: TrainingArgs,
    *,
    tokenizer_file: str | os.PathLike,
    max_seq_len: int,
    eval_examples: Sequence[Any] = (),
    resume: bool = False,
    resume_changed: bool = False,
    init: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Pretrain on examples already made (``pretraining_examples``), from `config` or from the
    checkpoint `init`. The config's vocab_size follows the tokenizer; max_position_embeddings
    must hold `max_seq_len`. Writes OUT/model (with the tokenizer), OUT/log.jsonl and
    OUT/metrics.json; returns the final held-out figures."""
    start: AlbertForPreTraining | None = None
    pieces = AlbertTokenizer.from_file(tokenizer_file)
    if init is not None:
        start = load_pretrained(init, AlbertForPreTraining, strict=False)  # type: ignore[assignment]
        config = start.config
        if pieces.vocab_size != config.vocab_size:
            raise CheckpointError(f"{tokenizer_file}: {pieces.vocab_size} pieces, but {init} has vocab_size "
                                  f"{config.vocab_size}; give the checkpoint's own tokenizer")
    if config.max_position_embeddings < max_seq_len:
        raise CheckpointError(f"max_seq_len {max_seq_len} exceeds the config's "
                              f"max_position_embeddings {config.max_position_embeddings}")
    config = dataclasses.replace(config, vocab_size=pieces.vocab_size)
    log.info("%d training and %d evaluation examples", len(train_examples), len(eval_examples))
    torch.manual_seed(args.seed)
    model = AlbertForPreTraining(config)
    if start is not None:
        model.load_state_dict(start.state_dict())
    return train(model, pretraining_task(pieces.pad_id), train_examples, args, out_dir,
                 eval_examples=eval_examples, tokenizer_file=tokenizer_file, resume=resume,
                 resume_changed=resume_changed)


def _labels_of(rows: Sequence[Any]) -> tuple[str, ...]:
    return tuple(sorted({str(r.label) for r in rows}))


def finetune(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    train_file: str | os.PathLike,
    args: TrainingArgs,
    *,
    valid_file: str | os.PathLike | None = None,
    labels: Sequence[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    text_pair_column: str | None = None,
    max_seq_len: int | None = None,
    dropout: float | None = None,
    resume: bool = False,
    resume_changed: bool = False,
    teacher: str | os.PathLike | None = None,
    teacher_steps: int = 1000,
    augment: int = 0,
    exits: bool = False,
) -> dict[str, Any]:
    """Fine-tune a sequence classifier from the encoder in `model_path` (a pretraining, encoder or
    classifier checkpoint with its tokenizer) on a labelled CSV/TSV/JSONL file. Labels default to
    the sorted label values of the training file. Writes OUT/model (a checkpoint with config.json
    labels and spiece.model); see ``finetune_rows``.

    `teacher`: a Hugging Face BERT checkpoint folder (or "default": the all-MiniLM-L6-v2 of
    ``make teacher``), fine-tuned first on the same rows for `teacher_steps` steps
    (``teacher.finetune_teacher``); the classifier is then distilled from its logits, which are
    kept in OUT/teacher_logits.json so that ``resume`` reuses them instead of training it again.
    `augment`: with a teacher, that many perturbed copies of each training text
    (``augment.augment_texts``; none equal to a training or validation text) are labelled by the
    teacher and join the training rows (transfer text), kept in the same file.
    `exits`: then train early-exit heads for the fine-tuned model (``train_exit_heads``, on the
    same rows; the rule recommended on the validation rows): OUT/model/exits.safetensors, and the
    per-rule figures under "exits" in the result."""
    columns = {"text_column": text_column, "label_column": label_column, "text_pair_column": text_pair_column}
    train_rows = read_labelled(train_file, labels=labels, **columns)
    labels = tuple(labels) if labels else _labels_of(train_rows)
    if len(labels) < 2:
        raise DataError(f"{train_file}: only one label ({labels[0]!r}) in the training data; need at least 2")
    valid_rows = read_labelled(valid_file, labels=labels, **columns) if valid_file else []
    logits = None
    if augment and teacher is None:
        raise DataError(f"augment={augment}: perturbed copies are labelled by a teacher; give one")
    if teacher is not None:
        check_run_folder(Path(out_dir), resume)  # before the teacher's minutes, not after
        cache = Path(out_dir) / TEACHER_LOGITS
        if resume and cache.is_file():
            kept = json.loads(cache.read_text())
            logits, copies = (kept, []) if isinstance(kept, list) else (kept["logits"], kept["augmented"])
        else:
            copies = augment_texts([r.text for r in train_rows], augment, seed=args.seed, key=_text_key,
                                   exclude={_text_key(r.text) for r in valid_rows}) if augment else []
            logits = distilled_labels(train_rows, labels, teacher=None if str(teacher) == "default" else teacher,
                                      steps=teacher_steps, seed=args.seed, extra_texts=copies)
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            atomic_write_json(cache, {"logits": logits, "augmented": copies} if augment else logits)
        train_rows = [*train_rows, *transfer_rows(copies, logits[len(train_rows):], labels, len(train_rows))]
    result = finetune_rows(model_path, out_dir, train_rows, args, valid_rows=valid_rows, labels=labels,
                           max_seq_len=max_seq_len, dropout=dropout, resume=resume, resume_changed=resume_changed,
                           teacher_logits=logits)
    if exits:
        result["exits"] = train_exit_heads(Path(out_dir) / "model", train_rows, valid_rows=valid_rows,
                                           max_seq_len=max_seq_len, seed=args.seed)
    return result


def train_exit_heads(
    model_path: str | os.PathLike,
    train_rows: Sequence[Row],
    *,
    valid_rows: Sequence[Row] = (),
    max_seq_len: int | None = None,
    epochs: int = 10,
    alpha: float = 0.5,
    temperature: float = 2.0,
    lr: float = 1e-3,
    seed: int = 0,
) -> dict[str, Any]:
    """Early exits for the classifier in `model_path`: heads after every layer step, trained on
    its frozen encoder (``exits.train_exits``: the labels of `train_rows` mixed by `alpha` with the
    final classifier's own tempered outputs), written beside it as exits.safetensors; the model's
    files are not touched. The recommended exit rule is the one with the fewest mean layer steps
    whose agreement with full depth is >= 99.5% and whose accuracy is no lower, measured on
    `valid_rows` (on `train_rows` if there are none; the result says which); it goes into
    exits.safetensors. Returns ``{"recommended", "chosen_on", "rules": [per-rule figures]}``."""
    model_path = Path(resolve_model_path(model_path))
    model = load_pretrained(model_path, "sequence-classification")
    tokenizer = AlbertTokenizer.from_pretrained(model_path)
    labels = model.config.labels
    max_seq_len = max_seq_len or min(128, model.config.max_position_embeddings)
    batches = encode_batches(tokenizer, [r.text for r in train_rows], max_seq_len)
    exits = train_exits(model, batches, _label_ids(train_rows, labels), epochs=epochs, alpha=alpha,
                        temperature=temperature, lr=lr, seed=seed)
    held = valid_rows or train_rows
    figures = rule_figures(_all_step_logits(model, exits, tokenizer, held, max_seq_len),
                           default_rules(model.config.num_hidden_layers), np.array(_label_ids(held, labels)))
    exits.recommended = pick_rule(figures)
    save_exits(exits, model_path, labels)
    return {"recommended": None if exits.recommended is None else exits.recommended.to_dict(),
            "chosen_on": "valid" if valid_rows else "train", "rules": figures}


def evaluate_exits(model_path: str | os.PathLike, rows: Sequence[Row], *,
                   max_seq_len: int | None = None) -> list[dict[str, Any]]:
    """The early exits beside the classifier in `model_path` on labelled rows (eager fp32): per
    exit rule (``exit_rules.default_rules``, full depth first) accuracy, agreement with full
    depth, mean and p90 layer steps."""
    model_path = Path(resolve_model_path(model_path))
    model = load_pretrained(model_path, "sequence-classification")
    exits = load_exits(model_path, model)
    gold = np.array(_label_ids(rows, model.config.labels))
    tokenizer = AlbertTokenizer.from_pretrained(model_path)
    all_logits = _all_step_logits(model, exits, tokenizer, rows,
                                  max_seq_len or min(128, model.config.max_position_embeddings))
    return rule_figures(all_logits, default_rules(model.config.num_hidden_layers), gold)


def _label_ids(rows: Sequence[Row], labels: Sequence[str]) -> list[int]:
    """Each row's label as the model's label id; a label the model does not have is refused."""
    unknown = sorted({r.label for r in rows} - set(labels))
    if unknown:
        raise DataError(f"label(s) {unknown[:3]} are not among the model's labels {list(labels)}")
    index = {name: i for i, name in enumerate(labels)}
    return [index[r.label] for r in rows]


def _all_step_logits(model: Any, exits: Any, tokenizer: AlbertTokenizer, rows: Sequence[Row],
                     max_seq_len: int) -> np.ndarray:
    """Every step's logits for every row, (num_steps, N, num_labels)."""
    return torch.cat([step_logits(model, exits, *b) for b in
                      encode_batches(tokenizer, [r.text for r in rows], max_seq_len)], dim=1).numpy()


def transfer_rows(texts: Sequence[str], logits: Sequence[Sequence[float]], labels: Sequence[str],
                  first_index: int = 0) -> list[Row]:
    """Unlabelled transfer texts as training rows, each labelled with the teacher's choice (the
    argmax of its `logits` row); indices continue from `first_index`."""
    return [Row(text, labels[max(range(len(labels)), key=row.__getitem__)], None, first_index + i)
            for i, (text, row) in enumerate(zip(texts, logits, strict=True))]


def _text_key(text: str) -> str:
    return " ".join(text.casefold().split())


def distilled_labels(rows: Sequence[Row], labels: Sequence[str], *, teacher: str | os.PathLike | None = None,
                     steps: int = 1000, seed: int = 0, max_seq_len: int = 64,
                     extra_texts: Sequence[str] = ()) -> list[tuple[float, ...]]:
    """A teacher (``teacher.finetune_teacher``; None: the default all-MiniLM-L6-v2) fine-tuned on
    `rows` -> its logits for each row, the soft labels ``finetune_rows`` distils from, followed by
    its logits for each of `extra_texts` (unlabelled transfer text)."""
    if any(r.text_pair is not None for r in rows):
        raise DataError("distillation takes single texts; these rows have text pairs")
    texts = [r.text for r in rows]
    index = {name: i for i, name in enumerate(labels)}
    fitted = finetune_teacher(texts, [index[str(r.label)] for r in rows], labels, teacher_dir=teacher,
                              steps=steps, warmup_steps=steps // 10, max_seq_len=max_seq_len, seed=seed)
    return teacher_logits(fitted, [*texts, *extra_texts])


def finetune_rows(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    train_rows: Sequence[Row],
    args: TrainingArgs,
    *,
    labels: Sequence[str],
    valid_rows: Sequence[Row] = (),
    max_seq_len: int | None = None,
    dropout: float | None = None,
    resume: bool = False,
    resume_changed: bool = False,
    from_scratch: bool = False,
    teacher_logits: Sequence[Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Fine-tune a sequence classifier on labelled rows in memory (``datasets.Row``).

    `teacher_logits` (one row of len(labels) logits per train row, e.g. ``teacher.teacher_logits``)
    distils a teacher into the model: the loss mixes the labels' cross-entropy and the teacher's
    tempered distribution by ``args.distill_alpha`` and ``args.distill_temperature``.

    The encoder comes from `model_path`; with ``from_scratch`` only its config and tokenizer do
    and the weights start from a random initialisation (an ablation: what pretraining buys).
    `dropout` sets hidden_dropout_prob; max_seq_len defaults to min(128, max_position_embeddings).
    The model is built right after ``torch.manual_seed(args.seed)``. Returns the final
    validation figures (empty without valid_rows)."""
    model_path = Path(resolve_model_path(model_path))
    tokenizer = AlbertTokenizer.from_pretrained(model_path)
    source = load_pretrained(model_path)
    config = dataclasses.replace(source.config, labels=tuple(labels))
    if dropout is not None:
        config = dataclasses.replace(config, hidden_dropout_prob=dropout)
    max_seq_len = max_seq_len or min(128, config.max_position_embeddings)
    if max_seq_len > config.max_position_embeddings:
        raise DataError(f"max_seq_len {max_seq_len} exceeds the model's max_position_embeddings "
                        f"{config.max_position_embeddings}")
    torch.manual_seed(args.seed)
    model = AlbertForSequenceClassification(config)
    if not from_scratch:
        _copy_encoder(source, model, model_path)
    train_ex = encode_rows(train_rows, tokenizer, labels, max_seq_len, teacher_logits)
    valid_ex = encode_rows(valid_rows, tokenizer, labels, max_seq_len)
    tok_file = _tokenizer_file(model_path)
    distill = (args.distill_alpha, args.distill_temperature) if teacher_logits is not None else None
    return train(model, classification_task(tokenizer.pad_id, distill), train_ex, args, out_dir, eval_examples=valid_ex,
                 labels=labels, tokenizer_file=tok_file, resume=resume,
                 resume_changed=resume_changed)


def evaluate_file(
    model_path: str | os.PathLike,
    data_file: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str = "label",
    text_pair_column: str | None = None,
    limit: int | None = None,
    max_seq_len: int | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix of a sequence
    classifier on a labelled file (labels must be among the model's); see ``evaluate_rows``."""
    model_path = Path(resolve_model_path(model_path))
    labels = load_pretrained(model_path, "sequence-classification").config.labels
    rows = read_labelled(data_file, labels=labels, text_column=text_column, label_column=label_column,
                         text_pair_column=text_pair_column, limit=limit)
    return evaluate_rows(model_path, rows, max_seq_len=max_seq_len, batch_size=batch_size)


def evaluate_rows(model_path: str | os.PathLike, rows: Sequence[Row], *, max_seq_len: int | None = None,
                  batch_size: int = 64) -> dict[str, Any]:
    """The classifier in `model_path` on labelled rows in memory: accuracy, macro-F1, per-class
    figures and the confusion matrix; texts cut to `max_seq_len` (default max_position_embeddings)."""
    model_path = Path(resolve_model_path(model_path))
    model = load_pretrained(model_path, "sequence-classification")
    tokenizer = AlbertTokenizer.from_pretrained(model_path)
    labels = model.config.labels
    examples = encode_rows(rows, tokenizer, labels, max_seq_len or model.config.max_position_embeddings)
    return evaluate(model, classification_task(tokenizer.pad_id), examples, batch_size, labels)


def finetune_qa(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    train_examples: Sequence[QAExample],
    args: TrainingArgs,
    *,
    settings: QASettings | None = None,
    valid_examples: Sequence[QAExample] = (),
    dropout: float | None = None,
    resume: bool = False,
    resume_changed: bool = False,
    teacher: QATeacher | str | os.PathLike | None = None,
    teacher_targets: str | os.PathLike | None = None,
    teacher_steps: int = 1000,
) -> dict[str, Any]:
    """Fine-tune an extractive QA model (``AlbertForQuestionAnswering``) from the encoder in
    `model_path` on questions in memory (``qa_data.QAExample``, e.g. from ``read_qa``).

    Windows come from `settings` (default ``QASettings.for_positions(max_position_embeddings)``,
    384 tokens);
    each window is labelled with its answer's tokens or [CLS] (``qa_data.training_features``).
    With a `teacher` (a fitted ``qa_teacher.QATeacher``), each training window also carries the
    teacher's start/end distributions (``qa_teacher.distillation_features``) and the loss mixes
    them in by ``args.distill_alpha`` / ``distill_temperature``; `teacher_targets` instead reads
    those distributions from a file ``qa_teacher.save_targets`` wrote for the same windows.
    A `teacher` given as a Hugging Face BERT folder (or "default": the all-MiniLM-L6-v2 of ``make
    teacher``) is first fine-tuned on the same questions for `teacher_steps` steps
    (``qa_teacher.finetune_qa_teacher``); its distributions are kept in
    OUT/teacher_targets.safetensors, which ``resume`` reuses instead of training it again.
    Writes OUT/model (a checkpoint with spiece.model) and returns the validation figures (token
    start/span accuracy of the windows; :func:`evaluate_qa` gives EM/F1)."""
    model_path = Path(resolve_model_path(model_path))
    tokenizer = AlbertTokenizer.from_pretrained(model_path)
    source = load_pretrained(model_path)
    config = dataclasses.replace(source.config, labels=("start", "end"))
    if dropout is not None:
        config = dataclasses.replace(config, hidden_dropout_prob=dropout)
    settings = settings or QASettings.for_positions(config.max_position_embeddings)
    if settings.max_seq_len > config.max_position_embeddings:
        raise DataError(f"max_seq_len {settings.max_seq_len} exceeds the model's max_position_embeddings "
                        f"{config.max_position_embeddings}")
    torch.manual_seed(args.seed)
    model = AlbertForQuestionAnswering(config)
    _copy_encoder(source, model, model_path)
    train_ft = training_features(train_examples, tokenizer, settings)
    if teacher is not None and teacher_targets is not None:
        raise DataError("give a teacher or its saved teacher_targets, not both")
    if teacher is not None and not isinstance(teacher, QATeacher):
        teacher_targets = _qa_teacher_targets(Path(out_dir), teacher, teacher_steps, train_examples, tokenizer,
                                              settings, train_ft, args.seed, resume)
        teacher = None
    if teacher is not None:
        train_ft = distillation_features(teacher, train_examples, tokenizer, settings, train_ft)
    elif teacher_targets is not None:
        train_ft = with_targets(teacher_targets, train_ft)
    valid_ft = training_features(valid_examples, tokenizer, settings)
    tok_file = _tokenizer_file(model_path)
    distill = (args.distill_alpha, args.distill_temperature) if train_ft and train_ft[0].teacher_start else None
    return train(model, question_answering_task(tokenizer.pad_id, distill), train_ft, args, out_dir, eval_examples=valid_ft,
                 tokenizer_file=tok_file, resume=resume,
                 resume_changed=resume_changed)


def _qa_teacher_targets(out: Path, teacher: str | os.PathLike, steps: int, examples: Sequence[QAExample],
                        tokenizer: AlbertTokenizer, settings: QASettings, features: Sequence[Any], seed: int,
                        resume: bool) -> Path:
    """OUT/teacher_targets.safetensors for `features`: kept from the interrupted run on `resume`,
    else made by fine-tuning `teacher` (a BERT folder or "default") on `examples`."""
    check_run_folder(out, resume)  # before the teacher's minutes, not after
    cache = out / QA_TEACHER_TARGETS
    if resume and cache.is_file():
        return cache
    fitted = finetune_qa_teacher(examples, teacher_dir=None if str(teacher) == "default" else teacher, steps=steps,
                                 warmup_steps=steps // 10, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    return save_targets(cache, distillation_features(fitted, examples, tokenizer, settings, features))


def answer_eagerly(model_path: str | os.PathLike, examples: Sequence[QAExample], settings: QASettings) -> list[str]:
    """The best answer text of the QA model in `model_path` (eager fp32) for each question."""
    model = _load_qa_model(model_path)
    tokenizer = AlbertTokenizer.from_pretrained(resolve_model_path(model_path))
    run = _eager_runner(model)
    return [answer_question(tokenizer, run, e.question, e.context, settings)[0]["answer"] for e in examples]


def evaluate_qa(model_path: str | os.PathLike, examples: Sequence[QAExample], settings: QASettings) -> dict[str, Any]:
    """SQuAD exact match and F1 (percent) of the QA model in `model_path` on `examples`."""
    return squad_scores(examples, answer_eagerly(model_path, examples, settings))


def eager_answers(model_path: str | os.PathLike, question: str, context: str, *, top_k: int = 1,
                  settings: QASettings | None = None) -> list[dict[str, Any]]:
    """Answers of the QA checkpoint in `model_path` (eager fp32), ``albert_edge.qa`` decoding;
    settings default to ``QASettings.for_positions(max_position_embeddings)``."""
    model = _load_qa_model(model_path)
    tokenizer = AlbertTokenizer.from_pretrained(resolve_model_path(model_path))
    settings = settings or QASettings.for_positions(model.config.max_position_embeddings)
    return answer_question(tokenizer, _eager_runner(model), question, context, settings, top_k)


def _eager_runner(model: Any) -> Any:
    def run(window: Any) -> tuple[Any, Any]:
        with torch.no_grad():
            start, end = model(torch.tensor([window.input_ids]), torch.tensor([window.attention_mask]),
                               torch.tensor([window.token_type_ids]))
        return start[0].numpy(), end[0].numpy()

    return run


def _copy_encoder(source: Any, model: Any, model_path: Path) -> None:
    """Load the encoder of checkpoint `source` into `model`'s (CheckpointError when they do not
    fit). A pooler may be fresh; a source pooler is dropped only when `model` has none (QA)."""
    encoder = getattr(source, "albert", source)
    result = model.albert.load_state_dict(encoder.state_dict(), strict=False)
    has_pooler = any(k.startswith("pooler.") for k in model.albert.state_dict())
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]
    unexpected = [k for k in result.unexpected_keys if has_pooler or not k.startswith("pooler.")]
    if missing or unexpected:
        raise CheckpointError(f"{model_path}: encoder weights do not fit (missing {missing}, unexpected {unexpected})")


def _load_qa_model(model_path: str | os.PathLike) -> AlbertForQuestionAnswering:
    """A question-answering checkpoint; CheckpointError naming what it is otherwise."""
    path = Path(resolve_model_path(model_path))
    model = load_pretrained(path)
    if not isinstance(model, AlbertForQuestionAnswering):
        raise CheckpointError(
            f"{model_path}: the checkpoint is {type(model).__name__}; answering questions needs an "
            "AlbertForQuestionAnswering one (e.g. 'default-qa', or fine-tune one with workflows.finetune_qa)"
        )
    return model


def _tokenizer_file(model_path: Path) -> Path | None:
    """The checkpoint's tokenizer file that a fine-tuned model carries on: spiece.model, else tokenizer.json."""
    for name in (SPIECE_MODEL, "tokenizer.json"):
        if (model_path / name).is_file():
            return model_path / name
    return None
