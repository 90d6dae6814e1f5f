"""ALBERT configuration: one frozen dataclass with Hugging Face's field names and defaults.

Presets live in ``PRESETS`` behind ``AlbertConfig.from_name``; ``config.json`` files written by
transformers are read with ``AlbertConfig.from_hf_dict`` / ``load`` and written back with
``to_hf_dict`` / ``save``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from albert_edge._io import atomic_write_text, read_json_object
from albert_edge.errors import ConfigError

# Short head names accepted wherever a head is chosen (CLI, load_pretrained), and the model
# class (config.json "architectures") each names; a bundle's task is one of these names.
HEADS = {
    "base": "AlbertModel",
    "pretraining": "AlbertForPreTraining",
    "masked-lm": "AlbertForMaskedLM",
    "sequence-classification": "AlbertForSequenceClassification",
    "token-classification": "AlbertForTokenClassification",
    "question-answering": "AlbertForQuestionAnswering",
}

# The inputs of every exported program, in order: int64 tensors of shape (1, S). The manifest,
# the runtime's checks and the app all name them so.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")

# Every hidden_act the model implements (transformers' names) and the function it is: GELU's
# exact erf form (the v1 checkpoints), its tanh approximation, ReLU or SiLU. model.ACT_FNS maps
# the forms to code; quantize swaps the GELU family for XNNPACK's GELU op.
ACTIVATIONS = {"gelu": "gelu-erf", "gelu_new": "gelu-tanh", "gelu_pytorch_tanh": "gelu-tanh",
               "gelu_fast": "gelu-tanh", "relu": "relu", "silu": "silu", "swish": "silu"}
GELU_ACTIVATIONS = tuple(name for name, form in ACTIVATIONS.items() if form.startswith("gelu"))



@dataclass(frozen=True)
class AlbertConfig:
    vocab_size: int = 30000
    embedding_size: int = 128  # E: width of the factorized embedding, projected to hidden_size
    hidden_size: int = 4096
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1  # distinct parameter groups; layer i uses group i // (L / G)
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    inner_group_num: int = 1  # layers inside each group, applied in sequence at every step
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    classifier_dropout_prob: float | None = 0.1
    pad_token_id: int = 0
    # Output labels of classification heads (HF's id2label in id order); len() is num_labels.
    labels: tuple[str, ...] = ("LABEL_0", "LABEL_1")

    def __post_init__(self) -> None:
        # JSON gives lists; keep the dataclass hashable and immutable.
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        self.validate()

    # ---- derived values -------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def layers_per_group(self) -> int:
        return self.num_hidden_layers // self.num_hidden_groups

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    # ---- validation -----------------------------------------------------------------------
    def validate(self) -> None:
        positive = (
            "vocab_size",
            "embedding_size",
            "hidden_size",
            "num_hidden_layers",
            "num_hidden_groups",
            "num_attention_heads",
            "intermediate_size",
            "inner_group_num",
            "max_position_embeddings",
            "type_vocab_size",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.num_hidden_layers % self.num_hidden_groups:
            raise ConfigError(
                f"num_hidden_layers ({self.num_hidden_layers}) must be divisible by "
                f"num_hidden_groups ({self.num_hidden_groups})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(
                f"hidden_act {self.hidden_act!r} is not supported; use one of {', '.join(ACTIVATIONS)}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout_prob":
                continue
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1), got {value!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            raise ConfigError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if not isinstance(self.initializer_range, (int, float)) or self.initializer_range < 0:
            raise ConfigError(f"initializer_range must be >= 0, got {self.initializer_range!r}")
        if not isinstance(self.pad_token_id, int) or not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"pad_token_id must be an id in [0, vocab_size={self.vocab_size}), got {self.pad_token_id!r}"
            )
        if not self.labels:
            raise ConfigError("labels must name at least one output (num_labels >= 1)")
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels must be unique, got {list(self.labels)}")

    # ---- presets --------------------------------------------------------------------------
    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> "AlbertConfig":
        """A preset by name (``albert-base-v2``, ``tiny``, ...), optionally with fields overridden."""
        key = name.removeprefix("albert/")
        if key not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[key], **overrides)

    def replace(self, **changes: Any) -> "AlbertConfig":
        return dataclasses.replace(self, **changes)

    # ---- Hugging Face config.json ---------------------------------------------------------
    @classmethod
    def from_hf_dict(cls, data: dict[str, Any], source: str = "config.json") -> "AlbertConfig":
        """Build from a transformers ``config.json`` dict; unknown bookkeeping keys are ignored."""
        model_type = data.get("model_type", "albert")
        if model_type != "albert":
            raise ConfigError(f"{source}: model_type is {model_type!r}, expected 'albert'")
        pet = data.get("position_embedding_type", "absolute")
        if pet != "absolute":
            raise ConfigError(
                f"{source}: position_embedding_type {pet!r} is not supported; only 'absolute'"
            )
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name != "labels" and f.name in data:
                kwargs[f.name] = data[f.name]
        id2label = data.get("id2label")
        if id2label:
            try:
                order = sorted(id2label.items(), key=lambda kv: int(kv[0]))
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{source}: id2label keys must be integers, got {list(id2label)}") from err
            if [int(k) for k, _ in order] != list(range(len(order))):
                raise ConfigError(f"{source}: id2label keys must be 0..N-1, got {[k for k, _ in order]}")
            kwargs["labels"] = tuple(v for _, v in order)
        elif "num_labels" in data:
            kwargs["labels"] = tuple(f"LABEL_{i}" for i in range(int(data["num_labels"])))
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
        except TypeError as err:  # a field of the wrong JSON type slipped past validation
            raise ConfigError(f"{source}: {err}") from None

    def to_hf_dict(self, architecture: str | None = None) -> dict[str, Any]:
        """The transformers ``config.json`` dict (loads with ``transformers.AlbertConfig``)."""
        data: dict[str, Any] = {"model_type": "albert"}
        if architecture:
            data["architectures"] = [architecture]
        for f in dataclasses.fields(self):
            if f.name != "labels":
                data[f.name] = getattr(self, f.name)
        data["id2label"] = {str(i): label for i, label in self.id2label.items()}
        data["label2id"] = self.label2id
        data["position_embedding_type"] = "absolute"
        data["bos_token_id"] = 2
        data["eos_token_id"] = 3
        return data

    @classmethod
    def load(cls, path: str | os.PathLike) -> "AlbertConfig":
        """Read a transformers ``config.json`` (or a directory holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        return cls.from_hf_dict(read_json_object(path, ConfigError), source=str(path))

    def save(self, path: str | os.PathLike, architecture: str | None = None) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_hf_dict(architecture), indent=2) + "\n")


def _v1(config: AlbertConfig) -> AlbertConfig:
    # The v1 checkpoints use exact GELU and dropout 0.1 (xxlarge-v1 excepted: no dropout).
    return dataclasses.replace(
        config, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1
    )


_BASE = AlbertConfig(hidden_size=768, num_attention_heads=12, intermediate_size=3072)
_LARGE = AlbertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
_XLARGE = AlbertConfig(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, intermediate_size=8192)
_XXLARGE = AlbertConfig()  # HF's defaults are albert-xxlarge's shape

PRESETS: dict[str, AlbertConfig] = {
    "albert-base-v2": _BASE,
    "albert-large-v2": _LARGE,
    "albert-xlarge-v2": _XLARGE,
    "albert-xxlarge-v2": _XXLARGE,
    "albert-base-v1": _v1(_BASE),
    "albert-large-v1": _v1(_LARGE),
    "albert-xlarge-v1": _v1(_XLARGE),
    "albert-xxlarge-v1": dataclasses.replace(_XXLARGE, hidden_act="gelu"),
    # For tests: every ALBERT feature at toy size (E != H, shared layers).
    "tiny": AlbertConfig(
        vocab_size=99,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    ),
}
