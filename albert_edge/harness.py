"""Float vs quantized: accuracy, fidelity, latency, size and memory of every program of a bundle.

``compare(model_or_bundle, ...)`` is what ``albert-edge compare`` runs. The reference is the eager
PyTorch fp32 model; the programs are every ``.pte`` of the bundle (exported first when a model is
given). Per program it reports:

- accuracy on labelled data (accuracy, macro-F1, per-class precision/recall/F1, confusion matrix;
  Pearson/Spearman for a regression head), skipped for random-weight presets;
- fidelity against the reference: top-1 agreement, cosine and SQNR of the outputs, max |diff|, and
  every example whose label flipped;
- latency: warm-up, then rounds of timed calls over a fixed set of inputs (real data spread over
  the token lengths, plus "probe" inputs of 16, 32, 64 ... tokens made of real token ids), with
  the programs interleaved round by round so machine drift hits all alike; median, p90, p99,
  mean, std, overall and by token-length bucket, at each thread count; load time and first call;
- size on disk, parameter bytes and the compression ratio against fp32; peak RSS.

Each (program, thread count) runs in its own worker process (``albert_edge._harness_worker``), so
one program's memory and caches do not colour another's. The report is ``report.json`` (schema
in docs/compare.md, versioned), ``report.md``, three PNG plots and a table in the terminal
(``albert_edge.report``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from albert_edge import __version__, metrics
from albert_edge._io import LOCK_FILE, check_writable, folder_lock, is_temp_of
from albert_edge._machine import THREADS_PER_CPU, machine_info, max_threads
from albert_edge.adaptive_compare import AdaptivePlan, adaptive_section, collect_steps, plan_adaptive, time_rules
from albert_edge.bundle import DEFAULT_RECIPES, export_bundle
from albert_edge.bundle_format import (
    MANIFEST_FILE,
    QA_TASK,
    qa_settings,
    read_manifest,
    tokenizer_from_manifest,
    verify_files,
)
from albert_edge.checkpoint import (
    DEFAULT_MODEL_NAME,
    DEFAULT_QA_MODEL_NAME,
    load_model,
    load_tokenizer,
    resolve_model_path,
    weights_sha256,
)
from albert_edge.config import PRESETS
from albert_edge.errors import HarnessError
from albert_edge.eval_data import (  # noqa: F401 (load_eval_set, probe_inputs: harness API)
    DEFAULT_DATA,
    DataSettings,
    EvalSet,
    QAEvalSet,
    buckets,
    changed_answers,
    default_probe_lengths,
    load_eval_set,
    load_qa_eval_set,
    probe_inputs,
    qa_answers,
    spread_indices,
)
from albert_edge.qa_data import squad_scores
from albert_edge.report import PLOTS, write_report
from albert_edge.report_adaptive import PLOT as ADAPTIVE_PLOT
from albert_edge.report_schema import REPORT_FORMAT, REPORT_SCHEMA_VERSION
from albert_edge.verdict import timing_quality

log = logging.getLogger(__name__)

REFERENCE = "eager-fp32"
MAX_FLIPS_LISTED = 200


# ---- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencySettings:
    threads: tuple[int, ...] = (1, 2)  # one set of workers per thread count
    warmup: int = 2  # untimed calls per latency input before the first round
    rounds: int = 5  # programs interleaved once per round
    runs: int = 2  # timed calls per latency input per round
    data_inputs: int = 12  # data examples timed, spread evenly over the sorted token lengths
    probe_lengths: tuple[int, ...] | None = None  # None: 16, 32, 64, ... up to max_seq_len

    def __post_init__(self) -> None:
        for name in ("warmup", "rounds", "runs", "data_inputs"):
            value = getattr(self, name)
            low = 0 if name in ("warmup", "data_inputs") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise HarnessError(f"{name}={value!r}; accepted: an integer >= {low}")
        if not self.threads or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in self.threads):
            raise HarnessError(f"threads={self.threads!r}; accepted: one or more positive integers, e.g. 1,2")
        if max(self.threads) > max_threads():
            raise HarnessError(f"threads={max(self.threads)}: accepted: 1 to {max_threads()} ({THREADS_PER_CPU} per CPU "
                               "this process may use); more threads than CPUs only contend")
        if len(set(self.threads)) != len(self.threads):
            raise HarnessError(f"threads={self.threads!r} names a thread count twice")


# ---- programs and workers ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramSpec:
    name: str  # "eager-fp32", or the bundle's program name ("fp32", "int8", "int4")
    kind: str  # "eager" | "pte"
    source: str  # checkpoint dir / preset name, or the .pte path
    size_bytes: int | None  # on disk (eager: the weights file, None for a preset)
    parameter_bytes: int  # eager: unique parameters x 4; pte: its segment data (weights, payloads)
    recipe: dict[str, Any] | None = None
    dynamic: bool = True


class WorkerProcess:
    """One ``albert_edge._harness_worker`` process; ``call`` sends a command and returns the reply."""

    def __init__(self, spec: ProgramSpec, threads: int, log_path: Path) -> None:
        self.spec, self.threads, self.log_path = spec, threads, log_path
        env = dict(os.environ)
        # One process per program: its own thread count, and no oversubscription from OpenMP.
        env.update(OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1", ALBERT_EDGE_PARENT_PID=str(os.getpid()))
        if spec.kind == "pte":
            # A .pte worker runs torch on one thread and copies outputs with numpy (Program.run_checked),
            # so torch's OpenMP team should never wake; if anything does wake it, its threads sleep
            # instead of spinning on the cores XNNPACK's threads run on.
            env.update(OMP_WAIT_POLICY="PASSIVE")
        self._log = open(log_path, "w", encoding="utf-8")
        self._pending = "start"  # the command whose reply comes next (first: the ready line)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "albert_edge._harness_worker", spec.kind], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, encoding="utf-8", env=env)

    def wait_ready(self) -> None:
        """Block until the worker has imported what it needs (its first reply)."""
        self.call(None)

    @property
    def label(self) -> str:
        return f"{self.spec.name} ({self.threads} thread{'s' if self.threads > 1 else ''})"

    def send(self, cmd: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise HarnessError(self._failure(f"{cmd}: the worker process has exited")) from None
        self._pending = cmd

    def call(self, cmd: str | None, on_progress: Callable[[int], None] | None = None, **args: Any) -> dict[str, Any]:
        """Send ``cmd`` and return its reply (None: read the reply to what was sent last)."""
        assert self.proc.stdout is not None
        if cmd is not None:
            self.send(cmd, **args)
        cmd = self._pending
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise HarnessError(self._failure(f"{cmd}: the worker process died (exit code {self.proc.wait()})"))
            reply = json.loads(line)
            if "progress" in reply:
                if on_progress is not None:
                    on_progress(int(reply["progress"]))
                continue
            if not reply.get("ok"):
                raise HarnessError(self._failure(f"{cmd}: {reply.get('error')}"))
            return reply

    def _failure(self, what: str) -> str:
        self._log.flush()
        tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:] if self.log_path.exists() else ""
        return f"{self.label}: {what}" + (f"\n--- worker log {self.log_path} (end) ---\n{tail}" if tail.strip() else "")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("exit")
            except HarnessError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


# ---- statistics ---------------------------------------------------------------------------------


def latency_summary(times_ms: Sequence[float]) -> dict[str, float | int]:
    """median, p90, p99, mean, std (population), min, max (ms) and n; percentiles interpolate
    linearly (numpy's default)."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0:
        return {"n": 0}
    return {"n": int(t.size), "median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
            "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(t.mean()), "std_ms": float(t.std()),
            "min_ms": float(t.min()), "max_ms": float(t.max())}


def _finite(x: float) -> float | None:
    """JSON has no infinity: an SQNR of +inf (identical outputs) is written as null."""
    return x if math.isfinite(x) else None


def _load_outputs(file: Path) -> list[np.ndarray]:
    with np.load(file) as z:
        values, offsets = z["values"], z["offsets"]
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def fidelity(reference: list[np.ndarray], outputs: list[np.ndarray]) -> dict[str, Any]:
    """The program's first output against the reference's over every example: cosine, SQNR and
    max |diff| of all values together, and top-1 agreement per example (when every example's
    output has the same size, e.g. classification logits)."""
    ref, out = np.concatenate(reference), np.concatenate(outputs)
    same_size = len({a.size for a in reference}) == 1
    result: dict[str, Any] = {
        "cosine": metrics.cosine(ref, out), "sqnr_db": _finite(metrics.sqnr_db(ref, out)),
        "max_abs_diff": metrics.max_abs_diff(ref, out),
        "top1_agreement": metrics.top1_agreement(np.stack(reference), np.stack(outputs)) if same_size else None,
    }
    return result


def flips(eval_set: EvalSet, labels: Sequence[str], reference: np.ndarray, outputs: np.ndarray) -> list[dict[str, Any]]:
    """Examples whose predicted label differs from the reference's, with both probabilities."""
    ref_p, out_p = metrics.softmax(reference), metrics.softmax(outputs)
    out = []
    for i in np.nonzero(ref_p.argmax(-1) != out_p.argmax(-1))[0]:
        r = eval_set.rows[i]
        out.append({"index": int(i), "row": r.row, "text": r.text, "text_pair": r.text_pair,
                    "label": r.label, "reference": labels[int(ref_p[i].argmax())],
                    "program": labels[int(out_p[i].argmax())],
                    "reference_probs": [round(float(p), 6) for p in ref_p[i]],
                    "program_probs": [round(float(p), 6) for p in out_p[i]]})
    return out


def task_metrics(eval_set: EvalSet, labels: Sequence[str], outputs: np.ndarray, regression: bool) -> dict[str, Any]:
    if regression:
        gold = np.asarray([float(r.label) for r in eval_set.rows])
        pred = outputs[:, 0]
        # A constant input leaves a correlation undefined (NaN): null in the report, which is JSON.
        r, rho = metrics.pearson(gold, pred), metrics.spearman(gold, pred)
        return {"n": len(gold), "pearson": r if math.isfinite(r) else None,
                "spearman": rho if math.isfinite(rho) else None}
    pred = [labels[int(i)] for i in outputs.argmax(-1)]
    return metrics.classification_report([str(r.label) for r in eval_set.rows], pred, labels)


# ---- the comparison -----------------------------------------------------------------------------


def _is_bundle(path: Path) -> bool:
    """Meant as a bundle (it has a manifest); unlike ``bundle._is_bundle`` it does not require a
    valid one, so a damaged manifest is reported by ``read_manifest`` rather than mistaken for a model."""
    return path.is_dir() and (path / MANIFEST_FILE).is_file()


def _eager_spec(source: str, model: Any) -> ProgramSpec:
    path = Path(str(resolve_model_path(source)))
    size = None
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                size = (path / name).stat().st_size
                break
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return ProgramSpec(REFERENCE, "eager", str(path) if path.is_dir() else source, size, params)


def _pte_specs(bundle: Path, manifest: dict[str, Any]) -> list[ProgramSpec]:
    from albert_edge.runtime import pte_layout

    specs = []
    for p in manifest["programs"]:
        path = bundle / p["file"]
        with open(path, "rb") as f:
            layout = pte_layout(f.read(64))
        specs.append(ProgramSpec(p["name"], "pte", str(path), path.stat().st_size,
                                 layout[2] if layout else path.stat().st_size, p.get("recipe"),
                                 bool(p["inputs"][0].get("dynamic", True))))
    return specs


def check_model_matches(model: Any, manifest: dict[str, Any], bundle: Path) -> None:
    """The reference model must be the one the bundle was exported from (as far as can be told)."""
    c = model.config
    problems = []
    if c.vocab_size != manifest["vocab_size"]:
        problems.append(f"vocab_size {c.vocab_size} vs {manifest['vocab_size']}")
    if type(model).__name__ != manifest["architecture"]:
        problems.append(f"architecture {type(model).__name__} vs {manifest['architecture']}")
    if manifest["task"] == "sequence-classification" and list(c.labels) != list(manifest["labels"]):
        problems.append(f"labels {list(c.labels)} vs {manifest['labels']}")
    if problems:
        raise HarnessError(f"{bundle}: the model does not match the bundle ({'; '.join(problems)}); pass the "
                           "model the bundle was exported from with --model")
    recorded = manifest.get("weights_sha256")
    if recorded is not None and weights_sha256(model) != recorded:
        raise HarnessError(f"{bundle}: the model's weights are not the ones the bundle was exported from (the "
                           f"manifest's weights_sha256 is {recorded[:12]}..., the model's {weights_sha256(model)[:12]}...); "
                           "the comparison would blame the programs for the difference: pass the checkpoint the "
                           "bundle was exported from with --model")




@dataclass
class _Bar:
    """A progress reporter: ``task(description, total)`` returns an ``advance(n)`` callable."""

    enabled: bool = True
    _progress: Any = field(default=None, repr=False)

    def __enter__(self) -> "_Bar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def task(self, description: str, total: int | None) -> Callable[[int], None]:
        """A bar; ``total=None`` pulses until its ``advance`` is called once (a step whose length is
        unknown: lowering, worker start-up)."""
        if self._progress is None:
            log.info("%s", description)
            return lambda n=1: None
        task_id = self._progress.add_task(description, total=total)
        if total is None:
            return lambda n=1: self._progress.update(task_id, total=1, completed=1)
        return lambda n=1: self._progress.advance(task_id, n)

    def line(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)
        log.info("%s", message)


# ---- the comparison: named steps over a plan ----------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What is compared: the fp32 reference model and the bundle of programs."""

    model_source: str  # a checkpoint directory, "default" or a preset name
    bundle_dir: Path
    export: bool  # the bundle is exported first (to OUT/bundle)
    random_weights: bool  # a preset: seeded random weights, so no accuracy


def resolve_target(model_or_bundle: str | os.PathLike, model: str | os.PathLike | None, out: Path) -> Target:
    """A bundle folder with ``model`` naming its reference, or a model to export into OUT/bundle."""
    target = Path(str(model_or_bundle))
    if _is_bundle(target):
        if model is None:
            raise HarnessError(f"{target} is a bundle: it holds no PyTorch weights for the fp32 reference; name "
                               "the model it was exported from with --model (a checkpoint directory, "
                               "'default' or a preset name)")
        source, bundle_dir, export = str(model), target, False
    else:
        if model is not None:
            raise HarnessError(f"--model is only for a bundle; {target} is not a bundle folder (no manifest.json)")
        source, bundle_dir, export = str(model_or_bundle), out / "bundle", True
    return Target(source, bundle_dir, export, source in PRESETS and not Path(source).is_dir())


def data_for(target: Target, data: DataSettings) -> DataSettings:
    """``data``, or the default model's evaluation set where it is the default (the default model
    and presets); any other model needs a file."""
    if data.path is not None:
        return data
    if target.model_source not in (DEFAULT_MODEL_NAME, DEFAULT_QA_MODEL_NAME) and not target.random_weights:
        raise HarnessError("no --data given: name a labelled CSV/TSV/JSONL file, or SQuAD JSON / JSON Lines "
                           "for a question-answering model (or --data default for the default model's evaluation set)")
    return DataSettings(DEFAULT_DATA, limit=data.limit)


@dataclass(frozen=True)
class Plan:
    """Everything the measurements need, settled before any worker starts."""

    target: Target
    head: str | None
    data: DataSettings
    latency: LatencySettings
    manifest: dict[str, Any]
    eval_set: EvalSet
    specs: list[ProgramSpec]  # the reference first, then the bundle's programs
    probe_lengths: list[int]
    inputs: list[dict[str, Any]]  # every evaluation example, then the probes
    timed: list[int]  # indices into inputs: the latency set
    weight_cache: bool
    memory_without_cache: bool
    profile: bool
    adaptive: AdaptivePlan | None = None  # a bundle with early exits: the exit settings swept

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def seq_len(self) -> int:
        return int(self.manifest["max_seq_len"])

    @property
    def regression(self) -> bool:
        return self.manifest["task"] == "sequence-classification" and len(self.labels) == 1

    @property
    def classification(self) -> bool:
        return self.manifest["task"] == "sequence-classification" and not self.regression

    @property
    def scored(self) -> bool:
        return self.manifest["task"] in ("sequence-classification", QA_TASK) and not self.target.random_weights

    @property
    def qa(self) -> QAEvalSet | None:
        return self.eval_set.qa

    @property
    def n_eval(self) -> int:
        return len(self.eval_set.rows)

    @property
    def timed_lengths(self) -> list[int]:
        return [len(self.inputs[i]["input_ids"]) for i in self.timed]


def plan_comparison(target: Target, reference: Any, head: str | None, data: DataSettings,
                    latency: LatencySettings, tokenizer: str | os.PathLike | None, *, weight_cache: bool,
                    memory_without_cache: bool, profile: bool) -> Plan:
    """Read and check the bundle (files, the reference matches it, a tokenizer), read and
    tokenize the data, and fix the inputs: every example, then one probe per probe length."""
    bundle_dir = target.bundle_dir
    manifest = read_manifest(bundle_dir)
    verify_files(bundle_dir, manifest)
    check_model_matches(reference, manifest, bundle_dir)
    tok = tokenizer_from_manifest(bundle_dir, manifest)
    if tok is None:
        if tokenizer is None:
            raise HarnessError(f"{bundle_dir}: the bundle has no tokenizer; pass --tokenizer (a checkpoint "
                               "directory, an spiece.model file, or 'default')")
        tok = load_tokenizer(tokenizer)
    seq_len = int(manifest["max_seq_len"])
    probe_lengths = (list(latency.probe_lengths) if latency.probe_lengths is not None
                     else default_probe_lengths(seq_len))
    bad = [n for n in probe_lengths if not 1 <= n <= seq_len]
    if bad:
        raise HarnessError(f"probe lengths {bad} are outside [1, {seq_len}] (the bundle's max_seq_len)")
    task, labels = manifest["task"], list(manifest["labels"])
    regression = task == "sequence-classification" and len(labels) == 1
    labelled = task == "sequence-classification" and not regression and not target.random_weights
    if task == QA_TASK:
        eval_set = load_qa_eval_set(data, tok, qa_settings(manifest, str(bundle_dir / MANIFEST_FILE)))
    else:
        eval_set = load_eval_set(data, tok, labels if labelled else None, regression, seq_len)
    if any(i >= manifest["vocab_size"] for ids in eval_set.input_ids for i in ids):
        raise HarnessError(f"the tokenizer produces ids >= the model's vocab_size {manifest['vocab_size']}; "
                           "use the model's own tokenizer")
    probes = probe_inputs(eval_set, tok, probe_lengths)
    inputs = [{"input_ids": a, "token_type_ids": b, "pad_id": tok.pad_id}
              for a, b in zip(eval_set.input_ids, eval_set.token_type_ids)]
    n_eval = len(inputs)
    inputs += [{**p, "pad_id": tok.pad_id} for p in probes]
    timed = spread_indices(eval_set.lengths, latency.data_inputs) + list(range(n_eval, len(inputs)))
    specs = [_eager_spec(target.model_source, reference), *_pte_specs(bundle_dir, manifest)]
    model_dir = Path(specs[0].source) if Path(specs[0].source).is_dir() else None
    adaptive = plan_adaptive(manifest, model_dir, n_eval) if task == "sequence-classification" else None
    return Plan(target, head, data, latency, manifest, eval_set, specs, probe_lengths, inputs, timed,
                weight_cache, memory_without_cache, profile, adaptive)


@dataclass
class Measurements:
    """What the workers measured, per program name."""

    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)  # first output per example
    latency: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # one entry per thread count
    without_cache: dict[str, dict[str, Any]] = field(default_factory=dict)  # memory with the cache off
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # QA: decoded once per program
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # early exits: every step's logits
    rule_times: dict[int, Any] = field(default_factory=dict)  # early exits: per thread count (time_rules)

    def qa_answers(self, qa: QAEvalSet, name: str) -> list[dict[str, Any]]:
        """Program ``name``'s best answer per question, decoded from its outputs once."""
        if name not in self.answers:
            self.answers[name] = qa_answers(qa, self.outputs[name])
        return self.answers[name]


