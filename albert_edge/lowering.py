"""Lowering to ExecuTorch with the XNNPACK delegate: ``lower(model, example_inputs, recipe) -> bytes``.

The exported program has the narrow signature ``(input_ids, attention_mask, token_type_ids)``,
int64 tensors of shape (1, S), and returns the model's outputs. With ``dynamic=True`` one program
accepts every S in [1, max_seq_len]; otherwise S is fixed at max_seq_len.

Lowering is pure: nothing is written here (see ``bundle`` for that), and the float model is not
changed (``quantize`` works on a copy).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.fx.passes.infra.pass_base import PassResult

from albert_edge.config import INPUT_NAMES
from albert_edge.model import example_inputs as make_example_inputs
from albert_edge.quantize import quantize, register_quantized_ops
from albert_edge.recipes import Recipe

log = logging.getLogger(__name__)

# Why an op that stays outside the delegate does so (each runs once per inference unless noted).
UNDELEGATED_REASONS = {
    "aten.embedding.default": "table lookup (gather): XNNPACK has no embedding op",
    "quantized_decomposed.embedding_byte.default": "int8 table lookup: ExecuTorch's quantized kernel",
    "quantized_decomposed.embedding_4bit.default": "int4 table lookup: ExecuTorch's quantized kernel",
    "dim_order_ops._to_dim_order_copy.default": "int64 attention mask to float: XNNPACK has no int64",
    "aten._to_copy.default": "int64 attention mask to float: XNNPACK has no int64",
    "aten.unsqueeze_copy.default": "int64 attention mask reshape, before its conversion",
    "aten.slice_copy.Tensor": "position table cut to the dynamic length: XNNPACK slices need static shapes",
    "aten.select_copy.int": "[CLS] row for the pooler: XNNPACK has no select under a dynamic length",
    "sym_size.int": "reads the dynamic sequence length (no computation)",
}
_BOOKKEEPING = {"getitem", "executorch_call_delegate"}


@dataclass
class DelegationReport:
    """What went to XNNPACK and what did not."""

    delegate_calls: int
    delegated_ops: dict[str, int]
    undelegated_ops: dict[str, int]
    reasons: dict[str, str] = field(default_factory=dict)
    # XNNPACK operators per inference: the nodes of all delegate graphs by kind; each is one
    # parallel region on the threadpool. Creating the runtime, XNNPACK fuses a few more (each
    # int8 GEMM's input quantization into the GEMM, each LayerNorm's square into its mean): the
    # profile (``profiling``) counts what runs.
    xnnpack_node_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def xnnpack_operators(self) -> int:
        return sum(self.xnnpack_node_kinds.values())

    @property
    def delegated_nodes(self) -> int:
        return sum(self.delegated_ops.values())

    @property
    def delegated_share(self) -> float:
        """Delegated share of compute nodes (reading the sequence length is not compute)."""
        outside = sum(n for op, n in self.undelegated_ops.items() if op != "sym_size.int")
        total = self.delegated_nodes + outside
        return self.delegated_nodes / total if total else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "delegate_calls": self.delegate_calls,
            "xnnpack_operators": self.xnnpack_operators,
            "xnnpack_node_kinds": self.xnnpack_node_kinds,
            "delegated_nodes": self.delegated_nodes,
            "delegated_share": round(self.delegated_share, 4),
            "delegated_ops": self.delegated_ops,
            "undelegated_ops": {op: {"count": n, "reason": self.reasons.get(op, "")} for op, n in self.undelegated_ops.items()},
        }


@dataclass
class LoweredProgram:
    buffer: bytes
    recipe: Recipe
    max_seq_len: int
    dynamic: bool
    report: DelegationReport  # forward's
    seconds: float
    # the other methods' (an adaptive program's embed, layer and exit_k), by method name
    method_reports: dict[str, DelegationReport] = field(default_factory=dict)


def _op_name(target: Any) -> str:
    """``aten.embedding.default`` style name of a node target (edge ops name the ATen op they wrap)."""
    op = getattr(target, "_op", target)
    if isinstance(op, torch._ops.OpOverload):
        return str(op)
    return getattr(target, "__name__", str(target))


def infer_single_dynamic_dim(gm: torch.fx.GraphModule) -> PassResult:
    """Write the one symbolic size of a ``view_copy`` shape as ``-1``.

    Export records ``reshape(B, -1, nh, hd)`` with the sequence length as a symbol; XNNPACK's
    partitioner refuses symbolic shapes but takes one inferred dimension, which is the same thing.
    """
    from executorch.exir.dialects._ops import ops as exir_ops

    changed = False
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target == exir_ops.edge.aten.view_copy.default:
            shape = list(node.args[1])
            symbolic = [i for i, d in enumerate(shape) if not isinstance(d, int)]
            if len(symbolic) == 1 and -1 not in shape:
                shape[symbolic[0]] = -1
                node.args = (node.args[0], shape, *node.args[2:])
                changed = True
    if changed:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return PassResult(gm, changed)


def merge_partitions(partitions: list[Any]) -> list[Any]:
    """Merge partitions pairwise while the union stays free of cycles, until no pair can be.

    XNNPACK's partitioner merges its op groups in one greedy pass. A dynamically quantized
    linear's group (choose_qparams, quantize, dequantize and the linears that share them) spans
    several ops, and the pass leaves the int8 graph cut at every layer step's Q/K/V projection:
    albert-base int8 was 14 delegate calls, each with its own inputs and outputs in the method's
    planned memory (3.1 MB against 0.6 MB for fp32's 2 calls) and its own synchronisation.
    Whole partitions are merged, so every op group stays in one piece.
    """
    from torch.fx.passes.infra.partitioner import Partition
    from torch.fx.passes.utils.fuser_utils import validate_partition

    groups = [set(p.nodes) for p in partitions]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                union = groups[i] | groups[j]
                if validate_partition(list(union)):
                    groups[i] = union
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return [Partition(id=i, nodes=g) for i, g in enumerate(groups)]


def _partitioner():
    """XNNPACK's partitioner, with its partitions merged as far as they go (``merge_partitions``)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackPartitioner,
    )

    class MergingXnnpackPartitioner(XnnpackPartitioner):
        def generate_partitions(self, ep):
            return merge_partitions(super().generate_partitions(ep))

    return MergingXnnpackPartitioner()


