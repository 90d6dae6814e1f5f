"""The default-qa recipe's distillation stages (albert_edge.make_default_qa) with a tiny teacher on
the hand-written questions and a few steps: the teacher is trained and saved once, its targets
cover the student's training windows, the student trains on them, and the card says so."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from albert_edge import make_default_qa
from albert_edge.checkpoint import DEFAULT_MODEL_DIR
from albert_edge.qa_data import read_qa, training_features, write_qa_jsonl
from albert_edge.qa_teacher import with_targets
from albert_edge.tokenizer import AlbertTokenizer
from albert_edge.training import read_log
from tiny_bert import make_tiny_bert

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory):
    questions = read_qa(make_default_qa.HANDWRITTEN)
    words = {w.strip(".,!?;:()\"'").lower() for e in questions for w in (e.question + " " + e.context).split()}
    bert = make_tiny_bert(tmp_path_factory.mktemp("bert"), words, max_positions=make_default_qa.TEACHER_MAX_LEN)
    out = tmp_path_factory.mktemp("default-qa")
    data = {}
    for split, part in (("train", questions[:32]), ("valid", questions[32:40]), ("test", questions[40:])):
        data[split] = write_qa_jsonl(out / "data" / f"{split}.jsonl", part)
    targets = make_default_qa.teacher(out, questions[:32], steps=3, teacher_dir=bert)
    args = dataclasses.replace(make_default_qa.FINETUNE, steps=2, warmup_steps=1, eval_every=0, save_every=0,
                               log_every=1, progress=False)
    model = make_default_qa.finetune(out, data, args, targets)
    return out, questions, targets, model


def test_the_teacher_is_saved_and_its_targets_cover_the_students_windows(stages) -> None:
    out, questions, targets, _ = stages
    assert (out / "teacher" / "model" / "span_head.safetensors").is_file()
    tokenizer = AlbertTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    features = with_targets(targets, training_features(questions[:32], tokenizer, make_default_qa.SETTINGS))
    assert all(len(f.teacher_start) == len(f.input_ids) for f in features)
    stamp = targets.stat().st_mtime_ns
    make_default_qa.teacher(out, questions[:32], steps=3, teacher_dir=Path("/nonexistent"))  # done: not redone
    assert targets.stat().st_mtime_ns == stamp


def test_the_student_trains_on_the_teachers_targets_and_scores_are_kept(stages) -> None:
    out, questions, _, model = stages
    assert (model / "config.json").is_file()
    assert [r["step"] for r in read_log(out / "finetune") if r["kind"] == "train"][-1] == 2
    scores = make_default_qa.teacher_scores(out, questions[40:], questions[:8])
    assert scores["test"]["questions"] == len(questions) - 40 and scores["handwritten"]["questions"] == 8
    assert json.loads((out / "eval" / "teacher.json").read_text()) == scores
