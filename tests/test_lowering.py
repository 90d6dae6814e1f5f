"""Quantization and XNNPACK lowering on small configs: programs against eager PyTorch."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from albert_edge.config import AlbertConfig
from albert_edge.lowering import export_program, lower
from albert_edge.model import AlbertModel, example_inputs
from albert_edge.quantize import QuantizedEmbedding, XnnpackLayerNorm, quantize, register_quantized_ops, to_delegate_form
from albert_edge.recipes import RECIPES, get_recipe

TINY = AlbertConfig.from_name("tiny", max_position_embeddings=48)
# Ops that may stay outside the delegate; anything else left out fails the test.
ALLOWED_OUTSIDE = {
    "aten.embedding.default",
    "quantized_decomposed.embedding_byte.default",
    "quantized_decomposed.embedding_4bit.default",
    "dim_order_ops._to_dim_order_copy.default",
    "aten.unsqueeze_copy.default",
    "aten.slice_copy.Tensor",
    "aten.select_copy.int",
    "sym_size.int",
}
MUST_DELEGATE = ("aten.linear.default", "aten.bmm.default", "aten._softmax.default", "aten.add.Tensor", "aten.mul.Tensor")


def sqnr_db(ref: torch.Tensor, test: torch.Tensor) -> float:
    return (10 * torch.log10(ref.pow(2).mean() / (ref - test).pow(2).mean())).item()


def run_program(buffer: bytes, inputs) -> list[torch.Tensor]:
    from executorch.runtime import Runtime

    register_quantized_ops()
    method = Runtime.get().load_program(buffer).load_method("forward")
    return method.execute(list(inputs))


@pytest.fixture(scope="module")
def model() -> AlbertModel:
    torch.manual_seed(0)
    return AlbertModel(TINY).eval()


@pytest.fixture(scope="module")
def programs(model):
    return {name: export_program(model, recipe, max_seq_len=TINY.max_position_embeddings) for name, recipe in RECIPES.items()}


def test_xnnpack_layer_norm_matches_torch():
    ln = nn.LayerNorm(64, eps=1e-12)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(2, 9, 64) * 3 + 5
    assert (XnnpackLayerNorm(ln)(x) - ln(x)).abs().max().item() <= 1e-5


def test_delegate_form_keeps_outputs(model):
    inputs = example_inputs(TINY, 11)
    with torch.no_grad():
        want = model(*inputs)[0]
        exact = to_delegate_form(copy.deepcopy(model))(*inputs)[0]
        approx = to_delegate_form(copy.deepcopy(model), gelu="xnnpack")(*inputs)[0]
    assert (exact - want).abs().max().item() <= 1e-5
    assert 0 < (approx - want).abs().max().item() <= 5e-3  # erf GELU: a small, real difference


def test_delegate_form_drops_dropout_and_folds_the_attention_scale_once(model):
    """Eval-mode dropout is identity, and the scale goes into the query projection: once for the
    shared layer, however many layer steps run it (TINY: one group, several steps)."""
    assert TINY.num_hidden_groups == 1 and TINY.num_hidden_layers > 1
    form = to_delegate_form(copy.deepcopy(model))
    assert not any(isinstance(m, nn.Dropout) for m in form.modules())
    [attention] = [m for m in model.modules() if type(m).__name__ == "AlbertAttention"]
    [folded] = [m for m in form.modules() if type(m).__name__ == "AlbertAttention"]
    assert attention.scale == TINY.head_dim**-0.5 and folded.scale == 1.0
    assert torch.equal(folded.query.weight, attention.query.weight * attention.scale)
    assert torch.equal(folded.query.bias, attention.query.bias * attention.scale)
    assert torch.equal(folded.key.weight, attention.key.weight)
    assert any(isinstance(m, nn.Dropout) for m in model.modules())  # the float model keeps its own


def test_quantize_does_not_touch_the_float_model(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    types = [type(m) for m in model.modules()]
    for recipe in RECIPES.values():
        quantize(model, recipe)
    assert [type(m) for m in model.modules()] == types
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("bits,group", [(8, 0), (4, 8)])
def test_quantized_embedding_error_is_within_half_a_step(bits, group):
    register_quantized_ops()
    table = torch.randn(50, 16)
    emb = QuantizedEmbedding(table, bits, group)
    ids = torch.arange(50)[None, :]
    got = emb(ids)[0]
    qmax = 2 ** (bits - 1) - 1
    groups = table.reshape(50, -1, group or 16)
    step = (groups.abs().amax(-1, keepdim=True) / qmax).expand_as(groups).reshape(50, 16)
    assert ((got - table).abs() <= step / 2 + 1e-6).all()
    assert emb.weight.dtype == (torch.int8 if bits == 8 else torch.uint8)
    assert emb.weight.numel() == table.numel() * bits // 8


def test_fp32_program_matches_eager_at_every_length(model, programs):
    for n in (1, 7, TINY.max_position_embeddings):
        inputs = example_inputs(TINY, n)
        with torch.no_grad():
            want = model(*inputs)
        got = run_program(programs["fp32"].buffer, inputs)
        for w, g in zip(want, got):
            assert g.shape == w.shape
            assert (g - w).abs().max().item() <= 1e-4


def test_padding_mask_is_honoured_by_the_program(model, programs):
    ids, mask, types = example_inputs(TINY, 10)
    mask[0, 6:] = 0
    with torch.no_grad():
        want = model(ids, mask, types)[0]
    got = run_program(programs["fp32"].buffer, (ids, mask, types))[0]
    assert (got - want).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name,min_db", [("int8", 20.0), ("int4", 10.0)])
def test_quantized_programs_keep_signal(model, programs, name, min_db):
    for n in (1, 13, TINY.max_position_embeddings):
        inputs = example_inputs(TINY, n)
        with torch.no_grad():
            want = model(*inputs)[0]
        got = run_program(programs[name].buffer, inputs)[0]
        assert sqnr_db(want, got) >= min_db


@pytest.mark.parametrize("name", list(RECIPES))
def test_everything_but_lookups_is_delegated(programs, name):
    report = programs[name].report
    assert set(report.undelegated_ops) <= ALLOWED_OUTSIDE, report.undelegated_ops
    for op in MUST_DELEGATE:
        assert report.delegated_ops.get(op, 0) > 0, op
    assert report.delegate_calls <= 4
    assert report.delegated_share > 0.95
    assert all(report.reasons[op] for op in report.undelegated_ops)


@pytest.mark.slow
def test_sizes_follow_the_recipes():
    # Wide enough that the weights, not the serialized graph (a few KB per delegate call), decide
    # the size: on TINY, int4's per-group scales and its graph outweigh what 4 bits save.
    wide = TINY.replace(vocab_size=2000, embedding_size=64, hidden_size=128, intermediate_size=512,
                        num_hidden_layers=1, num_attention_heads=4)
    torch.manual_seed(0)
    model = AlbertModel(wide).eval()
    sizes = {name: len(export_program(model, recipe, max_seq_len=16).buffer) for name, recipe in RECIPES.items()}
    assert sizes["int4"] < sizes["int8"] < sizes["fp32"] / 3, sizes


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["fp32", "int8"])
def test_shared_layers_are_stored_once(recipe):
    wide = TINY.replace(hidden_size=256, intermediate_size=1024)
    torch.manual_seed(0)
    one = AlbertModel(wide.replace(num_hidden_layers=1)).eval()
    six = AlbertModel(wide.replace(num_hidden_layers=6)).eval()
    six.load_state_dict(one.state_dict())
    a = len(lower(one, example_inputs(wide, 16), RECIPES[recipe]))
    b = len(lower(six, example_inputs(wide, 16), RECIPES[recipe]))
    layer_bytes = sum(p.numel() for p in one.encoder.albert_layer_groups.parameters())  # >= 1 byte each
    # 5 more layer steps add graph (a few KB of instructions each), not 5 more copies of the weights
    assert b - a < 0.1 * layer_bytes


@pytest.mark.slow
def test_delegate_calls_do_not_grow_with_layer_steps():
    """The int8 graph is one delegate call from the embeddings to the pooler's input, however many
    layer steps (XNNPACK's own partitioner cut it at every step's Q/K/V projection)."""
    calls = {}
    for steps in (1, 3):
        torch.manual_seed(0)
        model = AlbertModel(TINY.replace(num_hidden_layers=steps)).eval()
        calls[steps] = export_program(model, RECIPES["int8"], max_seq_len=16).report.delegate_calls
    # one before the [CLS] select (which XNNPACK cannot take under a dynamic length), one after
    assert calls == {1: 2, 3: 2}


def test_fixed_length_program_has_static_shape(model):
    program = export_program(model, RECIPES["fp32"], max_seq_len=12, dynamic=False)
    from executorch.runtime import Runtime

    meta = Runtime.get().load_program(program.buffer).metadata("forward")
    assert "sizes=[1, 12]" in str(meta)
    got = run_program(program.buffer, example_inputs(TINY, 12))[0]
    with torch.no_grad():
        assert (got - model(*example_inputs(TINY, 12))[0]).abs().max().item() <= 1e-4


def test_bad_recipe_and_length(model):
    with pytest.raises(ValueError, match="unknown recipe 'int2'; known recipes: fp32, int8, int4"):
        get_recipe("int2")
    with pytest.raises(ValueError, match=r"max_seq_len must be in \[1, max_position_embeddings=48\], got 49"):
        export_program(model, RECIPES["fp32"], max_seq_len=49)


def test_a_recipe_checks_its_own_fields():
    from albert_edge.errors import ConfigError
    from albert_edge.recipes import Recipe

    with pytest.raises(ConfigError, match=r"recipe 'x': linear 'int3' is not one of fp32, int8-dynamic, int4-8da4w"):
        Recipe("x", linear="int3", embedding="fp32")
    with pytest.raises(ConfigError, match=r"recipe 'x': embedding 'int2' is not one of fp32, int8, int4"):
        Recipe("x", linear="fp32", embedding="int2")
    with pytest.raises(ConfigError, match=r"recipe 'x': gelu 'fast' is not one of exact, xnnpack"):
        Recipe("x", linear="fp32", embedding="fp32", gelu="fast")
    with pytest.raises(ConfigError, match=r"4-bit weights need an even group_size >= 2, got 0"):
        Recipe("x", linear="int4-8da4w", embedding="int8")
    with pytest.raises(ConfigError, match=r"group_size 32 is only for 4-bit weights"):
        Recipe("x", linear="int8-dynamic", embedding="int8", group_size=32)
    assert all(Recipe(**r.to_dict()) == r for r in RECIPES.values())  # the table itself is valid


def _train_tiny_classifier(steps: int = 150):
    """A tiny classifier trained on a learnable synthetic task: is token 7 in the sequence?"""
    from albert_edge.model import AlbertForSequenceClassification

    config = TINY.replace(labels=("absent", "present"))
    torch.manual_seed(0)
    model = AlbertForSequenceClassification(config)
    g = torch.Generator().manual_seed(1)

    def batch(n: int):
        ids = torch.randint(8, config.vocab_size, (n, 12), generator=g)
        labels = torch.randint(0, 2, (n,), generator=g)
        where = torch.randint(0, 12, (n,), generator=g)
        ids[labels.bool(), where[labels.bool()]] = 7
        return ids, labels

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        ids, labels = batch(32)
        loss = torch.nn.functional.cross_entropy(model(ids), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, batch(300)


@pytest.mark.slow
def test_int8_agrees_with_float_on_a_trained_classifier():
    model, (ids, labels) = _train_tiny_classifier()
    with torch.no_grad():
        float_pred = model(ids).argmax(-1)
    assert (float_pred == labels).float().mean().item() > 0.9  # the task was learned
    program = export_program(model, RECIPES["int8"], max_seq_len=16)
    from executorch.runtime import Runtime

    register_quantized_ops()
    method = Runtime.get().load_program(program.buffer).load_method("forward")
    int8_pred = torch.cat([
        method.execute([ids[i : i + 1], torch.ones_like(ids[i : i + 1]), torch.zeros_like(ids[i : i + 1])])[0].argmax(-1)
        for i in range(len(ids))
    ])
    assert (int8_pred == float_pred).float().mean().item() >= 0.99