def measure(plan: Plan, work: Path, bar: _Bar) -> Measurements:
    """Every program in its own worker per thread count: outputs on every example (with the first
    thread count), then warm-up and interleaved timed rounds; then, if asked, memory without the
    weight cache."""
    work.mkdir(parents=True, exist_ok=True)
    inputs_file = work / "inputs.json"
    inputs_file.write_text(json.dumps(plan.inputs), encoding="utf-8")
    m = Measurements(latency={s.name: [] for s in plan.specs})
    threads = plan.latency.threads
    for i, t in enumerate(threads):
        _measure_at(plan, t, inputs_file, work, bar, m, outputs=i == 0, profile=plan.profile and i == len(threads) - 1)
    if plan.memory_without_cache:
        _memory_without_cache(plan, max(threads), inputs_file, work, bar, m)
    return m


def _measure_at(plan: Plan, threads: int, inputs_file: Path, work: Path, bar: _Bar, m: Measurements, *,
                outputs: bool, profile: bool) -> None:
    workers: list[WorkerProcess] = []
    try:
        for s in plan.specs:  # started together: the imports overlap; loading is timed one by one
            workers.append(WorkerProcess(s, threads, work / f"{s.name}-{threads}t.log"))
        advance = bar.task(f"start     {threads} thread(s)", 2 * len(workers))
        for w in workers:
            w.wait_ready()
            advance(1)
        loads = {}
        for w in workers:  # one at a time, so each load time is the program's own
            loads[w.spec.name] = w.call("load", kind=w.spec.kind, source=w.spec.source, head=plan.head,
                                        threads=threads, inputs=str(inputs_file), weight_cache=plan.weight_cache)
            advance(1)
        if outputs:
            _run_outputs(workers, plan.n_eval, work, bar, m.outputs, every_output=plan.qa is not None)
        times, steal = _time_rounds(plan, workers, threads, bar)
        for w in workers:
            entry = _latency_entry(plan, threads, loads[w.spec.name], w.call("stats"), times[w.spec.name],
                                   steal[w.spec.name])
            if profile and w.spec.kind == "pte":
                bar.line(f"profiling {w.spec.name} with ETDump ...")
                entry["profile"] = w.call("profile", indices=plan.timed, runs=1)["profile"]
            m.latency[w.spec.name].append(entry)
        if plan.adaptive is not None:  # after the memory figures: the loop's methods load now
            if outputs:
                m.steps = collect_steps(plan.adaptive, workers, plan.n_eval, work)
            advance = bar.task(f"exits     {threads} thread(s)", plan.latency.rounds * len(workers))
            m.rule_times[threads] = time_rules(plan.adaptive, workers, plan.latency.rounds, 1, advance)
    finally:
        for w in workers:
            w.close()


