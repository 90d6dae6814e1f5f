"""Export recipes: one explicit table of how each program is quantized and lowered.

Every recipe lowers to ExecuTorch with the XNNPACK delegate. The table is the only place a recipe
is defined; the bundle manifest records the recipe name and its fields for each program.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Recipe:
    name: str
    linear: str  # "fp32" | "int8-dynamic" (8-bit per-channel weights, int8 activations per call)
    #              | "int4-8da4w" (4-bit grouped weights, int8 dynamic activations)
    embedding: str  # word embedding table: "fp32" | "int8" (per row) | "int4" (per group)
    group_size: int = 0  # weight group size for int4 linears and int4 embeddings; 0 = not grouped
    # "exact": the model's activation as written (gelu_new in 6 delegated elementwise ops);
    # "xnnpack": XNNPACK's single GELU op (erf form), within 4.7e-4 of gelu_new per activation
    # and about 1 ms per layer faster at 128 tokens on 2 cores: used where quantization's own
    # error is far larger.
    gelu: str = "exact"
    when: str = ""  # when to use it, shown by `albert-edge export --help` and in the manifest

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
    """The recipe called ``name``; raises ValueError listing the known ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
