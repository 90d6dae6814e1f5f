"""Hugging Face checkpoint directories: ``load_pretrained`` and ``save_pretrained``.

A directory holds ``config.json`` and weights as ``model.safetensors`` (preferred),
``pytorch_model.bin`` (read with ``weights_only=True``, never a general unpickle), or a sharded
set named by ``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``. Module names in
``model.py`` are transformers' keys, so the mapping below is only the few declared exceptions.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from albert_edge._io import atomic_write, read_json_object
from albert_edge.config import HEADS, PRESETS, AlbertConfig, ConfigError
from albert_edge.errors import CheckpointError
from albert_edge.model import ARCHITECTURES, AlbertModel, AlbertPreTrainedModel
from albert_edge.tokenizer import AlbertTokenizer

log = logging.getLogger(__name__)

BASE_PREFIX = "albert."

# Tensors stored once and shared under a second name (the second name is not written to disk).
TIED_KEYS = {
    "predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
    "predictions.decoder.bias": "predictions.bias",
}

# Buffers that older transformers versions saved; they hold nothing the model needs.
IGNORED_KEY_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")

# Tensors (relative to the encoder) that strict=False never lets go missing; the pooler and
# heads may be freshly initialised.
ENCODER_PREFIXES = ("embeddings.", "encoder.")

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")



# The shipped default model (albert_edge/default_model/, built by albert_edge.make_default).
DEFAULT_MODEL_NAME = "default"
DEFAULT_QA_MODEL_NAME = "default-qa"
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"
# The shipped extractive QA model (albert_edge.make_default_qa), by the name `default-qa`.
DEFAULT_QA_MODEL_DIR = Path(__file__).parent / "default_qa_model"
DEFAULT_MODEL_FILES = ("config.json", "model.safetensors", "spiece.model")


def _shipped(directory: Path, name: str, make_target: str) -> Path:
    missing = [f for f in DEFAULT_MODEL_FILES if not (directory / f).is_file()]
    if missing:
        raise CheckpointError(
            f"{directory}: the {name} model is incomplete (missing {', '.join(missing)}); "
            f"reinstall albert-edge or rebuild it with `make {make_target}`"
        )
    return directory


def default_model_dir() -> Path:
    """The folder of the shipped default model; CheckpointError if the package lacks it."""
    return _shipped(DEFAULT_MODEL_DIR, "default", "default-model")


def default_qa_model_dir() -> Path:
    """The folder of the shipped question-answering model; CheckpointError if the package lacks it."""
    return _shipped(DEFAULT_QA_MODEL_DIR, "default-qa", "default-qa-model")


def resolve_model_path(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """``default`` -> the shipped sentiment model's folder, ``default-qa`` -> the shipped
    question-answering model's; anything else unchanged."""
    if str(name_or_path) == DEFAULT_MODEL_NAME:
        return default_model_dir()
    if str(name_or_path) == DEFAULT_QA_MODEL_NAME:
        return default_qa_model_dir()
    return name_or_path


def load_tokenizer(source: str | os.PathLike) -> AlbertTokenizer:
    """A tokenizer from a checkpoint directory (its spiece.model or tokenizer.json), an
    ``spiece.model`` file, or ``default`` (the shipped model's)."""
    path = Path(resolve_model_path(source))
    return AlbertTokenizer.from_pretrained(path) if path.is_dir() else AlbertTokenizer.from_file(path)


def resolve_head(head: str | type[AlbertPreTrainedModel], where: str = "head") -> type[AlbertPreTrainedModel]:
    """The model class for a short head name (``HEADS``), a class name, or a class."""
    if isinstance(head, type) and issubclass(head, AlbertPreTrainedModel):
        return head
    name = HEADS.get(head, head)
    if name not in ARCHITECTURES:
        accepted = ", ".join([*HEADS, *ARCHITECTURES])
        raise CheckpointError(f"{where} {head!r} is not supported; accepted: {accepted}")
    return ARCHITECTURES[name]


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 (lower-case hex) of a model's weights: every entry of its state dict in name order,
    as name, dtype, shape and little-endian bytes. Equal for a model saved and loaded again;
    bundles carry it (manifest ``weights_sha256``) so that a comparison can tell whether the
    eager model given is the one the programs were made from."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _config_architecture(config_path: Path) -> str:
    data = json.loads(config_path.read_text(encoding="utf-8"))  # already validated by AlbertConfig.load
    archs = data.get("architectures") or ["AlbertModel"]
    return archs[0]


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None


