"""Eager PyTorch text classification: a sequence-classification checkpoint plus its tokenizer,
and the shipped default model (``load_default()``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from albert_edge.checkpoint import CheckpointError, default_model_dir, load_pretrained, resolve_model_path
from albert_edge.datasets import text_list
from albert_edge.model import AlbertForSequenceClassification
from albert_edge.tokenizer import AlbertTokenizer

class TextClassifier:
    """Tokenize, run the model, softmax: ``classify(texts)`` -> per text a dict with ``label``
    (the most probable) and ``probs`` ({label: probability}, in the model's label order)."""

    def __init__(self, model: AlbertForSequenceClassification, tokenizer: AlbertTokenizer,
                 max_seq_len: int | None = None):
        if not isinstance(model, AlbertForSequenceClassification):
            raise CheckpointError(f"TextClassifier needs a sequence-classification model, got {type(model).__name__}")
        if model.config.num_labels < 2:
            raise CheckpointError("this model has one output (regression); it has no labels to classify into")
        if tokenizer.vocab_size > model.config.vocab_size:
            raise CheckpointError(
                f"the tokenizer has {tokenizer.vocab_size} pieces but the model's vocab_size is "
                f"{model.config.vocab_size}: its ids would fall outside the embedding table; use the "
                "tokenizer the model was trained with"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = model.config.labels
        self.max_seq_len = max_seq_len or model.config.max_position_embeddings

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, max_seq_len: int | None = None) -> TextClassifier:
        """A checkpoint folder with config.json, weights and spiece.model (or tokenizer.json)."""
        path = Path(resolve_model_path(path))
        model = load_pretrained(path, "sequence-classification")
        return cls(model, AlbertTokenizer.from_pretrained(path), max_seq_len)  # type: ignore[arg-type]

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """float64 (N, num_labels) probabilities."""
        out = []
        for i in range(0, len(texts), batch_size):
            encs = self.tokenizer.encode_batch(list(texts[i:i + batch_size]), max_length=self.max_seq_len)
            ids = torch.tensor([e.input_ids for e in encs])
            mask = torch.tensor([e.attention_mask for e in encs])
            types = torch.tensor([e.token_type_ids for e in encs])
            logits = self.model(ids, mask, types)
            bad = (~torch.isfinite(logits)).any(-1).nonzero().flatten().tolist()
            if bad:
                raise CheckpointError(
                    f"the model's logits for texts[{i + bad[0]}] are not finite ({logits[bad[0]].tolist()}): its "
                    "weights overflow float32 on this input, so no label or probability can be given; check the "
                    "checkpoint (a model trained or edited to these weights cannot classify)")
            out.append(torch.softmax(logits.double(), dim=-1))
        return torch.cat(out) if out else torch.zeros((0, len(self.labels)), dtype=torch.float64)

    def classify(self, texts: str | Sequence[str], batch_size: int = 32) -> list[dict[str, Any]]:
        """``[{"text", "label", "probs": {label: probability}}]``, one per text."""
        texts = text_list(texts)
        probs = self.predict_proba(texts, batch_size)
        return [{"text": t, "label": self.labels[int(p.argmax())], "probs": dict(zip(self.labels, p.tolist()))}
                for t, p in zip(texts, probs)]


def load_default() -> TextClassifier:
    """The shipped default model: tweet sentiment (negative / neutral / positive), see its
    MODEL_CARD.md in ``albert_edge/default_model/``."""
    return TextClassifier.from_pretrained(default_model_dir())
