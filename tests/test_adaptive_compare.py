"""``compare`` on a bundle with early exits: every exit setting's accuracy, agreement, depth and
latency per program (eager included, from the exit heads beside its checkpoint), the
recommendation, report.md's section and the trade-off plot."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from adaptive_models import LABELS, save_adaptive_model

from albert_edge.bundle import export_bundle
from albert_edge.checkpoint import load_pretrained
from albert_edge.exit_rules import ExitRule
from albert_edge.exits import load_exits, step_logits
from albert_edge.harness import REFERENCE, DataSettings, LatencySettings, compare
from albert_edge.report_adaptive import PLOT
from albert_edge.tokenizer import AlbertTokenizer

N_ROWS = 48


@pytest.fixture(scope="module")
def setup(tmp_path_factory, spiece_model_path):
    root = tmp_path_factory.mktemp("adaptive-compare")
    model = save_adaptive_model(root / "model", spiece_model_path)
    bundle = export_bundle(model, root / "bundle", ("fp32", "int8"), golden_texts=["good day"])
    rng = random.Random(3)
    words = "good bad film day food awful happy great terrible word text number plane late".split()
    rows = [(" ".join(rng.choices(words, k=rng.randint(1, 9))), LABELS[i % 3]) for i in range(N_ROWS)]
    data = root / "data.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    report = compare(bundle, model=model, out=root / "report", data=DataSettings(str(data)),
                     latency=LatencySettings(threads=(1,), warmup=1, rounds=2, runs=1, data_inputs=3,
                                             probe_lengths=(8,)), progress=False)
    return model, rows, report, root / "report"


def _eager_steps(model_dir: Path, texts: list[str]) -> np.ndarray:
    """Every step's logits, eager, one text at a time (independent of the harness's workers)."""
    model = load_pretrained(model_dir, "sequence-classification").eval()
    exits = load_exits(model_dir, model)
    tok = AlbertTokenizer.from_pretrained(model_dir)
    out = []
    with torch.no_grad():
        for t in texts:
            e = tok.encode(t, max_length=32)
            out.append(step_logits(model, exits, *(torch.tensor([v]) for v in (e.input_ids, e.attention_mask,
                                                                                e.token_type_ids)))[:, 0].numpy())
    return np.stack(out, axis=1)  # (steps, N, labels)


def test_every_program_gets_every_setting(setup):
    _, _, report, _ = setup
    a = report["adaptive"]
    assert a["num_steps"] == 4 and a["recorded_rule"] == "patience=1"
    assert [p["name"] for p in a["programs"]] == [REFERENCE, "fp32", "int8"]
    for p in a["programs"]:
        labels = [s["label"] for s in p["settings"]]
        assert labels[:2] == ["full depth", "patience=1"]  # the bundle's rule first
        assert "confidence=0.9" in labels and "patience=2" in labels
        full = p["settings"][0]
        assert full["agreement"] == 1.0 and full["mean_depth"] == 4 and full["p90_depth"] == 4
        for s in p["settings"]:
            assert 1 <= s["mean_depth"] <= 4 and 1 <= s["p90_depth"] <= 4 and 0 <= s["accuracy"] <= 1


def test_figures_match_an_independent_eager_run(setup):
    model, rows, report, _ = setup
    steps = _eager_steps(model, [t for t, _ in rows])
    gold = np.array([LABELS.index(label) for _, label in rows])
    by_name = {p["name"]: p for p in report["adaptive"]["programs"]}
    for name in (REFERENCE, "fp32"):  # fp32 runs the same arithmetic as eager, to rounding
        for s in by_name[name]["settings"][1:]:
            rule = ExitRule.from_dict(s["rule"])
            depths = [rule.depth([steps[k, i] for k in range(4)]) for i in range(N_ROWS)]
            preds = np.array([steps[d - 1, i].argmax() for i, d in enumerate(depths)])
            assert s["mean_depth"] == pytest.approx(np.mean(depths), abs=0.05), (name, s["label"])
            assert s["accuracy"] == pytest.approx((preds == gold).mean(), abs=0.05), (name, s["label"])
    # Depths really differ between inputs (the fixture's point), and full depth is forward's accuracy.
    assert min(s["mean_depth"] for s in by_name[REFERENCE]["settings"]) < 3
    fp32 = next(p for p in report["programs"] if p["name"] == "fp32")
    assert by_name["fp32"]["settings"][0]["accuracy"] == pytest.approx(fp32["accuracy"]["accuracy"])


def test_latency_per_setting_against_forward_and_eager(setup):
    _, _, report, _ = setup
    a = report["adaptive"]
    assert len(a["timed_inputs"]) == N_ROWS  # fewer rows than TIMED_INPUTS: every one is timed
    for p in a["programs"]:
        if p["name"] == REFERENCE:  # eager is the yardstick: its forward only
            assert p["settings"][0]["latency"]["1"]["vs_forward"] == 1.0
            assert all(not s["latency"] for s in p["settings"][1:]) and not p["loop_full_depth"]
            continue
        for s in p["settings"]:
            e = s["latency"]["1"]
            assert e["mean_ms"] > 0 and e["vs_forward"] > 0 and e["vs_reference"] > 0
            assert 1 <= s["timed_mean_depth"] <= 4
        assert p["settings"][0]["latency"]["1"]["vs_forward"] == 1.0  # full depth is forward itself
        assert p["loop_full_depth"]["1"]["mean_ms"] > 0


def test_the_recommendation_keeps_accuracy_and_agreement(setup):
    _, _, report, _ = setup
    for p in report["adaptive"]["programs"]:
        full, *rest = p["settings"]
        ok = [s for s in rest if s["agreement"] >= 0.995 and s["accuracy"] >= full["accuracy"]]
        if not ok:
            assert p["recommended"] is None
            continue
        best = min(s["mean_depth"] for s in ok)
        assert p["recommended"] in [s["label"] for s in ok if s["mean_depth"] == best]


def test_report_md_and_plot(setup):
    _, _, report, out = setup
    md = (out / "report.md").read_text()
    assert "## Early exits (adaptive depth)" in md and "### int8" in md and "loop at full depth" in md
    assert (out / PLOT).stat().st_size > 10_000


def test_the_terminal_summary_names_the_bundles_rule_and_the_recommendation(setup):
    from rich.console import Console

    from albert_edge.report import print_report

    _, _, report, _ = setup
    console = Console(record=True, width=240)
    print_report(report, console)
    text = console.export_text()
    assert "Early exits" in text
    for p in report["adaptive"]["programs"]:
        line = next(x for x in text.splitlines() if x.startswith(f"- {p['name']}: "))
        assert "patience=1 (bundle)" in line
        if p["recommended"]:
            assert f"{p['recommended']}" in line and "(recommended here)" in line
        assert ("x forward" in line) == (p["name"] != "eager-fp32")
