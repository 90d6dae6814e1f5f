"""One program, one process: the worker that ``albert_edge.harness`` times.

The harness starts one worker per (program, thread count) so that a program's memory, packed
weights and caches never colour another's figures, and its peak RSS is its own. The protocol is
JSON Lines: a first reply once the imports are done (``python -m albert_edge._harness_worker
eager|pte``), then one command on stdin, one reply on the protocol channel (the process's original
stdout; native libraries that print are sent to stderr instead). Replies are ``{"ok": true, ...}``
or ``{"ok": false, "error": "..."}``; a long command may send ``{"progress": n}`` lines first.

Commands:
  load     {kind: "eager" | "pte", source, head, threads, inputs: JSON file, weight_cache: bool}
           -> load_s, first_s (first forward call, on inputs[0]), weight_cache (pte: whether it was
           loaded with XNNPACK's packed-weights cache; eager: null), and memory: rss_after_imports
           (just before the load: imports done, inputs read), rss_after_load, rss_after_first_call,
           peak_load (the peak from just before the load to the end of the first call), peak_reset
           (whether the kernel let the peak be reset; if not, peaks count from process start)
  reset_peak  start a new peak (``stats`` reports the peak since)
  outputs  {count, file, every_output}: run inputs[0:count] once each; writes an .npz with ``values``
           (float32, every first output, or with every_output all outputs, flattened and
           concatenated) and ``offsets`` (int64, count + 1)
  warmup   {indices, runs}: untimed calls
  time     {indices, runs}: per index, ``runs`` timed calls (garbage collector off) -> times_s
           [[float] per index], cpu_steal [stolen, total] jiffies meanwhile (or null)
  stats    -> peak_rss (bytes, since the last reset_peak or load), rss (bytes, now)
  profile  {indices, runs}: per-operator times from ExecuTorch's ETDump (pte only)
  exit
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import resource
import sys
import time
import traceback
from typing import Any, Callable


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """Resident set size now (``VmRSS``), bytes."""
    return _status_bytes("VmRSS") or 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process image, bytes: ``VmHWM``, which exec and
    ``reset_peak_rss`` reset. (``ru_maxrss`` is no good here: Linux carries the parent's
    high-water mark from the fork into the child, so every worker would report the harness's
    own peak.)"""
    hwm = _status_bytes("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux: write 5 to /proc/self/clear_refs); False if
    the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _no_gc() -> Any:
    """Collect first, then keep Python's garbage collector out of the block: in a torch process
    a collection inside a timed call adds milliseconds of tail latency that are not the program's."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cpu_jiffies() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs from /proc/stat's first line; None if not available."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


class Worker:
    def __init__(self, reply: Callable[[dict[str, Any]], None]) -> None:
        self.reply = reply
        self.forward: Callable[[tuple], Any] | None = None
        self.inputs: list[tuple] = []
        self.program: Any = None
        self.source = ""
        self.threads = 1
        self.kind = ""
        self.peak_reset = True
        self.model: Any = None  # eager: the model (for its exit heads' step logits)

    def load(self, kind: str, source: str, head: str | None, threads: int, inputs: str,
             weight_cache: bool = True) -> dict[str, Any]:
        import torch

        self.source, self.threads, self.kind = source, threads, kind
        with open(inputs, encoding="utf-8") as f:
            raw = json.load(f)
        # The inputs are the host's, made before the baseline; a fixed-length program pads them
        # after its load (it says its length), dynamic ones and eager use them as they are.
        tensors = [self._tensors(r, None) for r in raw]
        if kind == "pte":
            torch.set_num_threads(1)
        elif kind == "eager":
            torch.set_num_threads(threads)
        else:
            raise ValueError(f"unknown worker kind {kind!r}")
        gc.collect()
        rss_before = rss_bytes()
        self.peak_reset = reset_peak_rss()
        start = time.perf_counter()  # the imports are done (see main): this times the load itself
        if kind == "eager":
            from albert_edge.checkpoint import load_model

            model = self.model = load_model(source, head)

            def forward(x: tuple) -> Any:
                with torch.inference_mode():
                    return model(*x)
            cache = None
        else:
            from albert_edge.runtime import Program

            program = Program(source, num_threads=threads, weight_cache=weight_cache)
            forward, cache = program.run_checked, program.weight_cache
        load_s = time.perf_counter() - start
        rss_after = rss_bytes()
        if kind == "pte":
            self.program = program
            if not program.dynamic:
                pad = (program.max_seq_len, int(raw[0].get("pad_id", 0)))
                tensors = [self._tensors(r, pad) for r in raw]
            # Inputs are checked once here, not inside the timed calls.
            tensors = [program.check_inputs(*x) for x in tensors]
        start = time.perf_counter()
        forward(tensors[0])
        first_s = time.perf_counter() - start
        self.forward, self.inputs = forward, tensors
        memory = {"rss_after_imports": rss_before, "rss_after_load": rss_after,
                  "rss_after_first_call": rss_bytes(), "peak_load": peak_rss_bytes(),
                  "peak_reset": self.peak_reset}
        self.reset_peak()
        return {"load_s": load_s, "first_s": first_s, "weight_cache": cache, "memory": memory}

    def reset_peak(self) -> dict[str, Any]:
        self.peak_reset = reset_peak_rss() and self.peak_reset
        return {"peak_reset": self.peak_reset}

    @staticmethod
    def _tensors(r: dict[str, Any], pad: tuple[int, int] | None) -> tuple:
        """int64 (1, S) input_ids, attention_mask, token_type_ids; padded to a fixed length when
        ``pad`` = (length, pad id) is given (fixed-length programs)."""
        import torch

        ids, types = list(r["input_ids"]), list(r["token_type_ids"])
        mask = [1] * len(ids)
        if pad is not None:
            n = pad[0] - len(ids)
            ids, mask, types = ids + [pad[1]] * n, mask + [0] * n, types + [0] * n
        return tuple(torch.tensor([v], dtype=torch.long) for v in (ids, mask, types))

    def _first_output(self, out: Any) -> Any:
        return out[0] if isinstance(out, (tuple, list)) else out

    def _all_outputs(self, out: Any) -> Any:
        import torch

        outs = out if isinstance(out, (tuple, list)) else (out,)
        return torch.cat([o.reshape(o.shape[0], -1) for o in outs], dim=1)  # (B, sum of output sizes)

    def outputs(self, count: int, file: str, every_output: bool = False) -> dict[str, Any]:
        import numpy as np

        assert self.forward is not None
        pick = self._all_outputs if every_output else self._first_output
        results: list[Any] = [None] * count
        done = 0
        if self.kind == "eager":
            for group, batch in self._length_batches(count):
                out = pick(self.forward(batch)).detach().float().numpy()
                for row, i in enumerate(group):
                    results[i] = out[row].ravel()
                done += len(group)
                self.reply({"progress": done})
        else:
            for i in range(count):
                results[i] = pick(self.forward(self.inputs[i])).detach().float().numpy().ravel()
                if (i + 1) % 100 == 0:
                    self.reply({"progress": i + 1})
        values, offsets = results, [0]
        for out in results:
            offsets.append(offsets[-1] + out.size)
        np.savez(file, values=np.concatenate(values) if values else np.zeros(0, np.float32),
                 offsets=np.asarray(offsets, dtype=np.int64))
        return {"file": file}

    def _length_batches(self, count: int) -> Any:
        """Eager runs examples of equal length together (no padding, so each row is the same
        computation as batch 1, up to float summation order): far quicker than one by one.
        Yields (indices, batch) in batches of at most 64."""
        import torch

        by_length: dict[int, list[int]] = {}
        for i in range(count):
            by_length.setdefault(self.inputs[i][0].shape[1], []).append(i)
        for idx in by_length.values():
            for k in range(0, len(idx), 64):
                group = idx[k:k + 64]
                yield group, tuple(torch.cat([self.inputs[i][j] for i in group]) for j in range(3))

    def steps(self, count: int, file: str) -> dict[str, Any]:
        """An early-exit classifier's logits at every layer step on the first ``count`` inputs,
        saved to ``file`` as ``values`` (num_steps, count, num_labels): a program through its
        adaptive loop; eager with the exit heads saved beside the checkpoint."""
        import numpy as np
        import torch

        if self.kind == "pte":
            values = np.stack([torch.cat(self.program.run_steps(self.inputs[i])).numpy() for i in range(count)], axis=1)
        else:
            from albert_edge.exits import load_exits, step_logits

            exits = load_exits(self.source, self.model)
            values = None
            for group, batch in self._length_batches(count):
                with torch.inference_mode():
                    out = step_logits(self.model, exits, *batch).float().numpy()
                if values is None:
                    values = np.zeros((out.shape[0], count, out.shape[2]), np.float32)
                values[:, group] = out
        np.savez(file, values=values)
        return {"file": file}

    def _call(self, rule: Any) -> Callable[[tuple], Any]:
        """What a timed call runs: ``forward`` (rule None), an adaptive program's loop at full
        depth (rule "full"), or its loop under an exit rule ({"kind", "value"})."""
        assert self.forward is not None
        if rule is None:
            return self.forward
        if rule == "full":
            return self.program.run_steps
        from albert_edge.exit_rules import ExitRule

        exit_rule = ExitRule.from_dict(rule)
        return lambda x: self.program.run_adaptive(x, exit_rule)

    def warmup(self, indices: list[int], runs: int, rule: Any = None) -> dict[str, Any]:
        call = self._call(rule)
        with _no_gc():
            for _ in range(runs):
                for i in indices:
                    call(self.inputs[i])
        return {}

    def time(self, indices: list[int], runs: int, rule: Any = None) -> dict[str, Any]:
        """``runs`` timed calls per input, run-major (one input's calls are not back to back),
        with Python's garbage collector kept out of them; and the CPU time the hypervisor stole
        meanwhile (jiffies stolen, jiffies in all, over all CPUs; None where /proc/stat lacks it).
        ``rule``: what each call runs (``_call``; default ``forward``)."""
        times: list[list[float]] = [[] for _ in indices]
        clock, forward, inputs = time.perf_counter, self._call(rule), self.inputs
        cpu_before = _cpu_jiffies()
        with _no_gc():
            for _ in range(runs):
                for k, i in enumerate(indices):
                    x = inputs[i]
                    start = clock()
                    forward(x)
                    times[k].append(clock() - start)
        cpu_after = _cpu_jiffies()
        cpu = None
        if cpu_before is not None and cpu_after is not None:
            cpu = [cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]]
        return {"times_s": times, "cpu_steal": cpu}

    def stats(self) -> dict[str, Any]:
        return {"peak_rss": peak_rss_bytes(), "rss": rss_bytes(), "peak_reset": self.peak_reset}

    def profile(self, indices: list[int], runs: int) -> dict[str, Any]:
        from albert_edge.profiling import profile_program

        inputs = [self.inputs[i] for i in indices]
        return {"profile": profile_program(self.source, inputs, runs=runs, num_threads=self.threads)}


def main() -> None:
    from albert_edge._procs import die_with_parent

    die_with_parent(int(os.environ.get("ALBERT_EDGE_PARENT_PID", os.getppid())))  # no orphan if the harness dies
    # The protocol owns the original stdout; anything native code prints goes to stderr.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    # Import everything a load needs before the parent times it; then say so (the first reply).
    import torch  # noqa: F401

    if sys.argv[1:] == ["pte"]:
        from executorch.runtime import Runtime

        from albert_edge.quantize import register_quantized_ops
        from albert_edge.runtime import Program  # noqa: F401

        register_quantized_ops()
        Runtime.get()
    else:
        from albert_edge.checkpoint import load_model  # noqa: F401
    reply({"ok": True, "ready": True})
    worker = Worker(reply)
    for line in sys.stdin:
        command = json.loads(line)
        name = command.pop("cmd")
        if name == "exit":
            reply({"ok": True})
            return
        try:
            result = getattr(worker, name)(**command)
        except Exception as err:  # reported to the parent, which raises with this worker named
            reply({"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()})
            continue
        reply({"ok": True, **result})


if __name__ == "__main__":
    main()
