"""Distillation: a teacher's logits in the classification loss, a BERT teacher fine-tuned at build
time (albert_edge.teacher), and `albert-edge finetune --teacher`, on tiny models."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from albert_edge._textgen import training_corpus
from albert_edge.cli import main
from albert_edge.config import AlbertConfig
from albert_edge.datasets import DataError, Row, encode_rows
from albert_edge.errors import TrainingError
from albert_edge.teacher import TeacherError, finetune_teacher, teacher_logits
from albert_edge.tokenizer import AlbertTokenizer
from albert_edge.training import ClassificationObjective, TrainingArgs
from albert_edge.workflows import evaluate_rows, finetune_rows
from test_train_cli import NEGATIVE, POSITIVE, _sentiment_rows
from tiny_bert import make_tiny_bert

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

LABELS = ("neg", "neu", "pos")


def sentiment_rows(n: int, seed: int) -> list[Row]:
    """test_train_cli's easy task: a positive or negative word, or none (neutral)."""
    return [Row(r["text"], r["label"], None, i) for i, r in enumerate(_sentiment_rows(n, seed))]


def rule_logits(text: str) -> tuple[float, ...]:
    """A perfect teacher of the rule above, confident but not one-hot."""
    words = set(text.split())
    k = 2 if words & set(POSITIVE) else 0 if words & set(NEGATIVE) else 1
    return tuple(3.0 if i == k else 0.0 for i in range(3))


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory, spiece_model_path: Path) -> Path:
    """A tiny pretraining checkpoint (3 steps) with the test tokenizer: the student's start."""
    d = tmp_path_factory.mktemp("student")
    sentences = training_corpus(200, seed=3)
    (d / "docs.txt").write_text("\n\n".join("\n".join(sentences[i:i + 5]) for i in range(0, 200, 5)) + "\n")
    dataclasses.replace(AlbertConfig.from_name("tiny"), max_position_embeddings=64).save(d / "config.json")
    assert main(["pretrain", "--out", str(d / "run"), "--text", str(d / "docs.txt"), "--config",
                 str(d / "config.json"), "--spm", str(spiece_model_path), "--max-seq-len", "64", "--steps", "3",
                 "--batch-size", "4", "--quiet"]) == 0
    return d / "run" / "model"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT checkpoint with a WordPiece vocabulary of the test words."""
    words = {w for r in sentiment_rows(400, 9) for w in r.text.split()}
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), words)


def test_distillation_loss_is_the_documented_mix() -> None:
    student_logits = torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.3, 2.0]])
    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    labels = torch.tensor([0, 2])

    class Fixed(nn.Module):
        def forward(self, *_):
            return student_logits

    batch = {"input_ids": None, "attention_mask": None, "token_type_ids": None, "labels": labels,
             "teacher_logits": teacher}
    ce = float(nn.functional.cross_entropy(student_logits, labels, reduction="sum"))
    assert float(ClassificationObjective(Fixed())(batch)[0]) == pytest.approx(ce)  # no distill settings
    assert float(ClassificationObjective(Fixed(), (1.0, 2.0))(batch)[0]) == pytest.approx(ce)
    t = 2.0
    kl = 0.0
    for s_row, t_row in zip(student_logits.tolist(), teacher.tolist()):
        ps = [math.exp(x / t) for x in s_row]
        pt = [math.exp(x / t) for x in t_row]
        ps, pt = [x / sum(ps) for x in ps], [x / sum(pt) for x in pt]
        kl += sum(b * math.log(b / a) for a, b in zip(ps, pt))
    sums = ClassificationObjective(Fixed(), (0.25, t))(batch)
    assert float(sums[0]) == pytest.approx(0.25 * ce + 0.75 * t * t * kl, rel=1e-5)
    assert sums[1:].tolist() == [2.0, 2.0]  # correct, sequences: from the labels, as without a teacher
    same = dict(batch, teacher_logits=student_logits)
    assert float(ClassificationObjective(Fixed(), (0.0, t))(same)[0]) == pytest.approx(0.0, abs=1e-6)


def test_the_student_learns_what_the_teacher_knows(student: Path, tmp_path: Path) -> None:
    """Hard labels shuffled (noise), the teacher right: alpha 0 learns the rule from the teacher
    alone; alpha 1 (labels only) cannot."""
    train = sentiment_rows(300, 0)
    noisy = [dataclasses.replace(r, label=random.Random(r.row).choice(LABELS)) for r in train]
    valid = sentiment_rows(90, 1)
    teacher = [rule_logits(r.text) for r in train]
    accuracy = {}
    for alpha in (0.0, 1.0):
        args = TrainingArgs(steps=250, batch_size=16, lr=5e-3, warmup_steps=20, log_every=50, progress=False,
                            distill_alpha=alpha, distill_temperature=2.0)
        out = tmp_path / f"alpha{alpha}"
        finetune_rows(student, out, noisy, args, labels=LABELS, max_seq_len=32, teacher_logits=teacher)
        accuracy[alpha] = evaluate_rows(out / "model", valid, max_seq_len=32)["accuracy"]
    assert accuracy[0.0] > 0.85 and accuracy[1.0] < 0.6, accuracy


def test_teacher_finetunes_and_gives_logits(tiny_bert: Path) -> None:
    rows = sentiment_rows(300, 2)
    index = {name: i for i, name in enumerate(LABELS)}
    fitted = finetune_teacher([r.text for r in rows], [index[r.label] for r in rows], LABELS, teacher_dir=tiny_bert,
                              steps=150, lr=1e-2, warmup_steps=10, batch_size=16, seed=0)
    valid = sentiment_rows(90, 3)
    logits = teacher_logits(fitted, [r.text for r in valid], batch_size=32)
    assert len(logits) == 90 and all(len(x) == 3 for x in logits)
    right = sum(max(range(3), key=row.__getitem__) == index[r.label] for row, r in zip(logits, valid))
    assert right / 90 > 0.8
    # Batched logits are the logits of each text alone (order kept, padding masked).
    alone = [teacher_logits(fitted, [r.text])[0] for r in valid[:5]]
    for a, b in zip(alone, logits[:5]):
        assert a == pytest.approx(b, abs=1e-5)


def test_finetune_cli_with_a_teacher(student: Path, tiny_bert: Path, tmp_path: Path, capsys) -> None:
    for name, n, seed in (("train", 200, 4), ("valid", 60, 5)):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps({"text": r.text, "label": r.label}) + "\n" for r in sentiment_rows(n, seed)))
    args = ["finetune", str(student), "--data", str(tmp_path / "train.jsonl"), "--valid", str(tmp_path / "valid.jsonl"),
            "--out", str(tmp_path / "run"), "--steps", "20", "--batch-size", "16", "--max-seq-len", "32", "--quiet",
            "--teacher", str(tiny_bert), "--teacher-steps", "20", "--distill-alpha", "0.3", "--augment", "1"]
    assert main(args) == 0
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    assert json.loads((tmp_path / "run" / "teacher_logits.json").read_text())["augmented"]  # --augment reached it
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["args"]["distill_alpha"] == 0.3
    capsys.readouterr()
    bad = args[:args.index("--teacher") + 1] + [str(tmp_path / "nope")]
    bad[bad.index("--out") + 1] = str(tmp_path / "run2")
    assert main(bad) == 2
    assert f"teacher folder {tmp_path / 'nope'} has no config.json" in capsys.readouterr().err


def test_bad_distillation_inputs(spiece_model_path: Path) -> None:
    tok = AlbertTokenizer.from_file(spiece_model_path)
    rows = sentiment_rows(3, 6)
    with pytest.raises(DataError, match=r"teacher_logits has 2 rows for 3 training rows"):
        encode_rows(rows, tok, LABELS, 16, [(0.0, 0.0, 0.0)] * 2)
    with pytest.raises(DataError, match=r"teacher_logits\[1\] must be 3 finite numbers \(one per label\)"):
        encode_rows(rows, tok, LABELS, 16, [(0.0, 0.0, 0.0), (0.0, float("nan"), 0.0), (0.0, 0.0, 0.0)])
    with pytest.raises(DataError, match=r"teacher_logits\[0\] must be 3 finite numbers"):
        encode_rows(rows, tok, LABELS, 16, [(0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)])
    with pytest.raises(DataError, match="regression head"):
        encode_rows(rows, tok, None, 16, [(0.0,)] * 3)
    with pytest.raises(TrainingError, match=r"distill_alpha must be in \[0, 1\], got 1.5"):
        TrainingArgs(steps=1, distill_alpha=1.5)
    with pytest.raises(TrainingError, match="distill_temperature must be positive, got 0"):
        TrainingArgs(steps=1, distill_temperature=0)
    with pytest.raises(TeacherError, match="need equal counts"):
        finetune_teacher(["a"], [0, 1], LABELS, teacher_dir="unused")


def test_resume_reuses_the_teachers_logits(student: Path, tiny_bert: Path, tmp_path: Path, monkeypatch) -> None:
    from albert_edge import workflows

    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({"text": r.text, "label": r.label}) + "\n" for r in sentiment_rows(64, 7)))
    out = tmp_path / "run"
    args = TrainingArgs(steps=4, batch_size=16, save_every=2, progress=False)
    workflows.finetune(student, out, tmp_path / "train.jsonl", args, max_seq_len=32, teacher=tiny_bert,
                       teacher_steps=5)
    saved = json.loads((out / workflows.TEACHER_LOGITS).read_text())
    assert len(saved) == 64 and all(len(row) == 3 for row in saved)
    calls = []
    monkeypatch.setattr(workflows, "distilled_labels", lambda *a, **k: calls.append(1))
    with pytest.raises(TrainingError, match="already holds a run"):  # refused before any teacher work
        workflows.finetune(student, out, tmp_path / "train.jsonl", args, max_seq_len=32, teacher=tiny_bert)
    workflows.finetune(student, out, tmp_path / "train.jsonl", dataclasses.replace(args, steps=6), max_seq_len=32,
                       teacher=tiny_bert, resume=True, resume_changed=True)
    assert calls == []


def test_augmented_transfer_text_joins_the_rows_and_is_kept_for_resume(student: Path, tiny_bert: Path,
                                                                      tmp_path: Path, monkeypatch) -> None:
    from albert_edge import workflows

    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({"text": r.text, "label": r.label}) + "\n" for r in sentiment_rows(40, 8)))
    out = tmp_path / "run"
    args = TrainingArgs(steps=3, batch_size=16, save_every=2, progress=False)
    with pytest.raises(DataError, match="augment=2: perturbed copies are labelled by a teacher"):
        workflows.finetune(student, out, tmp_path / "train.jsonl", args, max_seq_len=32, augment=2)
    seen = []
    real = workflows.finetune_rows
    monkeypatch.setattr(workflows, "finetune_rows", lambda model, o, rows, *a, **k: (seen.append(rows), real(
        model, o, rows, *a, **k))[1])
    workflows.finetune(student, out, tmp_path / "train.jsonl", args, max_seq_len=32, teacher=tiny_bert,
                       teacher_steps=3, augment=2)
    kept = json.loads((out / workflows.TEACHER_LOGITS).read_text())
    copies = kept["augmented"]
    assert 40 < 40 + len(copies) <= 120 and len(kept["logits"]) == 40 + len(copies)
    rows = seen[-1]
    assert [r.text for r in rows[40:]] == copies  # the copies train too, labelled by the teacher's choice
    assert all(r.label == LABELS[max(range(3), key=lo.__getitem__)] for r, lo in zip(rows[40:], kept["logits"][40:]))
    monkeypatch.setattr(workflows, "distilled_labels", lambda *a, **k: pytest.fail("the teacher ran again"))
    workflows.finetune(student, out, tmp_path / "train.jsonl", dataclasses.replace(args, steps=4), max_seq_len=32,
                       teacher=tiny_bert, augment=2, resume=True, resume_changed=True)
    assert [r.text for r in seen[-1]] == [r.text for r in rows]
