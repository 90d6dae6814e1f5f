"""Where a program's time goes: per-operator times from ExecuTorch's ETDump.

``profile_program`` loads a ``.pte`` with ETDump enabled (``executorch.runtime``'s
``Runtime.get().load_program(..., enable_etdump=True)``; the executorch 1.5.1 wheel's runtime is
built with event tracing), runs ``forward``, writes the ETDump and sums its profiling events, the
data ``executorch.devtools.Inspector`` tabulates. Per execution of ``forward`` the ETDump holds:

- for each instruction outside a delegate, an ``OPERATOR_CALL`` event: the kernel and the
  executor's call around it (named here from the program's operator table, ``aten::embedding.out``);
- for each XNNPACK delegate call, a ``DELEGATE_CALL`` event and, as the wheel's XNNPACK backend
  is built with its profiler, one event per XNNPACK operator the call ran
  (``Fully Connected (NC, QDU8, F32, QC8W) GEMM #3``), timed by XNNPACK in whole microseconds.
  A delegate call is: reshape and setup (every call: the length may have changed), the
  operators, then the profiler writing its events, which is tracing cost, not the model's: it
  is reported as ``tracing_overhead_ms`` and left out of the per-operator times.

The ETDump is read with ``deserialize_from_etdump_flatcc`` rather than through the Inspector:
the Inspector merges all executions into one row per event, and the warm-up executions must be
left out. Timestamps are the runtime's ticks: nanoseconds on Linux and macOS (the Inspector
assumes the same).
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from albert_edge.errors import ProfilingError

# Framework events around the instructions (Method::execute is the whole forward call).
_EXECUTE_EVENT = "Method::execute"
_OPERATOR_CALL = "OPERATOR_CALL"
_DELEGATE_CALL = "DELEGATE_CALL"
_NS_PER_MS = 1e6
# XNNPACK's profiler names each operator "<kind> #<k-th of that kind in this delegate call>".
_DELEGATE_ORDINAL = re.compile(r" #\d+$")



def profile_program(
    pte: str | os.PathLike | bytes,
    inputs: Sequence[tuple[Tensor, Tensor, Tensor]],
    *,
    runs: int = 5,
    num_threads: int | None = None,
    warmup: int = 1,
    etdump_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run ``forward`` on every input ``runs`` times with ETDump on; where the time went.

    pte: a ``.pte`` path or its bytes. inputs: (input_ids, attention_mask, token_type_ids), each
    int64 of shape (1, S), checked like ``Program.run`` checks them. runs: passes over ``inputs``
    that are measured, after ``warmup`` passes that are not (XNNPACK's first call at a length
    packs and plans). num_threads: sizes ExecuTorch's threadpool first (see
    ``runtime.set_num_threads``). etdump_path: also keep the ETDump there, for
    ``executorch.devtools.Inspector(etdump_path=...)``.

    Returns a JSON-serialisable dict:
      operators: [{name, delegated, calls, total_ms, median_ms, share}], most time first: calls
        counts every call in the measured executions, median_ms is per call, share is of total_ms;
        the same operator at several places in the program is one entry.
      delegate_blocks: the same per delegate call site (``XnnpackBackend#0`` ...), with
        ``operators``: the XNNPACK operators it runs per call (0 when they are not reported).
      total_ms: the sum of operators' total_ms; tracing_overhead_ms: what the delegate's profiler
        took on top (not in total_ms); execute_ms: the runtime's ``Method::execute`` time, which
        adds the executor's own bookkeeping to both; wall_ms: the measured executions' wall time
        seen from Python (>= execute_ms).
      runs, executions (= runs * len(inputs)), num_threads (the threadpool's size);
      delegated_share_of_time: the delegated entries' share of total_ms;
      op_level_delegate: whether the delegate reported its operators; notes: how to read it.

    Raises ProfilingError when the runtime cannot produce an ETDump, RuntimeInputError for a bad
    input or argument, ProgramError for a file that is not an albert-edge program.
    """
    from executorch.runtime import Runtime

    from albert_edge.runtime import Program, RuntimeInputError, get_num_threads

    for name, value, least in (("runs", runs, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise RuntimeInputError(f"{name} must be an integer >= {least}, got {value!r}")
    if len(inputs) == 0:
        raise RuntimeInputError("inputs is empty: pass at least one (input_ids, attention_mask, token_type_ids) tuple")

    # Program checks the file, sizes the threadpool before anything is loaded, and checks the
    # inputs; it is a separate instance, so its calls never reach the ETDump.
    checker = Program(pte, num_threads=num_threads)
    checked = [checker.check_inputs(*x) for x in inputs]
    data = bytes(pte) if isinstance(pte, (bytes, bytearray, memoryview)) else Path(pte).read_bytes()
    instructions = _forward_instructions(data, checker.name)

    try:
        # A path is mapped by the runtime; bytes are loaded from the copy already read.
        source = data if isinstance(pte, (bytes, bytearray, memoryview)) else str(pte)
        program = Runtime.get().load_program(source, enable_etdump=True, debug_buffer_size=0)
    except TypeError as err:  # a wheel whose pybindings predate enable_etdump
        raise ProfilingError(
            f"{checker.name}: this executorch wheel cannot load a program with ETDump enabled ({err}); "
            "executorch>=1.0 can (Runtime.get().load_program(path, enable_etdump=True))"
        ) from None
    forward = program.load_method("forward")
    for _ in range(warmup):
        for x in checked:
            forward.execute(list(x))
    start = time.perf_counter()
    for _ in range(runs):  # run-major, like the harness times
        for x in checked:
            forward.execute(list(x))
    wall_ms = (time.perf_counter() - start) * 1e3

    with tempfile.TemporaryDirectory(prefix="albert-edge-etdump-") as tmp:
        dump = Path(etdump_path) if etdump_path is not None else Path(tmp) / "forward.etdp"
        try:
            program.write_etdump_result_to_file(str(dump), str(Path(tmp) / "debug.bin"))
        except RuntimeError as err:
            raise ProfilingError(
                f"{checker.name}: the ExecuTorch runtime produced no ETDump ({err}): its pybindings "
                "were built without event tracing (CMake EXECUTORCH_ENABLE_EVENT_TRACER=ON); use a "
                "build with it, such as the executorch 1.5.1 wheel from PyPI"
            ) from None
        executions = _read_executions(dump.read_bytes())
    expected = (warmup + runs) * len(checked)
    if len(executions) != expected:
        raise ProfilingError(
            f"{checker.name}: the ETDump holds {len(executions)} executions of forward, expected "
            f"{expected} ({warmup} warm-up + {runs} measured passes over {len(checked)} inputs); "
            "the runtime did not trace every call"
        )
    summary = _summarise(executions[warmup * len(checked):], instructions, checker.name)
    summary.update(runs=runs, executions=runs * len(checked), num_threads=get_num_threads(),
                   wall_ms=round(wall_ms, 6))
    return summary


def _forward_instructions(data: bytes, source: str) -> list[str]:
    """A name for every instruction of ``forward``, by instruction id (the ETDump's
    ``instruction_id``): kernels as ``aten::embedding.out``, delegate calls as
    ``XnnpackBackend#<delegate index>``, other instructions by their kind (``MoveCall`` ...)."""
    # A private module of the pinned wheel, and its only reader of a program's instruction table
    # (0.25 s for albert-base fp32: flatc parses the flatbuffer part, the segments are copied).
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(data).program
    plans = [p for p in program.execution_plan if p.name == "forward"]
    if not plans:
        raise ProfilingError(f"{source}: the program has no method 'forward' to profile")
    plan = plans[0]
    names = []
    for instruction in plan.chains[0].instructions:
        args = instruction.instr_args
        if hasattr(args, "op_index"):
            op = plan.operators[args.op_index]
            names.append(f"{op.name}.{op.overload}" if op.overload else op.name)
        elif hasattr(args, "delegate_index"):
            names.append(f"{plan.delegates[args.delegate_index].id}#{args.delegate_index}")
        else:
            names.append(type(args).__name__)
    return names


def _read_executions(etdump: bytes) -> list[list[Any]]:
    """The profile events of each ``forward`` execution, in call order (the load and init events
    are a run of their own, without ``Method::execute``)."""
    from executorch.devtools.etdump.serialize import deserialize_from_etdump_flatcc

    runs = deserialize_from_etdump_flatcc(etdump).run_data
    executions = []
    for run in runs:
        events = [e.profile_event for e in run.events or [] if e.profile_event is not None]
        if any(e.name == _EXECUTE_EVENT for e in events):
            executions.append(events)
    return executions


def _ms(event: Any) -> float:
    return (event.end_time - event.start_time) / _NS_PER_MS


def _summarise(executions: list[list[Any]], instructions: list[str], source: str) -> dict[str, Any]:
    samples: dict[tuple[str, bool], list[float]] = defaultdict(list)  # (name, delegated) -> ms per call
    blocks: dict[str, list[float]] = defaultdict(list)  # delegate call site -> ms per call
    block_ops: dict[str, int] = {}  # delegate call site -> operators it reported per call
    execute_ms = tracing_ms = 0.0
    for events in executions:
        inner: dict[int, list[Any]] = defaultdict(list)  # instruction id -> the delegate's operators
        for e in events:
            if e.delegate_debug_id_str or e.delegate_debug_id_int not in (-1, None):
                inner[e.instruction_id].append(e)
        for e in events:
            if e.name == _EXECUTE_EVENT:
                execute_ms += _ms(e)
            elif e.name == _OPERATOR_CALL:
                samples[(_instruction(instructions, e.instruction_id, source), False)].append(_ms(e))
            elif e.name == _DELEGATE_CALL:
                name = _instruction(instructions, e.instruction_id, source)
                ops = inner.get(e.instruction_id, [])
                block_ops[name] = len(ops)
                if not ops:
                    samples[(name, True)].append(_ms(e))
                    blocks[name].append(_ms(e))
                    continue
                for op in ops:
                    label = op.delegate_debug_id_str or str(op.delegate_debug_id_int)
                    samples[(_DELEGATE_ORDINAL.sub("", label), True)].append(_ms(op))
                # The call = reshape and setup, then the operators, then the delegate's profiler
                # reading XNNPACK's timings and writing them into the ETDump: tracing, not work.
                after = max(0.0, (e.end_time - max(op.end_time for op in ops)) / _NS_PER_MS)
                ops_ms = sum(_ms(op) for op in ops)
                setup = max(0.0, _ms(e) - after - ops_ms)
                samples[(f"{name.split('#')[0]}: reshape and setup", True)].append(setup)
                blocks[name].append(setup + ops_ms)
                tracing_ms += after
    if not samples:
        raise ProfilingError(
            f"{source}: the ETDump has no operator events (OPERATOR_CALL / DELEGATE_CALL): the "
            "runtime's executor was built without event tracing (ET_EVENT_TRACER_ENABLED)"
        )

    total = sum(sum(v) for v in samples.values())
    operators = sorted((_entry(name, delegated, v, total) for (name, delegated), v in samples.items()),
                       key=lambda o: -o["total_ms"])
    delegate_blocks = sorted(
        ({**_entry(name, True, v, total), "operators": block_ops[name]} for name, v in blocks.items()),
        key=lambda o: -o["total_ms"])
    op_level = any(n > 0 for n in block_ops.values())
    notes = []
    if op_level:
        notes.append(
            "Delegated operators are XNNPACK's own, timed by XNNPACK in whole microseconds from the "
            "end of the operator before (so sub-microsecond operators read 0 and their time goes to "
            "the next). 'reshape and setup' is the rest of each delegate call before its operators: "
            "propagating the input shapes and binding the buffers, on every call. The delegate's "
            "profiler costs time of its own after the operators (about 1 us per operator); that is "
            "tracing_overhead_ms, left out of total_ms.")
    elif blocks:
        notes.append(
            "This runtime's XNNPACK backend does not report its operators (built without its "
            "profiler): each delegate call site is one opaque entry (XnnpackBackend#0 ...).")
    notes.append("Non-delegated entries are OPERATOR_CALL events: the kernel and the executor's call around it.")
    delegated = sum(sum(v) for (_, d), v in samples.items() if d)
    return {
        "operators": operators,
        "delegate_blocks": delegate_blocks,
        "total_ms": round(total, 6),
        "execute_ms": round(execute_ms, 6),
        "tracing_overhead_ms": round(tracing_ms, 6),
        "delegated_share_of_time": round(delegated / total, 6) if total else 0.0,
        "op_level_delegate": op_level,
        "notes": " ".join(notes),
    }


def _instruction(instructions: list[str], index: int, source: str) -> str:
    if not 0 <= index < len(instructions):
        raise ProfilingError(
            f"{source}: the ETDump names instruction {index}, but forward has {len(instructions)}; "
            "the ETDump and the program do not belong together"
        )
    return instructions[index]


def _entry(name: str, delegated: bool, ms: list[float], total: float) -> dict[str, Any]:
    s = sum(ms)
    return {"name": name, "delegated": delegated, "calls": len(ms), "total_ms": round(s, 6),
            "median_ms": round(statistics.median(ms), 6), "share": round(s / total, 6) if total else 0.0}