def _time_rounds(plan: Plan, workers: list[WorkerProcess], threads: int,
                 bar: _Bar) -> tuple[dict[str, list[list[float]]], dict[str, float | None]]:
    """Warm-up, then ``rounds`` rounds in which every worker times every latency input ``runs``
    times, the order rotating each round. -> per program, per timed input, the seconds of each
    call; and per program the share of CPU time the hypervisor stole during its timed calls."""
    s = plan.latency
    advance = bar.task(f"latency   {threads} thread(s)", s.rounds * len(workers))
    for w in workers:  # the peak from here on is that of the timed calls
        w.call("reset_peak")
        w.call("warmup", indices=plan.timed, runs=s.warmup)
    times: dict[str, list[list[float]]] = {w.spec.name: [[] for _ in plan.timed] for w in workers}
    jiffies: dict[str, list[int] | None] = {w.spec.name: [0, 0] for w in workers}
    for r in range(s.rounds):
        for k in range(len(workers)):
            w = workers[(k + r) % len(workers)]
            reply = w.call("time", indices=plan.timed, runs=s.runs)
            for per_input, new in zip(times[w.spec.name], reply["times_s"]):
                per_input.extend(new)
            acc, cpu = jiffies[w.spec.name], reply.get("cpu_steal")
            jiffies[w.spec.name] = None if acc is None or cpu is None else [acc[0] + cpu[0], acc[1] + cpu[1]]
            advance(1)
    steal = {name: (j[0] / j[1] if j and j[1] > 0 else None) for name, j in jiffies.items()}
    return times, steal


