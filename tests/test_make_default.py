"""The default-model recipe end to end (`albert_edge.make_default.run`) on a slice of the real
corpora with a few steps per stage: both pretraining phases at their sequence lengths,
fine-tuning from the phase-2 encoder next to the ablation from scratch (side by side in worker
processes where there are two cores), the card, and resuming a finished build. Needs
`make corpora` (skipped otherwise); slow (about a minute)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from albert_edge import corpora, make_default
from albert_edge.checkpoint import load_pretrained
from albert_edge.training import read_log
from tiny_bert import make_tiny_bert

pytestmark = pytest.mark.slow


def _tiny(args, steps):
    return dataclasses.replace(args, steps=steps, warmup_steps=1, eval_every=0, save_every=0, progress=False)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    try:
        corpora.tweet_splits()
    except corpora.CorpusError as e:
        pytest.skip(f"real corpora not installed ({e})")
    pytest.importorskip("transformers")
    train = corpora.tweet_splits()["train"][::12]
    teacher = make_tiny_bert(tmp_path_factory.mktemp("teacher"), {w for t in train for w in t.text.lower().split()})
    out = tmp_path_factory.mktemp("default-model")
    card = _run(out, teacher)
    return out, card


def _run(out, teacher):
    return make_default.run(out, pretrain_args=_tiny(make_default.PRETRAIN, 3),
                            long_args=_tiny(make_default.PRETRAIN_LONG, 2),
                            finetune_args=_tiny(make_default.FINETUNE, 3), teacher_steps=4,
                            distill_args=_tiny(make_default.DISTILL, 3), teacher_dir=teacher, smoke=True)


def test_two_pretraining_phases_at_their_lengths(build):
    out, card = build
    short, long = card["pretraining"]["data"], card["pretraining_long"]["data"]
    assert (short["max_seq_len"], short["dupe_factor"]) == (make_default.SHORT_SEQ_LEN, make_default.SHORT_DUPE_FACTOR)
    assert (long["max_seq_len"], long["dupe_factor"]) == (make_default.MAX_SEQ_LEN, 1)
    assert [r["step"] for r in read_log(out / "pretrain") if r["kind"] == "train"][-1] == 3
    assert [r["step"] for r in read_log(out / "pretrain-long") if r["kind"] == "train"][-1] == 2
    # Phase 2 starts from phase 1's weights: two steps move them only a little, while a fresh
    # initialisation would be far away.
    p1 = load_pretrained(out / "pretrain" / "model").state_dict()
    p2 = load_pretrained(out / "pretrain-long" / "model").state_dict()
    key = "albert.embeddings.word_embeddings.weight"
    moved = (p2[key] - p1[key]).abs().max().item()
    assert 0 < moved < 0.05, moved
    assert 0 <= card["pretraining_long"]["heldout"]["sop_acc"] <= 1


def test_finetuning_starts_from_the_long_phase_and_ablation_from_scratch(build):
    out, card = build
    enc = load_pretrained(out / "pretrain-long" / "model").state_dict()
    tuned = load_pretrained(out / "finetune" / "model").state_dict()
    scratch = load_pretrained(out / "finetune-from-scratch" / "model").state_dict()
    key = "albert.embeddings.word_embeddings.weight"
    assert (tuned[key] - enc[key]).abs().max().item() < 0.05
    assert (scratch[key] - enc[key]).abs().max().item() > 0.05
    for name in ("finetune", "finetune-from-scratch"):
        test = json.loads((out / name / "test.json").read_text())
        assert test["n"] == card["split_sizes"]["test"]
    timings = card["timings_s"]
    if (torch.multiprocessing.cpu_count() or 1) >= 2:
        assert "fine-tuning and ablation (side by side)" in timings
    else:
        assert {"fine-tuning", "ablation (from scratch)"} <= set(timings)


def test_card_reports_both_phases_and_the_targets(build):
    out, card = build
    text = (out / "MODEL_CARD.md").read_text()
    assert "Pretraining, phase 1" in text and "Pretraining, phase 2" in text
    assert f"up to {make_default.MAX_SEQ_LEN} tokens" in text and f"up to {make_default.SHORT_SEQ_LEN} tokens" in text
    assert "TF-IDF + logistic regression baseline" in text
    assert json.loads((out / "card.json").read_text()) == json.loads(json.dumps(card))


def test_a_finished_build_is_not_redone(build):
    out, card = build
    stamps = {p: p.stat().st_mtime_ns for p in (out / "pretrain" / "model" / "model.safetensors",
                                                out / "finetune" / "model" / "model.safetensors",
                                                out / "distill" / "model" / "model.safetensors",
                                                out / "teacher" / "train_logits.json")}
    again = _run(out, Path("/nonexistent/teacher"))  # a finished teacher stage is not run again
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again["finetuning"]["test"] == card["finetuning"]["test"]
    assert again["distillation"]["test"] == card["distillation"]["test"]


def test_teacher_then_distillation_from_the_finetuned_model(build):
    out, card = build
    logits = json.loads((out / "teacher" / "train_logits.json").read_text())
    assert len(logits) == card["split_sizes"]["train"] and {len(r) for r in logits} == {len(make_default.LABELS)}
    assert card["teacher"]["steps"] == 4 and card["teacher"]["test"]["n"] == card["split_sizes"]["test"]
    assert [r["step"] for r in read_log(out / "distill") if r["kind"] == "train"][-1] == 3
    # Transfer text: perturbed copies of train tweets, none a held-out tweet, each with the teacher's logits.
    augmented = json.loads((out / "teacher" / "augmented.json").read_text())
    assert len(augmented["texts"]) == len(augmented["logits"]) == card["teacher"]["augmented"]["texts"] > 0
    from albert_edge import corpora
    held_out = {corpora.tweet_key(t.text) for s in ("valid", "test") for t in corpora.tweet_splits()[s]}
    assert not held_out & {corpora.tweet_key(t) for t in augmented["texts"]}
    # The shipped model is the distilled one, which starts from the labels-only fine-tuned model.
    tuned = load_pretrained(out / "finetune" / "model").state_dict()
    distilled = load_pretrained(out / "distill" / "model").state_dict()
    key = "albert.embeddings.word_embeddings.weight"
    assert 0 < (distilled[key] - tuned[key]).abs().max().item() < 0.05
    assert card["model"]["parameters"] == load_pretrained(out / "distill" / "model").num_parameters()
    text = (out / "MODEL_CARD.md").read_text()
    assert "Teacher (build time only" in text and "before distillation" in text
    assert {"teacher", "distillation", "int8 program"} <= set(card["timings_s"])
    int8 = card["int8"]  # the shipped model's int8 program on every test tweet
    assert int8["examples"] == card["split_sizes"]["test"] and 0 <= int8["changed"] <= int8["examples"]
    assert int8["agreement"] == pytest.approx(1 - int8["changed"] / int8["examples"])
    assert (out / "bundle" / "model_int8.pte").stat().st_size == int8["size_bytes"]
    assert "int8 program" in text
