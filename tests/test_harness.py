"""The comparison harness (``albert_edge.harness``, ``albert-edge compare``) on a tiny classifier.

One end-to-end comparison runs per module (its workers are real subprocesses); its numbers are
checked for consistency with each other and with an independent eager computation.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from export_models import LABELS, MAX_SEQ_LEN, lowered_text_classifier

from albert_edge import _textgen
from albert_edge.bundle import write_bundle
from albert_edge.cli import main
from albert_edge.datasets import DataError
from albert_edge.harness import (
    REFERENCE,
    DataSettings,
    HarnessError,
    LatencySettings,
    buckets,
    compare,
    default_probe_lengths,
    latency_summary,
    load_eval_set,
    probe_inputs,
    spread_indices,
)
from albert_edge.report_schema import read_report, validate_report

N_ROWS = 60
LATENCY = LatencySettings(threads=(1, 2), warmup=1, rounds=2, runs=2, data_inputs=4, probe_lengths=(8, MAX_SEQ_LEN))


def _data(path: Path) -> DataSettings:
    return DataSettings(str(path), text_column="sentence", label_column="gold")


def _texts(n: int) -> list[str]:
    import random

    rng = random.Random(7)
    words = _textgen.training_corpus()[:400]
    return [" ".join(rng.sample(words, rng.randint(1, 3)))[:200] for _ in range(n)]


@pytest.fixture(scope="module")
def setup(spiece_model_path, tmp_path_factory):
    lowered = lowered_text_classifier(spiece_model_path)
    root = tmp_path_factory.mktemp("harness")
    bundle = write_bundle(root / "bundle", lowered.model, list(lowered.programs.values()), lowered.tokenizer)
    data = root / "data.csv"
    texts = _texts(N_ROWS)
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sentence", "gold"])
        for i, t in enumerate(texts):
            w.writerow([t, LABELS[i % 3]])
    return lowered, bundle, data, texts, root


@pytest.fixture(scope="module")
def report(setup):
    lowered, bundle, data, _, root = setup
    return compare(bundle, model=lowered.checkpoint, out=root / "report",
                   data=_data(data),
                   latency=LATENCY, progress=False, memory_without_cache=True)


# ---- pure functions --------------------------------------------------------------------------------


def test_latency_summary_matches_hand_computed_figures():
    s = latency_summary([4.0, 1.0, 3.0, 2.0, 10.0])
    assert s["n"] == 5 and s["median_ms"] == 3.0 and s["mean_ms"] == 4.0
    # Linear interpolation on the sorted 1, 2, 3, 4, 10: p90 at position 3.6, p99 at 3.96.
    assert s["p90_ms"] == pytest.approx(4 + 0.6 * 6) and s["p99_ms"] == pytest.approx(4 + 0.96 * 6)
    assert s["std_ms"] == pytest.approx(np.sqrt(((np.array([4, 1, 3, 2, 10]) - 4.0) ** 2).mean()))
    assert latency_summary([]) == {"n": 0}


def test_spread_indices_cover_the_length_range():
    lengths = [5, 50, 7, 30, 12, 9, 41, 3]
    picked = spread_indices(lengths, 3)
    assert [lengths[i] for i in picked] == [3, 12, 50]  # shortest, middle, longest
    assert sorted(spread_indices(lengths, 100)) == list(range(len(lengths)))  # all, once each
    assert spread_indices(lengths, 0) == [] and spread_indices([], 3) == []


def test_buckets_and_probe_lengths():
    assert buckets(128) == [(1, 16), (17, 32), (33, 64), (65, 128)]
    assert buckets(40) == [(1, 16), (17, 32), (33, 40)]
    assert default_probe_lengths(128) == [16, 32, 64, 128]
    assert default_probe_lengths(40) == [16, 32, 40]


def test_probe_inputs_have_exact_lengths_and_real_ids(setup):
    lowered, _, data, _, _ = setup
    ev = load_eval_set(_data(data), lowered.tokenizer,
                       LABELS, False, MAX_SEQ_LEN)
    probes = probe_inputs(ev, lowered.tokenizer, [2, 9, MAX_SEQ_LEN])
    tok = lowered.tokenizer
    assert [len(p["input_ids"]) for p in probes] == [2, 9, MAX_SEQ_LEN]
    body = [t for ids in ev.input_ids for t in ids[1:-1]]
    for p in probes:
        assert p["input_ids"][0] == tok.cls_id and p["input_ids"][-1] == tok.sep_id
        assert p["input_ids"][1:-1] == body[: len(p["input_ids"]) - 2]
        assert p["token_type_ids"] == [0] * len(p["input_ids"])


# ---- errors before anything runs ---------------------------------------------------------------


def test_one_comparison_at_a_time_per_out_folder(setup, tmp_path):
    """Two runs into one --out would read each other's outputs: the second is refused while the
    first holds the folder, and the folder is free again as soon as the holder is gone (killed too)."""
    import os
    import subprocess
    import sys

    from albert_edge.errors import BusyError

    lowered, bundle, data, _, _ = setup
    out = tmp_path / "busy"
    out.mkdir()
    (out / ".bundle.99999999.abc.tmp").mkdir()  # the export's temporary folder, of a run in progress or killed
    (out / ".report.99999999.abc.tmp").mkdir()  # the report's
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from albert_edge._io import folder_lock\n"
        f"with folder_lock(Path({str(out)!r})):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError, match=rf"--out {out}: another albert-edge run \(pid {holder.pid}\)"):
            compare(bundle, model=lowered.checkpoint, out=out, data=_data(data), progress=False)
    finally:
        holder.kill()
        holder.wait()
    from albert_edge._io import folder_lock

    with folder_lock(out):  # free again: the OS released the killed holder's lock
        with pytest.raises(BusyError, match=f"pid {os.getpid()}"):
            compare(bundle, model=lowered.checkpoint, out=out, data=_data(data), progress=False)


def test_a_users_own_files_in_out_are_not_replaced(setup, tmp_path):
    lowered, bundle, data, _, _ = setup
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("my own notes")
    with pytest.raises(HarnessError, match="'report.md', which is not from an albert-edge comparison"):
        compare(bundle, model=lowered.checkpoint, out=out, data=_data(data), progress=False)
    (out / "report.md").unlink()
    (out / "thesis.tex").write_text("x")
    with pytest.raises(HarnessError, match="'thesis.tex'"):
        compare(bundle, model=lowered.checkpoint, out=out, data=_data(data), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_a_bundle_needs_its_model(setup, tmp_path):
    _, bundle, data, _, _ = setup
    with pytest.raises(HarnessError, match="--model"):
        compare(bundle, out=tmp_path, data=_data(data), progress=False)


def test_a_model_that_is_not_the_bundles_is_refused(setup, tmp_path):
    _, bundle, data, _, _ = setup
    with pytest.raises(HarnessError, match="does not match the bundle.*vocab_size"):
        compare(bundle, model="tiny", out=tmp_path, data=_data(data), progress=False)


def test_a_model_with_other_weights_is_refused(setup, tmp_path):
    """Same architecture, labels and vocabulary, other weights: the programs would be blamed for
    the difference, so the comparison refuses, by the manifest's weights digest."""
    from albert_edge.checkpoint import load_pretrained, save_pretrained, weights_sha256

    lowered, bundle, data, _, _ = setup
    model = load_pretrained(lowered.checkpoint)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["weights_sha256"] == weights_sha256(model)
    with torch.no_grad():
        model.classifier.weight.add_(0.01)
    save_pretrained(model, tmp_path / "other")
    with pytest.raises(HarnessError, match="weights are not the ones the bundle was exported from"):
        compare(bundle, model=tmp_path / "other", out=tmp_path / "out", data=_data(data), progress=False)
    assert not (tmp_path / "out").exists()


