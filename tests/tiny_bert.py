"""A random tiny BERT checkpoint with a WordPiece vocabulary of given words: a stand-in teacher
for tests (albert_edge.teacher loads any Hugging Face BERT folder)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch


def make_tiny_bert(d: Path, words: Iterable[str], *, seed: int = 0, max_positions: int = 64) -> Path:
    """Write a 2-layer, hidden-32 BertModel and its tokenizer into `d`; returns `d`."""
    import transformers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words))]
    # (transformers 5's BertTokenizer(vocab_file=...) maps every word to [UNK]; a vocab dict works)
    transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(d)
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=max_positions)
    transformers.BertModel(config).save_pretrained(d)
    return d
