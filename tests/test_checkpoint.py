"""Checkpoint reading: weight formats, head selection, and one clear error per bad input."""

from __future__ import annotations

import collections
import json

import pytest
import torch
from safetensors.torch import save_file

from albert_edge.checkpoint import CheckpointError, load_model, load_pretrained, save_pretrained
from albert_edge.config import AlbertConfig, ConfigError
from albert_edge.model import AlbertForMaskedLM, AlbertForSequenceClassification, AlbertModel, example_inputs

TINY = AlbertConfig.from_name("tiny")


@pytest.fixture()
def mlm_dir(tmp_path):
    torch.manual_seed(0)
    save_pretrained(AlbertForMaskedLM(TINY), tmp_path / "mlm")
    return tmp_path / "mlm"


def _same_encoder(a, b) -> bool:
    inputs = example_inputs(TINY, 6)
    with torch.no_grad():
        return torch.equal(a.albert.encode(*inputs) if hasattr(a, "albert") else a.encode(*inputs),
                           b.albert.encode(*inputs) if hasattr(b, "albert") else b.encode(*inputs))


def test_pytorch_model_bin_is_read_with_weights_only(mlm_dir, tmp_path):
    model = load_pretrained(mlm_dir)
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "config.json").write_text((mlm_dir / "config.json").read_text())
    torch.save(model.state_dict(), binary / "pytorch_model.bin")
    assert _same_encoder(model, load_pretrained(binary))


def test_safetensors_is_preferred_over_bin(mlm_dir):
    torch.save({"junk": torch.zeros(1)}, mlm_dir / "pytorch_model.bin")
    assert isinstance(load_pretrained(mlm_dir), AlbertForMaskedLM)


