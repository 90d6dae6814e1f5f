"""Pretraining, fine-tuning and evaluation as single calls over files, for the CLI and for users.

* :func:`pretrain`: text files in ALBERT's input format (one sentence per line, a blank line between
  documents) or the offline corpora -> tokenizer (trained unless given) -> examples -> training.
* :func:`finetune`: a checkpoint + a labelled CSV/TSV/JSONL file -> a sequence classifier.
* :func:`evaluate_file`: a classifier + a labelled file -> accuracy, macro-F1, per-class figures.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from albert_edge.checkpoint import CheckpointError, load_pretrained
from albert_edge.classifier import resolve_model_path
from albert_edge.config import AlbertConfig
from albert_edge.datasets import DataError, encode_rows, read_labelled, read_text
from albert_edge.model import AlbertForPreTraining, AlbertForSequenceClassification
from albert_edge.pretraining_data import MaskingConfig, PretrainingVocab, create_examples, tokenize_documents
from albert_edge.tokenizer import SPIECE_MODEL, AlbertTokenizer, train_sentencepiece
from albert_edge.training import TrainingArgs, classification_task, evaluate, pretraining_task, train

log = logging.getLogger(__name__)


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
    init: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Pretrain ``AlbertForPreTraining`` (MLM + SOP). From scratch with `config`, or, with `init`,
    from that checkpoint's weights (its config and, unless `tokenizer_file` is given, its
    tokenizer; heads it lacks start fresh; the optimizer always starts fresh): continued
    pretraining on new text, or a second phase at a longer `masking.max_seq_len`.

    Without `tokenizer_file` (and `init`), a SentencePiece model of `vocab_size` pieces is trained
    on `documents` into OUT/spiece.model. The config's vocab_size follows the tokenizer;
    max_position_embeddings must hold masking.max_seq_len."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start: AlbertForPreTraining | None = None
    if init is not None:
        start = load_pretrained(init, AlbertForPreTraining, strict=False)  # type: ignore[assignment]
        config = start.config
        if tokenizer_file is None:
            tokenizer_file = Path(init) / SPIECE_MODEL
            if not tokenizer_file.is_file():
                raise CheckpointError(f"{init}: no {SPIECE_MODEL} to pretrain with; give the checkpoint's "
                                      "SentencePiece model as tokenizer_file (--spm)")
        pieces = AlbertTokenizer.from_file(tokenizer_file).vocab_size
        if pieces != config.vocab_size:
            raise CheckpointError(f"{tokenizer_file}: {pieces} pieces, but {init} has vocab_size "
                                  f"{config.vocab_size}; give the checkpoint's own tokenizer")
    if tokenizer_file is None:
        tokenizer_file = out / "spiece.model"
        if not (resume and Path(tokenizer_file).exists()):
            train_sentencepiece((s for d in documents for s in d), tokenizer_file, vocab_size)
    text_tokenizer = AlbertTokenizer.from_file(tokenizer_file, split_special_tokens=True)
    if config.max_position_embeddings < masking.max_seq_len:
        raise CheckpointError(f"max_seq_len {masking.max_seq_len} exceeds the config's "
                              f"max_position_embeddings {config.max_position_embeddings}")
    config = dataclasses.replace(config, vocab_size=text_tokenizer.vocab_size)
    vocab = PretrainingVocab.from_tokenizer(text_tokenizer)
    train_ex = create_examples(tokenize_documents(documents, text_tokenizer), vocab, masking, random.Random(args.seed))
    eval_ex = (create_examples(tokenize_documents(eval_documents, text_tokenizer), vocab, masking,
                               random.Random(args.seed + 1)) if eval_documents else [])
    log.info("%d training and %d evaluation examples", len(train_ex), len(eval_ex))
    torch.manual_seed(args.seed)
    model = AlbertForPreTraining(config)
    if start is not None:
        model.load_state_dict(start.state_dict())
    return train(model, pretraining_task(text_tokenizer.pad_id), train_ex, args, out,
                 eval_examples=eval_ex, tokenizer_file=tokenizer_file, resume=resume)


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
) -> dict[str, Any]:
    """Fine-tune a sequence classifier from the encoder in `model_path` (a pretraining, encoder or
    classifier checkpoint with its tokenizer). Labels default to the sorted label values of the
    training file. Writes OUT/model (a checkpoint with config.json labels and spiece.model)."""
    model_path = Path(resolve_model_path(model_path))
    tokenizer = AlbertTokenizer.from_pretrained(model_path)
    columns = {"text_column": text_column, "label_column": label_column, "text_pair_column": text_pair_column}
    train_rows = read_labelled(train_file, labels=labels, **columns)
    labels = tuple(labels) if labels else _labels_of(train_rows)
    if len(labels) < 2:
        raise DataError(f"{train_file}: only one label ({labels[0]!r}) in the training data; need at least 2")
    valid_rows = read_labelled(valid_file, labels=labels, **columns) if valid_file else []
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
    encoder = getattr(source, "albert", source)
    result = model.albert.load_state_dict(encoder.state_dict(), strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("pooler.")]  # a pooler may be fresh
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{model_path}: encoder weights do not fit (missing {missing}, "
                              f"unexpected {result.unexpected_keys})")
    train_ex = encode_rows(train_rows, tokenizer, labels, max_seq_len)
    valid_ex = encode_rows(valid_rows, tokenizer, labels, max_seq_len)
    tok_file = model_path / "spiece.model"
    return train(model, classification_task(tokenizer.pad_id), train_ex, args, out_dir, eval_examples=valid_ex,
                 labels=labels, tokenizer_file=tok_file if tok_file.exists() else None, resume=resume)


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
    classifier on a labelled file (labels must be among the model's)."""
    model_path = Path(resolve_model_path(model_path))
    model = load_pretrained(model_path, "sequence-classification")
    tokenizer = AlbertTokenizer.from_pretrained(model_path)
    labels = model.config.labels
    rows = read_labelled(data_file, labels=labels, text_column=text_column, label_column=label_column,
                         text_pair_column=text_pair_column, limit=limit)
    examples = encode_rows(rows, tokenizer, labels, max_seq_len or model.config.max_position_embeddings)
    return evaluate(model, classification_task(tokenizer.pad_id), examples, batch_size, labels)
