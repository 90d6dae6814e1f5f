"""Tiny models lowered once per test session, shared by the runtime, bundle and CLI tests.

Lowering a tiny model takes ~20 s per recipe on two cores, so every test module that needs
programs takes them from ``lowered_text_classifier`` (cached per process) instead of lowering
its own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from albert_edge.checkpoint import load_model, save_pretrained
from albert_edge.config import AlbertConfig
from albert_edge.lowering import LoweredProgram, export_program
from albert_edge.model import AlbertForSequenceClassification, AlbertPreTrainedModel
from albert_edge.recipes import RECIPES
from albert_edge.tokenizer import AlbertTokenizer

MAX_SEQ_LEN = 32
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Lowered:
    checkpoint: Path  # a Hugging Face checkpoint dir with spiece.model
    model: AlbertPreTrainedModel  # loaded back from ``checkpoint``: the eager fp32 reference
    tokenizer: AlbertTokenizer
    programs: dict[str, LoweredProgram]  # fp32 and int8, dynamic, max_seq_len MAX_SEQ_LEN


@functools.lru_cache(maxsize=None)
def lowered_text_classifier(spiece_model_path: Path) -> Lowered:
    """A tiny sequence classifier whose vocabulary is the test tokenizer's, saved as a checkpoint
    directory, loaded back, and lowered with the fp32 and int8 recipes (dynamic length)."""
    tokenizer = AlbertTokenizer.from_file(spiece_model_path)
    # initializer_range 0.2: logits far enough apart that top-1 agreement is a real test.
    config = AlbertConfig.from_name("tiny", vocab_size=tokenizer.vocab_size, labels=LABELS, initializer_range=0.2)
    checkpoint = spiece_model_path.parent / "tiny-classifier"  # inside pytest's temporary folder
    torch.manual_seed(0)
    save_pretrained(AlbertForSequenceClassification(config), checkpoint, tokenizer_file=spiece_model_path)
    model = load_model(checkpoint)
    programs = {name: export_program(model, RECIPES[name], max_seq_len=MAX_SEQ_LEN) for name in ("fp32", "int8")}
    return Lowered(checkpoint, model, tokenizer, programs)