def compare(
    model_or_bundle: str | os.PathLike,
    *,
    out: str | os.PathLike,
    model: str | os.PathLike | None = None,
    head: str | None = None,
    data: DataSettings = DataSettings(),
    latency: LatencySettings = LatencySettings(),
    recipes: Sequence[str] | None = None,
    max_seq_len: int | None = None,
    tokenizer: str | os.PathLike | None = None,
    jobs: int = 1,
    profile: bool = False,
    progress: bool = True,
    weight_cache: bool = True,
    memory_without_cache: bool = False,
) -> dict[str, Any]:
    """Compare eager fp32 with every program of a bundle; write the report into ``out``.

    model_or_bundle: a bundle folder (``--model`` then names the model it came from), or a model
        (a checkpoint directory, ``default``, or a preset name with seeded random weights), which
        is first exported to ``out/bundle`` with ``recipes`` (default fp32 and int8; ``jobs``
        processes). ``recipes`` and ``max_seq_len`` are refused with a bundle (it is compared as it is).
    data: the labelled data; ``path=None`` means the default model's evaluation set when the model
        is ``default`` (any other model needs a file).
    weight_cache: load the programs with XNNPACK's packed-weights cache (``backend_options``; on
        by default, as on Android and iOS). memory_without_cache: also load each program once
        more with the cache off, in its own process, to report the memory sharing saves.
    Returns the report (also ``out/report.json``); see docs/compare.md.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out}: exists and is not a folder; name a folder for the report")
    target = resolve_target(model_or_bundle, model, out)
    if not target.export and (recipes is not None or max_seq_len is not None):
        given = ", ".join(f for f, v in (("--recipe", recipes), ("--max-seq-len", max_seq_len)) if v is not None)
        raise HarnessError(f"{given}: only for a model that is exported first; {target.bundle_dir} is a bundle, "
                           "whose programs are compared as they are (re-export it to change them)")
    data = data_for(target, data)
    created = not out.exists()
    if not created:
        _check_out_is_a_comparison(out)
    check_writable(out, "--out", HarnessError)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        return _compare_in(out, created, target, head, data, latency, recipes, max_seq_len, tokenizer, jobs,
                           profile, progress, weight_cache, memory_without_cache)


def _check_out_is_a_comparison(out: Path) -> None:
    """An existing --out must be empty or hold a comparison's files (which a new run replaces):
    never a user's own report.md or anything else."""
    ours = {"report.json", "bundle", "work", LOCK_FILE, *PLOTS, ADAPTIVE_PLOT}
    names = sorted(p.name for p in out.iterdir())
    # (temporary folders of the bundle and the report, from a run in progress or a killed one)
    foreign = [n for n in names if n not in ours and not (n == "report.md" and "report.json" in names)
               and not is_temp_of(out / "bundle", out / n) and not is_temp_of(out / "report", out / n)]
    if foreign:
        raise HarnessError(f"--out {out}: holds {foreign[0]!r}, which is not from an albert-edge comparison, and "
                           "a comparison replaces report.md and the plots there; give a new or empty folder, or "
                           "an earlier comparison's folder")


