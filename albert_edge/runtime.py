"""Running exported programs and bundles in Python, over ``executorch.runtime``.

``Program`` loads one ``.pte`` and checks every input before the ExecuTorch runtime sees it: the
runtime rejects a wrong dtype, a wrong static shape or an out-of-range token id with an
unreadable ``error 0x12`` (or reads out of bounds), so the checks here say which input, which
position and which value is wrong, and what would be accepted. The bounds come from the constant
methods every albert-edge program carries (``get_max_seq_len``, ``get_min_seq_len``,
``get_vocab_size``, ``get_type_vocab_size``; see ``lowering.program_constants``).

``Bundle`` loads a bundle folder (see ``bundle_format`` and ``export/BUNDLE.md``): it validates the
manifest, verifies every file's size and sha256 before loading anything, loads the tokenizer and
the programs, classifies texts, and replays the golden cases.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import os
import struct
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from albert_edge._machine import THREADS_PER_CPU, max_threads
from albert_edge._quiet import native_stderr, quiet_libraries
from albert_edge.backend_options import set_weight_cache
from albert_edge.bundle_format import (
    MANIFEST_FILE,
    QA_TASK,
    exit_settings,
    golden_values,
    qa_settings,
    read_goldens,
    read_manifest,
    tokenizer_from_manifest,
    verify_files,
)
from albert_edge.config import INPUT_NAMES
from albert_edge.datasets import text_list
from albert_edge.errors import BundleError, ExitError, ProgramError, RuntimeInputError
from albert_edge.exit_rules import ExitRule
from albert_edge.qa import QASettings, answer_windows, decode_answers, make_windows
from albert_edge.quantize import register_quantized_ops
from albert_edge.tokenizer import AlbertTokenizer, Encoding

log = logging.getLogger(__name__)
quiet_libraries()  # before anything here imports ExecuTorch

BOUND_METHODS = ("get_max_seq_len", "get_min_seq_len", "get_vocab_size", "get_type_vocab_size")

# A .pte starts with a 4-byte flatbuffer root offset, then the file identifier "ET" + 2 digits,
# then (optionally) the extended header "eh00": u32 length, u64 program size, u64 segment base
# offset, u64 segment data size (little-endian). The last two give the expected file size.
_PTE_IDENTIFIER = b"ET"
_EXTENDED_HEADER = b"eh00"

# Every Program alive in this process (see set_num_threads).
_LIVE_PROGRAMS: "weakref.WeakSet[Program]" = weakref.WeakSet()




def set_num_threads(n: int) -> None:
    """Size ExecuTorch's CPU threadpool (shared by every program in the process) to ``n`` threads.

    Call it before loading programs (or pass ``num_threads`` to ``Program`` / ``Bundle.load``):
    XNNPACK keeps the pool it ran with, and resizing it under a loaded program crashes the
    process, so while any ``Program`` is alive only the current size is accepted.
    """
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise RuntimeInputError(f"num_threads must be a positive integer, got {n!r}")
    if n > max_threads():
        raise RuntimeInputError(
            f"num_threads={n}: accepted: 1 to {max_threads()} ({THREADS_PER_CPU} per CPU this process may use); "
            "more threads than CPUs only contend, and thousands exhaust the process's thread limit")
    if n == get_num_threads():
        log.info("ExecuTorch threadpool: %d thread(s)", n)
        return
    gc.collect()  # programs no longer referenced must not count as loaded
    if _LIVE_PROGRAMS:
        raise RuntimeInputError(
            f"num_threads={n}: ExecuTorch's threadpool has {get_num_threads()} threads and "
            f"{len(_LIVE_PROGRAMS)} program(s) are loaded; set the thread count before loading any "
            "program (Program(..., num_threads=n), Bundle.load(..., num_threads=n), --threads): "
            "resizing the pool under a loaded XNNPACK program crashes the process"
        )
    with native_stderr("resizing ExecuTorch's thread pool"):
        _unsafe_reset_threadpool(n)
    log.info("ExecuTorch threadpool: %d thread(s)", n)


def get_num_threads() -> int:
    """Threads in ExecuTorch's CPU threadpool."""
    from executorch.extension.pybindings.portable_lib import (
        _threadpool_get_thread_count,
    )

    with native_stderr("starting ExecuTorch's thread pool"):  # cpuinfo's C++ log lines
        return int(_threadpool_get_thread_count())


def pte_layout(head: bytes) -> tuple[int, int, int] | None:
    """(program size, segment base offset, segment data size) from a ``.pte``'s extended header
    (its first 40 bytes), or None when it has none. The segments hold the weights and delegate
    payloads, so the segment size is the program's parameter bytes."""
    if head[8:12] != _EXTENDED_HEADER or len(head) < 32:
        return None
    length, program_size, segment_base = struct.unpack_from("<IQQ", head, 12)
    segment_size = struct.unpack_from("<Q", head, 32)[0] if length > 24 and len(head) >= 40 else 0
    return program_size, segment_base, segment_size


