"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from albert_edge._textgen import training_corpus
from albert_edge.tokenizer import train_sentencepiece
from albert_edge.tokenizer_goldens import train_reference_spiece


@pytest.fixture(scope="session")
def spiece_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ALBERT-style ``spiece.model`` (vocab 1500, ids 0-4 = <pad> <unk> [CLS] [SEP] [MASK]).

    Trained once per session (~0.5 s) from ``albert_edge._textgen.training_corpus()``, with
    ALBERT's user-defined symbols; the same recipe as ``export/goldens/spiece.model``.
    """
    return train_reference_spiece(tmp_path_factory.mktemp("spiece") / "spiece.model")


@pytest.fixture(scope="session")
def plain_spiece_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same recipe without user-defined symbols (as the shipped models' tokenizers are)."""
    return train_sentencepiece(
        training_corpus(), tmp_path_factory.mktemp("plain") / "spiece.model", vocab_size=1500
    )
