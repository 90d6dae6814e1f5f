"""The comparison as a person reads it: tables that fit the terminal, the verdict first, timings
flagged when the machine was noisy, and a regression gate against a baseline report."""

from __future__ import annotations

import copy
import io
import json
import math
import re

import pytest
from scipy import stats

from albert_edge.cli import main
from albert_edge.report import print_report
from albert_edge.verdict import (
    accuracy_change,
    mcnemar_exact_p,
    paired_difference_ci,
    timing_quality,
    verdict,
    verdict_lines,
)
from report_fixtures import tiny_report


def _render(report: dict, width: int) -> list[str]:
    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    print_report(report, console)
    return console.export_text().splitlines()


def _with_threads(report: dict, threads: tuple[int, ...]) -> dict:
    r = copy.deepcopy(report)
    r["latency_settings"]["threads"] = list(threads)
    for p in r["programs"]:
        p["latency"] = [dict(p["latency"][-1], threads=t) for t in threads]
        p["memory"]["without_cache"] = {"threads": threads[-1], "load_cost_bytes": 1, "first_call_cost_bytes": 2,
                                        "peak_cost_bytes": 90_000_000}
    return r


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("threads", [(1, 2), (1, 2, 4)])
def test_tables_fit_the_terminal_without_wrapping_a_row(width, threads):
    lines = _render(_with_threads(tiny_report(), threads), width)
    assert max(len(line) for line in lines) <= width
    rows = [line for line in lines if re.match(r"^\s+(eager-fp32|fp32|int8)\s", line)]
    # each program is one line in each of the three tables (quality, latency, memory): no row wrapped
    assert sorted(row.split()[0] for row in rows) == sorted(["eager-fp32", "fp32", "int8"] * 3)
    assert not any("…" in line for line in lines)  # no truncated header or cell


def test_the_verdict_comes_first_and_states_the_headline():
    lines = _render(tiny_report(), 100)
    assert lines[1] == "Verdict"
    text = " ".join(lines[2:lines.index(next(line for line in lines if line.strip().startswith("quality")))])
    assert "int8 vs fp32: 4.00x smaller, 2.0" in text and "agrees on 98.00% (2 labels changed)" in text
    assert "accuracy -2.00 points to 88.00%" in text and "adds 9.0 MB" in text


def test_verdict_numbers_against_the_report():
    report = tiny_report()
    progs = {p["name"]: p for p in report["programs"]}
    v = next(x for x in verdict(report) if x["program"] == "int8" and x["reference"] == "fp32")
    assert v["smaller_by"] == progs["fp32"]["size"]["bytes"] / progs["int8"]["size"]["bytes"]
    for e_int8, e_fp32 in zip(progs["int8"]["latency"], progs["fp32"]["latency"]):
        assert v["faster_by"][e_int8["threads"]] == e_fp32["summary"]["median_ms"] / e_int8["summary"]["median_ms"]
    assert v["agreement"] == 0.98 and v["changed"] == 2
    assert v["accuracy"].before == 0.90 and v["accuracy"].after == 0.88
    assert v["memory_bytes"] == progs["int8"]["memory"]["peak_cost_bytes"]


@pytest.mark.parametrize("b, c", [(0, 0), (3, 0), (10, 4), (7, 7), (25, 12), (1, 60)])
def test_mcnemar_matches_scipy(b, c):
    expected = 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-12)


def test_the_confidence_interval_of_a_paired_difference():
    # 1000 examples; the reference right and the program wrong on 30, the reverse on 18.
    n, b, c = 1000, 30, 18
    diff, low, high = paired_difference_ci(b, c, n)
    se = math.sqrt((b + c) / n - ((c - b) / n) ** 2) / math.sqrt(n)  # the textbook form
    z = stats.norm.ppf(0.975)
    assert diff == pytest.approx(-0.012) and low == pytest.approx(diff - z * se) and high == pytest.approx(diff + z * se)
    gold = [0] * n
    reference = [0] * 900 + [1] * 100  # 90% right
    program = list(reference)
    for i in range(b):
        program[i] = 1  # right -> wrong
    for i in range(900, 900 + c):
        program[i] = 0  # wrong -> right
    change = accuracy_change(gold, reference, program, "fp32")
    assert (change.worse, change.better) == (b, c) and change.after == pytest.approx(0.888)
    assert change.p_value == pytest.approx(stats.binomtest(c, b + c, 0.5).pvalue)
    assert not change.significant  # p = 0.11


