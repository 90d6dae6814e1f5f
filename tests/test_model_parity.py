"""Parity with transformers: checkpoints saved by one load in the other to the same outputs."""

from __future__ import annotations

import pytest
import torch

from albert_edge.checkpoint import load_pretrained, save_pretrained
from albert_edge.config import AlbertConfig
from albert_edge.model import ARCHITECTURES
from hf_reference import HEAD_CLASSES, as_tuple, batch_inputs, hf_config, hf_outputs, random_hf_model, transformers

TINY = AlbertConfig.from_name("tiny")
CONFIGS = {
    "tiny": TINY,
    # 4 layer steps over 2 groups of 2 distinct layers: steps 0,1 -> group 0; 2,3 -> group 1.
    "groups2-inner2": TINY.replace(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2),
    # v1 checkpoints: exact GELU and dropout (inactive in eval).
    "v1": AlbertConfig.from_name("albert-base-v1").replace(
        vocab_size=99, embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=37,
        num_hidden_layers=3, max_position_embeddings=64,
    ),
    "three-labels": TINY.replace(labels=("negative", "neutral", "positive"), type_vocab_size=3),
}
TOL = 1e-5


def _labels_for(config: AlbertConfig, head: str) -> AlbertConfig:
    return config.replace(labels=("start", "end")) if head == "AlbertForQuestionAnswering" else config


def _check_hf_to_ours(config: AlbertConfig, head: str, tmp_path) -> None:
    config = _labels_for(config, head)
    ref = random_hf_model(config, head)
    ref.save_pretrained(tmp_path)  # transformers' own config.json and model.safetensors
    ours = load_pretrained(tmp_path)
    assert type(ours).__name__ == head  # picked from config.json "architectures"
    inputs = batch_inputs(config)
    with torch.no_grad():
        got = as_tuple(ours(*inputs))
    want = hf_outputs(ref, *inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert (g - w).abs().max().item() <= TOL


@pytest.mark.parametrize("head", HEAD_CLASSES)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_transformers_checkpoint_loads_to_same_outputs(name, head, tmp_path):
    _check_hf_to_ours(CONFIGS[name], head, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("head", HEAD_CLASSES)
def test_albert_base_v2_shape_matches_transformers(head, tmp_path):
    _check_hf_to_ours(AlbertConfig.from_name("albert-base-v2"), head, tmp_path)


@pytest.mark.parametrize("head", HEAD_CLASSES)
@pytest.mark.parametrize("name", ["tiny", "groups2-inner2"])
def test_our_checkpoint_loads_in_transformers(name, head, tmp_path):
    config = _labels_for(CONFIGS[name], head)
    torch.manual_seed(3)
    ours = ARCHITECTURES[head](config).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_pretrained(ours, tmp_path)
    ref = getattr(transformers, head).from_pretrained(tmp_path).eval()
    inputs = batch_inputs(config, seed=5)
    with torch.no_grad():
        got = as_tuple(ours(*inputs))
    for g, w in zip(got, hf_outputs(ref, *inputs)):
        assert (g - w).abs().max().item() <= TOL
    # and back again through our loader, bit for bit
    again = load_pretrained(tmp_path)
    with torch.no_grad():
        for a, b in zip(got, as_tuple(again(*inputs))):
            assert torch.equal(a, b)
    assert ref.config.id2label == dict(enumerate(config.labels))


@pytest.mark.parametrize("head", HEAD_CLASSES)
def test_state_dict_keys_and_shapes_equal_transformers(head):
    config = _labels_for(CONFIGS["groups2-inner2"], head)
    ref = getattr(transformers, head)(hf_config(config))
    ours = ARCHITECTURES[head](config)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert set(our_sd) == set(ref_sd)
    assert {k: tuple(v.shape) for k, v in our_sd.items()} == {k: tuple(v.shape) for k, v in ref_sd.items()}
    # the strict load that the key mapping relies on
    ours.load_state_dict(ref_sd, strict=True)
