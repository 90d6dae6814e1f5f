"""``TrainingArgs``: what one training run is asked to do, checked field by field.

Torch-free (``training`` holds the loop), so that the CLI builds its parser without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from albert_edge.errors import TrainingError

OPTIMIZERS = ("adamw", "lamb")


@dataclass(frozen=True)
class TrainingArgs:
    steps: int  # optimizer steps
    batch_size: int = 32  # examples per optimizer step, over all processes and micro-batches
    grad_accum: int = 1  # micro-batches per step on each process
    lr: float = 1e-3
    warmup_steps: int = 0  # linear warm-up from 0, then linear decay to 0 at `steps`
    weight_decay: float = 0.01  # not applied to biases and LayerNorm weights
    max_grad_norm: float = 1.0  # 0 turns clipping off
    optimizer: str = "adamw"  # "adamw" or "lamb"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0  # 0: evaluate only at the end
    save_every: int = 0  # 0: checkpoint only at the end
    eval_batch_size: int = 64
    progress: bool = True
    # Distillation (classification examples that carry teacher logits): the loss is
    # distill_alpha * CE(labels) + (1 - distill_alpha) * T^2 * KL(teacher_T || student_T).
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise TrainingError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TrainingError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.distill_alpha <= 1.0:
            raise TrainingError(f"distill_alpha must be in [0, 1], got {self.distill_alpha}")
        if not self.distill_temperature > 0:
            raise TrainingError(f"distill_temperature must be positive, got {self.distill_temperature}")
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