def test_unknown_labels_are_reported_with_row_numbers(setup, tmp_path):
    lowered, bundle, _, _, _ = setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "positive"}\n{"text": "meh", "label": "mixed"}\n'
                   '{"text": "", "label": "neutral"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2: unknown label 'mixed'.*row 3: empty or missing 'text'"):
        compare(bundle, model=lowered.checkpoint, out=tmp_path / "r", data=DataSettings(str(bad)), progress=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="no data rows"):
        compare(bundle, model=lowered.checkpoint, out=tmp_path / "r", data=DataSettings(str(empty)), progress=False)
    assert not (tmp_path / "r" / "report.json").exists()


def test_bad_settings_are_refused(setup, tmp_path):
    lowered, bundle, data, _, _ = setup
    with pytest.raises(HarnessError, match="rounds=0"):
        LatencySettings(rounds=0)
    with pytest.raises(HarnessError, match="threads"):
        LatencySettings(threads=(1, 1))
    with pytest.raises(HarnessError, match=r"probe lengths \[64\] are outside \[1, 32\]"):
        compare(bundle, model=lowered.checkpoint, out=tmp_path, data=_data(data),
                latency=LatencySettings(probe_lengths=(64,)), progress=False)
    with pytest.raises(HarnessError, match="no --data"):
        compare(lowered.checkpoint, out=tmp_path, progress=False)