def check_pte_header(head: bytes, size: int, source: str) -> None:
    """Refuse what is not a whole ``.pte`` before the runtime reads it.

    head: the file's first 40 (or more) bytes; size: its length in bytes; source: for messages.
    """
    if size < 8 or head[4:6] != _PTE_IDENTIFIER:
        found = head[4:8] if size >= 8 else head
        raise ProgramError(
            f"{source}: not an ExecuTorch program (.pte): bytes 4..8 are {found!r}, expected the "
            f"file identifier b'ET..' (e.g. b'ET12'); export it with `albert-edge export`"
        )
    layout = pte_layout(head)
    if layout is None:
        return
    program_size, segment_base, segment_size = layout
    expected = segment_base + segment_size if segment_size else program_size
    if size < expected:
        raise ProgramError(
            f"{source}: truncated: its header says {expected} bytes, the file has {size}; "
            "copy it again or re-export it"
        )


def _as_int64_tensor(value: Any, name: str, where: str) -> Tensor:
    """A tensor from a tensor, numpy array or nested lists, with the dtype checked (not converted)."""
    if isinstance(value, Tensor):
        t = value
    elif isinstance(value, (list, tuple)):
        try:
            t = torch.tensor(value) if len(value) else torch.zeros((0,), dtype=torch.int64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise RuntimeInputError(
                f"{where}{name}: nested lists must be rectangular and hold only integers ({err})"
            ) from None
    elif hasattr(value, "__array__") and not isinstance(value, (str, bytes)):  # numpy arrays
        t = torch.as_tensor(value)
    else:
        raise RuntimeInputError(
            f"{where}{name} must be a torch.Tensor, a numpy array or nested lists of ints of shape (1, S), "
            f"got {type(value).__name__}"
        )
    if t.device.type != "cpu":
        raise RuntimeInputError(f"{where}{name} is on {t.device}; programs take CPU tensors: pass {name}.cpu()")
    if t.dtype != torch.int64:
        raise RuntimeInputError(
            f"{where}{name} has dtype {t.dtype}; programs take int64 (torch.long) inputs: "
            f"convert with .long()"
        )
    return t


class Program:
    """One loaded ``.pte``: ``run(input_ids, attention_mask, token_type_ids) -> outputs``.

    source: a path to a ``.pte`` (the runtime maps the file) or its bytes (held while the
    program lives). num_threads: if given, resizes ExecuTorch's threadpool (process-wide, see
    ``set_num_threads``). name: used in messages (default: the file name, or ``<bytes>``);
    output_names: the outputs' names, for messages (a bundle's manifest gives them).
    weight_cache: load with XNNPACK's packed-weights cache (default): ALBERT's shared layer is
    then packed once, not once per layer step (albert-base-v2 int8: about +19 MB instead of
    +98 MB), and programs loaded in one process share packed weights they have in common;
    outputs are bitwise the same. False packs per operator, as the Linux wheel does by default
    (for comparisons). The option is process-wide and read when the program is loaded; if it
    cannot be set, a warning says why and the program loads without it (``self.weight_cache``
    says which).

    Attributes read from the program's constant methods: ``max_seq_len``, ``min_seq_len``,
    ``vocab_size``, ``type_vocab_size``; ``dynamic`` is True when more than one length is taken.
    """

    def __init__(self, source: str | os.PathLike | bytes, *, num_threads: int | None = None,
                 name: str | None = None, weight_cache: bool = True,
                 output_names: Sequence[str] = ()) -> None:
        from executorch.extension.pybindings import portable_lib as et

        self.output_names = tuple(output_names)
        self._data: bytes | None = None  # a program loaded from bytes reads them for its lifetime
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._data = bytes(source)
            self.name = name or "<bytes>"
            check_pte_header(self._data[:64], len(self._data), self.name)
        else:
            path = Path(source)
            self.name = name or str(path)
            if not path.is_file():
                raise ProgramError(f"{path}: no such .pte file")
            with open(path, "rb") as f:
                head = f.read(64)
            check_pte_header(head, path.stat().st_size, self.name)
        if num_threads is not None:
            set_num_threads(num_threads)
        # Programs with int8/int4 embeddings call ExecuTorch's quantized kernels; registering
        # them is cheap and harmless for programs that do not.
        register_quantized_ops()
        with native_stderr(f"loading {self.name}"):  # ExecuTorch's C++ log lines: shown on failure or with -v
            self._load(et, None if self._data is not None else path, weight_cache)

    def _load(self, et: Any, path: Path | None, weight_cache: bool) -> None:
        """Load the program (from ``path``, else from ``self._data``), read its bounds, load forward."""
        verification = et.Verification.InternalConsistency
        try:
            # From a path the runtime maps the file: no Python copy of its 10-50 MB.
            self._program = (et._load_program_from_buffer(self._data, program_verification=verification)
                             if path is None
                             else et._load_program(str(path), program_verification=verification))
        except RuntimeError as err:
            raise ProgramError(
                f"{self.name}: ExecuTorch could not load this program ({err}); the file is corrupt "
                "or was written by another ExecuTorch version: re-export it"
            ) from None
        methods = {self._program.get_method_name(i) for i in range(self._program.num_methods())}
        missing = [m for m in ("forward", *BOUND_METHODS) if m not in methods]
        if missing:
            raise ProgramError(
                f"{self.name}: not an albert-edge program: it has no method(s) {', '.join(missing)} "
                f"(it has {', '.join(sorted(methods))}); export it with `albert-edge export`"
            )
        _LIVE_PROGRAMS.add(self)
        bounds = {m: self._constant(m) for m in BOUND_METHODS}
        self.max_seq_len: int = bounds["get_max_seq_len"]
        self.min_seq_len: int = bounds["get_min_seq_len"]
        self.vocab_size: int = bounds["get_vocab_size"]
        self.type_vocab_size: int = bounds["get_type_vocab_size"]
        # XNNPACK reads the option when the method is loaded (see backend_options): with the cache,
        # the shared layer is packed once instead of once per layer step. self.weight_cache: whether
        # this program was loaded with it.
        if weight_cache:
            self.weight_cache = set_weight_cache(True)
        else:
            set_weight_cache(False)
            self.weight_cache = False
        try:
            self._forward = self._program.load_method("forward")
            meta = self._program.method_meta("forward")
        except RuntimeError as err:
            raise ProgramError(f"{self.name}: ExecuTorch could not load method 'forward' ({err})") from None
        # The outputs' shapes at the longest input (dynamic dimensions at their upper bound).
        self.output_shapes: list[tuple[int, ...]] = [tuple(meta.output_tensor_meta(i).sizes())
                                                     for i in range(meta.num_outputs())]
        # ScalarType names as the manifest writes them ("float32").
        self.output_dtypes: list[str] = [_dtype_name(meta.output_tensor_meta(i).dtype())
                                         for i in range(meta.num_outputs())]
        self._load_loop(methods)

    def _load_loop(self, methods: set[str]) -> None:
        """An adaptive program's loop methods (``adaptive.export_adaptive_program``): embed,
        layer and exit_1..exit_L; ``num_steps`` is None for a plain program."""
        self.num_steps: int | None = None
        if "get_num_steps" not in methods:
            return
        steps = self._constant("get_num_steps")
        needed = ["embed", "layer", *(f"exit_{k}" for k in range(1, steps + 1))]
        missing = [m for m in needed if m not in methods]
        if steps < 1 or missing:
            raise ProgramError(f"{self.name}: an adaptive program of {steps} layer steps lacks method(s) "
                               f"{', '.join(missing) or 'exit_1'}; re-export it")
        # One call per step where the program has the fused methods (first_step: embed, layer
        # and exit_1; step_k: layer and exit_k); only those are loaded then (each loaded method
        # holds its own planned memory). Loaded at the loop's first use: a caller that only runs
        # ``forward`` does not pay for them.
        fused = ["first_step", *(f"step_{k}" for k in range(2, steps + 1))]
        self._loop_names = fused if set(fused) <= methods else needed
        self._loop_methods: list[Any] | None = None
        self.num_steps = steps

    @property
    def fused_steps(self) -> bool:
        """Whether the loop runs the fused step methods (one call per step)."""
        return self._loop_names[0] == "first_step"

    def _loop_loaded(self) -> list[Any]:
        if self._loop_methods is None:
            try:
                self._loop_methods = [self._program.load_method(m) for m in self._loop_names]
            except RuntimeError as err:
                raise ProgramError(f"{self.name}: ExecuTorch could not load the loop's methods ({err})") from None
        return self._loop_methods

    def _constant(self, method: str) -> int:
        try:
            (value,) = self._program.load_method(method)([])
        except (RuntimeError, ValueError) as err:
            raise ProgramError(f"{self.name}: could not read constant method {method} ({err})") from None
        return int(value)

    @property
    def dynamic(self) -> bool:
        return self.min_seq_len < self.max_seq_len

    def __repr__(self) -> str:
        lengths = f"{self.min_seq_len}..{self.max_seq_len}" if self.dynamic else str(self.max_seq_len)
        return f"Program({self.name!r}, seq_len={lengths}, vocab_size={self.vocab_size})"

    def check_inputs(
        self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Validate and return the three int64 (1, S) tensors (defaults: mask of ones, types 0).

        Raises RuntimeInputError naming the input, the position and the value at fault.
        """
        where = f"{self.name}: "
        ids = _as_int64_tensor(input_ids, "input_ids", where)
        self._check_shape(ids, where)
        S = ids.shape[1]
        # numpy, not torch ops, for the defaults and the range checks below: the same checks,
        # without paging several MB of torch's kernels into the caller's process.
        mask = (torch.from_numpy(np.ones((1, S), np.int64)) if attention_mask is None
                else _as_int64_tensor(attention_mask, "attention_mask", where))
        types = (torch.from_numpy(np.zeros((1, S), np.int64)) if token_type_ids is None
                 else _as_int64_tensor(token_type_ids, "token_type_ids", where))
        for name, t in (("attention_mask", mask), ("token_type_ids", types)):
            if tuple(t.shape) != (1, S):
                raise RuntimeInputError(
                    f"{where}{name} has shape {tuple(t.shape)} but input_ids has {(1, S)}; they must match"
                )
        _check_range(ids, "input_ids", 0, self.vocab_size, where,
                     f"the vocabulary [0, {self.vocab_size}); the tokenizer and the program must come "
                     "from the same model")
        _check_range(mask, "attention_mask", 0, 2, where, "{0, 1} (0 = padding, 1 = token)")
        _check_range(types, "token_type_ids", 0, self.type_vocab_size, where,
                     f"[0, type_vocab_size={self.type_vocab_size}) (0 = first segment, 1 = second)")
        return ids.contiguous(), mask.contiguous(), types.contiguous()

    def _check_shape(self, ids: Tensor, where: str) -> None:
        shape = tuple(ids.shape)
        if ids.dim() != 2:
            raise RuntimeInputError(
                f"{where}input_ids has shape {shape}; programs take shape (1, S): one sequence of S "
                "token ids (wrap a single sequence as [ids])"
            )
        B, S = shape
        if B == 0:
            raise RuntimeInputError(
                f"{where}input_ids is an empty batch (shape {shape}); pass exactly one sequence, shape (1, S)"
            )
        if B != 1:
            raise RuntimeInputError(
                f"{where}input_ids has a batch of {B} (shape {shape}); programs take one sequence at "
                "a time, shape (1, S): run each row separately"
            )
        if S == 0:
            raise RuntimeInputError(
                f"{where}input_ids is empty (shape {shape}); a sequence needs at least "
                f"{self.min_seq_len} token(s) (an encoded text has at least [CLS] and [SEP])"
            )
        if not self.dynamic and S != self.max_seq_len:
            raise RuntimeInputError(
                f"{where}input_ids has {S} tokens; this program was exported with a fixed length of "
                f"{self.max_seq_len} (--fixed-length) and takes exactly {self.max_seq_len}: pad to it "
                f"(tokenizer.encode(..., max_length={self.max_seq_len}, padding='max_length')) or "
                "re-export without --fixed-length"
            )
        if S > self.max_seq_len:
            raise RuntimeInputError(
                f"{where}input_ids has {S} tokens; this program takes at most max_seq_len="
                f"{self.max_seq_len}: truncate the input (tokenizer.encode(..., max_length="
                f"{self.max_seq_len})) or re-export with --max-seq-len {S}"
            )
        if S < self.min_seq_len:
            raise RuntimeInputError(
                f"{where}input_ids has {S} tokens; this program takes at least {self.min_seq_len}"
            )

    def run(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> tuple[Tensor, ...]:
        """Run ``forward`` on int64 (1, S) inputs (tensors or nested lists); returns its float outputs.

        attention_mask defaults to all ones, token_type_ids to all zeros. Every input is checked
        first (``check_inputs``); a RuntimeInputError says what is wrong. Outputs holding NaN or
        inf raise ProgramError naming the output.
        """
        outputs = self.run_checked(self.check_inputs(input_ids, attention_mask, token_type_ids))
        for i, t in enumerate(outputs):
            if isinstance(t, Tensor) and t.is_floating_point():
                finite = np.isfinite(t.numpy())  # numpy: no torch thread team for a large output
                if not finite.all():
                    name = self.output_names[i] if i < len(self.output_names) else f"output {i}"
                    raise ProgramError(
                        f"{self.name}: forward's {name} holds {int(finite.size - finite.sum())} non-finite "
                        f"value(s) (NaN or inf) of {finite.size}: the program's weights are not finite or its "
                        "arithmetic overflowed; re-export it from a checkpoint with finite weights"
                    )
        return outputs

    def run_checked(self, inputs: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, ...]:
        """``forward`` on inputs that ``check_inputs`` returned, without checking them again: the
        call a timing loop measures (the checks cost tens of microseconds per call).

        The outputs are this call's own tensors. ExecuTorch's pybinding would copy them out of
        the method's memory with a torch op, which for a large output (hidden states, token or
        vocabulary logits: above torch's grain of 32,768 elements) wakes torch's OpenMP team,
        whose threads then spin on the cores XNNPACK runs on (+35% latency for albert-base's
        hidden states at 2 threads). numpy copies them here instead, on this thread only.
        """
        outputs = self._forward(list(inputs), clone_outputs=False)
        return tuple(torch.from_numpy(t.numpy().copy()) if isinstance(t, Tensor) else t for t in outputs)

    # ---- the adaptive loop (adaptive.export_adaptive_program): steps until the exit rule stops ----

    def _loop_check(self) -> int:
        if self.num_steps is None:
            raise ProgramError(f"{self.name}: not an adaptive program (it has no exit heads); export a model "
                               "with exits.safetensors (`albert-edge finetune --exits`) to get one")
        return self.num_steps

    def run_steps(self, inputs: tuple[Tensor, Tensor, Tensor], depth: int | None = None) -> list[Tensor]:
        """Checked inputs -> the logits (1, num_labels) of every exit up to ``depth`` (default: all);
        the last step's are ``forward``'s (bit for bit in fp32)."""
        rows: list[Tensor] = []

        def stop(logits: Tensor, k: int) -> bool:
            rows.append(torch.from_numpy(logits.numpy().copy()))
            return k == depth

        self._loop(inputs, stop)
        return rows

    def run_adaptive(self, inputs: tuple[Tensor, Tensor, Tensor], rule: ExitRule) -> tuple[Tensor, int]:
        """Checked inputs -> (logits (1, num_labels) of the step that stopped under ``rule``, that step)."""
        rows: list[list[float]] = []

        def stop(logits: Tensor, k: int) -> bool:
            rows.append(logits.tolist()[0])  # float32 values as Python floats: exact
            return rule.stops(rows)

        depth = self._loop(inputs, stop)
        return torch.tensor(rows[-1:], dtype=torch.float32), depth

    def _loop(self, inputs: tuple[Tensor, Tensor, Tensor], stop: Any) -> int:
        """Run steps until ``stop(logits, k)`` is true or the last step; -> that step. ``logits``
        (1, num_labels) is the method's own output, valid only during the call: ``stop`` copies
        what it keeps (the loop runs between program calls, so it copies nothing it need not)."""
        steps = self._loop_check()
        ids, mask, types = inputs
        methods = self._loop_loaded()
        if self.fused_steps:
            # Each step is its own method with its own memory, so step k's hidden state feeds
            # step k + 1 uncopied; it stays valid until step k runs again (the next input).
            h, logits = methods[0]([ids, mask, types], clone_outputs=False)
            k = 1
            while not (stop(logits, k) or k == steps):
                k += 1
                h, logits = methods[k - 1]([h, mask], clone_outputs=False)
            return k
        embed, layer, exits = methods[0], methods[1], methods[2:]
        h = _copy_out(embed([ids, types], clone_outputs=False))
        for k in range(1, steps + 1):
            h = _copy_out(layer([h, mask], clone_outputs=False))
            if stop(exits[k - 1]([h], clone_outputs=False)[0], k) or k == steps:
                return k
        raise AssertionError("unreachable")


def _copy_out(outputs: Sequence[Any]) -> Tensor:
    return torch.from_numpy(outputs[0].numpy().copy())


def _check_range(t: Tensor, name: str, lo: int, hi: int, where: str, accepted: str) -> None:
    a = t.numpy()  # CPU int64, as _as_int64_tensor made sure
    bad = np.argwhere((a < lo) | (a >= hi))
    if len(bad):
        b, s = (int(i) for i in bad[0])
        raise RuntimeInputError(
            f"{where}{name}[{b}, {s}] = {int(a[b, s])} is outside {accepted}"
            + (f" ({len(bad)} values out of range in all)" if len(bad) > 1 else "")
        )


@dataclass
class GoldenCheck:
    """How one program's outputs compare with a bundle's golden expectations."""

    program: str
    cases: int
    max_abs_diff: float
    atol: float
    token_id_mismatches: list[int]  # cases whose ids the tokenizer no longer gives (QA cases numbered after the text ones)
    # QA cases (numbered after the text ones) whose golden answers are not what this program's
    # golden logits decode to under the manifest's QA settings, as an app decodes them
    answer_mismatches: list[int] = dataclasses.field(default_factory=list)
    # text cases where the adaptive loop under the manifest's exit rule stops at another depth
    # than goldens.json records
    depth_mismatches: list[int] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.max_abs_diff <= self.atol and not self.token_id_mismatches and not self.answer_mismatches
                and not self.depth_mismatches)


class Bundle:
    """A loaded bundle: manifest, tokenizer, and programs by name (see ``Bundle.load``)."""

    def __init__(self, path: Path, manifest: dict[str, Any], programs: dict[str, Program],
                 tokenizer: AlbertTokenizer | None) -> None:
        self.path = path
        self.manifest = manifest
        self.programs = programs
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, path: str | os.PathLike, *, num_threads: int | None = None,
             weight_cache: bool = True) -> "Bundle":
        """Read and validate ``manifest.json``, verify every file's size and sha256, then load.

        weight_cache: load the programs with XNNPACK's packed-weights cache (see ``Program``);
        a bundle's programs then also share the packed copy of any weight they have in common.

        Raises BundleError (manifest, files, hashes) or ProgramError (a program that will not load).
        """
        root = Path(path)
        manifest = read_manifest(root)
        verify_files(root, manifest)
        if num_threads is not None:
            set_num_threads(num_threads)
        tokenizer = tokenizer_from_manifest(root, manifest)
        programs: dict[str, Program] = {}
        adaptive = exit_settings(manifest)
        for entry in manifest["programs"]:
            program = Program(root / entry["file"], name=str(root / entry["file"]), weight_cache=weight_cache,
                              output_names=[o["name"] for o in entry["outputs"]])
            _check_program_matches(program, entry, manifest, root)
            if adaptive is not None and program.num_steps != adaptive[0]:
                has = "no loop methods" if program.num_steps is None else f"{program.num_steps} layer steps"
                raise BundleError(f"{root / entry['file']}: manifest.json adaptive says {adaptive[0]} layer steps, but "
                                  f"the program has {has}; the files do not belong together: re-export the bundle")
            programs[entry["name"]] = program
        bundle = cls(root, manifest, programs, tokenizer)
        if tokenizer is not None and manifest["goldens"] is not None:
            # The manifest's tokenizer settings are covered by no hash: tie them to the goldens.
            goldens = read_goldens(root, manifest)
            cases = goldens["cases"]
            differ = bundle.token_id_mismatches(cases)
            if differ:
                case = cases[differ[0]]
                more = f" and {len(differ) - 1} more" if len(differ) > 1 else ""
                raise BundleError(
                    f"{root}: token ids differ for case {differ[0]} ({case['text']!r}){more}: the tokenizer "
                    f"as manifest.json sets it up (do_lower_case={tokenizer.do_lower_case}, keep_accents="
                    f"{tokenizer.keep_accents}, split_digit_comma={tokenizer.split_digit_comma}, "
                    f"split_user_defined={tokenizer.split_user_defined}) does not "
                    f"reproduce goldens.json; manifest.json or {manifest['tokenizer']['file']} was changed: "
                    "restore them or re-export the bundle"
                )
            qa_cases = goldens.get("qa_cases", [])
            windows = bundle._qa_window_mismatches(qa_cases, 0)
            answers = sorted({k for name in programs for k in bundle._qa_answer_mismatches(name, qa_cases, 0)})
            if windows or answers:
                what = "windows (token ids, offsets or words)" if windows else "golden answers"
                k = (windows or answers)[0]
                raise BundleError(
                    f"{root}: the {what} of QA golden case {k} ({qa_cases[k]['question']!r}) are not what this bundle "
                    f"gives with manifest.json's qa settings ({json.dumps(manifest['qa'])}): manifest.json or "
                    "goldens.json was edited; restore them or re-export the bundle")
        log.info("loaded bundle %s: programs %s", root, ", ".join(programs))
        return bundle

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def max_seq_len(self) -> int:
        return int(self.manifest["max_seq_len"])

    @property
    def default_program(self) -> str:
        return self.manifest.get("default_program") or next(iter(self.programs))

    def program(self, name: str | None = None) -> Program:
        """The program called ``name`` (default: the manifest's ``default_program``)."""
        name = name or self.default_program
        if name not in self.programs:
            raise BundleError(
                f"{self.path}: no program {name!r} in this bundle; it has {', '.join(self.programs)}"
            )
        return self.programs[name]

    def encode(
        self, text: str, text_pair: str | None = None, program: str | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Tokenize like the bundle's goldens: truncated to max_seq_len, padded to it only for a
        fixed-length program. -> (input_ids, attention_mask, token_type_ids), int64 (1, S)."""
        if self.tokenizer is None:
            raise BundleError(
                f"{self.path}: this bundle has no tokenizer (manifest.json tokenizer is null); "
                "run its programs on token ids, or re-export with --tokenizer"
            )
        prog = self.program(program)
        enc = self.tokenizer.encode(text, text_pair, max_length=self.max_seq_len,
                                    padding="do_not_pad" if prog.dynamic else "max_length")
        ids, mask, types = (torch.tensor([getattr(enc, n)], dtype=torch.int64) for n in INPUT_NAMES)
        return ids, mask, types

    @property
    def exit_rule(self) -> ExitRule | None:
        """The exit rule of a bundle with early exits (manifest ``adaptive``); None without."""
        adaptive = exit_settings(self.manifest, str(self.path / MANIFEST_FILE))
        return None if adaptive is None else adaptive[1]

    def classify(self, texts: Sequence[str] | str, program: str | None = None, *,
                 rule: ExitRule | str | None = None, full_depth: bool = False) -> list[dict[str, Any]]:
        """Label each text: ``[{"text", "label", "probs": {label: probability}}]``.

        probs is the softmax of the program's logits (float (1, num_labels)). Only for
        sequence-classification bundles with a tokenizer and at least two labels.

        A bundle with early exits (``exit_rule`` not None) runs each text through the adaptive
        loop, stopping where ``rule`` says (default: the manifest's; ``confidence=0.95`` style
        text accepted), and each result also has ``depth``, the layer steps it ran; with
        ``full_depth`` it runs ``forward`` (depth = every step).
        """
        if self.task != "sequence-classification":
            hint = ("answer questions with bundle.answer or `albert-edge ask`" if self.task == QA_TASK
                    else "run its programs directly with bundle.programs[name].run")
            raise BundleError(
                f"{self.path}: classify needs a sequence-classification bundle; this bundle's task "
                f"is {self.task!r} ({hint})"
            )
        if len(self.labels) < 2:
            raise BundleError(
                f"{self.path}: this classifier has one output ({self.labels[0]!r}), a regression "
                "score: use bundle.programs[name].run for the raw value"
            )
        texts = text_list(texts)
        prog = self.program(program)
        if isinstance(rule, str):
            try:
                rule = ExitRule.parse(rule)
            except ExitError as e:
                raise BundleError(str(e)) from None
        recorded = self.exit_rule
        if rule is not None and recorded is None:
            raise BundleError(f"{self.path}: an exit rule ({rule.label}) was given, but this bundle has no early exits "
                              "(manifest.json has no adaptive); export a model with exits.safetensors")
        adaptive = recorded is not None and not full_depth
        rule = rule or recorded
        results = []
        for text in texts:
            if adaptive:
                inputs = prog.check_inputs(*self.encode(text, program=program))
                logits, depth = prog.run_adaptive(inputs, rule)  # type: ignore[arg-type]
                if not np.isfinite(logits.numpy()).all():
                    raise ProgramError(f"{prog.name}: the logits for {text[:40]!r} at layer step {depth} are not finite")
            else:
                (logits,) = prog.run(*self.encode(text, program=program))[:1]
                depth = prog.num_steps
            probs = torch.softmax(logits[0].double(), dim=-1).tolist()  # (num_labels,)
            best = max(range(len(probs)), key=probs.__getitem__)
            result = {"text": text, "label": self.labels[best], "probs": dict(zip(self.labels, probs))}
            if recorded is not None:
                result["depth"] = depth
            results.append(result)
        return results

    @property
    def qa_settings(self) -> QASettings:
        """How this question-answering bundle makes windows and answers (manifest ``qa``)."""
        if self.task != QA_TASK:
            raise BundleError(
                f"{self.path}: this bundle's task is {self.task!r}, not {QA_TASK!r}: it has no QA settings"
            )
        return qa_settings(self.manifest, str(self.path / MANIFEST_FILE))

    def answer(
        self, question: str, context: str, top_k: int = 1, program: str | None = None
    ) -> list[dict[str, Any]]:
        """Answer ``question`` from ``context``: ``[{"answer", "start", "end", "score"}]``, best
        first, at most ``top_k``; ``context[start:end] == answer`` ("" with start = end = 0: no
        answer, when the bundle's no_answer_threshold allows it). See ``albert_edge.qa``."""
        if self.task != QA_TASK:
            raise BundleError(
                f"{self.path}: answer needs a {QA_TASK!r} bundle; this bundle's task is {self.task!r}"
                + (" (use classify)" if self.task == "sequence-classification" else "")
            )
        if self.tokenizer is None:
            raise BundleError(f"{self.path}: this bundle has no tokenizer (manifest.json tokenizer is null)")
        return program_answers(self.program(program), self.tokenizer, self.qa_settings, question, context,
                               top_k)[2]

    def token_id_mismatches(self, cases: Sequence[dict[str, Any]]) -> list[int]:
        """Indices of the golden text cases whose token ids this bundle's tokenizer does not give."""
        if self.tokenizer is None:
            return []
        differ = []
        for i, case in enumerate(cases):
            if case.get("text") is not None:
                encoded = self.encode(case["text"], case.get("text_pair"))
                if any(t[0].tolist() != case[n] for t, n in zip(encoded, INPUT_NAMES)):
                    differ.append(i)
        return differ

    def check_goldens(self) -> list[GoldenCheck]:
        """Replay ``goldens.json`` through every program: max |output - expected| per program,
        against the bundle's tolerance, and whether the tokenizer still gives the golden ids."""
        goldens = read_goldens(self.path, self.manifest)
        cases, names = goldens["cases"], goldens["outputs"]
        qa_cases = goldens.get("qa_cases", [])
        mismatches = self.token_id_mismatches(cases) + self._qa_window_mismatches(qa_cases, len(cases))
        checks = []
        for pname, prog in self.programs.items():
            worst = 0.0
            for case in cases:
                outputs = prog.run(*(torch.tensor([case[n]], dtype=torch.int64) for n in INPUT_NAMES))
                if len(outputs) != len(names):
                    worst = math.inf
                for out, name in zip(outputs, names):
                    expected = case["programs"][pname][name]
                    got = golden_values(out, expected["stride"])
                    if list(out.shape) != expected["shape"] or len(got) != len(expected["values"]):
                        worst = math.inf
                        continue
                    diffs = (torch.tensor(got, dtype=torch.float64)
                             - torch.tensor(expected["values"], dtype=torch.float64)).abs()
                    if diffs.isnan().any():  # NaN compares false: count it as the worst diff
                        worst = math.inf
                    elif len(diffs):
                        worst = max(worst, float(diffs.max()))
            worst = max(worst, self._qa_golden_diff(prog, pname, qa_cases))
            step_diff, depths = self._adaptive_golden_diff(prog, pname, cases, goldens.get("adaptive_cases", []))
            checks.append(GoldenCheck(pname, len(cases) + len(qa_cases), max(worst, step_diff),
                                      goldens["tolerances"][pname]["atol"], mismatches,
                                      self._qa_answer_mismatches(pname, qa_cases, len(cases)), depths))
        return checks

    def _adaptive_golden_diff(self, prog: Program, pname: str, cases: Sequence[dict[str, Any]],
                              adaptive_cases: Sequence[dict[str, Any]]) -> tuple[float, list[int]]:
        """Every step's logits through the loop against the goldens (max |diff|), and the cases
        whose depth under the manifest's rule differs from the recorded one."""
        rule = self.exit_rule
        if rule is None or not adaptive_cases:
            return 0.0, []
        worst, differ = 0.0, []
        for i, (case, golden) in enumerate(zip(cases, adaptive_cases)):
            inputs = prog.check_inputs(*(torch.tensor([case[n]], dtype=torch.int64) for n in INPUT_NAMES))
            steps = prog.run_steps(inputs)
            expected = golden["programs"][pname]
            for got, want in zip(steps, expected["steps"]):
                d = np.abs(got[0].numpy().astype(np.float64) - np.asarray(want, np.float64))
                worst = math.inf if np.isnan(d).any() else max(worst, float(d.max()))
            if prog.run_adaptive(inputs, rule)[1] != expected["depth"]:
                differ.append(i)
        return worst, differ

    def _qa_answer_mismatches(self, pname: str, qa_cases: Sequence[dict[str, Any]], first: int) -> list[int]:
        """Indices (numbered after the text cases) of QA golden cases whose stored answers for
        ``pname`` are not what its stored logits decode to with this bundle's QA settings and
        the golden windows (offsets, words), which is what an app checks."""
        if not qa_cases or self.tokenizer is None:
            return []
        differ = []
        for k, case in enumerate(qa_cases):
            entry = case["programs"][pname]
            windows = [Encoding(input_ids=tuple(w["input_ids"]), token_type_ids=tuple(w["token_type_ids"]),
                                attention_mask=tuple(w["attention_mask"]),
                                offsets=tuple(tuple(o) for o in w.get("offsets", [])), tokens=("",) * len(w["input_ids"]),
                                word_ids=tuple(w.get("word_ids", [])), sequence_ids=tuple(w.get("sequence_ids", [])))
                       for w in case["windows"]]
            try:
                answers = decode_answers(windows, [np.asarray(x, np.float32) for x in entry["start_logits"]],
                                         [np.asarray(x, np.float32) for x in entry["end_logits"]], case["context"],
                                         self.qa_settings, self.tokenizer.cls_id, case.get("top_k", 1))
            except (IndexError, ValueError, TypeError):
                differ.append(first + k)
                continue
            stored = entry["answers"]
            same = len(answers) == len(stored) and all(
                isinstance(b, dict) and (a["answer"], a["start"], a["end"]) == (b.get("answer"), b.get("start"), b.get("end"))
                and isinstance(b.get("score"), (int, float)) and abs(a["score"] - b["score"]) <= 1e-5
                for a, b in zip(answers, stored))
            if not same:
                differ.append(first + k)
        return differ

    def _qa_window_mismatches(self, qa_cases: Sequence[dict[str, Any]], first: int) -> list[int]:
        """Indices (numbered after the text cases) of QA golden cases whose windows differ: token
        ids, offsets, words or sequence ids (each window's real tokens: golden windows of a
        fixed-length bundle are padded)."""
        if not qa_cases or self.tokenizer is None:
            return []
        settings = self.qa_settings
        differ = []
        for k, case in enumerate(qa_cases):
            windows = make_windows(self.tokenizer, case["question"], case["context"], settings)
            got = [(list(w.input_ids), [list(o) for o in w.offsets], list(w.word_ids), list(w.sequence_ids))
                   for w in windows]
            want = []
            for w in case["windows"]:
                n = sum(w["attention_mask"])
                want.append((w["input_ids"][:n], [list(o) for o in w.get("offsets", [])][:n],
                             list(w.get("word_ids", []))[:n], list(w.get("sequence_ids", []))[:n]))
            if got != want:
                differ.append(first + k)
        return differ

    def _qa_golden_diff(self, prog: Program, pname: str, qa_cases: Sequence[dict[str, Any]]) -> float:
        """Largest |logit - golden logit| of ``prog`` over the QA golden cases' windows."""
        worst = 0.0
        for case in qa_cases:
            expected = case["programs"][pname]
            for w, start, end in zip(case["windows"], expected["start_logits"], expected["end_logits"]):
                got = prog.run(*(torch.tensor([w[n]], dtype=torch.int64) for n in INPUT_NAMES))[:2]
                for out, want in zip(got, (start, end)):
                    if out.numel() != len(want):
                        return math.inf
                    diff = float(np.abs(out[0].numpy().astype(np.float64) - np.asarray(want, np.float64)).max())
                    worst = math.inf if math.isnan(diff) else max(worst, diff)
        return worst


_SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                 7: "float64", 11: "bool", 15: "bfloat16"}  # c10::ScalarType codes


def _dtype_name(scalar_type: Any) -> str:
    """ExecuTorch's ScalarType (its code, or an enum member) as the manifest's dtype name."""
    code = getattr(scalar_type, "value", scalar_type)
    return _SCALAR_TYPES.get(int(code), f"scalar type {int(code)}")


def _check_program_matches(program: Program, entry: dict[str, Any], manifest: dict[str, Any], root: Path) -> None:
    """The program's own bounds and outputs must be what the manifest promises the app."""
    ids = entry["inputs"][0]
    pairs = [
        ("max_seq_len", program.max_seq_len, manifest["max_seq_len"]),
        ("min_seq_len", program.min_seq_len, ids["min_seq_len"]),
        ("vocab_size", program.vocab_size, manifest["vocab_size"]),
        ("type_vocab_size", program.type_vocab_size, manifest["type_vocab_size"]),
    ]
    for field_name, actual, promised in pairs:
        if actual != promised:
            raise BundleError(
                f"{root / entry['file']}: the program's {field_name} is {actual} but manifest.json "
                f"says {promised}; the manifest and the program do not belong together: re-export"
            )
    if len(program.output_shapes) != len(entry["outputs"]):
        raise BundleError(f"{root / entry['file']}: the program has {len(program.output_shapes)} output(s) but "
                          f"manifest.json names {len(entry['outputs'])}: re-export")
    for j, (out, shape, dtype) in enumerate(zip(entry["outputs"], program.output_shapes, program.output_dtypes)):
        promised = [program.max_seq_len if d == "seq" else d for d in out["shape"]]
        if list(shape) != promised or dtype != out["dtype"]:
            raise BundleError(f"{root / entry['file']}: output {j} ({out['name']}) is {dtype} {list(shape)} at the "
                              f"longest input but manifest.json says {out['dtype']} {out['shape']} (\"seq\" = "
                              f"{program.max_seq_len}); the manifest and the program do not belong together: re-export")
    labels = manifest["labels"]
    if manifest["task"] in ("sequence-classification", "token-classification"):
        width = program.output_shapes[0][-1]
        if width != len(labels):
            raise BundleError(
                f"{root / entry['file']}: the program gives {width} logits per prediction but manifest.json "
                f"labels names {len(labels)} ({', '.join(labels)}); every logit needs a label: restore "
                "the manifest or re-export"
            )


def program_answers(
    program: Program,
    tokenizer: AlbertTokenizer,
    settings: QASettings,
    question: str,
    context: str,
    top_k: int = 1,
) -> tuple[list[Encoding], list[tuple[np.ndarray, np.ndarray]], list[dict[str, Any]]]:
    """Windows of ``question`` over ``context`` (padded to max_seq_len for a fixed-length
    program), the program's (start, end) logits per window, and the decoded answers."""
    def run(w: Encoding) -> tuple[np.ndarray, np.ndarray]:
        start, end = program.run(*(torch.tensor([getattr(w, n)], dtype=torch.int64) for n in INPUT_NAMES))[:2]
        return start[0].numpy(), end[0].numpy()

    return answer_windows(tokenizer, run, question, context, settings, top_k,
                          pad_to=None if program.dynamic else program.max_seq_len)
