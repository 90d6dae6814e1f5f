"""Training loops: ALBERT pretraining (masked LM + sentence order) and sequence-classification
fine-tuning, on one process or several under ``torchrun`` (PyTorch DDP, gloo on CPU).

What a run guarantees:

* **Determinism.** The order of examples is a function of ``seed`` and the number of examples
  already consumed (one seeded permutation per epoch), and the RNG that dropout draws from is
  reseeded from ``(seed, step, rank)`` at every optimizer step. Two runs with the same arguments
  give the same weights, and a run resumed from a checkpoint continues exactly as if it had never
  stopped.
* **Global batches.** ``batch_size`` is the number of examples per optimizer step over all
  processes and micro-batches. Losses are sums divided by the *global* count (masked tokens for
  the MLM loss, sequences for SOP and classification), so two processes with batch 2 each, one
  process with two micro-batches of 2 and one process with one batch of 4 compute the same
  gradient (up to float summation order; with dropout on, each process draws its own masks).
* **Atomic checkpoints.** ``OUT/checkpoint`` (a checkpoint directory that ``load_pretrained``
  reads, plus ``trainer.pt`` with optimizer and schedule state, loaded with ``weights_only=True``)
  is written beside itself and swapped into place: a run killed at any moment leaves the previous
  checkpoint or the new one. ``resume=True`` continues from it and rewrites ``log.jsonl`` to end at
  the checkpoint's step.

Logs are JSON Lines in ``OUT/log.jsonl``: ``{"kind": "train", "step", "loss", "mlm_loss",
"sop_loss", "mlm_acc", "sop_acc", "lr", "examples_per_s", "tokens_per_s", "elapsed_s"}`` every
``log_every`` steps and ``{"kind": "eval", "step", ...metrics}`` at every evaluation. The final
weights go to ``OUT/model`` (with ``spiece.model`` when a tokenizer file is given) and the final
evaluation to ``OUT/metrics.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from albert_edge._io import atomic_write_json, atomic_write_text, read_json_object, replaced_dir
from albert_edge.checkpoint import load_pretrained, save_pretrained
from albert_edge.datasets import ClassificationExample
from albert_edge.errors import TrainingError
from albert_edge.metrics import classification_report
from albert_edge.model import (
    AlbertForPreTraining,
    AlbertForQuestionAnswering,
    AlbertForSequenceClassification,
    AlbertPreTrainedModel,
)
from albert_edge.training_args import TrainingArgs

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"
LOG_FILE = "log.jsonl"
METRICS_FILE = "metrics.json"
TRAINER_STATE = "trainer.pt"
# ---- objectives: one forward returning sums, so that any split of a batch gives one gradient ----

class PretrainingObjective(nn.Module):
    """Masked LM over the masked positions only (the vocabulary projection of unmasked positions
    is never computed) + sentence-order prediction. forward -> float64-free sums, shape (6,):
    [mlm loss sum, sop loss sum, mlm correct, sop correct, masked tokens, sequences]."""

    def __init__(self, model: AlbertForPreTraining):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        seq, pooled = self.model.albert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        labels = batch["labels"]  # (B, S), -100 where not masked
        where = labels != -100
        mlm_logits = self.model.predictions(seq[where])  # (n_masked, V)
        targets = labels[where]
        sop_logits = self.model.sop_classifier(pooled)  # (B, 2)
        sop_targets = batch["sentence_order_label"]
        return torch.stack([
            F.cross_entropy(mlm_logits, targets, reduction="sum"),
            F.cross_entropy(sop_logits, sop_targets, reduction="sum"),
            (mlm_logits.argmax(-1) == targets).sum().to(seq.dtype),
            (sop_logits.argmax(-1) == sop_targets).sum().to(seq.dtype),
            torch.tensor(float(targets.numel())),
            torch.tensor(float(sop_targets.numel())),
        ])


class ClassificationObjective(nn.Module):
    """Cross-entropy (or MSE for a 1-label regression head). forward -> sums, shape (3,):
    [loss sum, correct, sequences].

    With ``distill = (alpha, T)`` and a batch that carries ``teacher_logits`` (B, L), each example's
    loss is ``alpha * CE(label) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))``
    (Hinton et al. 2015; the T^2 keeps the soft term's gradients at the hard term's scale)."""

    def __init__(self, model: AlbertForSequenceClassification, distill: tuple[float, float] | None = None):
        super().__init__()
        self.model = model
        self.distill = distill

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        logits = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])  # (B, L)
        sums = classification_sums(logits, batch["labels"])
        if self.distill is None or "teacher_logits" not in batch:
            return sums
        alpha, t = self.distill
        soft = F.kl_div(F.log_softmax(logits / t, -1), F.log_softmax(batch["teacher_logits"] / t, -1),
                        reduction="sum", log_target=True) * t * t
        return torch.stack([alpha * sums[0] + (1 - alpha) * soft, sums[1], sums[2]])


class QuestionAnsweringObjective(nn.Module):
    """Mean of the start and end cross-entropies over the window's tokens (padding excluded).
    forward -> sums, shape (4,): [loss sum, starts right, spans right (start and end), windows].

    With ``distill = (alpha, T)`` and a batch that carries ``teacher_start`` / ``teacher_end``
    (B, S) teacher log-probabilities, each window's loss is ``alpha * CE + (1 - alpha) * T^2 *
    KL(teacher_T || student_T)``, start and end averaged, as ``ClassificationObjective``."""

    def __init__(self, model: AlbertForQuestionAnswering, distill: tuple[float, float] | None = None):
        super().__init__()
        self.model = model
        self.distill = distill

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        start, end = self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])  # (B, S)
        pad = batch["attention_mask"] == 0
        start, end = start.masked_fill(pad, -1e4), end.masked_fill(pad, -1e4)
        s, e = batch["start_positions"], batch["end_positions"]
        loss = (F.cross_entropy(start, s, reduction="sum") + F.cross_entropy(end, e, reduction="sum")) / 2
        s_ok, e_ok = start.argmax(-1) == s, end.argmax(-1) == e
        if self.distill is not None and "teacher_start" in batch:
            alpha, t = self.distill
            soft = sum(F.kl_div(F.log_softmax(x / t, -1), F.log_softmax(batch[k] / t, -1), reduction="sum",
                                log_target=True) for x, k in ((start, "teacher_start"), (end, "teacher_end")))
            loss = alpha * loss + (1 - alpha) * t * t * soft / 2
        return torch.stack([loss, s_ok.sum().to(start.dtype), (s_ok & e_ok).sum().to(start.dtype),
                            torch.tensor(float(s.numel()))])


def classification_sums(logits: Tensor, labels: Tensor) -> Tensor:
    """(B, L) logits, (B,) labels -> [loss sum, correct, sequences]."""
    if logits.shape[-1] == 1:
        loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype), reduction="sum")
        correct = torch.tensor(0.0)
    else:
        loss = F.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.argmax(-1) == labels).sum().to(logits.dtype)
    return torch.stack([loss, correct, torch.tensor(float(labels.numel()))])


@dataclass(frozen=True)
class Task:
    """How to batch and score one kind of training."""

    name: str  # "pretraining", "classification" or "question-answering"
    objective: Callable[[AlbertPreTrainedModel], nn.Module]
    collate: Callable[[Sequence[Any]], dict[str, Tensor]]
    # Counts of a collated batch that normalise the loss sums: pretraining (masked tokens,
    # sequences); classification (sequences,).
    counts: Callable[[dict[str, Tensor]], Tensor]
    # sums, counts -> loss to backpropagate (before the world-size factor)
    loss: Callable[[Tensor, Tensor], Tensor]
    # summed objective outputs over a whole pass -> named figures for logs
    figures: Callable[[Tensor], dict[str, float]]


def pretraining_task(pad_id: int) -> Task:
    from albert_edge.pretraining_data import collate

    def counts(b: dict[str, Tensor]) -> Tensor:
        return torch.tensor([float((b["labels"] != -100).sum()), float(b["labels"].shape[0])])

    def loss(sums: Tensor, n: Tensor) -> Tensor:
        return sums[0] / n[0].clamp(min=1) + sums[1] / n[1].clamp(min=1)

    def figures(t: Tensor) -> dict[str, float]:
        m, s = max(float(t[4]), 1.0), max(float(t[5]), 1.0)
        return {"loss": float(t[0]) / m + float(t[1]) / s, "mlm_loss": float(t[0]) / m, "sop_loss": float(t[1]) / s,
                "mlm_acc": float(t[2]) / m, "sop_acc": float(t[3]) / s}

    return Task("pretraining", PretrainingObjective, lambda ex: collate(ex, pad_id), counts, loss, figures)


def classification_task(pad_id: int, distill: tuple[float, float] | None = None) -> Task:
    """``distill``: (alpha, temperature) for examples that carry teacher logits."""

    def counts(b: dict[str, Tensor]) -> Tensor:
        return torch.tensor([float(b["labels"].shape[0])])

    def loss(sums: Tensor, n: Tensor) -> Tensor:
        return sums[0] / n[0].clamp(min=1)

    def figures(t: Tensor) -> dict[str, float]:
        n = max(float(t[2]), 1.0)
        return {"loss": float(t[0]) / n, "accuracy": float(t[1]) / n}

    return Task("classification", lambda m: ClassificationObjective(m, distill),
                lambda ex: collate_classification(ex, pad_id), counts, loss, figures)


def question_answering_task(pad_id: int, distill: tuple[float, float] | None = None) -> Task:
    """``distill``: (alpha, temperature) for windows that carry a teacher's distributions."""

    def counts(b: dict[str, Tensor]) -> Tensor:
        return torch.tensor([float(b["start_positions"].shape[0])])

    def loss(sums: Tensor, n: Tensor) -> Tensor:
        return sums[0] / n[0].clamp(min=1)

    def figures(t: Tensor) -> dict[str, float]:
        n = max(float(t[3]), 1.0)
        return {"loss": float(t[0]) / n, "start_acc": float(t[1]) / n, "span_acc": float(t[2]) / n}

    return Task("question-answering", lambda m: QuestionAnsweringObjective(m, distill), lambda ex: collate_qa(ex, pad_id),
                counts, loss, figures)


