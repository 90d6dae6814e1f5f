"""The training loop: equivalent batch splits, exact resume after a kill, DDP on 2 CPU processes,
the schedule, LAMB, logs and errors. Tiny configs, a few steps each."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from albert_edge._textgen import training_corpus
from albert_edge.checkpoint import load_pretrained
from albert_edge.config import AlbertConfig
from albert_edge.model import AlbertForPreTraining
from albert_edge.pretraining_data import MaskingConfig, PretrainingVocab, create_examples, tokenize_documents
from albert_edge.tokenizer import AlbertTokenizer
from albert_edge.training import (
    Lamb,
    TrainingArgs,
    TrainingError,
    lr_factor,
    pretraining_task,
    read_log,
    train,
)

REPO = Path(__file__).resolve().parents[1]
# No dropout anywhere, so that splitting a batch over micro-batches or processes cannot change
# which units are dropped.
CONFIG = dataclasses.replace(AlbertConfig.from_name("tiny"), classifier_dropout_prob=0.0, max_position_embeddings=64)


def _documents(n_docs: int = 40, seed: int = 0) -> list[list[str]]:
    sentences = training_corpus(n_docs * 8, seed=seed)
    return [sentences[i:i + 8] for i in range(0, len(sentences), 8)]


@pytest.fixture(scope="module")
def tokenizer(spiece_model_path: Path) -> AlbertTokenizer:
    return AlbertTokenizer.from_file(spiece_model_path, split_special_tokens=True)


@pytest.fixture(scope="module")
def examples(tokenizer: AlbertTokenizer) -> list:
    ids = tokenize_documents(_documents(), tokenizer)
    return create_examples(ids, PretrainingVocab.from_tokenizer(tokenizer), MaskingConfig(max_seq_len=64),
                           random.Random(0))


def _model(tokenizer: AlbertTokenizer) -> AlbertForPreTraining:
    torch.manual_seed(0)
    return AlbertForPreTraining(dataclasses.replace(CONFIG, vocab_size=tokenizer.vocab_size))


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= atol, f"max |diff| {worst}"


def test_pretraining_learns_and_logs(tmp_path: Path, tokenizer: AlbertTokenizer, examples: list) -> None:
    model = _model(tokenizer)
    before = _weights(model)
    args = TrainingArgs(steps=30, batch_size=8, lr=3e-3, warmup_steps=3, log_every=5, eval_every=10, progress=False)
    result = train(model, pretraining_task(tokenizer.pad_id), examples, args, tmp_path,
                   eval_examples=examples[:16])
    records = read_log(tmp_path)
    train_recs = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train_recs] == [5, 10, 15, 20, 25, 30]
    assert {"loss", "mlm_loss", "sop_loss", "mlm_acc", "sop_acc", "lr", "examples_per_s", "tokens_per_s"} <= train_recs[0].keys()
    assert [r["step"] for r in records if r["kind"] == "eval"] == [10, 20, 30]
    assert train_recs[-1]["mlm_loss"] < train_recs[0]["mlm_loss"] - 0.5  # it learns something
    assert 0.0 <= result["mlm_acc"] <= 1.0 and 0.0 <= result["sop_acc"] <= 1.0
    # The written model is the trained one, loadable as a checkpoint.
    reloaded = load_pretrained(tmp_path / "model", "pretraining")
    _assert_same(_weights(model), _weights(reloaded), 0.0)
    assert any((before[k] != v).any() for k, v in _weights(model).items())
    assert json.loads((tmp_path / "metrics.json").read_text())["step"] == 30


def test_batch_split_over_micro_batches_gives_the_same_gradient(tmp_path: Path, tokenizer: AlbertTokenizer,
                                                                 examples: list) -> None:
    results = []
    for accum in (1, 4):
        model = _model(tokenizer)
        args = TrainingArgs(steps=4, batch_size=8, grad_accum=accum, lr=1e-3, progress=False)
        train(model, pretraining_task(tokenizer.pad_id), examples, args, tmp_path / f"a{accum}")
        results.append(_weights(model))
    _assert_same(results[0], results[1], 2e-6)


def test_same_seed_same_weights_other_seed_differs(tmp_path: Path, tokenizer: AlbertTokenizer, examples: list) -> None:
    runs = []
    for i, seed in enumerate((0, 0, 1)):
        model = _model(tokenizer)
        args = TrainingArgs(steps=3, batch_size=4, lr=1e-3, seed=seed, progress=False)
        train(model, pretraining_task(tokenizer.pad_id), examples, args, tmp_path / str(i))
        runs.append(_weights(model))
    _assert_same(runs[0], runs[1], 0.0)
    assert any((runs[0][k] != runs[2][k]).any() for k in runs[0])


def test_lr_schedule_warms_up_then_decays_to_zero() -> None:
    args = TrainingArgs(steps=10, warmup_steps=4)
    factors = [lr_factor(s, args) for s in range(10)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4:] == pytest.approx([1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
    assert lr_factor(0, TrainingArgs(steps=5)) == 1.0


def test_lamb_step_length_is_lr_times_weight_norm() -> None:
    # LAMB's trust ratio rescales each tensor's update to lr * ||w||, whatever the gradient's scale.
    torch.manual_seed(0)
    for scale in (1e-3, 1.0, 1e3):
        w = torch.nn.Parameter(torch.randn(5, 7))
        start = w.detach().clone()
        opt = Lamb([w], lr=0.01)
        w.grad = torch.randn(5, 7) * scale
        opt.step()
        assert (w.detach() - start).norm().item() == pytest.approx(0.01 * start.norm().item(), rel=1e-5)


def test_existing_run_needs_resume_and_batch_must_divide(tmp_path: Path, tokenizer: AlbertTokenizer,
                                                         examples: list) -> None:
    args = TrainingArgs(steps=1, batch_size=4, progress=False)
    train(_model(tokenizer), pretraining_task(tokenizer.pad_id), examples, args, tmp_path)
    with pytest.raises(TrainingError, match="--resume"):
        train(_model(tokenizer), pretraining_task(tokenizer.pad_id), examples, args, tmp_path)
    with pytest.raises(TrainingError, match="multiple of processes x grad_accum"):
        train(_model(tokenizer), pretraining_task(tokenizer.pad_id), examples,
              TrainingArgs(steps=1, batch_size=6, grad_accum=4, progress=False), tmp_path / "b")
    with pytest.raises(TrainingError, match="steps must be at least 1"):
        TrainingArgs(steps=0)
    with pytest.raises(TrainingError, match="optimizer 'sgd' is not one of adamw, lamb"):
        TrainingArgs(steps=1, optimizer="sgd")
    # A damaged trainer state is refused by name, not with an unpickling traceback.
    (tmp_path / "checkpoint" / "trainer.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainingError, match="trainer.pt: cannot be read"):
        train(_model(tokenizer), pretraining_task(tokenizer.pad_id), examples, args, tmp_path, resume=True)


# ---- the CLI in subprocesses: kill + resume, and DDP ------------------------------------------

def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    text = tmp_path / "docs.txt"
    text.write_text("\n\n".join("\n".join(d) for d in _documents()) + "\n", encoding="utf-8")
    config = tmp_path / "config.json"
    CONFIG.save(config)
    return text, config


def _pretrain_cmd(out: Path, text: Path, config: Path, spm: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "albert_edge", "pretrain", "--out", str(out), "--text", str(text),
            "--config", str(config), "--spm", str(spm), "--max-seq-len", "64", "--batch-size", "8",
            "--lr", "1e-3", "--log-every", "1", "--quiet", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path: Path, spiece_model_path: Path) -> None:
    text, config = _write_inputs(tmp_path)
    steps = ["--steps", "60", "--save-every", "1"]
    subprocess.run(_pretrain_cmd(tmp_path / "whole", text, config, spiece_model_path, *steps),
                   check=True, env=_env(), timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_pretrain_cmd(killed, text, config, spiece_model_path, *steps), env=_env())
    deadline = time.time() + 300
    while time.time() < deadline:  # kill mid-run, at whatever point it has reached past step 10
        log = killed / "log.jsonl"
        if log.exists() and sum(1 for _ in log.open()) >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "model").exists(), "the run finished before it was killed; the test proves nothing"
    stopped_at = torch.load(killed / "checkpoint" / "trainer.pt", weights_only=True)["step"]
    assert 0 < stopped_at < 60

    subprocess.run(_pretrain_cmd(killed, text, config, spiece_model_path, *steps, "--resume"),
                   check=True, env=_env(), timeout=600)
    whole = load_file(tmp_path / "whole" / "model" / "model.safetensors")
    resumed = load_file(killed / "model" / "model.safetensors")
    _assert_same(whole, resumed, 0.0)
    steps_logged = [r["step"] for r in read_log(killed) if r["kind"] == "train"]
    assert steps_logged == list(range(1, 61))  # no step twice, none missing


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(tmp_path: Path, spiece_model_path: Path) -> None:
    text, config = _write_inputs(tmp_path)
    steps = ["--steps", "5", "--save-every", "0"]
    subprocess.run(_pretrain_cmd(tmp_path / "single", text, config, spiece_model_path, *steps),
                   check=True, env=_env(), timeout=600)
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "albert_edge"]
    cmd = torchrun + _pretrain_cmd(tmp_path / "ddp", text, config, spiece_model_path, *steps)[3:]
    subprocess.run(cmd, check=True, env=_env(), timeout=300)
    single = load_file(tmp_path / "single" / "model" / "model.safetensors")
    ddp = load_file(tmp_path / "ddp" / "model" / "model.safetensors")
    _assert_same(single, ddp, 1e-5)
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["world_size"] == 2
