"""A tiny classifier with trained exit heads whose inputs stop at different depths: the model the
adaptive-bundle, compare and Android tests export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from albert_edge.checkpoint import save_pretrained
from albert_edge.config import AlbertConfig
from albert_edge.exit_rules import ExitRule
from albert_edge.exits import save_exits, train_exits
from albert_edge.model import AlbertForSequenceClassification
from albert_edge.tokenizer import AlbertTokenizer

LABELS = ("neg", "neu", "pos")


def save_adaptive_model(d: Path, spiece_model_path: Path, rule: ExitRule = ExitRule("patience", 1)) -> Path:
    """A 4-step tiny classifier (labels neg/neu/pos) and its exit heads, saved in ``d`` with
    ``rule`` as the recommended exit rule."""
    tok = AlbertTokenizer.from_file(spiece_model_path)
    config = dataclasses.replace(AlbertConfig.from_name("tiny"), vocab_size=tok.vocab_size, num_hidden_layers=4,
                                 max_position_embeddings=32, labels=LABELS)
    torch.manual_seed(0)
    model = AlbertForSequenceClassification(config).eval()
    with torch.no_grad():  # steps that move the state and a head that separates inputs: depths differ
        model.albert.pooler.weight.normal_(0, 3 / config.hidden_size**0.5)
        model.classifier.weight.normal_(0, 3)
        for p in model.albert.encoder.albert_layer_groups.parameters():
            if p.dim() == 2:
                p.mul_(6)
    save_pretrained(model, d, tokenizer_file=spiece_model_path)
    encs = tok.encode_batch([f"text number {i} " + "word " * (i % 7) for i in range(64)], max_length=32)
    batch = tuple(torch.tensor([getattr(e, f) for e in encs]) for f in ("input_ids", "attention_mask", "token_type_ids"))
    exits = train_exits(model, [batch], epochs=5)
    exits.recommended = rule
    save_exits(exits, d, config.labels)
    return d