def xnnpack_node_kinds(payload: bytes) -> Counter[str]:
    """The nodes of one XNNPACK delegate payload by kind (``XNNFullyConnected``: 7, ...), read
    from its flatbuffer graph.

    The payload is XNNPACK's header, then the ``XNNGraph`` flatbuffer, then constant data; the
    flatbuffer is decoded with ExecuTorch's own ``flatc`` and schema.
    """
    import json
    import tempfile
    from pathlib import Path

    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader, _get_schema_bytes
    from executorch.exir._serialize._flatbuffer import _flatc_decompile

    header = XNNHeader.from_bytes(payload[:XNNHeader.EXPECTED_LENGTH])
    graph = payload[header.flatbuffer_offset:header.flatbuffer_offset + header.flatbuffer_size]
    with tempfile.TemporaryDirectory(prefix="albert-edge-xnn-") as d:
        schema, data = Path(d, "schema.fbs"), Path(d, "graph.bin")
        schema.write_bytes(_get_schema_bytes())  # the schema the payload was written with
        data.write_bytes(graph)
        _flatc_decompile(d, str(schema), str(data))
        nodes = json.loads(Path(d, "graph.json").read_text()).get("xnodes", [])
    return Counter(n["xnode_union_type"] for n in nodes)


def delegation_report(edge_program) -> DelegationReport:
    """Count delegated ops (inside each XNNPACK call) and the ops left outside, with reasons."""
    gm = edge_program.graph_module
    delegated: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    calls = 0
    kinds: Counter[str] = Counter()
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target is torch.ops.higher_order.executorch_call_delegate:
            calls += 1
            lowered = getattr(gm, node.args[0].target)
            kinds += xnnpack_node_kinds(lowered.processed_bytes)
            for inner in lowered.original_module.graph.nodes:
                if inner.op == "call_function" and _op_name(inner.target) not in _BOOKKEEPING:
                    delegated[_op_name(inner.target)] += 1
        elif _op_name(node.target) not in _BOOKKEEPING:
            outside[_op_name(node.target)] += 1
    reasons = {op: UNDELEGATED_REASONS.get(op, "not supported by the XNNPACK partitioner") for op in outside}
    return DelegationReport(calls, dict(sorted(delegated.items())), dict(sorted(outside.items())), reasons,
                            dict(kinds.most_common()))