def collate_qa(features: Sequence[Any], pad_id: int) -> dict[str, Tensor]:
    """``qa_data.QAFeature`` windows padded to the longest. -> int64 (B, S) input_ids,
    attention_mask, token_type_ids; (B,) start_positions, end_positions; float32 (B, S)
    teacher_start, teacher_end (padding: -1e4) when the windows carry them."""
    batch = {**_padded(features, pad_id),
             "start_positions": torch.tensor([f.start_position for f in features]),
             "end_positions": torch.tensor([f.end_position for f in features])}
    if features[0].teacher_start is not None:
        S = batch["input_ids"].shape[1]
        for key in ("teacher_start", "teacher_end"):
            batch[key] = torch.tensor([list(getattr(f, key)) + [-1e4] * (S - len(f.input_ids)) for f in features],
                                      dtype=torch.float32)
    return batch


def collate_classification(examples: Sequence[ClassificationExample], pad_id: int) -> dict[str, Tensor]:
    """Pad to the longest example in the batch. -> int64 (B, S) input_ids, attention_mask,
    token_type_ids; labels (B,) int64 (float32 for regression); teacher_logits (B, L) float32 when
    the examples carry them."""
    regression = isinstance(examples[0].label, float)
    labels = torch.tensor([e.label for e in examples], dtype=torch.float32 if regression else torch.long)
    batch = {**_padded(examples, pad_id), "labels": labels}
    if examples[0].teacher_logits is not None:
        batch["teacher_logits"] = torch.tensor([e.teacher_logits for e in examples], dtype=torch.float32)
    return batch


