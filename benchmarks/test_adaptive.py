"""Adaptive depth (early exits): what stopping early saves, measured on ExecuTorch programs.

- The shipped default model's int8 adaptive program on 500 test tweets (seeded sample), one
  round = every tweet once: ``forward`` (full depth in one call), the loop at full depth (the
  per-call overhead of the loop's calls against one call), and the loop under exit rules; for
  the program as exported (``fused``: first_step, then one step_k call per step) and with
  ``fused_steps=False`` (``separate``: embed, then layer and exit_k per step, three calls).
  extra_info holds the mean layer steps, the accuracy and the file size of each.
- albert-base-v2's shape (random weights) at 128 tokens, exit heads trained briefly on tweets:
  ``forward`` against the loop stopped after k of its 12 steps, and the loop under the rule the
  brief training recommends (its mean steps are in extra_info; with random weights they say
  little about accuracy, only what a given depth costs).

Programs are exported once per source hash into .benchmarks/programs (as test_latency.py).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from albert_edge.checkpoint import DEFAULT_MODEL_DIR
from albert_edge.exit_rules import ExitRule
from albert_edge.exits import encode_batches, load_exits, train_exits
from albert_edge.model import example_inputs
from albert_edge.tokenizer import AlbertTokenizer
from conftest import CACHE, MAX_SEQ_LEN, _source_hash
from test_latency import THREADS

SAMPLE = 500
RULES = ("forward", "loop-full", "recommended", "patience=2", "confidence=0.95", "confidence=0.8")
BASE_DEPTHS = (1, 3, 6, 9, 12)


@pytest.fixture(scope="session", autouse=True)
def threads() -> int:
    from albert_edge.runtime import set_num_threads

    set_num_threads(THREADS)
    torch.set_num_threads(THREADS)
    return THREADS


def _adaptive_program(name: str, model, exits, fused: bool = True) -> Path:
    from albert_edge.adaptive import export_adaptive_program
    from albert_edge.recipes import RECIPES

    out = CACHE / _source_hash()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}_int8_adaptive{'' if fused else '_separate'}.pte"
    if not path.exists():
        program = export_adaptive_program(model, exits, RECIPES["int8"], max_seq_len=MAX_SEQ_LEN, fused_steps=fused)
        path.write_bytes(program.buffer)
    return path


@pytest.fixture(scope="session", params=["fused", "separate"])
def default_case(request, models):
    from albert_edge.corpora import tweet_splits
    from albert_edge.runtime import Program

    model = models["default"]
    exits = load_exits(DEFAULT_MODEL_DIR, model)
    program = Program(_adaptive_program("default", model, exits, fused=request.param == "fused"))
    tok = AlbertTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    test = tweet_splits()["test"]
    rows = random.Random(0).sample(test, SAMPLE)
    inputs = []
    for r in rows:
        e = tok.encode(r.text, max_length=MAX_SEQ_LEN)
        inputs.append(program.check_inputs([e.input_ids], [e.attention_mask], [e.token_type_ids]))
    gold = [model.config.labels.index(r.label) for r in rows]
    return program, exits, inputs, gold, request.param


@pytest.mark.parametrize("setting", RULES)
def test_default_int8_adaptive(benchmark, default_case, setting, threads):
    program, exits, inputs, gold, methods = default_case
    rule = exits.recommended if setting == "recommended" else None if setting in ("forward", "loop-full") \
        else ExitRule.parse(setting)
    outcome: list[tuple[int, int]] = []

    def one_pass() -> None:
        outcome.clear()
        for x in inputs:
            if setting == "forward":
                logits, depth = program.run_checked(x)[0], 6
            elif setting == "loop-full":
                logits, depth = program.run_steps(x)[-1], 6
            else:
                logits, depth = program.run_adaptive(x, rule)
            outcome.append((int(logits.argmax()), depth))

    benchmark.pedantic(one_pass, warmup_rounds=1, rounds=7, iterations=1)
    preds, depths = np.array([p for p, _ in outcome]), np.array([d for _, d in outcome])
    benchmark.extra_info.update(model="default", program="pte-int8-adaptive", methods=methods, setting=setting,
                                size_bytes=Path(program.name).stat().st_size,
                                rule=None if rule is None else rule.label, inputs=len(inputs), threads=threads,
                                mean_depth=float(depths.mean()), accuracy=float((preds == np.array(gold)).mean()))
    assert len(outcome) == len(inputs)


@pytest.fixture(scope="session")
def base_case(models):
    from albert_edge.corpora import tweet_splits
    from albert_edge.runtime import Program

    model = models["albert-base-v2"]
    tok = AlbertTokenizer.from_pretrained(DEFAULT_MODEL_DIR)  # ids < 8000 fit albert-base's 30,000
    tweets = tweet_splits()
    train = [t.text for t in tweets["train"][:512]]
    exits = train_exits(model, encode_batches(tok, train, MAX_SEQ_LEN, batch_size=32), epochs=3)
    from albert_edge.exit_rules import default_rules, recommend
    from albert_edge.exits import step_logits

    valid = encode_batches(tok, [t.text for t in tweets["valid"][:256]], MAX_SEQ_LEN, batch_size=32)
    all_logits = torch.cat([step_logits(model, exits, *b) for b in valid], dim=1).numpy()
    exits.recommended = recommend(all_logits, default_rules(12))
    program = Program(_adaptive_program("albert-base-v2", model, exits))
    return program, exits, program.check_inputs(*example_inputs(model.config, MAX_SEQ_LEN)), all_logits


@pytest.mark.parametrize("depth", ("forward", *BASE_DEPTHS, "recommended"))
def test_base_int8_depth(benchmark, base_case, depth, threads):
    program, exits, inputs, valid_logits = base_case
    info = {"model": "albert-base-v2", "program": "pte-int8-adaptive", "seq_len": MAX_SEQ_LEN, "threads": threads}
    if depth == "forward":
        benchmark.pedantic(program.run_checked, args=(inputs,), warmup_rounds=2, rounds=10, iterations=1)
    elif depth == "recommended":
        from albert_edge.exit_rules import apply_rule

        if exits.recommended is None:
            pytest.skip("the brief training recommends no rule")
        mean = apply_rule(exits.recommended, valid_logits).mean_depth
        k = int(round(mean))
        benchmark.pedantic(program.run_steps, args=(inputs, k), warmup_rounds=2, rounds=10, iterations=1)
        info.update(rule=exits.recommended.label, mean_depth_on_valid_tweets=mean, depth=k)
    else:
        benchmark.pedantic(program.run_steps, args=(inputs, depth), warmup_rounds=2, rounds=10, iterations=1)
        info.update(depth=depth)
    benchmark.extra_info.update(info)
