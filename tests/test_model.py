"""Tiny-config tests of the model itself: shapes, sharing, activations, export."""

from __future__ import annotations

import pytest
import torch

from albert_edge.config import AlbertConfig
from albert_edge.model import (
    ARCHITECTURES,
    AlbertForMaskedLM,
    AlbertForPreTraining,
    AlbertForQuestionAnswering,
    AlbertModel,
    example_inputs,
    gelu_new,
)

TINY = AlbertConfig.from_name("tiny")


def _meta_params(name: str) -> int:
    with torch.device("meta"):
        return AlbertModel(AlbertConfig.from_name(name)).num_parameters()


def test_albert_base_v2_parameter_count():
    assert AlbertModel(AlbertConfig.from_name("albert-base-v2")).num_parameters() == 11_683_584


@pytest.mark.parametrize(
    "name,count",
    # transformers' AlbertModel.num_parameters() for the published checkpoints
    [("albert-large-v2", 17_683_968), ("albert-xlarge-v2", 58_724_864), ("albert-xxlarge-v2", 222_595_584)],
)
def test_larger_preset_parameter_counts(name, count):
    assert _meta_params(name) == count


def test_layer_steps_share_one_group():
    """12 layer steps over 1 group have the parameters of 1 layer step."""
    one = AlbertModel(TINY.replace(num_hidden_layers=1)).num_parameters()
    twelve = AlbertModel(TINY.replace(num_hidden_layers=12)).num_parameters()
    assert one == twelve
    two_groups = AlbertModel(TINY.replace(num_hidden_layers=12, num_hidden_groups=2)).num_parameters()
    per_layer = sum(p.numel() for p in AlbertModel(TINY).encoder.albert_layer_groups[0].parameters())
    assert two_groups == one + per_layer


def test_group_schedule_follows_layer_index():
    """With L=6 and G=3, steps (0,1) use group 0, (2,3) group 1, (4,5) group 2."""
    model = AlbertModel(TINY.replace(num_hidden_layers=6, num_hidden_groups=3)).eval()
    calls: list[int] = []
    for g, group in enumerate(model.encoder.albert_layer_groups):
        group.register_forward_hook(lambda *_, g=g: calls.append(g))
    model(*example_inputs(TINY, 5))
    assert calls == [0, 0, 1, 1, 2, 2]


def test_mlm_decoder_is_tied_to_word_embeddings():
    for cls in (AlbertForMaskedLM, AlbertForPreTraining):
        model = cls(TINY)
        assert model.predictions.decoder.weight is model.albert.embeddings.word_embeddings.weight
        assert model.predictions.decoder.bias is model.predictions.bias


@pytest.mark.parametrize("head", list(ARCHITECTURES))
def test_output_shapes(head):
    config = TINY.replace(labels=("a", "b")) if head == "AlbertForQuestionAnswering" else TINY.replace(
        labels=("a", "b", "c")
    )
    model = ARCHITECTURES[head](config).eval()
    out = model(*example_inputs(config, 9, batch=3))
    out = out if isinstance(out, tuple) else (out,)
    B, S, H, V, N = 3, 9, config.hidden_size, config.vocab_size, config.num_labels
    expected = {
        "AlbertModel": [(B, S, H), (B, H)],
        "AlbertForPreTraining": [(B, S, V), (B, N)],
        "AlbertForMaskedLM": [(B, S, V)],
        "AlbertForSequenceClassification": [(B, N)],
        "AlbertForTokenClassification": [(B, S, N)],
        "AlbertForQuestionAnswering": [(B, S), (B, S)],
    }[head]
    assert [tuple(t.shape) for t in out] == expected
    assert all(t.dtype == torch.float32 for t in out)


def test_regression_head_has_one_output():
    model = ARCHITECTURES["AlbertForSequenceClassification"](TINY.replace(labels=("score",))).eval()
    assert model(*example_inputs(TINY, 4)).shape == (1, 1)


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels == 2"):
        AlbertForQuestionAnswering(TINY.replace(labels=("a", "b", "c")))


def test_padding_does_not_change_real_tokens():
    """Appending padding (masked out) leaves the outputs at real positions unchanged."""
    model = AlbertModel(TINY).eval()
    ids, mask, types = example_inputs(TINY, 6)
    pad = torch.zeros((1, 4), dtype=torch.long)
    with torch.no_grad():
        short, _ = model(ids, mask, types)
        long, _ = model(torch.cat([ids, pad], 1), torch.cat([mask, pad], 1), torch.cat([types, pad], 1))
    assert torch.allclose(short, long[:, :6], atol=1e-6)


def test_no_mask_equals_all_ones_mask():
    model = AlbertModel(TINY).eval()
    ids, mask, types = example_inputs(TINY, 7)
    with torch.no_grad():
        assert torch.allclose(model(ids)[0], model(ids, mask, types)[0], atol=1e-6)


def test_gelu_new_matches_transformers_over_a_wide_range():
    transformers = pytest.importorskip("transformers")
    x = torch.linspace(-12, 12, 10001)
    ref = transformers.activations.ACT2FN["gelu_new"](x)
    assert (gelu_new(x) - ref).abs().max().item() <= 1e-6


class _Gelu(torch.nn.Module):
    def forward(self, x):
        return gelu_new(x)


def test_gelu_new_has_no_pow_in_exported_graph():
    ep = torch.export.export(_Gelu(), (torch.randn(8),))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not any("pow" in t for t in targets)
    assert any("sigmoid" in t for t in targets)


@pytest.mark.parametrize("head", list(ARCHITECTURES))
def test_every_head_exports_with_dynamic_sequence_length(head):
    config = TINY.replace(labels=("a", "b"))
    model = ARCHITECTURES[head](config).eval()
    seq = torch.export.Dim("seq", min=1, max=config.max_position_embeddings)
    dynamic = ({1: seq}, {1: seq}, {1: seq})
    ep = torch.export.export(model, example_inputs(config, 8), dynamic_shapes=dynamic)
    for n in (1, 7, config.max_position_embeddings):
        inputs = example_inputs(config, n)
        with torch.no_grad():
            want = model(*inputs)
            got = ep.module()(*inputs)
        want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
        for w, g in zip(want, got):
            assert torch.allclose(w, g, atol=1e-5)


def test_example_inputs_rejects_bad_length():
    with pytest.raises(ValueError, match="seq_len must be in"):
        example_inputs(TINY, TINY.max_position_embeddings + 1)
