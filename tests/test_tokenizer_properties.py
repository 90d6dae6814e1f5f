"""Property tests: invariants on arbitrary text, and parity with transformers on a wide alphabet."""

from __future__ import annotations

import functools
import shutil
import unicodedata
from pathlib import Path

import pytest
import sentencepiece as spm
from hypothesis import example, given, settings
from hypothesis import strategies as st

from albert_edge.tokenizer import TRUNCATION_STRATEGIES, AlbertTokenizer, Encoding, TokenizerError
from spm_reference import documented_difference, reference_ids

FRAGMENTS = ["[MASK]", "[CLS]", "[SEP]", "<unk>", "<pad>", "▁", "``", "''", "1,", "12,345", "(", ")", "-",
             ".", "e\u0301", "\r\n", "\u200d", "\ufe0f", "İ", "ﬁ", "  ", "\t", "\xa0", "\u3000"]

# Arbitrary text (all of Unicode but surrogates), plus text built from the fragments above.
any_text = st.one_of(
    st.text(max_size=120),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=30).map("".join),
)
max_lengths = st.one_of(st.none(), st.integers(min_value=2, max_value=48))


@pytest.fixture(scope="module")
def tok(spiece_model_path: Path) -> AlbertTokenizer:
    return AlbertTokenizer.from_file(spiece_model_path)


def check_invariants(tok: AlbertTokenizer, enc: Encoding, sources: list[str], max_length: int | None) -> None:
    n = len(enc.input_ids)
    assert len(enc.token_type_ids) == len(enc.attention_mask) == len(enc.offsets) == len(enc.tokens) == n
    assert all(0 <= i < tok.vocab_size for i in enc.input_ids)
    assert list(enc.tokens) == tok.convert_ids_to_tokens(enc.input_ids)
    if max_length is not None:
        assert n <= max_length
    real = sum(enc.attention_mask)
    assert enc.attention_mask == (1,) * real + (0,) * (n - real)
    assert enc.input_ids[real:] == (tok.pad_id,) * (n - real)
    assert enc.input_ids[0] == tok.cls_id and enc.input_ids[real - 1] == tok.sep_id
    if len(sources) == 1:
        assert set(enc.token_type_ids) == {0}
    else:
        # Types: 0 up to and including the first [SEP], 1 after it, 0 on padding.
        first_sep = enc.token_type_ids.index(1) - 1
        assert enc.input_ids[first_sep] == tok.sep_id and enc.offsets[first_sep] == (0, 0)
        assert list(enc.token_type_ids) == [0] * (first_sep + 1) + [1] * (real - first_sep - 1) + [0] * (n - real)
    assert enc.offsets[0] == (0, 0) and all(o == (0, 0) for o in enc.offsets[real - 1 :])
    for type_id, source in enumerate(sources):
        spans = [enc.offsets[i] for i in range(1, real - 1) if enc.token_type_ids[i] == type_id
                 and not (enc.input_ids[i] == tok.sep_id and enc.offsets[i] == (0, 0))]
        assert all(0 <= s <= e <= len(source) for s, e in spans), (spans, len(source))
        starts = [s for s, _ in spans]
        assert starts == sorted(starts)


@settings(max_examples=200, deadline=None)
@given(text=any_text, max_length=max_lengths, strategy=st.sampled_from(TRUNCATION_STRATEGIES))
def test_single_text_invariants(tok: AlbertTokenizer, text: str, max_length: int | None, strategy: str) -> None:
    full = tok.encode(text)
    check_invariants(tok, full, [text], None)
    try:
        enc = tok.encode(text, max_length=max_length, truncation=strategy)
    except TokenizerError:
        assert strategy == "only_second" and max_length is not None and len(full) > max_length
        return
    check_invariants(tok, enc, [text], max_length)
    # Truncation keeps a prefix of the tokens, and as many as fit.
    body = enc.input_ids[1:-1]
    assert full.input_ids[1 : 1 + len(body)] == body
    assert len(enc) == (len(full) if max_length is None else min(len(full), max_length))


