"""AlbertConfig: presets, validation messages, and config.json in both directions."""

from __future__ import annotations

import json

import pytest

from albert_edge.config import PRESETS, AlbertConfig, ConfigError

transformers = pytest.importorskip("transformers")


def test_defaults_are_transformers_defaults():
    ours = AlbertConfig()
    ref = transformers.AlbertConfig()
    for field in (
        "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
        "num_attention_heads", "intermediate_size", "inner_group_num", "hidden_act", "hidden_dropout_prob",
        "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range",
        "layer_norm_eps", "classifier_dropout_prob", "pad_token_id",
    ):
        assert getattr(ours, field) == getattr(ref, field), field
    assert ours.num_labels == ref.num_labels


def test_presets():
    base = AlbertConfig.from_name("albert-base-v2")
    assert (base.hidden_size, base.num_attention_heads, base.intermediate_size, base.hidden_act) == (
        768, 12, 3072, "gelu_new")
    v1 = AlbertConfig.from_name("albert-base-v1")
    assert (v1.hidden_act, v1.hidden_dropout_prob, v1.attention_probs_dropout_prob) == ("gelu", 0.1, 0.1)
    assert AlbertConfig.from_name("albert/albert-large-v2") == PRESETS["albert-large-v2"]
    assert AlbertConfig.from_name("tiny", labels=("x", "y", "z")).num_labels == 3


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown preset 'albert-huge'.*albert-base-v2"):
        AlbertConfig.from_name("albert-huge")


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"hidden_size": 30, "num_attention_heads": 4}, r"hidden_size \(30\) must be divisible by num_attention_heads \(4\)"),
        ({"num_hidden_layers": 5, "num_hidden_groups": 2}, r"num_hidden_layers \(5\) must be divisible by num_hidden_groups \(2\)"),
        ({"hidden_act": "mish"}, r"hidden_act 'mish' is not supported; use one of gelu, gelu_new"),
        ({"vocab_size": 0}, r"vocab_size must be a positive integer, got 0"),
        ({"embedding_size": 1.5}, r"embedding_size must be a positive integer"),
        ({"hidden_dropout_prob": 1.0}, r"hidden_dropout_prob must be a probability in \[0, 1\)"),
        ({"pad_token_id": 99}, r"pad_token_id must be an id in \[0, vocab_size=99\)"),
        ({"labels": ()}, r"labels must name at least one output"),
        ({"labels": ("a", "a")}, r"labels must be unique"),
        ({"layer_norm_eps": 0}, r"layer_norm_eps must be > 0"),
    ],
)
def test_invalid_config_names_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        AlbertConfig.from_name("tiny", **changes)


def test_config_json_round_trip_through_transformers(tmp_path):
    ours = AlbertConfig.from_name("tiny", num_hidden_groups=2, labels=("neg", "neu", "pos"))
    ours.save(tmp_path / "config.json", architecture="AlbertForSequenceClassification")
    ref = transformers.AlbertConfig.from_pretrained(tmp_path)
    assert ref.num_hidden_groups == 2 and ref.hidden_size == 32 and ref.embedding_size == 16
    assert ref.id2label == {0: "neg", 1: "neu", 2: "pos"}
    ref.save_pretrained(tmp_path / "hf")
    assert AlbertConfig.load(tmp_path / "hf") == ours


def test_transformers_num_labels_without_id2label():
    data = transformers.AlbertConfig(num_labels=5).to_dict()
    data.pop("id2label"), data.pop("label2id")
    data["num_labels"] = 5
    assert AlbertConfig.from_hf_dict(data).num_labels == 5


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        AlbertConfig.load(tmp_path)
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json: not valid JSON"):
        AlbertConfig.load(bad)
    bad.write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match="model_type is 'bert', expected 'albert'"):
        AlbertConfig.load(bad)
    bad.write_text(json.dumps({"hidden_size": 100, "num_attention_heads": 64}))
    with pytest.raises(ConfigError, match=r"config.json: hidden_size \(100\) must be divisible"):
        AlbertConfig.load(bad)
    bad.write_text(json.dumps({"position_embedding_type": "relative_key"}))
    with pytest.raises(ConfigError, match="position_embedding_type 'relative_key' is not supported"):
        AlbertConfig.load(bad)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        AlbertConfig().hidden_size = 3  # type: ignore[misc]
