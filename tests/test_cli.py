"""The albert-edge CLI, run in-process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from albert_edge.checkpoint import save_pretrained
from albert_edge.cli import main
from albert_edge.config import AlbertConfig
from albert_edge.model import AlbertForSequenceClassification


def test_info_on_a_preset(capsys):
    assert main(["info", "tiny", "--seq-len", "5", "--head", "masked-lm"]) == 0
    out = capsys.readouterr().out
    assert "AlbertForMaskedLM" in out
    assert "(1, 5, 99)" in out


def test_info_on_a_checkpoint(tmp_path, capsys):
    config = AlbertConfig.from_name("tiny", labels=("neg", "pos"))
    save_pretrained(AlbertForSequenceClassification(config), tmp_path)
    assert main(["info", str(tmp_path), "--seq-len", "3"]) == 0
    out = capsys.readouterr().out
    assert "AlbertForSequenceClassification" in out and "['neg', 'pos']" in out and "(1, 2)" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["info", "albert-gigantic"], "'albert-gigantic' is neither a checkpoint directory nor a preset"),
        (["info", "/no/such/dir"], "/no/such/dir: not a checkpoint directory"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("albert-edge: error: ") and message in err
    assert "Traceback" not in err


def test_bad_checkpoint_file_gives_one_line_without_traceback(tmp_path):
    AlbertConfig.from_name("tiny").save(tmp_path / "config.json")
    (tmp_path / "model.safetensors").write_bytes(b"\x00\x01truncated")
    proc = subprocess.run(
        [sys.executable, "-m", "albert_edge", "info", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "model.safetensors: not a readable safetensors file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "info" in capsys.readouterr().out


def test_tokenize_matches_the_library(spiece_model_path, capsys):
    from albert_edge.tokenizer import AlbertTokenizer

    assert main(["tokenize", str(spiece_model_path), "Hello, world!", "--pair", "Second one", "--max-length", "8"]) == 0
    line = json.loads(capsys.readouterr().out)
    enc = AlbertTokenizer.from_file(spiece_model_path).encode("Hello, world!", "Second one", max_length=8)
    assert line["input_ids"] == list(enc.input_ids) and len(line["input_ids"]) == 8
    assert line["token_type_ids"] == list(enc.token_type_ids)


def test_tokenize_bad_model_file(tmp_path, capsys):
    bad = tmp_path / "spiece.model"
    bad.write_text("not a model")
    assert main(["tokenize", str(bad), "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("albert-edge: error: ") and "spiece.model" in err