# ---- end to end ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_accuracy_matches_an_independent_eager_run(setup, report):
    lowered, _, _, texts, _ = setup
    tok, model = lowered.tokenizer, lowered.model
    preds = []
    with torch.no_grad():
        for t in texts:
            enc = tok.encode(t, max_length=MAX_SEQ_LEN)
            preds.append(int(model(torch.tensor([enc.input_ids])).argmax()))
    gold = [i % 3 for i in range(N_ROWS)]
    expected = sum(p == g for p, g in zip(preds, gold)) / N_ROWS
    programs = {p["name"]: p for p in report["programs"]}
    assert programs[REFERENCE]["accuracy"]["accuracy"] == pytest.approx(expected)
    cm = np.array(programs[REFERENCE]["accuracy"]["confusion_matrix"])
    assert cm.sum() == N_ROWS and cm.sum(axis=1).tolist() == [20, 20, 20]
    # The fp32 program is the same function: same predictions, same metrics.
    assert programs["fp32"]["accuracy"] == programs[REFERENCE]["accuracy"]


@pytest.mark.slow
def test_fidelity_is_consistent(report):
    programs = {p["name"]: p for p in report["programs"]}
    assert [p["name"] for p in report["programs"]] == [REFERENCE, "fp32", "int8"]
    assert programs[REFERENCE]["fidelity"] is None
    fp32, int8 = programs["fp32"], programs["int8"]
    assert fp32["fidelity"]["top1_agreement"] == 1.0 and fp32["flips"]["count"] == 0
    assert fp32["fidelity"]["max_abs_diff"] < 1e-4 and fp32["fidelity"]["cosine"] > 0.99999
    assert fp32["fidelity"]["sqnr_db"] is None or fp32["fidelity"]["sqnr_db"] > 60
    f = int8["fidelity"]
    assert 15 < f["sqnr_db"] < fp32["fidelity"]["sqnr_db"] if fp32["fidelity"]["sqnr_db"] else 15 < f["sqnr_db"]
    assert f["top1_agreement"] >= 0.9
    assert int8["flips"]["count"] == round((1 - f["top1_agreement"]) * N_ROWS)
    for flip in int8["flips"]["listed"]:
        assert flip["reference"] != flip["program"]
        assert LABELS[int(np.argmax(flip["reference_probs"]))] == flip["reference"]


@pytest.mark.slow
def test_latency_figures_are_complete_and_consistent(report):
    s = report["latency_settings"]
    timed = s["timed_inputs"]
    assert [t["seq_len"] for t in timed if t["source"] == "probe"] == [8, MAX_SEQ_LEN]
    assert sum(t["source"] == "data" for t in timed) == 4
    calls = len(timed) * LATENCY.rounds * LATENCY.runs
    for p in report["programs"]:
        assert [e["threads"] for e in p["latency"]] == [1, 2]
        for e in p["latency"]:
            assert e["summary"]["n"] == calls
            assert [pi["seq_len"] for pi in e["per_input"]] == [t["seq_len"] for t in timed]
            assert all(len(pi["times_ms"]) == LATENCY.rounds * LATENCY.runs for pi in e["per_input"])
            assert sum(b["n"] for b in e["by_bucket"]) == calls
            sm = e["summary"]
            assert 0 < sm["min_ms"] <= sm["median_ms"] <= sm["p90_ms"] <= sm["p99_ms"] <= sm["max_ms"]
            all_ms = [t for pi in e["per_input"] for t in pi["times_ms"]]
            assert sm["median_ms"] == pytest.approx(float(np.median(all_ms)), rel=1e-3)
            assert e["load_s"] > 0 and e["first_inference_s"] > 0