def test_sharded_safetensors(mlm_dir, tmp_path):
    from safetensors.torch import load_file

    state = load_file(mlm_dir / "model.safetensors")
    keys = sorted(state)
    shards = {"a.safetensors": keys[: len(keys) // 2], "b.safetensors": keys[len(keys) // 2 :]}
    out = tmp_path / "sharded"
    out.mkdir()
    (out / "config.json").write_text((mlm_dir / "config.json").read_text())
    for name, ks in shards.items():
        save_file({k: state[k] for k in ks}, out / name)
    weight_map = {k: name for name, ks in shards.items() for k in ks}
    (out / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert _same_encoder(load_pretrained(mlm_dir), load_pretrained(out))


def test_head_checkpoint_as_bare_encoder_and_explicit_head(mlm_dir):
    mlm = load_pretrained(mlm_dir)
    # The MLM model has no pooler: strict refuses, strict=False initialises one.
    with pytest.raises(CheckpointError, match=r"does not fit AlbertModel \(missing: \['pooler.bias', 'pooler.weight'\]\)"):
        load_pretrained(mlm_dir, head="base")
    base = load_pretrained(mlm_dir, head="base", strict=False)
    assert isinstance(base, AlbertModel)
    assert _same_encoder(mlm, base)


def test_bare_encoder_checkpoint_under_a_head(tmp_path):
    torch.manual_seed(1)
    base = AlbertModel(TINY)
    save_pretrained(base, tmp_path)
    cls = load_pretrained(tmp_path, head="sequence-classification", strict=False)
    assert isinstance(cls, AlbertForSequenceClassification)
    assert _same_encoder(base, cls)


def test_strict_load_names_missing_head_tensors(mlm_dir):
    with pytest.raises(CheckpointError, match=r"does not fit AlbertForSequenceClassification.*missing: \['albert.pooler.bias', 'albert.pooler.weight', 'classifier.bias', 'classifier.weight'\].*unexpected: \['predictions"):
        load_pretrained(mlm_dir, head="sequence-classification")


def test_non_strict_initialises_heads_but_requires_the_encoder(mlm_dir):
    cls = load_pretrained(mlm_dir, head="sequence-classification", strict=False)
    assert _same_encoder(load_pretrained(mlm_dir), cls)
    from safetensors.torch import load_file

    state = load_file(mlm_dir / "model.safetensors")
    del state["albert.encoder.embedding_hidden_mapping_in.bias"]
    save_file(state, mlm_dir / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"encoder tensors missing: \['albert.encoder.embedding_hidden_mapping_in.bias'\]"):
        load_pretrained(mlm_dir, head="sequence-classification", strict=False)


def test_unknown_head(mlm_dir):
    with pytest.raises(CheckpointError, match="head 'multiple-choice' is not supported; accepted: base, pretraining"):
        load_pretrained(mlm_dir, head="multiple-choice")
    config = json.loads((mlm_dir / "config.json").read_text())
    config["architectures"] = ["AlbertForMultipleChoice"]
    (mlm_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config.json: architectures 'AlbertForMultipleChoice' is not supported"):
        load_pretrained(mlm_dir)


def test_missing_directory_config_and_weights(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_pretrained(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no such config file"):
        load_pretrained(tmp_path)
    TINY.save(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="no weights found; expected one of model.safetensors"):
        load_pretrained(tmp_path)


def test_truncated_safetensors(mlm_dir):
    path = mlm_dir / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model.safetensors: not a readable safetensors file"):
        load_pretrained(mlm_dir)
    path.write_bytes(b"\x05")
    with pytest.raises(CheckpointError, match=r"model.safetensors: not a readable safetensors file"):
        load_pretrained(mlm_dir)


def test_config_and_weights_disagree_on_shapes(mlm_dir):
    TINY.replace(vocab_size=100).save(mlm_dir / "config.json", architecture="AlbertForMaskedLM")
    with pytest.raises(CheckpointError, match=r"tensors do not match config.json:\n  albert.embeddings.word_embeddings.weight: file \(99, 16\), config.json implies \(100, 16\)"):
        load_pretrained(mlm_dir)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_code_is_refused(mlm_dir, capsys):
    (mlm_dir / "model.safetensors").unlink()
    torch.save({"albert.embeddings.word_embeddings.weight": Evil()}, mlm_dir / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"refused to unpickle: the file holds more than plain tensors \(it names print\)"):
        load_pretrained(mlm_dir)
    assert "pwned" not in capsys.readouterr().out


def test_pickle_of_non_tensors_and_corrupt_bin(mlm_dir):
    (mlm_dir / "model.safetensors").unlink()
    bin_path = mlm_dir / "pytorch_model.bin"
    torch.save(collections.OrderedDict(step=3, weight=torch.zeros(2)), bin_path)
    with pytest.raises(CheckpointError, match=r"these entries are not tensors: \['step'\]"):
        load_pretrained(mlm_dir)
    torch.save([torch.zeros(2)], bin_path)
    with pytest.raises(CheckpointError, match="expected a dict of tensors, found list"):
        load_pretrained(mlm_dir)
    bin_path.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file"):
        load_pretrained(mlm_dir)


def test_save_is_atomic_and_leaves_no_temp_files(mlm_dir, monkeypatch):
    before = (mlm_dir / "model.safetensors").read_bytes()
    import albert_edge.checkpoint as ckpt

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_pretrained(AlbertForMaskedLM(TINY), mlm_dir)
    assert (mlm_dir / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in mlm_dir.iterdir()) == ["config.json", "model.safetensors"]


def test_tied_tensors_are_stored_once(mlm_dir):
    from safetensors import safe_open

    with safe_open(mlm_dir / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert "albert.embeddings.word_embeddings.weight" in keys
    assert "predictions.decoder.weight" not in keys and "predictions.decoder.bias" not in keys


def test_half_precision_checkpoint_loads_as_float32(mlm_dir):
    from safetensors.torch import load_file

    state = {k: v.half() for k, v in load_file(mlm_dir / "model.safetensors").items()}
    save_file(state, mlm_dir / "model.safetensors")
    model = load_pretrained(mlm_dir)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_load_model_by_preset_or_path(mlm_dir):
    assert isinstance(load_model("tiny", "masked-lm"), AlbertForMaskedLM)
    assert isinstance(load_model(str(mlm_dir)), AlbertForMaskedLM)
    with pytest.raises(CheckpointError, match="neither a checkpoint directory nor a preset; presets: albert-base-v2"):
        load_model("albert-gigantic")