def _read_torch_bin(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message is long advice; keep the one line that says what it found.
        # torch <= 2.12: "Unsupported global: GLOBAL os.system"; 2.13: "unsupported GLOBAL posix.system"
        unsafe = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", str(err))
        if unsafe:
            raise CheckpointError(
                f"{path}: refused to unpickle: the file holds more than plain tensors (it names "
                f"{unsafe.group(1)}). Re-save it as a state dict of tensors, or as model.safetensors"
            ) from None
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
        detail = found.group(1).strip() if found else str(err).splitlines()[0]
        raise CheckpointError(f"{path}: not a readable PyTorch weights file ({detail})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path}: not a readable PyTorch weights file ({err})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: expected a flat state dict of tensors; these entries are not tensors: {bad[:5]}"
        )
    return obj


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    return _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch_bin(path)


def read_state_dict(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Path]:
    """All tensors of a checkpoint directory, and the file (or index) they came from."""
    directory = Path(directory)
    for name in WEIGHT_FILES:
        path = directory / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return _read_file(path), path
        index = read_json_object(path, CheckpointError)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{path}: 'weight_map' must be an object of tensor name -> shard file, "
                                  f"got {type(weight_map).__name__}")
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            if (not isinstance(shard, str) or Path(shard).is_absolute()
                    or not (directory / shard).resolve().is_relative_to(directory.resolve())):
                raise CheckpointError(f"{path}: names shard {shard!r}; a shard must be a file inside the "
                                      "checkpoint folder (a relative path, no '..' out of it)")
            if not (directory / shard).is_file():
                raise CheckpointError(f"{path}: names shard {shard!r}, which is missing")
            state.update(_read_file(directory / shard))
        return state, path
    raise CheckpointError(f"{directory}: no weights found; expected one of {', '.join(WEIGHT_FILES)}")


def _map_keys(state: dict[str, torch.Tensor], model: AlbertPreTrainedModel) -> dict[str, torch.Tensor]:
    """Adapt a checkpoint's keys to ``model``: drop old buffers, add/strip ``albert.``, re-tie."""
    state = {k: v for k, v in state.items() if not k.endswith(IGNORED_KEY_SUFFIXES)}
    has_prefix = any(k.startswith(BASE_PREFIX) for k in state)
    if isinstance(model, AlbertModel):
        if has_prefix:  # a head checkpoint loaded as the bare encoder: keep the encoder only
            dropped = [k for k in state if not k.startswith(BASE_PREFIX)]
            if dropped:
                log.info("ignoring %d head tensors for AlbertModel: %s", len(dropped), dropped)
            state = {k[len(BASE_PREFIX):]: v for k, v in state.items() if k.startswith(BASE_PREFIX)}
    elif not has_prefix:  # a bare-encoder checkpoint loaded under a head
        state = {BASE_PREFIX + k: v for k, v in state.items()}
    expected = model.state_dict()
    for alias, source in TIED_KEYS.items():
        if alias in expected and alias not in state and source in state:
            state[alias] = state[source]
    return state