@pytest.mark.slow
def test_memory_figures_are_each_programs_own(report):
    for p in report["programs"]:
        for e in p["latency"]:
            m = e["memory"]
            assert m["peak_reset"]  # Linux lets a process reset its own peak
            assert m["weight_cache"] is (None if p["kind"] == "eager" else True)
            assert m["rss_after_load_bytes"] > m["rss_after_imports_bytes"] > 0
            assert m["peak_load_bytes"] >= m["rss_after_first_call_bytes"]
            assert m["load_cost_bytes"] == m["rss_after_load_bytes"] - m["rss_after_imports_bytes"]
            assert m["peak_cost_bytes"] == max(m["peak_load_bytes"], m["peak_timed_bytes"]) - m["rss_after_imports_bytes"]
            assert m["peak_cost_bytes"] >= max(m["load_cost_bytes"], m["first_call_cost_bytes"]) > 0
        headline = p["memory"]
        at = max(p["latency"], key=lambda e: e["threads"])
        assert headline["threads"] == 2 and headline["peak_cost_bytes"] == at["memory"]["peak_cost_bytes"]
        # The extra worker with the cache off, for the .pte programs only.
        if p["kind"] == "pte":
            w = headline["without_cache"]
            assert w["threads"] == 2 and w["peak_cost_bytes"] >= w["load_cost_bytes"] > 0
        else:
            assert headline["without_cache"] is None
    # Each program's memory is its own process's (not the harness's peak, inherited at fork):
    # the imports are the same, the peaks differ.
    peaks = [e["memory"]["peak_timed_bytes"] for p in report["programs"] for e in p["latency"]]
    assert len(set(peaks)) > 1


@pytest.mark.slow
def test_the_report_names_its_model_and_data_by_digest(setup, report):
    _, bundle, _, texts, _ = setup
    assert report["model"]["weights_sha256"] == json.loads((bundle / "manifest.json").read_text())["weights_sha256"]
    assert len(report["data"]["sha256"]) == 64


