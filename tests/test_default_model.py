"""The shipped default model: its files, its card, `load_default().classify`, the CLI, and
(slow) that the card's test figures are real and that int8 agrees with float on the test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import albert_edge
from albert_edge.checkpoint import DEFAULT_MODEL_DIR, load_model, load_pretrained
from albert_edge.cli import main

LABELS = ("negative", "neutral", "positive")


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())


def test_shipped_files_and_size(card: dict) -> None:
    for name in ("config.json", "model.safetensors", "spiece.model", "MODEL_CARD.md", "card.json", "exits.safetensors"):
        assert (DEFAULT_MODEL_DIR / name).is_file(), name
    model = load_pretrained(DEFAULT_MODEL_DIR)
    c = model.config
    assert type(model).__name__ == "AlbertForSequenceClassification"
    assert c.labels == LABELS
    assert model.num_parameters() <= 5_000_000
    assert c.num_hidden_groups == 1 and c.embedding_size < c.hidden_size  # full sharing, factorized embedding
    assert card["model"]["parameters"] == model.num_parameters()
    # Shared layers are stored once: the file is about 4 bytes per distinct parameter.
    size = (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size
    assert size < 1.02 * 4 * model.num_parameters()


def test_card_reports_every_figure_the_issue_asks_for(card: dict) -> None:
    text = (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text()
    pre = card["pretraining"]["heldout"]
    assert 0 < pre["mlm_acc"] < 1 and 0 < pre["sop_acc"] < 1
    for section in ("distillation", "finetuning", "ablation_from_scratch"):
        test = card[section]["test"]
        assert test["examples"] == card["split_sizes"]["test"]
        assert 0 < test["macro_f1"] <= test["accuracy"] + 0.2
    assert card["baseline_tfidf_logreg"]["report"]["n"] == card["split_sizes"]["test"]
    for phrase in ("masked-LM accuracy", "sentence-order accuracy", "TF-IDF", "random init", "Wall time", "Hardware",
                   "Teacher (build time only", "before distillation"):
        assert phrase in text


def test_shipped_model_is_at_least_as_good_as_the_baseline(card: dict) -> None:
    # The shipped model is the distilled one; its card figures are reproduced from the shipped
    # weights below (test_card_test_figures_are_reproduced), so a weaker model cannot be shipped.
    shipped, base = card["distillation"]["test"], card["baseline_tfidf_logreg"]["report"]
    assert shipped["accuracy"] >= 0.785 and shipped["accuracy"] >= base["accuracy"] + 0.02  # issue 25's target
    assert shipped["macro_f1"] >= base["macro_f1"]
    assert shipped["accuracy"] > card["finetuning"]["test"]["accuracy"]  # distillation paid


def test_load_default_classifies() -> None:
    clf = albert_edge.load_default()
    out = clf.classify(["I love this, thank you so much! Best day ever", "worst airline ever, my flight was cancelled again and nobody helps",
                        "the meeting is scheduled for tuesday at 3pm"])
    assert [r["label"] for r in out][:2] == ["positive", "negative"]
    for r in out:
        assert set(r) == {"text", "label", "probs"}
        assert tuple(r["probs"]) == LABELS
        assert sum(r["probs"].values()) == pytest.approx(1.0)
    assert clf.classify([]) == []
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        clf.classify(["fine", 3])


def test_classify_cli_uses_the_default_model(capsys) -> None:
    assert main(["classify", "thank you, this is wonderful"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[0] in LABELS and "positive 0." in line
    assert type(load_model("default")).__name__ == "AlbertForSequenceClassification"


def test_shipped_exit_heads_and_their_card(card: dict) -> None:
    from albert_edge.exits import load_exits

    exits = load_exits(DEFAULT_MODEL_DIR, load_pretrained(DEFAULT_MODEL_DIR))
    rec = exits.recommended
    assert rec is not None and rec.to_dict() == card["exits"]["recommended"]
    rows = {r["label"]: r for r in card["exits"]["test"]}
    full, chosen = rows["full depth"], rows[rec.label]
    # Issue 27's targets on the test split (eager fp32; the int8 program's loop is checked below)
    assert chosen["agreement"] >= 0.99 and chosen["accuracy"] >= full["accuracy"] - 0.003
    assert chosen["mean_depth"] <= 0.7 * 6
    assert full["accuracy"] == pytest.approx(card["distillation"]["test"]["accuracy"], abs=1e-9)
    assert "## Early exits (adaptive depth)" in (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text()


@pytest.mark.slow
def test_card_exit_figures_are_reproduced(card: dict) -> None:
    from albert_edge.datasets import Row
    from albert_edge.workflows import evaluate_exits

    test = _test_split()
    rows = evaluate_exits(DEFAULT_MODEL_DIR, [Row(t.text, t.label) for t in test], max_seq_len=64)
    for got, want in zip(rows, card["exits"]["test"], strict=True):
        assert got["label"] == want["label"]
        for key in ("accuracy", "agreement", "mean_depth"):
            assert got[key] == pytest.approx(want[key], abs=0.003), (got["label"], key)


def _test_split():
    corpora = pytest.importorskip("albert_edge.corpora")
    try:
        return corpora.tweet_splits()["test"]
    except corpora.CorpusError as err:
        pytest.skip(f"corpora not installed ({err}); `make corpora`")


@pytest.mark.slow
def test_card_test_figures_are_reproduced(card: dict) -> None:
    from albert_edge.metrics import classification_report

    test = _test_split()
    clf = albert_edge.load_default()
    probs = clf.predict_proba([t.text for t in test], batch_size=128)
    # The card was computed with the fine-tuning max length; the classifier's default is longer,
    # which changes nothing for tweets that fit (checked by the share in the card).
    report = classification_report([t.label for t in test], [LABELS[int(i)] for i in probs.argmax(-1)], LABELS)
    assert report["accuracy"] == pytest.approx(card["distillation"]["test"]["accuracy"], abs=0.003)
    assert report["macro_f1"] == pytest.approx(card["distillation"]["test"]["macro_f1"], abs=0.003)


@pytest.mark.slow
def test_int8_program_agrees_with_float_on_the_test_split(tmp_path: Path) -> None:
    from albert_edge.bundle import export_bundle
    from albert_edge.runtime import Bundle

    test = _test_split()
    out = export_bundle("default", tmp_path / "bundle", ["int8"], max_seq_len=128)
    bundle = Bundle.load(out, num_threads=1)
    clf = albert_edge.load_default()
    texts = [t.text for t in test]
    eager = clf.predict_proba(texts, batch_size=128).argmax(-1)
    prog = bundle.program("int8")
    inputs = [prog.check_inputs(*bundle.encode(t)) for t in texts]
    int8 = torch.tensor([int(prog.run_checked(x)[0].argmax()) for x in inputs])
    agreement = (eager == int8).double().mean().item()
    # Issue 25's target. Measured on a 2-core AMD EPYC: 3 of the 3,414 answers differ (99.91%);
    # the margin allows 17, for other CPUs' int8 kernels.
    assert agreement >= 0.995, agreement
    # Issue 27's: the int8 program's adaptive loop under the shipped exit rule against full depth
    # (eager fp32): agreement >= 99% and accuracy within 0.3 points, in fewer layer steps.
    rule = bundle.exit_rule
    assert rule is not None and bundle.manifest["adaptive"]["num_steps"] == 6
    runs = [prog.run_adaptive(x, rule) for x in inputs]
    adaptive = torch.tensor([int(logits.argmax()) for logits, _ in runs])
    gold = torch.tensor([LABELS.index(t.label) for t in test])
    assert (adaptive == eager).double().mean().item() >= 0.99
    assert (adaptive == gold).double().mean().item() >= (eager == gold).double().mean().item() - 0.003
    assert sum(d for _, d in runs) / len(runs) <= 4.2  # 0.7 of the 6 steps


@pytest.mark.slow
def test_the_verdict_of_the_default_models_comparison(tmp_path: Path, capsys) -> None:
    """`albert-edge compare default` on 400 test tweets (short latency settings): the verdict it
    prints is recomputed here from report.json's own figures, and the significance test from
    scipy."""
    from scipy import stats

    from albert_edge.verdict import verdict

    out = tmp_path / "cmp"
    _test_split()  # skips without the corpora
    assert main(["compare", "default", "--limit", "400", "--threads", "1", "--rounds", "2", "--runs", "1",
                 "--latency-inputs", "2", "--jobs", "2", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    progs = {p["name"]: p for p in report["programs"]}
    gold = report["data"]["gold"]
    assert len(gold) == 400
    for v in verdict(report):
        p, r = progs[v["program"]], progs[v["reference"]]
        assert v["smaller_by"] == pytest.approx(r["size"]["bytes"] / p["size"]["bytes"])
        assert v["faster_by"][1] == pytest.approx(r["latency"][0]["summary"]["median_ms"]
                                                  / p["latency"][0]["summary"]["median_ms"])
        same = [a == b for a, b in zip(p["predictions"], r["predictions"])]
        assert v["agreement"] == pytest.approx(sum(same) / 400) and v["changed"] == same.count(False)
        if r["kind"] == "eager":  # the agreement the fidelity section reports is the same figure
            assert v["agreement"] == pytest.approx(p["fidelity"]["top1_agreement"])
        worse = sum(a == g != b for a, b, g in zip(r["predictions"], p["predictions"], gold))
        better = sum(b == g != a for a, b, g in zip(r["predictions"], p["predictions"], gold))
        acc = v["accuracy"]
        assert acc.before == pytest.approx(r["accuracy"]["accuracy"]) and acc.after == pytest.approx(p["accuracy"]["accuracy"])
        assert (acc.worse, acc.better) == (worse, better)
        expected_p = 1.0 if worse + better == 0 else stats.binomtest(min(worse, better), worse + better).pvalue
        assert acc.p_value == pytest.approx(expected_p)
        assert v["memory_bytes"] == p["memory"]["peak_cost_bytes"]
    int8 = next(v for v in verdict(report) if v["program"] == "int8" and v["reference"] == "fp32")
    assert f"int8 vs fp32: {int8['smaller_by']:.2f}x smaller" in " ".join(printed.split())
    assert "## Verdict" in (out / "report.md").read_text()
