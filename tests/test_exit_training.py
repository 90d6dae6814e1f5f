"""`albert-edge finetune --exits` and ``workflows.train_exit_heads`` on a tiny model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from albert_edge.checkpoint import load_pretrained, save_pretrained
from albert_edge.cli import main
from albert_edge.config import AlbertConfig
from albert_edge.datasets import DataError, read_labelled
from albert_edge.exit_rules import ExitRule, apply_rule
from albert_edge.exits import encode_batches, load_exits, step_logits
from albert_edge.model import AlbertForPreTraining
from albert_edge.tokenizer import AlbertTokenizer
from albert_edge.workflows import train_exit_heads
from test_train_cli import _sentiment_rows


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, spiece_model_path: Path) -> Path:
    d = tmp_path_factory.mktemp("exits")
    vocab = AlbertTokenizer.from_file(spiece_model_path).vocab_size
    config = dataclasses.replace(AlbertConfig.from_name("tiny"), max_position_embeddings=32, num_hidden_layers=4,
                                 vocab_size=vocab)
    torch.manual_seed(0)
    save_pretrained(AlbertForPreTraining(config), d / "encoder", tokenizer_file=spiece_model_path)
    for name, n, seed in (("train", 300, 0), ("valid", 120, 1)):
        (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _sentiment_rows(n, seed)))
    assert main(["finetune", str(d / "encoder"), "--data", str(d / "train.jsonl"), "--valid", str(d / "valid.jsonl"),
                 "--out", str(d / "run"), "--steps", "200", "--batch-size", "16", "--lr", "5e-3",
                 "--warmup-steps", "20", "--max-seq-len", "32", "--exits", "--quiet"]) == 0
    return d


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_finetune_exits_writes_heads_and_a_rule_that_holds_on_valid(run: Path, capsys) -> None:
    model_dir = run / "run" / "model"
    model = load_pretrained(model_dir, "sequence-classification")
    exits = load_exits(model_dir, model)
    assert exits.num_steps == 4
    # the recommendation, checked independently: its agreement and accuracy on the valid rows
    rows = read_labelled(run / "valid.jsonl", labels=model.config.labels)
    tok = AlbertTokenizer.from_pretrained(model_dir)
    L = torch.cat([step_logits(model, exits, *b) for b in encode_batches(tok, [r.text for r in rows], 32)], 1).numpy()
    gold = np.array([model.config.labels.index(r.label) for r in rows])
    full = L[-1].argmax(-1)
    assert exits.recommended is not None  # confidence=0.8 here: the tiny task is easy from step 2
    out = apply_rule(exits.recommended, L)
    assert (out.predictions == full).mean() >= 0.995
    assert (out.predictions == gold).mean() >= (full == gold).mean()
    assert out.mean_depth < 4


def test_finetune_exits_prints_the_rule_table(run: Path, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["finetune", str(run / "encoder"), "--data", str(run / "train.jsonl"), "--valid", str(run / "valid.jsonl"),
                 "--out", str(tmp_path / "r"), "--steps", "5", "--batch-size", "16", "--max-seq-len", "32",
                 "--exits", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "early exits written to" in out and "on the valid rows" in out
    assert "full depth" in out and "patience=1" in out and "confidence=0.9" in out
    assert "recommended: " in out
    assert (tmp_path / "r" / "model" / "exits.safetensors").is_file()


def test_train_exit_heads_leaves_the_model_files_alone(run: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(run / "run" / "model", model_dir)
    (model_dir / "exits.safetensors").unlink()
    before = {p.name: _sha(p) for p in model_dir.iterdir()}
    rows = read_labelled(run / "train.jsonl")
    result = train_exit_heads(model_dir, rows, max_seq_len=32, epochs=2)
    after = {p.name: _sha(p) for p in model_dir.iterdir()}
    assert set(after) == set(before) | {"exits.safetensors"}
    assert all(after[k] == v for k, v in before.items())
    assert result["chosen_on"] == "train"
    assert result["rules"][0]["label"] == "full depth" and result["rules"][0]["agreement"] == 1.0
    assert result["rules"][0]["mean_depth"] == 4.0
    if result["recommended"] is not None:
        ExitRule.from_dict(result["recommended"])
    # transformers-style loading ignores the side file: the model loads strictly as before
    load_pretrained(model_dir, "sequence-classification", strict=True)


def test_train_exit_heads_names_an_unknown_label(run: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(run / "run" / "model", model_dir)
    rows = [dataclasses.replace(r, label="sarcastic") if i == 3 else r
            for i, r in enumerate(read_labelled(run / "train.jsonl"))]
    with pytest.raises(DataError, match=r"label\(s\) \['sarcastic'\] are not among the model's labels"):
        train_exit_heads(model_dir, rows, max_seq_len=32, epochs=1)