@settings(max_examples=200, deadline=None)
@given(a=any_text, b=any_text, max_length=max_lengths, strategy=st.sampled_from(TRUNCATION_STRATEGIES))
def test_pair_invariants(tok: AlbertTokenizer, a: str, b: str, max_length: int | None, strategy: str) -> None:
    full = tok.encode(a, b)
    check_invariants(tok, full, [a, b], None)
    ids_a, ids_b = tok.encode(a).input_ids[1:-1], tok.encode(b).input_ids[1:-1]
    assert full.input_ids == (tok.cls_id, *ids_a, tok.sep_id, *ids_b, tok.sep_id)
    try:
        enc = tok.encode(a, b, max_length=max_length, truncation=strategy)
    except TokenizerError:
        assert max_length is not None and (strategy != "longest_first" or max_length < 3)
        return
    check_invariants(tok, enc, [a, b], max_length)
    cut = enc.token_type_ids.index(1) if 1 in enc.token_type_ids else len(enc)
    kept_a, kept_b = enc.input_ids[1 : cut - 1], enc.input_ids[cut:-1]
    assert ids_a[: len(kept_a)] == kept_a and ids_b[: len(kept_b)] == kept_b
    if strategy == "longest_first" and max_length is not None:
        assert len(enc) == min(len(full), max_length)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(any_text, min_size=1, max_size=5), max_length=st.integers(min_value=2, max_value=40))
def test_batch_padding(tok: AlbertTokenizer, texts: list[str], max_length: int) -> None:
    singles = [tok.encode(t) for t in texts]
    longest = tok.encode_batch(texts)
    assert {len(e) for e in longest} == {max(len(e) for e in singles)}
    fixed = tok.encode_batch(texts, max_length=max_length, padding="max_length")
    assert {len(e) for e in fixed} == {max_length}
    for text, single, padded in zip(texts, singles, longest):
        check_invariants(tok, padded, [text], None)
        real = sum(padded.attention_mask)
        assert padded.input_ids[:real] == single.input_ids and padded.offsets[:real] == single.offsets
        assert padded.token_type_ids[real:] == (0,) * (len(padded) - real)


# -- parity with transformers on generated text ----------------------------------------------

transformers = pytest.importorskip("transformers")
normalizers = pytest.importorskip("tokenizers.normalizers")
transformers.logging.set_verbosity_error()

_RANGES = [(0x00, 0x24F), (0x300, 0x36F), (0x370, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F),
           (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x218F), (0x2460, 0x24FF), (0x2580, 0x259F),
           (0x3000, 0x30FF), (0x3130, 0x318F), (0x4E00, 0x4FFF), (0xAC00, 0xACFF), (0xFB00, 0xFB4F),
           (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0x1F1E6, 0x1F1FF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF)]


def _alphabet() -> list[str]:
    """Characters from many scripts, minus the few whose Unicode tables differ between Python
    (``unicodedata`` 14.0) and ``tokenizers``; that difference is documented, not a bug."""
    nfkd, strip, lower = normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()
    chars = []
    for lo, hi in _RANGES:
        for cp in range(lo, hi + 1):
            c = chr(cp)
            if (
                nfkd.normalize_str(c) == unicodedata.normalize("NFKD", c)
                and strip.normalize_str(c) == ("" if unicodedata.category(c)[0] == "M" else c)
                and lower.normalize_str(c) == c.lower()
            ):
                chars.append(c)
    return chars


ALPHABET = _alphabet()
wide_text = st.lists(st.one_of(st.sampled_from(ALPHABET), st.sampled_from(FRAGMENTS), st.just(" ")),
                     max_size=40).map("".join)


