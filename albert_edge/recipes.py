"""Export recipes: one explicit table of how each program is quantized and lowered.

Every recipe lowers to ExecuTorch with the XNNPACK delegate. The table is the only place a recipe
is defined; the bundle manifest records the recipe name and its fields for each program.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from albert_edge.errors import ConfigError

# The schemes a recipe field may name (quantize.py implements each).
LINEAR_SCHEMES = {
    "fp32": "float linear layers",
    "int8-dynamic": "8-bit per-channel weights, int8 activations quantized per call",
    "int4-8da4w": "4-bit weights in groups of group_size, int8 dynamic activations",
}
EMBEDDING_SCHEMES = {"fp32": "float table", "int8": "8 bits per entry, a scale per row",
                     "int4": "4 bits per entry, a scale per group of group_size"}
# "exact": the model's activation as written (gelu_new in 6 delegated elementwise ops);
# "xnnpack": XNNPACK's single GELU op (erf form), within 4.7e-4 of gelu_new per activation and
# about 1 ms per layer faster at 128 tokens on 2 cores: used where quantization's own error is
# far larger.
GELU_FORMS = ("exact", "xnnpack")


@dataclass(frozen=True)
class Recipe:
    name: str
    linear: str  # a LINEAR_SCHEMES key
    embedding: str  # the word embedding table: an EMBEDDING_SCHEMES key
    group_size: int = 0  # weight group size for int4 linears and int4 embeddings; 0 = not grouped
    gelu: str = "exact"  # a GELU_FORMS entry
    when: str = ""  # when to use it, shown by `albert-edge export --help` and in the manifest

    def __post_init__(self) -> None:
        for field_name, value, accepted in (("linear", self.linear, LINEAR_SCHEMES),
                                            ("embedding", self.embedding, EMBEDDING_SCHEMES),
                                            ("gelu", self.gelu, GELU_FORMS)):
            if value not in accepted:
                raise ConfigError(f"recipe {self.name!r}: {field_name} {value!r} is not one of {', '.join(accepted)}")
        grouped = self.linear == "int4-8da4w" or self.embedding == "int4"
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, int) or self.group_size < 0:
            raise ConfigError(f"recipe {self.name!r}: group_size must be an integer >= 0, got {self.group_size!r}")
        if grouped and (self.group_size < 1 or self.group_size % 2):
            raise ConfigError(f"recipe {self.name!r}: 4-bit weights need an even group_size >= 2, "
                              f"got {self.group_size}")
        if not grouped and self.group_size:
            raise ConfigError(f"recipe {self.name!r}: group_size {self.group_size} is only for 4-bit weights "
                              "(linear int4-8da4w or embedding int4); use 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    "fp32": Recipe(
        name="fp32",
        linear="fp32",
        embedding="fp32",
        # The float reference on the device: about 4 bytes per parameter. Use it to measure what
        # quantization costs, or where no accuracy loss at all is acceptable.
        when="float reference: exact eager outputs, ~4 bytes/parameter, slowest",
    ),
    "int8": Recipe(
        name="int8",
        linear="int8-dynamic",
        embedding="int8",
        gelu="xnnpack",
        # The default for phones: every linear layer runs XNNPACK's dynamically quantized int8
        # GEMM (per-channel weights, activations quantized per call, so no calibration data is
        # needed) and the word embedding is one byte per entry: ~1 byte per parameter, with
        # top-1 agreement with fp32 typically above 99%.
        when="default: ~1 byte/parameter, int8 GEMMs, near-float accuracy",
    ),
    "int4": Recipe(
        name="int4",
        linear="int4-8da4w",
        embedding="int8",
        group_size=32,
        gelu="xnnpack",
        # The smallest file: 4-bit weights in groups of 32 with int8 dynamic activations
        # ("8da4w"). Use when download or storage size matters more than the accuracy it costs;
        # check agreement with `albert-edge compare` before shipping it.
        when="smallest: 4-bit grouped weights, int8 embedding; check accuracy before shipping",
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; raises ConfigError listing the known ones."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