def _noisy(entry: dict, share: float, factor: float) -> dict:
    """``entry`` with every k-th timed call slowed ``factor`` times (a busy machine)."""
    e = copy.deepcopy(entry)
    k = round(1 / share)
    calls = 0
    for pi in e["per_input"]:
        for j in range(len(pi["times_ms"])):
            if calls % k == 0:
                pi["times_ms"][j] *= factor
            calls += 1
    return e


def test_a_noisy_run_is_flagged_and_a_quiet_one_is_not():
    report = tiny_report()
    s = report["latency_settings"]
    entry = report["programs"][2]["latency"][0]
    quiet = timing_quality(entry, s["rounds"], s["runs_per_round"])
    assert not quiet["unstable"] and quiet["reasons"] == []
    busy = timing_quality(_noisy(entry, 0.25, 8.0), s["rounds"], s["runs_per_round"])
    assert busy["unstable"] and "of the calls took over 3x their input's median" in busy["reasons"][0]
    drift = copy.deepcopy(entry)
    for pi in drift["per_input"]:  # the last round ran on a machine 60% slower
        pi["times_ms"][-2:] = [t * 1.6 for t in pi["times_ms"][-2:]]
    assert any("round medians drift" in r for r in timing_quality(drift, s["rounds"], s["runs_per_round"])["reasons"])
    stolen = dict(entry, cpu_steal_share=0.2)
    assert "20% of CPU time was stolen" in timing_quality(stolen, s["rounds"], s["runs_per_round"])["reasons"][0]
    report["programs"][2]["latency"][0]["quality"] = busy
    lines = _render(report, 100)
    assert any(line.startswith("Unstable timings") for line in lines)
    assert any(re.match(r"^\s+int8\s+[\d.]+ ±[\d.]+ !", line) for line in lines)


def _write(tmp_path, name: str, report: dict):
    d = tmp_path / name
    d.mkdir()
    (d / "report.json").write_text(json.dumps(report))
    return d


def test_report_baseline_is_a_ci_gate(tmp_path, capsys):
    old = tiny_report()
    new = copy.deepcopy(old)
    int8 = new["programs"][2]
    int8["accuracy"]["accuracy"] -= 0.02  # 2 points
    for e in int8["latency"]:
        e["summary"]["median_ms"] *= 1.5
    int8["memory"]["peak_cost_bytes"] *= 2
    a, b = _write(tmp_path, "old", old), _write(tmp_path, "new", new)
    assert main(["report", str(b), "--baseline", str(a)]) == 1
    out, err = capsys.readouterr()
    found = [line for line in out.splitlines() if line.startswith("REGRESSION")]
    assert any(re.search(r"int8: accuracy 88.00 -> 86.00 \(\+2.00 points worse\) exceeds --max-accuracy-drop 0.5 points",
                         line) for line in found)
    assert any(re.search(r"int8: median latency at 1 thread\(s\), ms [\d.]+ -> [\d.]+ \(\+50.00% worse\) exceeds "
                         r"--max-latency-increase 10%", line) for line in found)
    assert any(re.search(r"int8: memory added, MB 9.0 -> 18.0 \(\+100.00% worse\) exceeds --max-memory-increase 10%",
                         line) for line in found)
    assert len(found) == 4 and "4 regression(s)" in err  # accuracy, latency at 1 and 2 threads, memory
    assert main(["report", str(b), "--baseline", str(a), "--max-accuracy-drop", "3", "--max-latency-increase", "60",
                 "--max-memory-increase", "150"]) == 0
    capsys.readouterr()
    assert main(["report", str(a), "--baseline", str(a)]) == 0  # a rerun of the same report
    assert "no regression beyond the thresholds" in capsys.readouterr().out