def _compare_in(out: Path, created: bool, target: Target, head: str | None, data: DataSettings,
                latency: LatencySettings, recipes: Sequence[str] | None, max_seq_len: int | None,
                tokenizer: str | os.PathLike | None, jobs: int, profile: bool, progress: bool,
                weight_cache: bool, memory_without_cache: bool) -> dict[str, Any]:
    """``compare`` in its folder, which this process holds (``_io.folder_lock``)."""
    try:
        started = time.time()
        reference = load_model(target.model_source, head)
        with _Bar(progress) as bar:
            if target.export:
                recipes = tuple(recipes or DEFAULT_RECIPES)
                bar.line(f"exporting {target.model_source} to {target.bundle_dir} ({', '.join(recipes)}) ...")
                done = bar.task("export    (lowering takes minutes)", None)
                export_bundle(target.model_source, target.bundle_dir, recipes, max_seq_len=max_seq_len, head=head,
                              tokenizer=tokenizer, jobs=jobs, progress=bar.line)
                done(1)
            plan = plan_comparison(target, reference, head, data, latency, tokenizer, weight_cache=weight_cache,
                                   memory_without_cache=memory_without_cache, profile=profile)
            del reference  # the workers load their own
            shutil.rmtree(out / "work", ignore_errors=True)  # nothing an earlier run left is read
            measured = measure(plan, out / "work", bar)
    except BaseException:
        if created and out.is_dir() and {p.name for p in out.iterdir()} <= {LOCK_FILE}:
            shutil.rmtree(out)  # an early failure leaves no empty folder behind
        raise
    report = assemble_report(plan, measured, time.time() - started)
    write_report(report, out)
    return report


