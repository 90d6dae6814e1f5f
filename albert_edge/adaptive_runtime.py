"""Running an adaptive-depth program: embed, then layer steps until the exit rule stops.

``AdaptiveProgram(path)`` loads a program written by ``adaptive.export_adaptive_program`` (a
``Program`` whose ``forward`` is full depth) and its loop methods. ``run_adaptive(inputs, rule)``
returns the logits of the step that stopped and the depth; ``run_steps(inputs)`` every step's
logits (to apply many rules to one pass, as ``compare`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from albert_edge.errors import ProgramError
from albert_edge.exits import ExitRule
from albert_edge.runtime import Program

LOOP_CONSTANTS = ("get_num_steps", "get_num_labels")


def _copy_out(outputs: Sequence[Any]) -> Tensor:
    # numpy, not torch, copies the method's output (see Program.run_checked)
    return torch.from_numpy(outputs[0].numpy().copy())


class AdaptiveProgram(Program):
    """A program with ``embed``, ``layer`` and ``exit_1..exit_L`` besides ``forward``."""

    def _load(self, et: Any, path: Any, weight_cache: bool) -> None:
        super()._load(et, path, weight_cache)
        methods = {self._program.get_method_name(i) for i in range(self._program.num_methods())}
        missing = [m for m in LOOP_CONSTANTS if m not in methods]
        if missing:
            raise ProgramError(f"{self.name}: not an adaptive program: no method(s) {', '.join(missing)}; "
                               "export it with exit heads (`albert-edge export` of a model with exits.safetensors)")
        self.num_steps: int = self._constant("get_num_steps")
        self.num_labels: int = self._constant("get_num_labels")
        needed = ["embed", "layer", *(f"exit_{k}" for k in range(1, self.num_steps + 1))]
        missing = [m for m in needed if m not in methods]
        if missing:
            raise ProgramError(f"{self.name}: adaptive program lacks method(s) {', '.join(missing)}")
        try:
            self._embed = self._program.load_method("embed")
            self._layer = self._program.load_method("layer")
            self._exits = [self._program.load_method(f"exit_{k}") for k in range(1, self.num_steps + 1)]
        except RuntimeError as err:
            raise ProgramError(f"{self.name}: ExecuTorch could not load the loop's methods ({err})") from None

    # A method's output lives in that method's memory until its next call, and a layer step's
    # input must not be the memory it writes: each hidden state is copied out (numpy, one thread).
    def embed(self, ids: Tensor, types: Tensor) -> Tensor:
        return _copy_out(self._embed([ids, types], clone_outputs=False))

    def step(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return _copy_out(self._layer([hidden, mask], clone_outputs=False))

    def exit_logits(self, hidden: Tensor, step: int) -> Tensor:
        """Logits (1, num_labels) of the exit after layer step ``step`` (1-based)."""
        return _copy_out(self._exits[step - 1]([hidden], clone_outputs=False))

    def run_steps(self, inputs: tuple[Tensor, Tensor, Tensor], depth: int | None = None) -> list[Tensor]:
        """Checked inputs -> every step's logits up to ``depth`` (default: all steps)."""
        ids, mask, types = inputs
        h = self.embed(ids, types)
        out = []
        for k in range(1, (depth or self.num_steps) + 1):
            h = self.step(h, mask)
            out.append(self.exit_logits(h, k))
        return out

    def run_adaptive(self, inputs: tuple[Tensor, Tensor, Tensor], rule: ExitRule) -> tuple[Tensor, int]:
        """Checked inputs -> (logits (1, num_labels) of the step that stopped, that step)."""
        ids, mask, types = inputs
        h = self.embed(ids, types)
        rows: list[np.ndarray] = []
        for k in range(1, self.num_steps + 1):
            h = self.step(h, mask)
            logits = self.exit_logits(h, k)
            rows.append(logits[0].numpy())
            if k == self.num_steps or rule.stops(rows):
                return logits, k
        raise AssertionError("unreachable")