def _edit(path: str, value):
    """A function that sets the dotted `path` ("programs.2.accuracy.accuracy") of a report to `value`
    (a callable gets the old value)."""
    def apply(report: dict) -> None:
        *parents, last = path.split(".")
        obj = report
        for key in parents:
            obj = obj[int(key)] if isinstance(obj, list) else obj[key]
        key = int(last) if isinstance(obj, list) else last
        obj[key] = value(obj[key]) if callable(value) else value
    return apply


def _drop_program(name: str):
    def apply(report: dict) -> None:
        report["programs"] = [p for p in report["programs"] if p["name"] != name]
    return apply


# Every way two reports can differ in kind: the gate must refuse, naming the difference, whichever
# side it is on, and never answer "no regression".
NOT_COMPARABLE = [
    ("another model's labels", _edit("model.labels", ["a", "b"]), r"model\.labels is \['neg', 'pos'\] in the baseline"),
    ("another task", _edit("model.task", "question-answering"), r"model\.task"),
    ("another architecture", _edit("model.architecture", "AlbertForQuestionAnswering"), r"model\.architecture"),
    ("another length", _edit("model.max_seq_len", 64), r"model\.max_seq_len is 32 in the baseline, 64 here"),
    ("another vocabulary", _edit("model.vocab_size", 100), r"model\.vocab_size"),
    ("random weights", _edit("model.random_weights", True), r"model\.random_weights"),
    ("other weights", _edit("model.weights_sha256", "b" * 64), r"model\.weights_sha256"),
    ("another data file (a report without a digest)",
     lambda r: (_edit("data.source", "other.csv")(r), _edit("data.sha256", None)(r)),
     r"data\.source is 'data\.csv' in the baseline"),
    ("other rows", _edit("data.rows", 99), r"data\.rows"),
    ("other gold labels", _edit("data.gold", lambda g: [1 - x for x in g]), r"data\.gold"),
    ("a limit (a report without a digest)", lambda r: (_edit("data.limit", 50)(r), _edit("data.sha256", None)(r)),
     r"data\.limit"),
    ("another model (a report without a weights digest)",
     lambda r: (_edit("model.source", "other-checkpoint")(r), _edit("model.weights_sha256", None)(r)),
     r"model\.source is 'tiny' in the baseline, 'other-checkpoint' here"),
    ("the weight cache on one side", _edit("programs.2.memory.weight_cache", False),
     r"program 'int8' ran with weight_cache True in the baseline, False here"),
    ("other data, same path", _edit("data.sha256", "c" * 64), r"data\.sha256"),
    ("a program missing here", _drop_program("int8"), r"program 'int8' is in the baseline but not here"),
    ("another program here", _edit("programs.2.name", "int4"),
     r"program 'int8' is in the baseline but not here; program 'int4' is here but not in the baseline"),
    ("other thread counts", _edit("latency_settings.threads", [1]), r"latency_settings\.threads"),
    ("other timed inputs", _edit("latency_settings.probe_lengths", [16]), r"latency_settings\.probe_lengths"),
    ("another CPU", _edit("machine.cpu", "Other CPU"), r"the machine is Test CPU \(2 cores\) in the baseline, Other CPU"),
    ("other cores", _edit("machine.cores", 8), r"\(8 cores\) here"),
    ("NaN accuracy", _edit("programs.2.accuracy.accuracy", math.nan), r"int8: accuracy\.accuracy is nan in this report"),
    ("NaN agreement", _edit("programs.2.fidelity.top1_agreement", math.nan), r"fidelity\.top1_agreement is nan"),
    ("infinite latency", _edit("programs.1.latency.0.summary.median_ms", math.inf), r"fp32: latency at 1 thread\(s\)"),
    ("a string for a number", _edit("programs.2.accuracy.macro_f1", "0.9"), r"accuracy\.macro_f1 is '0\.9'"),
]