def program_constants(config, max_seq_len: int, dynamic: bool) -> dict[str, int]:
    """Constant methods stored in every program: the input bounds the runtime checks."""
    return {
        "get_max_seq_len": max_seq_len,
        "get_min_seq_len": 1 if dynamic else max_seq_len,
        "get_vocab_size": config.vocab_size,
        "get_type_vocab_size": config.type_vocab_size,
    }


def dynamic_shapes(max_seq_len: int) -> tuple[dict[int, Any], ...]:
    seq = torch.export.Dim("seq", min=1, max=max_seq_len)
    return tuple({1: seq} for _ in INPUT_NAMES)


def check_max_seq_len(config: Any, max_seq_len: int) -> None:
    if not 1 <= max_seq_len <= config.max_position_embeddings:
        raise ValueError(
            f"max_seq_len must be in [1, max_position_embeddings={config.max_position_embeddings}], got {max_seq_len}"
        )


def to_edge(exported: Any, constants: dict[str, int]) -> Any:
    """Exported program(s) (one, or a dict by method name) lowered to XNNPACK, with ``constants``
    as constant methods: facts a runtime needs to check inputs, readable from a bare .pte."""
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    return to_edge_transform_and_lower(
        exported,
        transform_passes=[infer_single_dynamic_dim],
        partitioner=[_partitioner()],
        # The IR validity check re-runs every node on fake tensors; it costs about a minute for
        # albert-base; the tests check every recipe's program against eager instead.
        compile_config=EdgeCompileConfig(_check_ir_validity=False),
        constant_methods=constants,
    )


def export_program(
    model: nn.Module,
    recipe: Recipe,
    *,
    max_seq_len: int = 128,
    dynamic: bool = True,
    calibration: list[tuple[Tensor, ...]] | None = None,
) -> LoweredProgram:
    """Quantize (on a copy), export and lower ``model``; returns the program and its report."""
    config = model.config
    check_max_seq_len(config, max_seq_len)
    start = time.perf_counter()
    register_quantized_ops()
    example = make_example_inputs(config, min(max_seq_len, 16) if dynamic else max_seq_len)
    shapes = dynamic_shapes(max_seq_len) if dynamic else None
    q = quantize(model, recipe, calibration or [example], dynamic_shapes=shapes)
    with torch.no_grad():
        exported = torch.export.export(q, example, dynamic_shapes=shapes)
    edge = to_edge(exported, program_constants(config, max_seq_len, dynamic))
    report = delegation_report(edge.exported_program())
    buffer = edge.to_executorch().buffer
    seconds = time.perf_counter() - start
    log.info("lowered %s: %d bytes, %d XNNPACK operators in %d delegate calls, %.1f s", recipe.name, len(buffer),
             report.xnnpack_operators, report.delegate_calls, seconds)
    return LoweredProgram(buffer, recipe, max_seq_len, dynamic, report, seconds)


def lower(
    model: nn.Module, example_inputs: tuple[Tensor, ...], recipe: Recipe, *, dynamic: bool = True
) -> bytes:
    """The ``.pte`` bytes for ``model`` under ``recipe``; the example fixes the maximum length
    (``dynamic=True``: any length 1..S) or the one length (``dynamic=False``)."""
    max_seq_len = example_inputs[0].shape[1]
    return export_program(model, recipe, max_seq_len=max_seq_len, dynamic=dynamic, calibration=[example_inputs]).buffer