def _padded(examples: Sequence[Any], pad_id: int) -> dict[str, Tensor]:
    """``input_ids`` and ``token_type_ids`` of each example padded to the longest -> int64 (B, S)
    input_ids, attention_mask, token_type_ids."""
    S = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), S), pad_id, dtype=torch.long)
    types = torch.zeros((len(examples), S), dtype=torch.long)
    mask = torch.zeros((len(examples), S), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        types[i, :n] = torch.tensor(e.token_type_ids)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# ---- distributed helpers ------------------------------------------------------------------

@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world() -> World:
    """Join the process group torchrun describes (WORLD_SIZE > 1), gloo backend; else one process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return World(dist.get_rank(), dist.get_world_size())


def _all_reduce(t: Tensor, world: World) -> Tensor:
    if world.size > 1:
        dist.all_reduce(t)
    return t


# ---- optimisation -------------------------------------------------------------------------

class Lamb(torch.optim.Optimizer):
    """LAMB (You et al. 2019, as used for ALBERT): Adam's update rescaled per tensor by the trust
    ratio ||w|| / ||update|| (1 where either norm is 0). Decoupled weight decay is part of the update."""

    def __init__(self, params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros(())
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                update = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + group["eps"])
                if group["weight_decay"]:
                    update = update + group["weight_decay"] * p
                w_norm, u_norm = p.norm(), update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones(()))
                p.add_(update, alpha=-group["lr"] * float(trust))


def make_optimizer(model: nn.Module, args: TrainingArgs) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # shared and tied tensors appear once
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if args.optimizer == "lamb":
        return Lamb(groups, lr=args.lr, betas=args.betas, eps=args.eps)
    return torch.optim.AdamW(groups, lr=args.lr, betas=args.betas, eps=args.eps)


def lr_factor(step: int, args: TrainingArgs) -> float:
    """Linear warm-up over `warmup_steps`, then linear decay to 0 at `steps` (step counts from 0)."""
    if step < args.warmup_steps:
        return (step + 1) / args.warmup_steps
    return max(0.0, (args.steps - step) / max(1, args.steps - args.warmup_steps))


# ---- data order ---------------------------------------------------------------------------

class Order:
    """The global example order: epoch e is ``randperm(n)`` seeded with (seed, e)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self._perms: dict[int, Tensor] = {}

    def _perm(self, epoch: int) -> Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self.n, generator=g)}  # keep one epoch in memory
        return self._perms[epoch]

    def take(self, start: int, count: int) -> list[int]:
        """Indices of examples start..start+count-1 of the endless stream."""
        return [int(self._perm(k // self.n)[k % self.n]) for k in range(start, start + count)]


# ---- progress -----------------------------------------------------------------------------

class Progress:
    """One status line on stderr: redrawn in place on a terminal, printed every `every` steps otherwise."""

    def __init__(self, total: int, label: str, enabled: bool, every: int):
        self.total, self.label, self.enabled, self.every = total, label, enabled, every
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()

    def update(self, step: int, start_step: int, info: str) -> None:
        if not self.enabled or not (self.tty or step % self.every == 0 or step == self.total):
            return
        elapsed = time.perf_counter() - self.start
        done = step - start_step
        eta = elapsed / done * (self.total - step) if done else float("nan")
        width = 24
        filled = int(width * step / self.total)
        line = (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} {info} "
                f"{_duration(elapsed)} elapsed, {_duration(eta)} left")
        sys.stderr.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        if self.tty and step == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


# ---- the loop -----------------------------------------------------------------------------

def check_run_folder(out: Path, resume: bool) -> None:
    """TrainingError if `out` cannot hold this run: a file, a run already there without resume,
    or no run there with resume."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out}: exists and is not a folder; choose another output folder")
    if not resume and (out / CHECKPOINT_DIR).exists():
        raise TrainingError(f"{out}: already holds a run (checkpoint/); pass --resume to continue it "
                            "or choose another output folder")
    if resume and not (out / CHECKPOINT_DIR).exists():
        raise TrainingError(f"{out}: --resume, but there is no run to resume (no {CHECKPOINT_DIR}/ in it); "
                            "drop --resume to start one, or name the folder of the interrupted run")


# Arguments that do not change the weights a run ends with: a resumed run may differ in these.
_RESULT_NEUTRAL = ("progress", "log_every", "eval_every", "save_every", "eval_batch_size")


def examples_digest(examples: Sequence[Any]) -> str:
    """sha256 of the training examples (their repr, in order): what a resumed run must train on."""
    h = hashlib.sha256()
    for e in examples:
        h.update(repr(e).encode())
    return h.hexdigest()


def _check_resume(ckpt: Path, state: dict[str, Any], args: TrainingArgs, digest: str, task: str) -> list[str]:
    """What differs between the checkpoint's run and this one (arguments, data, task)."""
    if state.get("task") != task:
        raise TrainingError(f"{ckpt}: holds a {state.get('task')} run, not {task}")
    try:
        then = json.loads(state["args"])
    except (KeyError, TypeError, ValueError):
        then = {}
    now = asdict(args)
    changed = [f"{k} {then[k]!r} -> {now[k]!r}" for k in now
               if k not in _RESULT_NEUTRAL and k in then and json.loads(json.dumps(now[k])) != then[k]]
    if state.get("data_sha256") not in (None, digest):
        changed.append("the training examples (another data file, tokenizer, max length or seed)")
    return changed


def _save_checkpoint(out: Path, model: AlbertPreTrainedModel, optimizer: torch.optim.Optimizer,
                     step: int, consumed: int, args: TrainingArgs, task: str, digest: str) -> None:
    with replaced_dir(out / CHECKPOINT_DIR) as tmp:
        save_pretrained(model, tmp)
        state = {"step": step, "consumed": consumed, "optimizer": optimizer.state_dict(),
                 "args": json.dumps(asdict(args)), "task": task, "data_sha256": digest}
        torch.save(state, tmp / TRAINER_STATE)


def _load_trainer_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file: say which, not a pickle traceback
        raise TrainingError(f"{path}: cannot be read as a trainer state ({err}); delete the checkpoint "
                            "folder to start again") from None


def _truncate_log(path: Path, step: int) -> None:
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _micro_batches(order: Order, consumed: int, args: TrainingArgs, world: World) -> list[list[int]]:
    """This process's micro-batches of the global batch that starts at example `consumed`."""
    per_process = args.batch_size // world.size
    mine = order.take(consumed + world.rank * per_process, per_process)
    m = per_process // args.grad_accum
    return [mine[i * m:(i + 1) * m] for i in range(args.grad_accum)]


@torch.no_grad()
def evaluate(model: AlbertPreTrainedModel, task: Task, examples: Sequence[Any], batch_size: int = 64,
             labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Figures of `model` over `examples` (eval mode, no dropout). Classification adds accuracy,
    macro-F1, per-class figures and the confusion matrix when `labels` are given."""
    was_training = model.training
    model.eval()
    objective = task.objective(model)
    total: Tensor | None = None
    preds: list[int] = []
    for i in range(0, len(examples), batch_size):
        batch = task.collate(examples[i:i + batch_size])
        if task.name == "classification":  # one forward gives the sums and the predictions
            logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            sums = classification_sums(logits, batch["labels"])
            preds.extend(logits.argmax(-1).tolist())
        else:
            sums = objective(batch)
        total = sums if total is None else total + sums
    model.train(was_training)
    if total is None:
        raise TrainingError("evaluation set is empty")
    result: dict[str, Any] = task.figures(total)
    result["examples"] = len(examples)
    if labels is not None and task.name == "classification":
        truth = [labels[int(e.label)] for e in examples]
        result.update(classification_report(truth, [labels[p] for p in preds], list(labels)))
    return result


def train(
    model: AlbertPreTrainedModel,
    task: Task,
    train_examples: Sequence[Any],
    args: TrainingArgs,
    out_dir: str | os.PathLike,
    *,
    eval_examples: Sequence[Any] = (),
    labels: Sequence[str] | None = None,
    tokenizer_file: str | os.PathLike | None = None,
    resume: bool = False,
    resume_changed: bool = False,
    world: World | None = None,
) -> dict[str, Any]:
    """Train `model` in place for ``args.steps`` optimizer steps and write OUT/model, OUT/log.jsonl
    and OUT/metrics.json (main process). Returns the final evaluation (empty without eval examples).

    resume: continue the run in `out_dir` from its checkpoint (TrainingError if there is none),
    bit-identical to one uninterrupted run; so the arguments that decide the weights and the
    training examples must be the run's, or TrainingError names what changed, unless
    ``resume_changed`` (then the result is not what one uninterrupted run would give)."""
    world = world or init_world()
    out = Path(out_dir)
    check_run_folder(out, resume)
    if not train_examples:
        raise TrainingError("no training examples")
    if args.batch_size % (world.size * args.grad_accum):
        raise TrainingError(f"batch_size {args.batch_size} must be a multiple of processes x grad_accum "
                            f"= {world.size} x {args.grad_accum}")
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG_FILE

    step, consumed = 0, 0
    optimizer = make_optimizer(model, args)
    ckpt = out / CHECKPOINT_DIR
    digest = examples_digest(train_examples)
    if resume:
        state = _load_trainer_state(ckpt / TRAINER_STATE)
        changed = _check_resume(ckpt, state, args, digest, task.name)
        if changed and not resume_changed:
            raise TrainingError(f"{ckpt}: --resume with other settings than the run's: {'; '.join(changed)}. "
                                "An exact resume needs the same ones; pass them as before, or --resume-changed "
                                "to continue anyway (the result then differs from one uninterrupted run)")
        if changed:
            log.warning("resuming %s with changed settings: %s", ckpt, "; ".join(changed))
        loaded = load_pretrained(ckpt, type(model))
        model.load_state_dict(loaded.state_dict())
        optimizer = make_optimizer(model, args)
        optimizer.load_state_dict(state["optimizer"])
        step, consumed = int(state["step"]), int(state["consumed"])
        if world.main:
            _truncate_log(log_path, step)
        log.info("resumed %s at step %d", ckpt, step)
    elif world.main:
        log_path.unlink(missing_ok=True)

    objective = task.objective(model)
    runner: nn.Module = objective
    if world.size > 1:
        runner = nn.parallel.DistributedDataParallel(objective)
    order = Order(len(train_examples), args.seed)
    progress = Progress(args.steps, task.name, args.progress and world.main, args.log_every)
    model.train()
    window = None  # summed objective outputs since the last log line
    window_tokens, window_start = 0, time.perf_counter()
    run_start = time.perf_counter()

    def write_log(record: dict[str, Any]) -> None:
        if world.main:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def run_eval() -> dict[str, Any]:
        if not eval_examples:
            return {}
        result = evaluate(model, task, eval_examples, args.eval_batch_size, labels)
        write_log({"kind": "eval", "step": step, **{k: v for k, v in result.items() if not isinstance(v, (dict, list))}})
        return result

    while step < args.steps:
        for group in optimizer.param_groups:
            group["lr"] = args.lr * lr_factor(step, args)
        # Dropout masks are a function of (seed, step, rank): resume-exact without saving RNG state.
        torch.manual_seed(args.seed * 1_000_003 + step * 101 + world.rank)
        batches = [task.collate([train_examples[i] for i in idx])
                   for idx in _micro_batches(order, consumed, args, world)]
        counts = _all_reduce(sum(task.counts(b) for b in batches), world)
        for i, batch in enumerate(batches):
            sync = i == len(batches) - 1 or world.size == 1
            ctx = runner.no_sync() if (world.size > 1 and not sync) else contextlib.nullcontext()
            with ctx:
                sums = runner(batch)
                # DDP averages gradients over processes: scale by the world size so the result is
                # the gradient of (global sum / global count).
                (task.loss(sums, counts) * world.size).backward()
            window = sums.detach() if window is None else window + sums.detach()
            window_tokens += int(batch["attention_mask"].sum())
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        consumed += args.batch_size

        if step % args.log_every == 0 or step == args.steps:
            totals = _all_reduce(window.clone(), world)
            tokens = int(_all_reduce(torch.tensor(float(window_tokens)), world))
            now = time.perf_counter()
            figures = task.figures(totals)
            seqs = int(totals[-1])
            write_log({"kind": "train", "step": step, **figures, "lr": optimizer.param_groups[0]["lr"],
                       "examples_per_s": seqs / (now - window_start), "tokens_per_s": tokens / (now - window_start),
                       "elapsed_s": now - run_start})
            progress.update(step, 0, f"loss {figures['loss']:.3f}")
            window, window_tokens, window_start = None, 0, now
        if args.eval_every and step % args.eval_every == 0 and step < args.steps:
            run_eval()
        if world.main and ((args.save_every and step % args.save_every == 0) or step == args.steps):
            _save_checkpoint(out, model, optimizer, step, consumed, args, task.name, digest)
        if world.size > 1:
            dist.barrier()

    result = run_eval()
    if world.main:
        with replaced_dir(out / MODEL_DIR) as tmp:
            save_pretrained(model, tmp, tokenizer_file=tokenizer_file)
        atomic_write_json(out / METRICS_FILE, {"step": step, "task": task.name, "eval": result,
                                               "args": asdict(args), "world_size": world.size})
    return result


def read_log(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of OUT/log.jsonl."""
    path = Path(out_dir) / LOG_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_metrics(out_dir: str | os.PathLike) -> dict[str, Any]:
    return read_json_object(Path(out_dir) / METRICS_FILE, TrainingError)
