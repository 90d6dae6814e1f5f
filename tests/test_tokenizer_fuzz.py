"""Fuzzing the tokenizer: 10,000+ random strings across scripts, controls, combining marks,
zero-width and private-use characters, lone surrogates and very long texts. The tokenizer never
fails other than with a TokenizerError for text that is not valid Unicode, its ids are inside the
vocabulary, its offsets inside the text; its ids are SentencePiece's by the documented rules
(tests/spm_reference.py); and a sample (the characters whose Unicode tables agree
between Python and ``tokenizers``, see test_tokenizer_properties) equals transformers' ids."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import sentencepiece as spm

from albert_edge.tokenizer import AlbertTokenizer, TokenizerError
from spm_reference import documented_difference, reference_ids

N_STRINGS = 10_000
SEED = 20261201

# Pools to draw characters from: (weight, code point ranges).
POOLS = {
    "ascii": [(0x20, 0x7E)],
    "controls": [(0x00, 0x1F), (0x7F, 0x9F), (0x2028, 0x2029)],
    "latin": [(0xA0, 0x24F), (0x1E00, 0x1EFF)],
    "combining": [(0x300, 0x36F), (0x1AB0, 0x1AFF), (0x20D0, 0x20FF)],
    "scripts": [(0x370, 0x52F), (0x590, 0x6FF), (0x900, 0xDFF), (0xE00, 0xEFF), (0x10A0, 0x10FF),
                (0x1100, 0x11FF), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3)],
    "symbols": [(0x2000, 0x2BFF), (0x3000, 0x303F), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF)],
    "zero_width": [(0x200B, 0x200F), (0xFEFF, 0xFEFF), (0x2060, 0x2064)],
    "private_and_rare": [(0xE000, 0xE0FF), (0x10000, 0x1007F), (0xE0000, 0xE007F), (0xFFF0, 0xFFFF)],
    "surrogates": [(0xD800, 0xDFFF)],
}


def _char(rng: random.Random, pool: str) -> str:
    lo, hi = rng.choice(POOLS[pool])
    return chr(rng.randint(lo, hi))


def random_strings(n: int, seed: int) -> list[str]:
    """Mostly short strings mixing two or three pools, some with spaces and the special-token
    spellings, a few very long ones (up to 200,000 characters)."""
    rng = random.Random(seed)
    pools = list(POOLS)
    out = []
    for i in range(n):
        mix = rng.sample(pools, rng.randint(1, 3))
        length = rng.choice((0, 1, 2, 5, 12, 40, 120)) if i % 500 else rng.choice((5_000, 50_000, 200_000))
        chars = []
        for _ in range(length):
            r = rng.random()
            chars.append(" " if r < 0.12 else rng.choice(("[MASK]", "[CLS]", "<unk>", "``", "1,000")) if r < 0.14
                         else _char(rng, rng.choice(mix)))
        out.append("".join(chars))
    return out


STRINGS = random_strings(N_STRINGS, SEED)


def test_the_fuzz_set_covers_what_it_claims():
    assert len(STRINGS) >= 10_000
    assert sum(any(0xD800 <= ord(c) <= 0xDFFF for c in s) for s in STRINGS) > 500
    assert sum(len(s) >= 5_000 for s in STRINGS) >= 20
    assert sum(any(ord(c) < 0x20 for c in s) for s in STRINGS) > 500


@pytest.fixture(scope="module")
def tok(spiece_model_path: Path) -> AlbertTokenizer:
    return AlbertTokenizer.from_file(spiece_model_path)


def _valid_unicode(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


@pytest.mark.slow
def test_no_crash_ids_in_range_offsets_inside(tok: AlbertTokenizer):
    refused = 0
    for s in STRINGS:
        if not _valid_unicode(s):
            with pytest.raises(TokenizerError, match="not valid Unicode: lone surrogate"):
                tok.encode(s)
            refused += 1
            continue
        enc = tok.encode(s, max_length=None if len(s) < 5_000 else 512)
        assert all(0 <= i < tok.vocab_size for i in enc.input_ids), repr(s[:80])
        assert all(0 <= a <= b <= len(s) for a, b in enc.offsets), repr(s[:80])
        assert enc.input_ids[0] == tok.cls_id and enc.input_ids[-1] == tok.sep_id
    assert refused > 500  # every string with a surrogate, and nothing else, was refused


transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()


@pytest.fixture(scope="module")
def hf_tok(spiece_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("hf_fuzz")
    shutil.copy(spiece_model_path, d / "spiece.model")
    return transformers.AlbertTokenizer.from_pretrained(d)


def test_a_sample_equals_transformers(tok: AlbertTokenizer, hf_tok):
    from test_tokenizer_properties import ALPHABET

    agreed = set(ALPHABET) | {chr(c) for c in range(0x20, 0x7F)} | {" "}
    sample = [s for s in STRINGS if len(s) < 5_000 and set(s) <= agreed][:400]
    # The rest: characters outside the agreed alphabet (controls, unassigned and private-use code
    # points, scripts whose tables differ between Python's unicodedata and tokenizers).
    assert len(sample) >= 300
    for s in sample:
        assert list(tok.encode(s).input_ids) == hf_tok([s])["input_ids"][0], repr(s)


@pytest.mark.slow
@pytest.mark.parametrize("user_defined", [True, False], ids=["user-defined", "plain"])
def test_equals_sentencepiece(spiece_model_path: Path, plain_spiece_model_path: Path, user_defined: bool):
    """Every valid fuzz string (all pools) against SentencePiece itself, by the documented rules."""
    path = spiece_model_path if user_defined else plain_spiece_model_path
    tok, sp = AlbertTokenizer.from_file(path), spm.SentencePieceProcessor(model_file=str(path))
    equal, explained = 0, {}
    for s in STRINGS:
        if len(s) >= 5_000 or not _valid_unicode(s):
            continue
        ours, ref = list(tok.encode(s).input_ids[1:-1]), reference_ids(sp, s)
        if ours == ref:
            equal += 1
            continue
        rule = documented_difference(sp, s, ours, ref)
        assert rule is not None, repr(s)
        explained[rule] = explained.get(rule, 0) + 1
    assert equal > 7_000 and sum(explained.values()) < 1_500, (equal, explained)
