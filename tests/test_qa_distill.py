"""QA distillation (albert_edge.qa_teacher): a BERT teacher's start/end distributions carried onto
the student's windows through character offsets, the soft term of the QA objective, and a student
that learns from the teacher what its hard labels do not say. Tiny models."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from albert_edge import workflows
from albert_edge._textgen import training_corpus
from albert_edge.qa import QASettings
from albert_edge.qa_data import QAExample, squad_scores, training_features
from albert_edge.qa_teacher import (LOG_ZERO, QATeacher, distillation_features, finetune_qa_teacher,
                                    teacher_answers)
from albert_edge.teacher import TeacherError
from albert_edge.tokenizer import AlbertTokenizer
from albert_edge.training import QuestionAnsweringObjective, TrainingArgs, collate_qa
from tiny_bert import make_tiny_bert

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

REFERENCE = Path(__file__).resolve().parent / "data" / "qa_reference"
SETTINGS = QASettings(max_seq_len=48, doc_stride=16)
ANSWER = "zebrafish"


def _questions(n: int = 24, seed: int = 0) -> list[QAExample]:
    """Contexts of three sentences with ANSWER once, somewhere in them; long enough that the
    student cuts most into several windows, some without the answer."""
    sentences = [s for s in training_corpus(600, seed=seed) if 6 <= len(s.split()) <= 12]
    examples = []
    for i in range(n):
        words = " ".join(sentences[3 * i:3 * i + 3]).split()
        at = (7 * i) % len(words)
        context = " ".join(words[:at] + [ANSWER] + words[at:])
        examples.append(QAExample(f"q{i}", "which fish is named here?", context, ((ANSWER, context.index(ANSWER)),)))
    return examples


class _KnowsTheFish(nn.Module):
    """A stand-in teacher that is sure the answer is the token `fish_id` ([CLS] where that token
    is absent): start and end logits 20 there, 5 at [CLS], 0 elsewhere."""

    def __init__(self, fish_id: int):
        super().__init__()
        self.fish_id = fish_id

    def forward(self, input_ids, attention_mask, token_type_ids):
        logits = (input_ids == self.fish_id).float() * 20
        logits[:, 0] = 5.0
        return logits, logits.clone()


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = {w.strip(".,!?;:").lower() for e in _questions() for w in e.context.split()}
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), words | {"which", "fish", "is", "named", "here", "?", "."})


@pytest.fixture(scope="module")
def oracle(teacher_dir: Path) -> QATeacher:
    tokenizer = transformers.AutoTokenizer.from_pretrained(teacher_dir)
    fish_id = tokenizer.convert_tokens_to_ids(ANSWER)
    assert fish_id != tokenizer.unk_token_id
    return QATeacher(_KnowsTheFish(fish_id), tokenizer, max_seq_len=64, stride=16)


def test_teacher_distributions_land_on_the_students_answer_tokens(oracle: QATeacher) -> None:
    examples = _questions()
    tok = AlbertTokenizer.from_pretrained(REFERENCE)
    hard = training_features(examples, tok, SETTINGS)
    soft = distillation_features(oracle, examples, tok, SETTINGS, hard)
    assert len(soft) == len(hard) > len(examples)  # several windows per question
    with_answer = sum(f.start_position > 0 for f in hard)
    assert 0 < with_answer < len(hard)
    for h, s in zip(hard, soft):
        assert (s.input_ids, s.start_position, s.end_position) == (h.input_ids, h.start_position, h.end_position)
        for dist, gold in ((s.teacher_start, h.start_position), (s.teacher_end, h.end_position)):
            assert len(dist) == len(h.input_ids)
            assert math.isclose(math.log(sum(math.exp(x) for x in dist)), 0.0, abs_tol=1e-5)  # a distribution
            # The teacher's answer (a WordPiece token) is the student's first/last answer piece
            # (SentencePiece cuts the word differently), or [CLS] where the window lacks it.
            assert max(range(len(dist)), key=dist.__getitem__) == gold
            question = [i for i, t in enumerate(h.token_type_ids) if t == 0][1:]
            assert all(dist[i] == LOG_ZERO for i in question)  # no mass on the question
    # The student cuts the answer into several pieces somewhere: start and end differ there.
    assert any(h.end_position > h.start_position for h in hard)


def test_a_window_the_teacher_cannot_read_whole_keeps_its_hard_label(oracle: QATeacher) -> None:
    examples = _questions(4)
    tok = AlbertTokenizer.from_pretrained(REFERENCE)
    hard = training_features(examples, tok, SETTINGS)
    short = dataclasses.replace(oracle, max_seq_len=12)
    soft = distillation_features(short, examples, tok, SETTINGS, hard)
    for h, s in zip(hard, soft):
        assert s.teacher_start[h.start_position] == 0.0 and s.teacher_end[h.end_position] == 0.0
        assert sorted(set(s.teacher_start)) == [LOG_ZERO, 0.0]
    with pytest.raises(TeacherError, match="windows from the examples"):
        distillation_features(oracle, examples, tok, SETTINGS, hard[:-1])


def test_qa_distillation_loss_is_the_documented_mix() -> None:
    class Fixed(nn.Module):
        def forward(self, ids, mask, types):
            return torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([[0.0, 1.0, 3.0]])

    batch = {"input_ids": torch.zeros(1, 3, dtype=torch.long), "attention_mask": torch.ones(1, 3, dtype=torch.long),
             "token_type_ids": torch.zeros(1, 3, dtype=torch.long), "start_positions": torch.tensor([0]),
             "end_positions": torch.tensor([2]),
             "teacher_start": torch.tensor([[0.0, LOG_ZERO, LOG_ZERO]]),
             "teacher_end": torch.log(torch.tensor([[0.2, 0.3, 0.5]]))}
    alpha, t = 0.25, 2.0
    got = QuestionAnsweringObjective(Fixed(), (alpha, t))(batch)[0].item()

    def ce(logits, gold):
        return -logits[gold] + math.log(sum(math.exp(x) for x in logits))

    def kl(teacher_logp, student_logits):
        p = [math.exp(x / t) for x in teacher_logp]
        p = [x / sum(p) for x in p]
        q = [math.exp(x / t) for x in student_logits]
        q = [x / sum(q) for x in q]
        return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)

    hard = (ce([2.0, 0.5, -1.0], 0) + ce([0.0, 1.0, 3.0], 2)) / 2
    soft = (kl([0.0, LOG_ZERO, LOG_ZERO], [2.0, 0.5, -1.0]) + kl([math.log(0.2), math.log(0.3), math.log(0.5)],
                                                                  [0.0, 1.0, 3.0])) / 2
    assert got == pytest.approx(alpha * hard + (1 - alpha) * t * t * soft, rel=1e-5)
    # Without teacher targets in the batch, or without distill, the loss is the hard one.
    plain = {k: v for k, v in batch.items() if not k.startswith("teacher")}
    assert QuestionAnsweringObjective(Fixed(), (alpha, t))(plain)[0].item() == pytest.approx(hard, rel=1e-5)
    assert QuestionAnsweringObjective(Fixed())(batch)[0].item() == pytest.approx(hard, rel=1e-5)


def test_collate_pads_teacher_targets_with_log_zero(oracle: QATeacher) -> None:
    examples = _questions(3)
    tok = AlbertTokenizer.from_pretrained(REFERENCE)
    soft = distillation_features(oracle, examples, tok, SETTINGS, training_features(examples, tok, SETTINGS))
    short = min(soft, key=lambda f: len(f.input_ids))
    long = max(soft, key=lambda f: len(f.input_ids))
    assert len(short.input_ids) < len(long.input_ids)
    batch = collate_qa([short, long], tok.pad_id)
    n = len(short.input_ids)
    assert batch["teacher_start"].shape == batch["input_ids"].shape
    assert batch["teacher_start"][0, :n].tolist() == pytest.approx(list(short.teacher_start))
    assert (batch["teacher_start"][0, n:] == LOG_ZERO).all() and (batch["teacher_end"][0, n:] == LOG_ZERO).all()


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_student_learns_what_only_the_teacher_knows(oracle: QATeacher, tmp_path: Path, one_thread) -> None:
    """Hard labels point at the first word of each context; the teacher knows the answer is the
    fish. Pure distillation (alpha 0) answers the fish; labels only answer the first word."""
    examples = _questions()
    wrong = [dataclasses.replace(e, answers=((e.context.split()[0], 0),)) for e in examples]
    args = TrainingArgs(steps=60, batch_size=8, lr=1e-3, warmup_steps=0, log_every=10, progress=False, seed=0)
    workflows.finetune_qa(REFERENCE, tmp_path / "kd", wrong, dataclasses.replace(args, distill_alpha=0.0),
                          settings=SETTINGS, teacher=oracle)
    workflows.finetune_qa(REFERENCE, tmp_path / "labels", wrong, args, settings=SETTINGS)
    kd = workflows.evaluate_qa(tmp_path / "kd" / "model", examples, SETTINGS)
    labels = workflows.evaluate_qa(tmp_path / "labels" / "model", examples, SETTINGS)
    assert kd["f1"] > 80 and labels["f1"] < 30, (kd, labels)


def test_qa_teacher_finetunes_and_answers_from_the_context(teacher_dir: Path, oracle: QATeacher) -> None:
    examples = _questions()
    assert squad_scores(examples, teacher_answers(oracle, examples))["exact_match"] == 100.0
    fitted = finetune_qa_teacher(examples, teacher_dir=teacher_dir, steps=40, batch_size=8, lr=3e-3,
                                 warmup_steps=4, max_seq_len=48, stride=16)
    answers = teacher_answers(fitted, examples)
    assert len(answers) == len(examples) and all(a and a in e.context for a, e in zip(answers, examples))
    assert squad_scores(examples, answers)["f1"] > 50
    with pytest.raises(TeacherError, match="at least batch_size"):
        finetune_qa_teacher(examples[:3], teacher_dir=teacher_dir, batch_size=8)
    with pytest.raises(TeacherError, match="exceeds the teacher's max_position_embeddings 64"):
        finetune_qa_teacher(examples, teacher_dir=teacher_dir, batch_size=8, max_seq_len=65)


def test_teacher_and_targets_round_trip_through_files(oracle: QATeacher, teacher_dir: Path, tmp_path: Path) -> None:
    from albert_edge.qa_teacher import load_qa_teacher, save_qa_teacher, save_targets, with_targets

    examples = _questions(6)
    tok = AlbertTokenizer.from_pretrained(REFERENCE)
    hard = training_features(examples, tok, SETTINGS)
    soft = distillation_features(oracle, examples, tok, SETTINGS, hard)
    path = save_targets(tmp_path / "targets.safetensors", soft)
    back = with_targets(path, hard)
    for a, b in zip(soft, back):
        assert b.teacher_start == pytest.approx(a.teacher_start, rel=1e-3, abs=1e-3)  # float16
        assert b.teacher_end == pytest.approx(a.teacher_end, rel=1e-3, abs=1e-3)
    with pytest.raises(TeacherError, match="not these"):
        with_targets(path, hard[1:])
    with pytest.raises(TeacherError, match="no teacher targets"):
        save_targets(tmp_path / "bad.safetensors", hard)
    assert not (tmp_path / "bad.safetensors").exists()

    fitted = finetune_qa_teacher(examples, teacher_dir=teacher_dir, steps=3, batch_size=4, max_seq_len=48, stride=16)
    save_qa_teacher(fitted, tmp_path / "teacher")
    again = load_qa_teacher(tmp_path / "teacher")
    assert (again.max_seq_len, again.stride) == (48, 16)
    assert teacher_answers(again, examples) == teacher_answers(fitted, examples)
    with pytest.raises(TeacherError, match="not a QA teacher folder"):
        load_qa_teacher(teacher_dir)

    # finetune_qa reads the saved targets as it would compute them; not both at once.
    args = TrainingArgs(steps=2, batch_size=4, lr=1e-3, warmup_steps=0, log_every=1, progress=False)
    workflows.finetune_qa(REFERENCE, tmp_path / "run", examples, args, settings=SETTINGS, teacher_targets=path)
    from albert_edge.datasets import DataError

    with pytest.raises(DataError, match="not both"):
        workflows.finetune_qa(REFERENCE, tmp_path / "run2", examples, args, settings=SETTINGS, teacher=oracle,
                              teacher_targets=path)


def test_finetune_qa_cli_with_a_teacher_and_resume(teacher_dir: Path, tmp_path: Path, capsys, monkeypatch,
                                                   one_thread) -> None:
    from albert_edge.cli import main
    from albert_edge.qa_data import write_qa_jsonl
    from albert_edge.qa_teacher import with_targets

    examples = _questions()
    write_qa_jsonl(tmp_path / "train.jsonl", examples[:20])
    write_qa_jsonl(tmp_path / "valid.jsonl", examples[20:])
    out = tmp_path / "run"
    args = ["finetune-qa", str(REFERENCE), "--data", str(tmp_path / "train.jsonl"), "--valid",
            str(tmp_path / "valid.jsonl"), "--out", str(out), "--max-seq-len", "48", "--doc-stride", "16",
            "--steps", "4", "--batch-size", "8", "--save-every", "2", "--quiet",
            "--teacher", str(teacher_dir), "--teacher-steps", "3", "--distill-alpha", "0.3"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"model written to {out / 'model'}" in printed
    assert f"{tmp_path / 'valid.jsonl'}: exact match " in printed and "(4 questions)" in printed
    assert (out / "model" / "config.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["args"]["distill_alpha"] == 0.3
    # The teacher's distributions are kept for exactly the student's training windows.
    windows = training_features(examples[:20], AlbertTokenizer.from_pretrained(REFERENCE), SETTINGS)
    kept = with_targets(out / workflows.QA_TEACHER_TARGETS, windows)
    assert all(len(f.teacher_start) == len(f.input_ids) for f in kept)
    # A second run into the folder is refused before any teacher work; --resume reuses the targets.
    calls: list[int] = []
    monkeypatch.setattr(workflows, "finetune_qa_teacher", lambda *a, **k: calls.append(1))
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(args + ["--resume", "--resume-changed", "--steps", "6"]) == 0
    assert calls == []
    bad = args[:args.index("--teacher") + 1] + [str(tmp_path / "nope")]
    bad[bad.index("--out") + 1] = str(tmp_path / "run2")
    monkeypatch.undo()
    assert main(bad) == 2
    assert f"teacher folder {tmp_path / 'nope'} has no config.json" in capsys.readouterr().err