def load_pretrained(
    path: str | os.PathLike,
    head: str | type[AlbertPreTrainedModel] | None = None,
    *,
    strict: bool = True,
    dtype: torch.dtype = torch.float32,
) -> AlbertPreTrainedModel:
    """Load a Hugging Face ALBERT checkpoint directory into our model, in eval mode.

    head: a short name from ``HEADS``, a class name, or a class; default: config.json's
        ``architectures`` (``AlbertModel`` when absent).
    strict: when False, pooler and head tensors missing from the checkpoint keep their fresh
        initialisation (to fine-tune a pretrained encoder) and tensors of other heads are ignored;
        embedding and encoder tensors must still all be present.
    Raises CheckpointError (or ConfigError) naming the file and the offending keys.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a checkpoint directory (expected config.json and weights)")
    config_path = directory / "config.json"
    config = AlbertConfig.load(config_path)
    if head is None:
        cls = resolve_head(_config_architecture(config_path), where=f"{config_path}: architectures")
    else:
        cls = resolve_head(head)
    try:
        model = cls(config)
    except ValueError as err:
        raise ConfigError(f"{config_path}: {err}") from None
    raw, source = read_state_dict(directory)
    state = _map_keys(raw, model)

    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [
        f"{k}: file {tuple(state[k].shape)}, config.json implies {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if misshaped:
        raise CheckpointError(
            f"{source}: {len(misshaped)} tensors do not match {config_path.name}:\n  " + "\n  ".join(misshaped)
        )
    if not strict:
        missing_encoder = [k for k in missing if k.removeprefix(BASE_PREFIX).startswith(ENCODER_PREFIXES)]
        if missing_encoder:
            raise CheckpointError(f"{source}: encoder tensors missing: {missing_encoder}")
        if missing:
            log.warning("%s: newly initialised (not in checkpoint): %s", source, missing)
        if unexpected:
            log.info("%s: ignoring tensors this head does not use: %s", source, unexpected)
        state = {k: v for k, v in state.items() if k in expected}
    elif missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing: {missing}")
        if unexpected:
            parts.append(f"unexpected: {unexpected}")
        raise CheckpointError(
            f"{source} does not fit {cls.__name__} ({'; '.join(parts)}). "
            "Pass another head, or strict=False to initialise a new head"
        )
    nonfinite = [f"{k} ({int((~torch.isfinite(v)).sum())} of {v.numel()} values)"
                 for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if nonfinite:
        raise CheckpointError(f"{source}: {len(nonfinite)} tensor(s) hold NaN or infinity: "
                              f"{', '.join(nonfinite[:5])}; a model with them gives no answers: use a checkpoint "
                              "saved before training diverged")
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=strict)
    return model.to(dtype).eval()


def save_pretrained(
    model: AlbertPreTrainedModel, path: str | os.PathLike, *, tokenizer_file: str | os.PathLike | None = None
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` that transformers' ``from_pretrained`` loads
    to identical outputs, and the tokenizer if given: an ``spiece.model`` file (copied as
    ``spiece.model``) or a ``tokenizer.json`` (copied under its name, with the
    ``tokenizer_config.json`` beside it). Each file is written atomically."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().contiguous().cpu()
        for k, v in model.state_dict().items()
        if k not in TIED_KEYS  # stored once, under the name it is tied to
    }
    atomic_write(directory / "model.safetensors", lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    model.config.save(directory / "config.json", architecture=type(model).__name__)
    if tokenizer_file is not None:
        src = Path(tokenizer_file)
        names = [(src, "spiece.model")]
        if src.name == "tokenizer.json":
            names = [(src, "tokenizer.json")]
            if (src.parent / "tokenizer_config.json").is_file():
                names.append((src.parent / "tokenizer_config.json", "tokenizer_config.json"))
        for source, name in names:
            atomic_write(directory / name, lambda tmp, source=source: shutil.copyfile(source, tmp))
    return directory


def load_model(
    name_or_path: str | os.PathLike, head: str | type[AlbertPreTrainedModel] | None = None, *, seed: int = 0
) -> AlbertPreTrainedModel:
    """A checkpoint directory, ``default`` (the shipped model), or a preset name (``albert-base-v2``,
    ``tiny``...) with random weights from ``seed`` (for shape, size and latency work). Eval mode."""
    path = Path(resolve_model_path(name_or_path))
    if path.is_dir():
        return load_pretrained(path, head)
    name = str(name_or_path)
    if name not in PRESETS:
        if path.exists() or os.sep in name:
            raise CheckpointError(f"{path}: not a checkpoint directory (expected config.json and weights)")
        raise CheckpointError(
            f"{name!r} is neither a checkpoint directory nor a preset; presets: {', '.join(PRESETS)}"
        )
    cls = resolve_head(head or "base")
    torch.manual_seed(seed)
    return cls(AlbertConfig.from_name(name)).eval()