def test_sizes_and_report_files(setup, report):
    _, bundle, _, _, root = setup
    programs = {p["name"]: p for p in report["programs"]}
    manifest = json.loads((bundle / "manifest.json").read_text())
    for entry in manifest["programs"]:
        assert programs[entry["name"]]["size"]["bytes"] == entry["size_bytes"]
    assert programs["fp32"]["size"]["compression_vs_fp32"] == 1.0
    assert programs["int8"]["size"]["compression_vs_fp32"] > 2
    assert programs["int8"]["size"]["parameter_bytes"] < programs["fp32"]["size"]["parameter_bytes"]
    out = root / "report"
    assert read_report(out) == json.loads(json.dumps(report))
    md = (out / "report.md").read_text()
    assert "## Fidelity against eager fp32" in md and "| int8 |" in md
    for name in ("latency_distribution.png", "latency_vs_length.png", "tradeoff.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.slow
def test_report_schema_names_what_is_wrong(report):
    validate_report(report)
    broken = copy.deepcopy(report)
    del broken["programs"][1]["latency"][0]["summary"]["p90_ms"]
    with pytest.raises(HarnessError, match=r"programs\[1\]\.latency\[0\]\.summary\.p90_ms is missing"):
        validate_report(broken)
    broken = copy.deepcopy(report)
    broken["schema_version"] = 99
    with pytest.raises(HarnessError, match="schema_version 99"):
        validate_report(broken)
    broken = copy.deepcopy(report)
    broken["programs"][0]["size"]["parameter_bytes"] = "big"
    with pytest.raises(HarnessError, match=r"programs\[0\]\.size\.parameter_bytes has type str"):
        validate_report(broken)


@pytest.mark.slow
def test_cli_compare_and_report(setup, tmp_path, capsys):
    lowered, bundle, data, _, _ = setup
    out = tmp_path / "cli"
    (out / "work").mkdir(parents=True)
    (out / "work" / "int8.npz").write_bytes(b"another run's outputs")  # never read: the work folder starts empty
    rc = main(["compare", str(bundle), "--model", str(lowered.checkpoint), "--data", str(data),
               "--text-column", "sentence", "--label-column", "gold", "--limit", "10", "--threads", "1",
               "--rounds", "1", "--runs", "1", "--latency-inputs", "2", "--probe-lengths", "16",
               "--profile", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "eager-fp32" in captured.out and "int8" in captured.out and "report.md" in captured.out
    r = read_report(out)
    assert r["data"]["rows"] == 10 and r["latency_settings"]["threads"] == [1]
    for p in r["programs"]:  # --profile: ETDump per-operator times for every .pte
        prof = p["latency"][0].get("profile")
        if p["kind"] == "eager":
            assert prof is None
            continue
        assert prof["total_ms"] > 0 and prof["operators"]
        assert sum(o["share"] for o in prof["operators"]) == pytest.approx(1.0, abs=1e-3)
        assert any(o["delegated"] for o in prof["operators"]) and any(not o["delegated"] for o in prof["operators"])
    assert "Where the time goes: int8" in (out / "report.md").read_text()
    assert b"another run" not in (out / "work" / "int8.npz").read_bytes()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").is_file()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such report" in capsys.readouterr().err


def test_task_metrics_and_flips_on_hand_made_outputs():
    from albert_edge.datasets import Row
    from albert_edge.harness import EvalSet, flips, task_metrics

    rows = [Row("a", "negative", None, 1), Row("b", "neutral", None, 2), Row("c", "positive", None, 3),
            Row("d", "positive", None, 4)]
    ev = EvalSet("hand", rows, [[2, 3]] * 4, [[0, 0]] * 4, 0)
    ref = np.array([[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    out = np.array([[3.0, 0, 0], [0, 0, 2.0], [0, 0, 1.0], [1.0, 0, 0]])
    m = task_metrics(ev, LABELS, ref, regression=False)
    assert m["accuracy"] == 0.75 and m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    listed = flips(ev, LABELS, ref, out)
    assert [(f["row"], f["reference"], f["program"], f["label"]) for f in listed] == [(2, "neutral", "positive", "neutral")]
    assert listed[0]["program_probs"][2] == pytest.approx(np.exp(2) / (np.exp(2) + 2), abs=1e-6)
    # A one-output head is a regression: Pearson and Spearman against the numeric labels.
    reg_rows = [Row(t, v, None, i) for i, (t, v) in enumerate([("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)])]
    reg = EvalSet("hand", reg_rows, [[2, 3]] * 4, [[0, 0]] * 4, 0)
    r = task_metrics(reg, ["score"], np.array([[0.1], [0.4], [0.3], [0.9]]), regression=True)
    assert r["n"] == 4 and r["spearman"] == pytest.approx(0.8)
    assert r["pearson"] == pytest.approx(np.corrcoef([1, 2, 3, 4], [0.1, 0.4, 0.3, 0.9])[0, 1])


@pytest.mark.slow
def test_a_model_is_exported_then_compared(setup, tmp_path):
    lowered, _, data, _, _ = setup
    report = compare(lowered.checkpoint, out=tmp_path, data=DataSettings(str(data), "sentence", "gold", limit=12),
                     recipes=("fp32",), latency=LatencySettings(threads=(1,), rounds=1, runs=1, data_inputs=2,
                                                                probe_lengths=(16,)), progress=True)
    assert (tmp_path / "bundle" / "manifest.json").is_file() and report["bundle"] == str(tmp_path / "bundle")
    assert [p["name"] for p in report["programs"]] == [REFERENCE, "fp32"]
    assert report["programs"][1]["fidelity"]["top1_agreement"] == 1.0
    assert report["data"]["rows"] == 12


@pytest.mark.slow
def test_timing_quality_and_predictions_are_recorded(report):
    assert report["latency_settings"]["gc_disabled_while_timed"] is True
    for p in report["programs"]:
        assert len(p["predictions"]) == N_ROWS and set(p["predictions"]) <= {0, 1, 2}
        for e in p["latency"]:
            q = e["quality"]
            assert 0 <= q["outlier_share"] <= 1 and q["round_drift"] >= 0 and q["iqr_ms"] >= 0
            assert e["cpu_steal_share"] is not None and 0 <= e["cpu_steal_share"] <= 1  # Linux has /proc/stat
            assert q["unstable"] == bool(q["reasons"])
    assert report["data"]["gold"] == [i % 3 for i in range(N_ROWS)]