def _run_outputs(workers: list[WorkerProcess], n_eval: int, work: Path, bar: _Bar,
                 outputs: dict[str, list[np.ndarray]], every_output: bool = False) -> None:
    """Every program's outputs on every example (the first output, or with ``every_output`` all
    of them concatenated: QA's start and end logits). Nothing is timed here, so one-thread
    workers run side by side, as many as there are cores."""
    parallel = max(1, (os.cpu_count() or 1) // workers[0].threads)
    for start in range(0, len(workers), parallel):
        group = workers[start:start + parallel]
        advances = [bar.task(f"outputs   {w.spec.name:<10}", n_eval) for w in group]
        for w in group:  # sent together; the replies are read one worker at a time
            w.send("outputs", count=n_eval, file=str(work / f"{w.spec.name}.npz"), every_output=every_output)
        for w, advance in zip(group, advances):
            done = [0]

            def step(n: int, done: list[int] = done, advance: Callable[[int], None] = advance) -> None:
                advance(n - done[0])
                done[0] = n

            w.call(None, on_progress=step)
            step(n_eval)
            outputs[w.spec.name] = _load_outputs(work / f"{w.spec.name}.npz")


def _memory_entry(load: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    """A worker's memory figures (bytes) and what the program costs: RSS it adds once loaded,
    after its first call, and at its peak (load, first call and the timed calls), each over
    the worker's RSS just before the load (imports done, inputs read)."""
    m = load["memory"]
    base = m["rss_after_imports"]
    peak = max(m["peak_load"], stats["peak_rss"])
    return {"weight_cache": load["weight_cache"], "peak_reset": stats["peak_reset"],
            "rss_after_imports_bytes": base, "rss_after_load_bytes": m["rss_after_load"],
            "rss_after_first_call_bytes": m["rss_after_first_call"], "peak_load_bytes": m["peak_load"],
            "peak_timed_bytes": stats["peak_rss"], "load_cost_bytes": m["rss_after_load"] - base,
            "first_call_cost_bytes": m["rss_after_first_call"] - base, "peak_cost_bytes": peak - base}


def _memory_without_cache(plan: Plan, threads: int, inputs_file: Path, work: Path, bar: _Bar,
                          m: Measurements) -> None:
    """Each program once more in a fresh process with XNNPACK's weight cache off: loaded, then
    one call per timed input (the inputs the timed rounds visit), for its memory only."""
    ptes = [s for s in plan.specs if s.kind == "pte"]
    advance = bar.task("memory    without the weight cache", len(ptes))
    for s in ptes:
        w = WorkerProcess(s, threads, work / f"{s.name}-{threads}t-nocache.log")
        try:
            w.wait_ready()
            load = w.call("load", kind=s.kind, source=s.source, head=plan.head, threads=threads,
                          inputs=str(inputs_file), weight_cache=False)
            w.call("warmup", indices=plan.timed, runs=1)
            m.without_cache[s.name] = {"threads": threads, **_memory_entry(load, w.call("stats"))}
        finally:
            w.close()
        advance(1)


def _latency_entry(plan: Plan, threads: int, load: dict[str, Any], stats: dict[str, Any],
                   times: list[list[float]], steal: float | None) -> dict[str, Any]:
    all_ms = [t * 1e3 for per in times for t in per]
    n_eval = plan.n_eval
    per_input = [{"input": i, "source": "data" if i < n_eval else "probe",
                  "row": plan.eval_set.rows[i].row if i < n_eval else None, "seq_len": n,
                  "times_ms": [round(t * 1e3, 4) for t in per]}
                 for i, n, per in zip(plan.timed, plan.timed_lengths, times)]
    by_bucket = []
    for lo, hi in buckets(plan.seq_len):
        ms = [t for p in per_input if lo <= p["seq_len"] <= hi for t in p["times_ms"]]
        if ms:
            by_bucket.append({"bucket": [lo, hi], "inputs": sum(lo <= p["seq_len"] <= hi for p in per_input),
                              **latency_summary(ms)})
    entry = {"threads": threads, "load_s": load["load_s"], "first_inference_s": load["first_s"],
             "memory": _memory_entry(load, stats), "summary": latency_summary(all_ms), "by_bucket": by_bucket,
             "per_input": per_input, "cpu_steal_share": steal}
    entry["quality"] = timing_quality(entry, plan.latency.rounds, plan.latency.runs)
    return entry


def program_memory(latency: list[dict[str, Any]], without_cache: dict[str, Any] | None) -> dict[str, Any]:
    """The headline memory of a program: at its highest thread count, the RSS it adds after load
    and at its peak; with the same figures without the weight cache when they were measured."""
    e = max(latency, key=lambda x: x["threads"])
    m = e["memory"]
    headline = {"threads": e["threads"], "weight_cache": m["weight_cache"], "load_cost_bytes": m["load_cost_bytes"],
                "first_call_cost_bytes": m["first_call_cost_bytes"], "peak_cost_bytes": m["peak_cost_bytes"],
                "without_cache": None}
    if without_cache is not None:
        headline["without_cache"] = {k: without_cache[k] for k in
                                     ("threads", "load_cost_bytes", "first_call_cost_bytes", "peak_cost_bytes")}
    return headline


def _program_entry(plan: Plan, spec: ProgramSpec, m: Measurements, fp32_size: int | None) -> dict[str, Any]:
    out = m.outputs[spec.name]
    entry: dict[str, Any] = {
        "name": spec.name, "kind": spec.kind, "file": spec.source if spec.kind == "pte" else None,
        "recipe": spec.recipe, "dynamic": spec.dynamic,
        "size": {"bytes": spec.size_bytes, "parameter_bytes": spec.parameter_bytes,
                 "compression_vs_fp32": (fp32_size / spec.size_bytes) if fp32_size and spec.size_bytes else None},
        "accuracy": None, "fidelity": None, "flips": None, "predictions": None,
        "latency": m.latency[spec.name],
        "memory": program_memory(m.latency[spec.name], m.without_cache.get(spec.name)),
    }
    if plan.qa is not None:
        return _qa_program_entry(plan, plan.qa, entry, m)
    if plan.classification:
        entry["predictions"] = [int(i) for i in np.stack(out).argmax(-1)]  # per example: the verdict's input
    if plan.scored and (plan.classification or plan.regression):
        entry["accuracy"] = task_metrics(plan.eval_set, plan.labels, np.stack(out), plan.regression)
    if spec.name != REFERENCE:
        ref = m.outputs[REFERENCE]
        entry["fidelity"] = fidelity(ref, out)
        if plan.classification:
            listed = flips(plan.eval_set, plan.labels, np.stack(ref), np.stack(out))
            entry["flips"] = {"count": len(listed), "listed": listed[:MAX_FLIPS_LISTED]}
    return entry


def _qa_program_entry(plan: Plan, qa: QAEvalSet, entry: dict[str, Any], m: Measurements) -> dict[str, Any]:
    """QA: answers per question, SQuAD EM/F1, and against the reference the share of questions
    with the same answer and every question whose answer changed."""
    answers = m.qa_answers(qa, entry["name"])
    entry["answers"] = [{k: a[k] for k in ("answer", "start", "end")} | {"score": round(a["score"], 6)}
                        for a in answers]
    if plan.scored:
        entry["accuracy"] = squad_scores(qa.examples, [a["answer"] for a in answers])
    if entry["name"] != REFERENCE:
        entry["fidelity"] = fidelity(m.outputs[REFERENCE], m.outputs[entry["name"]])
        listed = changed_answers(qa, m.qa_answers(qa, REFERENCE), answers)
        entry["fidelity"]["answer_agreement"] = 1 - len(listed) / len(qa.examples)
        entry["flips"] = {"count": len(listed), "listed": listed[:MAX_FLIPS_LISTED]}
    return entry


def _data_sha256(plan: Plan) -> str:
    """SHA-256 of what was evaluated: every row's text, pair and label, and for QA every
    question's id, question, context and answers (so two reports on other data never compare)."""
    import hashlib

    if plan.qa is not None:
        items: list[Any] = [[e.id, e.question, e.context, [list(a) for a in e.answers]] for e in plan.qa.examples]
    else:
        items = [[r.text, r.text_pair, r.label] for r in plan.eval_set.rows]
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode("utf-8")).hexdigest()


def assemble_report(plan: Plan, m: Measurements, seconds: float) -> dict[str, Any]:
    """The report (schema: ``albert_edge.report_schema``, docs/compare.md) from the plan and what
    was measured."""
    fp32 = next((s for s in plan.specs if s.name == "fp32"), None)
    programs = [_program_entry(plan, s, m, fp32.size_bytes if fp32 else None) for s in plan.specs]
    manifest, data, latency, target = plan.manifest, plan.data, plan.latency, plan.target
    lengths = plan.eval_set.lengths
    return {
        "format": REPORT_FORMAT, "schema_version": REPORT_SCHEMA_VERSION,
        "created_by": f"albert-edge {__version__}", "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(seconds, 1),
        "model": {"source": target.model_source, "head": plan.head, "task": manifest["task"],
                  "architecture": manifest["architecture"], "labels": plan.labels,
                  "random_weights": target.random_weights, "max_seq_len": plan.seq_len,
                  "vocab_size": manifest["vocab_size"], "weights_sha256": manifest.get("weights_sha256")},
        "bundle": str(target.bundle_dir),
        "reference": REFERENCE,
        "data": {"source": plan.eval_set.source, "sha256": _data_sha256(plan), "path": data.path, "rows": plan.n_eval,
                 "limit": data.limit,
                 "questions": len(plan.qa.examples) if plan.qa else None,
                 "text_column": data.text_column, "label_column": data.label_column,
                 "text_pair_column": data.text_pair_column, "truncated": plan.eval_set.truncated,
                 "token_lengths": {"min": min(lengths), "median": float(np.median(lengths)), "max": max(lengths)},
                 "gold": _gold(plan),
                 "accuracy_skipped": None if plan.scored else (
                     "random weights: the labels mean nothing" if target.random_weights
                     else f"task {manifest['task']}")},
        "qa": plan.qa.settings.to_dict() if plan.qa else None,
        "machine": machine_info(),
        "latency_settings": {"threads": list(latency.threads), "warmup": latency.warmup, "rounds": latency.rounds,
                             "runs_per_round": latency.runs, "data_inputs": latency.data_inputs,
                             "probe_lengths": plan.probe_lengths, "buckets": [list(b) for b in buckets(plan.seq_len)],
                             "timed_inputs": [{"input": i, "seq_len": n, "source": "data" if i < plan.n_eval else "probe"}
                                              for i, n in zip(plan.timed, plan.timed_lengths)],
                             "interleaved": True, "process_per_program": True, "gc_disabled_while_timed": True},
        "programs": programs,
        "adaptive": (adaptive_section(plan.adaptive, m.steps, _gold(plan), m.rule_times, REFERENCE)
                     if plan.adaptive is not None else None),
    }


def _gold(plan: Plan) -> list[int] | None:
    """Each example's label id, where the data is labelled for the bundle's classes."""
    return [plan.labels.index(str(r.label)) for r in plan.eval_set.rows] if plan.scored and plan.classification else None