@pytest.mark.parametrize("what, change, message", NOT_COMPARABLE, ids=[c[0] for c in NOT_COMPARABLE])
def test_the_gate_fails_closed_on_reports_it_cannot_compare(what, change, message):
    from albert_edge.errors import HarnessError
    from albert_edge.verdict import Thresholds, regressions

    old = tiny_report()
    old["model"]["weights_sha256"], old["data"]["sha256"] = "a" * 64, "d" * 64
    new = copy.deepcopy(old)
    change(new)
    for report, baseline in ((new, old), (old, new)):  # whichever side differs
        with pytest.raises(HarnessError, match="cannot be held against the baseline"):
            regressions(report, baseline, Thresholds())
    with pytest.raises(HarnessError, match=message):
        regressions(new, old, Thresholds())
    assert regressions(copy.deepcopy(old), old, Thresholds()) == []


def test_data_digests_stand_in_for_paths_and_machines_can_be_set_aside(tmp_path, capsys):
    from albert_edge.errors import HarnessError
    from albert_edge.verdict import Thresholds, regressions

    old = tiny_report()
    old["data"]["sha256"] = "d" * 64
    moved = copy.deepcopy(old)
    moved["data"]["source"] = moved["data"]["path"] = "/ci/checkout/data.csv"  # same data, another path
    assert regressions(moved, old, Thresholds()) == []
    other_machine = copy.deepcopy(old)
    other_machine["machine"]["cpu"] = "Other CPU"
    for e in other_machine["programs"][2]["latency"]:
        e["summary"]["median_ms"] *= 3
    with pytest.raises(HarnessError, match="--accuracy-only"):
        regressions(other_machine, old, Thresholds())
    assert regressions(other_machine, old, Thresholds(accuracy_only=True)) == []  # latency is not compared
    other_machine["programs"][2]["accuracy"]["accuracy"] -= 0.02
    assert len(regressions(other_machine, old, Thresholds(accuracy_only=True))) == 1
    a, b = _write(tmp_path, "old", old), _write(tmp_path, "new", other_machine)
    assert main(["report", str(b), "--baseline", str(a)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the machine is Test CPU" in err
    assert main(["report", str(b), "--baseline", str(a), "--accuracy-only"]) == 1
    assert "accuracy, agreement and size only" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "x"])
def test_gate_thresholds_must_be_finite_and_not_negative(tmp_path, capsys, value):
    from albert_edge.errors import HarnessError
    from albert_edge.verdict import Thresholds

    a = _write(tmp_path, "old", tiny_report())
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(a), "--baseline", str(a), "--max-accuracy-drop", value])
    assert exit_.value.code == 2
    assert f"{value!r}: accepted: a finite number >= 0" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="--max-latency-increase nan"):
        Thresholds(max_latency_increase=math.nan)


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a report \\(not UTF-8 text"),
    (b"hello", "not JSON"),
    (b'{"a": NaN}', "NaN is not a JSON number"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_report_readers_name_the_file_and_what_is_wrong(tmp_path, capsys, content, message):
    path = tmp_path / "tradeoff.png"
    path.write_bytes(content)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err
    assert re.search(message, err), err


def test_a_string_where_a_number_belongs_is_named(tmp_path, capsys):
    report = tiny_report()
    report["programs"][2]["accuracy"]["accuracy"] = "0.88"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert main(["report", str(path)]) == 2
    assert "programs[2].accuracy.accuracy has type str" in capsys.readouterr().err


def test_a_failed_write_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    """A full disk while the plots are drawn: report.json, report.md and the plots stay the previous
    run's, all of them, and no temporary folder is left."""
    import errno

    from albert_edge import report as report_module

    report = tiny_report()
    report_module.write_report(report, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"report.json", "report.md", *report_module.PLOTS}
    newer = copy.deepcopy(report)
    newer["created_at"] = "2099-01-01T00:00:00Z"

    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_module, "plot_tradeoff", full)
    with pytest.raises(OSError, match="No space left"):
        report_module.write_report(newer, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_number_too_large_for_a_float_is_named(tmp_path, capsys):
    text = json.dumps(tiny_report()).replace('"seconds": 12.0', '"seconds": 1e400')
    (tmp_path / "report.json").write_text(text)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "1e400 is too large for a float" in err and len(err.strip().splitlines()) == 1