@pytest.fixture(scope="module")
def hf_tok(spiece_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("hf_props")
    shutil.copy(spiece_model_path, d / "spiece.model")
    return transformers.AlbertTokenizer.from_pretrained(d)


def test_alphabet_is_wide() -> None:
    assert len(ALPHABET) > 5_000


@settings(max_examples=200, deadline=None)
@given(a=wide_text, b=st.one_of(st.none(), wide_text), max_length=st.integers(min_value=3, max_value=40))
def test_matches_transformers(tok: AlbertTokenizer, hf_tok, a: str, b: str | None, max_length: int) -> None:
    ours = tok.encode(a, b)
    ref = hf_tok([a], [b] if b is not None else None, return_token_type_ids=True)
    assert list(ours.input_ids) == ref["input_ids"][0]
    assert list(ours.token_type_ids) == ref["token_type_ids"][0]
    short = tok.encode(a, b, max_length=max_length)
    ref = hf_tok([a], [b] if b is not None else None, max_length=max_length, truncation="longest_first")
    assert list(short.input_ids) == ref["input_ids"][0]


@settings(max_examples=300, deadline=None)
@given(a=wide_text, b=wide_text)
def test_matches_sentencepiece(tok: AlbertTokenizer, spiece_model_path: Path, a: str, b: str) -> None:
    """SentencePiece itself after ALBERT's preprocessing (tests/spm_reference.py), by its documented rules."""
    sp = _sentencepiece(str(spiece_model_path))
    for text in (a, b, a + b):
        ours, ref = list(tok.encode(text).input_ids[1:-1]), reference_ids(sp, text)
        assert ours == ref or documented_difference(sp, text, ours, ref) is not None, (text, ours, ref)


@functools.lru_cache(maxsize=2)
def _sentencepiece(path: str) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=path)


def _deletes_nothing(text: str) -> bool:
    """No TeX quotes and nothing normalization deletes: offsets then equal transformers' exactly."""
    return "``" not in text and "''" not in text and not any(
        unicodedata.category(c) in ("Mn", "Mc", "Me", "Cc", "Cf") for c in text)


def _only_deleted(text: str) -> bool:
    return not text.strip("`'") or all(unicodedata.category(c) in ("Mn", "Mc", "Me", "Cc", "Cf") for c in text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(a=wide_text, b=st.one_of(st.none(), wide_text))
@example(a="", b="\x01\x00")  # deleted characters at a text's start (transformers shifts what follows)
@example(a="", b="\x01/")
@example(a="", b="[MASK]\x01/")
def test_offsets_match_transformers_by_the_documented_rules(tok: AlbertTokenizer, hf_tok, a: str, b: str | None) -> None:
    """docs/tokenizer.md: a bare "▁" gets the empty span where its word starts; characters that
    normalization deletes (and the first of a TeX quote pair) join the span before them, so where
    our span and transformers' differ, the difference is such characters only; otherwise the
    spans are transformers'."""
    ours = tok.encode(a, b)
    ref = hf_tok([a], [b] if b is not None else None, return_offsets_mapping=True)["offset_mapping"][0]
    assert len(ref) == len(ours.offsets)
    exact = _deletes_nothing(a) and (b is None or _deletes_nothing(b))
    for token, t, (s, e), (hs, he) in zip(ours.tokens, ours.token_type_ids, ours.offsets, ref):
        text = a if t == 0 else b
        if token in ("[CLS]", "[SEP]") and (s, e) == (0, 0) == (hs, he):
            continue
        if token == "▁":
            assert s == e and (not exact or s == hs), (a, b)
        elif exact:
            assert (s, e) == (hs, he), (a, b, token)
        elif any(unicodedata.category(c) in ("Mn", "Mc", "Me", "Cc", "Cf") for c in text):
            # transformers shifts the spans after deleted characters that start a segment onto them
            # ("\x01/" and "[MASK]\x01/" give "/" the span of "\x01"); ours stay on the characters.
            assert 0 <= s < e <= len(text), (a, b, token)
        else:
            assert _only_deleted(text[min(s, hs):max(s, hs)]) and _only_deleted(text[min(e, he):max(e, he)]), (
                a, b, token, (s, e), (hs, he))
