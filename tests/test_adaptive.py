"""Adaptive-depth programs (embed, layer, exit_k beside forward) against forward and eager PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from albert_edge.adaptive import export_adaptive_program, exit_method, step_method
from albert_edge.runtime import Program
from albert_edge.config import AlbertConfig
from albert_edge.errors import ProgramError
from albert_edge.errors import ExitError
from albert_edge.exit_rules import ExitRule, apply_rule
from albert_edge.exits import ExitHeads, step_logits, train_exits
from albert_edge.lowering import export_program
from albert_edge.model import AlbertForSequenceClassification
from albert_edge.recipes import get_recipe

TINY = AlbertConfig.from_name("tiny", num_hidden_layers=4, max_position_embeddings=32, labels=("a", "b", "c"))
# Ops that may run outside the delegate in the loop's methods (see lowering.UNDELEGATED_REASONS).
ALLOWED_OUTSIDE = {
    "aten.embedding.default", "quantized_decomposed.embedding_byte.default", "aten.slice_copy.Tensor",
    "sym_size.int", "aten.unsqueeze_copy.default", "dim_order_ops._to_dim_order_copy.default",
    "aten.select_copy.int",
}


def _inputs(seq: int, seed: int, pad: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, TINY.vocab_size, (1, seq), generator=g)
    mask = torch.ones_like(ids)
    if pad:
        mask[0, seq - pad:] = 0
    types = torch.zeros_like(ids)
    types[0, seq // 2:] = 1
    return ids, mask, types


@pytest.fixture(scope="module")
def model_and_exits():
    torch.manual_seed(0)
    model = AlbertForSequenceClassification(TINY).eval()
    with torch.no_grad():  # a head that separates inputs, so the exits have predictions to differ on
        model.classifier.weight.normal_(0, 3)
    batches = [_inputs(12, s) for s in range(64)]
    return model, train_exits(model, batches, epochs=5)


@pytest.fixture(scope="module", params=[("fp32", True), ("int8", True), ("int8", False)], ids=["fp32", "int8", "int8-separate"])
def program(request, model_and_exits, tmp_path_factory):
    model, exits = model_and_exits
    recipe, fused = request.param
    lowered = export_adaptive_program(model, exits, get_recipe(recipe), max_seq_len=TINY.max_position_embeddings,
                                      fused_steps=fused)
    path = tmp_path_factory.mktemp("adaptive") / f"{recipe}.pte"
    path.write_bytes(lowered.buffer)
    prog = Program(path)
    assert prog.fused_steps == fused  # the runtime takes the fused methods where they are
    return recipe, lowered, prog


CASES = [(8, 1, 0), (32, 2, 0), (20, 3, 6), (1, 4, 0)]


def test_full_depth_through_the_loop_is_forward(program, model_and_exits):
    recipe, _, prog = program
    model, _ = model_and_exits
    for seq, seed, pad in CASES:
        raw = _inputs(seq, seed, pad)
        inputs = prog.check_inputs(*raw)
        (full,) = prog.run_checked(inputs)
        last = prog.run_steps(inputs)[-1]
        if recipe == "fp32":
            assert torch.equal(full, last), (seq, seed)  # bit for bit
        else:
            # The int8 tolerance a bundle's goldens give this program: 4x its distance from eager
            # fp32, at least 1e-3 (bundle.QUANTIZED_ATOL, TOLERANCE_FACTOR). The fused step
            # methods quantize their activations on their own: measured 0.01-0.04 from forward.
            with torch.no_grad():
                eager = model(*raw)
            atol = max(1e-3, 4 * float((full - eager).abs().max()))
            assert float((full - last).abs().max()) <= atol, (seq, seed)


def test_every_step_matches_eager(program, model_and_exits):
    recipe, _, prog = program
    model, exits = model_and_exits
    atol = 1e-4 if recipe == "fp32" else 0.15
    for seq, seed, pad in CASES:
        raw = _inputs(seq, seed, pad)
        eager = step_logits(model, exits, *raw)[:, 0]
        steps = torch.cat(prog.run_steps(prog.check_inputs(*raw)))
        assert steps.shape == eager.shape
        assert float((steps - eager).abs().max()) <= atol, (recipe, seq)


def test_the_loop_stops_where_the_rule_says(program):
    _, _, prog = program
    rules = [ExitRule("patience", 1), ExitRule("patience", 2), ExitRule("confidence", 0.6), ExitRule("confidence", 1.0)]
    for seq, seed, pad in CASES:
        inputs = prog.check_inputs(*_inputs(seq, seed, pad))
        every = torch.cat(prog.run_steps(inputs)).numpy()[:, None, :]  # (steps, 1, labels)
        for rule in rules:
            logits, depth = prog.run_adaptive(inputs, rule)
            expected = apply_rule(rule, every)
            assert depth == expected.depths[0], (rule, seq)
            assert torch.equal(logits[0], torch.from_numpy(every[depth - 1, 0]))
    assert prog.num_steps == TINY.num_hidden_layers


def test_the_loop_methods_are_delegated(program):
    _, lowered, prog = program
    fused = {step_method(k) for k in range(1, 5)} if prog.fused_steps else set()
    assert set(lowered.method_reports) == {"embed", "layer", *(exit_method(k) for k in range(1, 5))} | fused
    for name, report in lowered.method_reports.items():
        # a fused step is cut in two where the [CLS] row is selected (and first_step, like
        # forward, where the int64 mask becomes float)
        assert report.delegate_calls == (1 if name in ("embed", "layer") or name.startswith("exit") else 2), name
        assert set(report.undelegated_ops) <= ALLOWED_OUTSIDE, (name, report.undelegated_ops)


@pytest.mark.parametrize("recipe", ["fp32", "int8"])
def test_nothing_is_stored_twice(recipe):
    # The adaptive program holds forward (every step of the shared layer), the layer method, the
    # exits and the fused step methods; the layer's weights and the embedding table are stored
    # once (ExecuTorch keeps one copy of equal constant data), so it is larger than the plain
    # program by the exit heads and the methods' graphs, not by another layer or table. (Before
    # the embedding was quantized in first_step too, an int8 first_step held a float copy of the
    # table: the default model's program was 6.6 MB instead of 2.5 MB.)
    # (Tensors of a few KB are inlined per method instead: this needs a wider model than TINY.)
    config = AlbertConfig.from_name("tiny", hidden_size=128, intermediate_size=512, num_hidden_layers=3,
                                    embedding_size=128, vocab_size=4000, labels=("a", "b"))
    torch.manual_seed(0)
    model = AlbertForSequenceClassification(config).eval()
    exits = ExitHeads.for_model(model)
    with torch.no_grad():  # heads of their own: a copy of the model's head would be stored once too
        for p in exits.parameters():
            p.add_(0.01)
    plain = len(export_program(model, get_recipe(recipe), max_seq_len=16).buffer)
    adaptive = len(export_adaptive_program(model, exits, get_recipe(recipe), max_seq_len=16).buffer)
    width = 4 if recipe == "fp32" else 1  # bytes per weight
    heads = sum(p.numel() for p in exits.parameters()) * width
    layer = sum(p.numel() for p in model.albert.encoder.albert_layer_groups.parameters()) * width
    table = config.vocab_size * config.embedding_size * 4  # a float copy of the table
    print(recipe, plain, adaptive, adaptive - plain, heads, layer, table)
    assert 0 < adaptive - plain <= heads + 48_000 < layer, (plain, adaptive, heads, layer)


def test_a_plain_program_is_not_adaptive(model_and_exits, tmp_path):
    model, _ = model_and_exits
    path = tmp_path / "plain.pte"
    path.write_bytes(export_program(model, get_recipe("fp32"), max_seq_len=32).buffer)
    prog = Program(path)
    assert prog.num_steps is None
    with pytest.raises(ProgramError, match="not an adaptive program"):
        prog.run_steps(prog.check_inputs(*_inputs(8, 1)))


def test_several_layer_groups_are_refused():
    config = AlbertConfig.from_name("tiny", num_hidden_layers=4, num_hidden_groups=2, labels=("a", "b"))
    model = AlbertForSequenceClassification(config).eval()
    with pytest.raises(ExitError, match="one shared layer group"):
        export_adaptive_program(model, ExitHeads.for_model(model), get_recipe("fp32"), max_seq_len=16)


def test_exit_rule_for_a_program_is_deterministic(program):
    # the same input twice gives the same depth and logits (no state left between calls)
    _, _, prog = program
    inputs = prog.check_inputs(*_inputs(16, 9))
    a = prog.run_adaptive(inputs, ExitRule("confidence", 0.7))
    prog.run_steps(prog.check_inputs(*_inputs(30, 10, 4)))
    b = prog.run_adaptive(inputs, ExitRule("confidence", 0.7))
    assert a[1] == b[1] and np.array_equal(a[0].numpy(), b[0].numpy())
