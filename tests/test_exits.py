"""Early-exit heads and rules (albert_edge.exits) on a tiny classifier, against eager PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from albert_edge.config import AlbertConfig
from albert_edge.errors import ExitError
from albert_edge.exit_rules import ExitRule, apply_rule, recommend
from albert_edge.exits import EXITS_FILE, ExitHeads, load_exits, save_exits, step_logits, train_exits
from albert_edge.model import AlbertForSequenceClassification

TINY = AlbertConfig.from_name("tiny", num_hidden_layers=4, labels=("a", "b", "c"))


def _model(seed: int = 0) -> AlbertForSequenceClassification:
    torch.manual_seed(seed)
    return AlbertForSequenceClassification(TINY).eval()


def _batches(n: int = 96, seq: int = 12, seed: int = 1) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, 32):
        ids = torch.randint(5, TINY.vocab_size, (32, seq), generator=g)
        mask = torch.ones_like(ids)
        mask[::3, seq - 4:] = 0  # some padded rows
        out.append((ids, mask, torch.zeros_like(ids)))
    return out


def _rows(*preds: int, n: int = 3) -> list[np.ndarray]:
    """One logit row per step, the given class on top."""
    return [np.eye(n)[p] * 2.0 for p in preds]


# ---- rules -------------------------------------------------------------------------------------


def test_patience_stops_after_p_agreeing_steps():
    rule = ExitRule("patience", 2)
    assert rule.depth(_rows(0, 0, 0, 1)) == 3  # steps 1, 2, 3 agree: stop at 3
    assert rule.depth(_rows(0, 1, 1, 1, 2)) == 4
    assert rule.depth(_rows(0, 1, 0, 1)) == 4  # never settles: full depth
    assert ExitRule("patience", 1).depth(_rows(2, 2, 0)) == 2


def test_confidence_stops_at_the_first_confident_step():
    rule = ExitRule("confidence", 0.9)
    rows = [np.array([0.0, 0.1, 0.0]), np.array([5.0, 0.0, 0.0]), np.array([9.0, 0.0, 0.0])]
    assert rule.depth(rows) == 2  # softmax of [5, 0, 0] tops 0.98
    assert ExitRule("confidence", 0.999).depth(rows) == 3  # the last step always stops
    assert ExitRule("confidence", 1.0).depth(rows[:2]) == 2


@pytest.mark.parametrize("kind, value, words", [
    ("patience", 0, "integer >= 1"), ("patience", 1.5, "integer >= 1"), ("confidence", 0.0, "(0, 1]"),
    ("confidence", 1.2, "(0, 1]"), ("confidence", float("nan"), "finite"), ("depth", 2, "not one of"),
    ("patience", True, "finite number"),
])
def test_bad_rules_are_refused(kind, value, words):
    with pytest.raises(ExitError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        ExitRule(kind, value)


def test_rule_text_and_dict_round_trip():
    for rule in (ExitRule("patience", 3), ExitRule("confidence", 0.85)):
        assert ExitRule.parse(rule.label) == rule
        assert ExitRule.from_dict(rule.to_dict()) == rule
    for bad in ("patience", "patience=two", "speed=3", "confidence=2"):
        with pytest.raises(ExitError, match="exit rule"):
            ExitRule.parse(bad)
    with pytest.raises(ExitError, match="manifest: expected"):
        ExitRule.from_dict({"kind": "patience"}, "manifest")


def test_apply_rule_and_recommend_on_precomputed_logits():
    # 3 steps x 4 inputs: 0 and 3 settle at once, 1 changes its mind at the last step, 2 after the first.
    L = np.stack([np.stack(r) for r in (
        [np.eye(2)[0] * 3, np.eye(2)[0] * 3, np.eye(2)[1] * 3, np.eye(2)[1] * 0.1],
        [np.eye(2)[0] * 3, np.eye(2)[0] * 3, np.eye(2)[0] * 3, np.eye(2)[1] * 0.1],
        [np.eye(2)[0] * 3, np.eye(2)[1] * 3, np.eye(2)[0] * 3, np.eye(2)[1] * 3],
    )])
    out = apply_rule(ExitRule("patience", 1), L)
    assert out.depths.tolist() == [2, 2, 3, 2]
    assert out.predictions.tolist() == [0, 0, 0, 1]
    full = L[-1].argmax(-1)
    assert (out.predictions == full).mean() == 0.75  # input 1 stopped before it changed its mind
    assert recommend(L, [ExitRule("patience", 1)], min_agreement=0.99) is None
    # softmax([3, 0]) tops 0.953: confidence 0.999 never stops early, so it agrees everywhere
    best = recommend(L, [ExitRule("patience", 1), ExitRule("confidence", 0.999)], min_agreement=0.99)
    assert best == ExitRule("confidence", 0.999)


# ---- heads -------------------------------------------------------------------------------------


def test_step_logits_last_row_is_the_model_and_heads_start_as_its_head():
    model = _model()
    exits = ExitHeads.for_model(model)
    ids, mask, types = _batches()[0]
    L = step_logits(model, exits, ids, mask, types)
    assert L.shape == (TINY.num_hidden_layers, 32, 3)
    with torch.no_grad():
        assert torch.equal(L[-1], model(ids, mask, types))
        states = model.albert.encode_steps(ids, mask, types)
        assert torch.equal(states[-1], model.albert.encode(ids, mask, types))
        # a fresh head is the model's own head on an earlier state
        assert torch.equal(L[0], model.classifier(model.albert.pool(states[0])))


def _deep_model(seed: int = 0) -> AlbertForSequenceClassification:
    """A tiny classifier whose layer steps move the state a lot (linear weights x6) and whose
    head separates its inputs: its own head on an early state often disagrees with full depth
    (agreement 0.41-0.93 over seeds 0-4), so there is something for the exits to learn."""
    model = _model(seed)
    with torch.no_grad():
        model.albert.pooler.weight.normal_(0, 3 / TINY.hidden_size**0.5)
        model.classifier.weight.normal_(0, 3)
        for p in model.albert.encoder.albert_layer_groups.parameters():
            if p.dim() == 2:
                p.mul_(6)
    return model


def test_training_leaves_the_model_alone_and_teaches_the_exits():
    model = _deep_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = _batches(192)
    start = ExitHeads.for_model(model)
    exits = train_exits(model, batches, epochs=40, lr=3e-3)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k

    def agreement(ex):
        L = torch.cat([step_logits(model, ex, *b) for b in batches], dim=1)
        return [(L[k].argmax(-1) == L[-1].argmax(-1)).float().mean().item() for k in range(L.shape[0] - 1)]

    a0, a1 = agreement(start), agreement(exits)
    # Distilled from the final classifier, every exit agrees with it more than the copy of its
    # head it started as (gains of 0.031-0.157 for the least improved exit over seeds 0-4; 0.047 here).
    assert all(after > before_ + 0.02 for after, before_ in zip(a1, a0)), (a0, a1)


def test_training_on_labels_learns_them():
    model = _deep_model(1)
    batches = _batches(192)
    # labels the step-1 [CLS] state decides, through a fixed random projection
    with torch.no_grad():
        first = torch.cat([model.albert.encode_steps(*b)[0][:, 0] for b in batches])
    labels = (first @ torch.randn(TINY.hidden_size, 3, generator=torch.Generator().manual_seed(3))).argmax(-1)
    exits = train_exits(model, batches, labels.tolist(), alpha=1.0, epochs=120, lr=3e-3)
    L = torch.cat([step_logits(model, exits, *b) for b in batches], dim=1)
    start = torch.cat([step_logits(model, ExitHeads.for_model(model), *b) for b in batches], dim=1)
    acc = (L[0].argmax(-1) == labels).float().mean().item()
    acc0 = (start[0].argmax(-1) == labels).float().mean().item()
    # 0.948-0.990 over four seeds of model, inputs and projection (0.953 here); 0.06 at the start
    assert acc > 0.9 and acc > acc0 + 0.3, (acc0, acc)


def test_training_with_labels_checks_them():
    model = _model()
    with pytest.raises(ExitError, match="3 labels for 32 inputs"):
        train_exits(model, _batches(32), [0, 1, 2], epochs=1)
    with pytest.raises(ExitError, match="alpha"):
        train_exits(model, _batches(32), alpha=1.5)


def test_exits_need_a_classifier():
    from albert_edge.model import AlbertModel

    with pytest.raises(ExitError, match="sequence classifiers"):
        ExitHeads.for_model(AlbertModel(TINY))
    with pytest.raises(ExitError, match="at least 2 layer steps"):
        ExitHeads(32, 3, 1)


def test_save_and_load_round_trip(tmp_path):
    model = _model()
    exits = train_exits(model, _batches(64), epochs=2)
    exits.recommended = ExitRule("confidence", 0.9)
    path = save_exits(exits, tmp_path, TINY.labels)
    assert path.name == EXITS_FILE
    back = load_exits(tmp_path, model)
    assert back.recommended == exits.recommended
    for (k, v), (k2, v2) in zip(exits.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    with pytest.raises(ExitError, match="do not fit this model"):
        load_exits(tmp_path, AlbertForSequenceClassification(AlbertConfig.from_name("tiny", labels=("a", "b", "c"))))


def test_damaged_exit_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(ExitError, match="no exit heads here"):
        load_exits(tmp_path)
    (tmp_path / EXITS_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ExitError, match="not a readable safetensors file"):
        load_exits(tmp_path)
    save_file({"x": torch.zeros(2)}, str(tmp_path / EXITS_FILE), metadata={"format": "other"})
    with pytest.raises(ExitError, match="metadata format is 'other'"):
        load_exits(tmp_path)
    exits = ExitHeads.for_model(_model())
    state = {k: v.clone() for k, v in exits.state_dict().items()}
    meta = {"format": "albert-edge-exits/1", "hidden_size": "32", "num_labels": "3", "num_steps": "4"}
    state["heads.0.dense.weight"][0, 0] = float("inf")
    save_file(state, str(tmp_path / EXITS_FILE), metadata=meta)
    with pytest.raises(ExitError, match="heads.0.dense.weight holds non-finite"):
        load_exits(tmp_path)
    del state["heads.0.dense.weight"]
    save_file(state, str(tmp_path / EXITS_FILE), metadata=meta)
    with pytest.raises(ExitError, match="missing or unexpected"):
        load_exits(tmp_path)
