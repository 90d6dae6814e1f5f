"""Pretraining examples: structure, ALBERT's sampling rates (with confidence bounds), collate.

Statistical checks use fixed seeds and bounds of about 4.5 standard errors, so a wrong rate fails
while a correct one passes for any seed. Synthetic vocabularies (every id a word start, ids that
say which document and sentence they came from) make the sentence-order and length checks
exact; the small reference ``spiece.model`` covers real SentencePiece words.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from albert_edge._textgen import training_corpus
from albert_edge.config import AlbertConfig
from albert_edge.model import AlbertForPreTraining
from albert_edge.pretraining_data import (
    MaskingConfig,
    PretrainingDataError,
    PretrainingExample,
    PretrainingVocab,
    collate,
    create_examples,
    create_masked_lm_predictions,
    is_start_piece,
    tokenize_documents,
)
from albert_edge.tokenizer import AlbertTokenizer

PAD, UNK, CLS, SEP, MASK = range(5)
Z = 4.5  # standard errors allowed in the statistical checks


def synthetic_vocab(size: int, word_start: tuple[bool, ...] | None = None) -> PretrainingVocab:
    """ALBERT's special ids 0-4; by default every id is a whole word."""
    return PretrainingVocab(
        vocab_size=size,
        pad_id=PAD,
        unk_id=UNK,
        cls_id=CLS,
        sep_id=SEP,
        mask_id=MASK,
        is_word_start=word_start if word_start is not None else (True,) * size,
        replacement_ids=tuple(range(5, size)),
    )


def original_ids(e: PretrainingExample) -> list[int]:
    ids = list(e.input_ids)
    for p, t in zip(e.masked_positions, e.masked_ids):
        ids[p] = t
    return ids


def segments(ids: list[int]) -> tuple[list[int], list[int]]:
    """(A, B) of ``[CLS] A [SEP] B [SEP]``."""
    first_sep = ids.index(SEP)
    return ids[1:first_sep], ids[first_sep + 1 : -1]


def assert_rate(hits: int, n: int, p: float, what: str) -> None:
    se = math.sqrt(p * (1 - p) / n)
    assert abs(hits / n - p) <= Z * se, f"{what}: {hits}/{n} = {hits / n:.4f}, expected {p:.4f} ± {Z * se:.4f}"


def expected_num_masked(length: int, config: MaskingConfig) -> int:
    return min(config.max_predictions, max(1, round(length * config.masked_lm_prob)))


# ---------------------------------------------------------------------------------------------
# Real SentencePiece text.


def _pseudo_word(rng: random.Random) -> str:
    """Made-up words, which the small vocabulary splits into several pieces."""
    syllables = ("blor", "tax", "ing", "quen", "dri", "vel", "os", "mup", "zed", "ka", "ru", "sh")
    return "".join(rng.choice(syllables) for _ in range(rng.randint(1, 2)))


def _text_documents(n_sentences: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    sentences = []
    for s in training_corpus(n_sentences, seed=seed):
        words = s.split()
        for _ in range(rng.randint(1, 2)):
            words.insert(rng.randrange(len(words) + 1), _pseudo_word(rng))
        sentences.append(" ".join(words))
    docs, i = [], 0
    while i < len(sentences):
        size = rng.choice((1, 1, 2, 3, 5, 8, 12))  # some one-sentence documents
        docs.append(sentences[i : i + size])
        i += size
    return docs


@pytest.fixture(scope="module")
def tok(spiece_model_path) -> AlbertTokenizer:
    assert spiece_model_path.is_file()
    return AlbertTokenizer.from_file(spiece_model_path, split_special_tokens=True)


@pytest.fixture(scope="module")
def vocab(tok: AlbertTokenizer) -> PretrainingVocab:
    return PretrainingVocab.from_tokenizer(tok)


@pytest.fixture(scope="module")
def token_docs(tok: AlbertTokenizer) -> list[list[list[int]]]:
    return tokenize_documents(_text_documents(1000, seed=3), tok)


@pytest.fixture(scope="module", params=[128, 32, 8])
def real_examples(request, token_docs, vocab) -> tuple[MaskingConfig, list[PretrainingExample]]:
    config = MaskingConfig(max_seq_len=request.param, dupe_factor=2)
    return config, create_examples(token_docs, vocab, config, random.Random(request.param))


def test_is_start_piece_follows_the_original_rule():
    starts = ["▁the", "▁", "<unk>", ",", "-", "(", "123", "9", "é", "ab€", "'s", "'", "=", "é▁"]
    continuations = ["ing", "s", "ING", "s.", ").", "..", "[CLS]", "a-b"]
    assert all(is_start_piece(p) for p in starts), [p for p in starts if not is_start_piece(p)]
    assert not any(is_start_piece(p) for p in continuations), [p for p in continuations if is_start_piece(p)]


def test_vocab_from_tokenizer(tok: AlbertTokenizer, vocab: PretrainingVocab):
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 1, 2, 3, 4)
    assert vocab.vocab_size == tok.vocab_size == len(vocab.is_word_start)
    pieces = tok.convert_ids_to_tokens(range(tok.vocab_size))
    assert vocab.is_word_start == tuple(is_start_piece(p) for p in pieces)
    assert all(vocab.is_word_start[i] for i, p in enumerate(pieces) if p.startswith("▁"))
    assert sum(not s for s in vocab.is_word_start) > 30  # the model has continuation pieces
    assert set(vocab.replacement_ids) == set(range(5, tok.vocab_size))


def test_tokenize_documents(tok: AlbertTokenizer, spiece_model_path):
    docs = [["Hello world.", "", "Another  sentence here."], [], ["", "   "], ["One more [MASK]."]]
    out = tokenize_documents(docs, tok)
    assert len(out) == 2 and [len(d) for d in out] == [2, 1]
    assert out[0][0] == list(tok.encode("Hello world.").input_ids[1:-1])
    assert MASK not in out[1][0]  # split_special_tokens: "[MASK]" stays text
    default = AlbertTokenizer.from_file(spiece_model_path)
    with pytest.raises(PretrainingDataError, match=r"documents\[3\]\[0\].*split_special_tokens=True"):
        tokenize_documents(docs, default)
    with pytest.raises(PretrainingDataError, match="list of sentence strings"):
        tokenize_documents([["ok"], "not a list"], tok)


@pytest.mark.parametrize(
    "field, value",
    [("max_seq_len", 4), ("masked_lm_prob", 1.5), ("max_predictions", -1), ("max_ngram", 0),
     ("short_seq_prob", -0.1), ("dupe_factor", 0), ("mask_token_prob", True)],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(PretrainingDataError, match=f"MaskingConfig.{field}="):
        MaskingConfig(**{field: value})
    with pytest.raises(PretrainingDataError, match="sum <= 1"):
        MaskingConfig(mask_token_prob=0.8, random_token_prob=0.3)


def test_create_examples_rejects_special_and_out_of_range_ids():
    vocab = synthetic_vocab(50)
    with pytest.raises(PretrainingDataError, match=r"documents\[1\]\[2\] contains special id\(s\) \[3\]"):
        create_examples([[[5, 6]], [[7], [8], [9, SEP]]], vocab, MaskingConfig(), random.Random(0))
    with pytest.raises(PretrainingDataError, match=r"documents\[0\]\[0\] has token id 50"):
        create_examples([[[5, 50]]], vocab, MaskingConfig(), random.Random(0))
    assert create_examples([[], [[]]], vocab, MaskingConfig(), random.Random(0)) == []


# ---------------------------------------------------------------------------------------------
# Structure and whole-word masking on SentencePiece text.


def test_structure(real_examples, vocab):
    config, examples = real_examples
    assert len(examples) > 100
    for e in examples:
        n = len(e)
        assert 5 <= n <= config.max_seq_len
        ids = original_ids(e)
        assert ids[0] == CLS and ids[-1] == SEP and ids.count(SEP) == 2 and ids.count(CLS) == 1
        first_sep = ids.index(SEP)
        assert first_sep >= 2 and n - first_sep >= 3  # A and B non-empty
        assert e.token_type_ids == (0,) * (first_sep + 1) + (1,) * (n - first_sep - 1)
        assert not {PAD, MASK} & set(ids)
        assert list(e.masked_positions) == sorted(set(e.masked_positions))
        assert len(e.masked_ids) == len(e.masked_positions)
        # No special token is ever a prediction target, nor altered.
        assert all(ids[p] not in (CLS, SEP) for p in e.masked_positions)
        assert e.input_ids[0] == CLS and e.input_ids[first_sep] == SEP and e.input_ids[-1] == SEP
        # Unmasked positions are untouched; masked ones hold [MASK], the original or a non-special id.
        masked = set(e.masked_positions)
        assert all(e.input_ids[i] == ids[i] for i in range(n) if i not in masked)
        replacements = set(vocab.replacement_ids)
        assert all(e.input_ids[p] in (MASK, ids[p]) or e.input_ids[p] in replacements for p in masked)
        assert e.sop_label in (0, 1)


def test_masked_count(real_examples):
    config, examples = real_examples
    exact = 0
    for e in examples:
        target = expected_num_masked(len(e), config)
        assert len(e.masked_positions) <= target
        exact += len(e.masked_positions) == target
    # Short of the target only when the words left are longer than the budget left (the
    # original skips those, and masks nothing when every word is longer than the budget); the
    # small vocabulary spells unknown words letter by letter, so long words are common.
    assert exact / len(examples) > {128: 0.9, 32: 0.7, 8: 0.5}[config.max_seq_len]


def test_masked_spans_are_whole_words(real_examples, vocab):
    config, examples = real_examples
    continuation_masked = 0
    for e in examples:
        ids = original_ids(e)
        masked = set(e.masked_positions)
        word: list[int] = []
        words = []
        for i, t in enumerate(ids):
            if t in (CLS, SEP):  # segment boundaries end words in this (stricter) check
                words.append(word)
                word = []
            elif vocab.is_word_start[t] and word:
                words.append(word)
                word = [i]
            else:
                word.append(i)
        for w in words:
            hit = masked.intersection(w)
            assert not hit or len(hit) == len(w), f"word at {w} partially masked: {sorted(hit)}"
            continuation_masked += len(hit) > 1
    if config.max_seq_len >= 32:  # (a budget of 1 only ever fits one-piece words)
        assert continuation_masked > 20  # multi-piece words were masked: the check had teeth


def test_deterministic_for_a_seed(token_docs, vocab):
    config = MaskingConfig(max_seq_len=64)
    snapshot = [[list(s) for s in d] for d in token_docs]
    a = create_examples(token_docs, vocab, config, random.Random(7))
    b = create_examples(token_docs, vocab, config, random.Random(7))
    c = create_examples(token_docs, vocab, config, random.Random(8))
    assert a == b
    assert a != c
    assert token_docs == snapshot  # the input is not modified


# ---------------------------------------------------------------------------------------------
# Sentence order, on ids that say which document and sentence they came from.


def _numbered_documents(n_docs: int, rng: random.Random) -> tuple[list[list[list[int]]], list[int], list[int]]:
    """Documents of consecutive ids, 10 unused ids between documents.

    Also returns every document's first id and every sentence's first id, ascending.
    """
    docs, doc_starts, sentence_starts, next_id = [], [], [], 5
    for _ in range(n_docs):
        doc_starts.append(next_id)
        doc = []
        for _ in range(rng.choice((1, 1, 2, 4, 8, 15))):
            length = rng.randint(1, 40)
            doc.append(list(range(next_id, next_id + length)))
            sentence_starts.append(next_id)
            next_id += length
        docs.append(doc)
        next_id += 10
    return docs, doc_starts, sentence_starts


def test_sentence_order():
    docs, doc_starts, sentence_starts = _numbered_documents(400, random.Random(0))
    vocab = synthetic_vocab(sentence_starts[-1] + 100)
    config = MaskingConfig(max_seq_len=48, dupe_factor=12, masked_lm_prob=0.0)  # no masking: faster
    examples = create_examples(docs, vocab, config, random.Random(1))

    def span(seg: list[int]) -> tuple[int, int, int]:
        """(document, first id, last id) of a segment, which must be one stretch of one document."""
        assert seg == list(range(seg[0], seg[0] + len(seg))), seg  # consecutive ids
        doc = bisect.bisect_right(doc_starts, seg[0]) - 1
        assert doc == bisect.bisect_right(doc_starts, seg[-1]) - 1
        return doc, seg[0], seg[-1]

    def sentence_starts_in(lo: int, hi: int) -> int:  # sentence starts s with lo < s <= hi
        return bisect.bisect_right(sentence_starts, hi) - bisect.bisect_right(sentence_starts, lo)

    in_order = swapped = other_doc = 0
    for e in examples:
        (doc_a, a0, a1), (doc_b, b0, b1) = map(span, segments(original_ids(e)))
        if doc_a != doc_b:
            # A one-sentence chunk: B comes from another document (the original's behaviour).
            other_doc += 1
            assert e.sop_label == 1
            assert sentence_starts_in(a0, a1) == 0, "A of a random-B example spans two sentences"
        elif a1 < b0:
            in_order += 1
            assert e.sop_label == 0, "A before B in the document but labelled swapped"
            # A and B are split at a sentence boundary (truncation may cut around it).
            assert sentence_starts_in(a1, b0) >= 1
        else:
            swapped += 1
            assert b1 < a0 and sentence_starts_in(b1, a0) >= 1, "segments overlap"
            assert e.sop_label == 1, "B before A in the document but labelled in order"
    assert other_doc > 100 and swapped + in_order > 5000
    assert_rate(swapped, swapped + in_order, 0.5, "swapped fraction")


def test_short_sequences():
    # Each document is 30 one-token sentences, every token the document's own id, so a document
    # pass with target t yields a first example of exactly t + 3 tokens and none longer: the
    # longest example of each document reveals its target (t = max_num_tokens looks full).
    config = MaskingConfig(max_seq_len=32, masked_lm_prob=0.0)  # no masking: faster
    n_docs = 8000
    docs = [[[5 + d] for _ in range(30)] for d in range(n_docs)]
    examples = create_examples(docs, synthetic_vocab(5 + n_docs), config, random.Random(2))
    longest: dict[int, int] = {}
    for e in examples:
        doc = segments(original_ids(e))[0][0] - 5
        longest[doc] = max(longest.get(doc, 0), len(e))
    assert len(longest) == n_docs
    targets = [n - 3 for n in longest.values() if n < config.max_seq_len]
    full = config.max_num_tokens
    assert_rate(len(targets), n_docs, config.short_seq_prob * (full - 2) / (full - 1), "short targets")
    # Targets are uniform over [2, full - 1] (full itself is not distinguishable).
    assert min(targets) == 2 and max(targets) == full - 1
    mean, sd = (2 + full - 1) / 2, math.sqrt(((full - 2) ** 2 - 1) / 12)
    assert abs(sum(targets) / len(targets) - mean) <= Z * sd / math.sqrt(len(targets))


def test_dupe_factor_repeats_documents_with_new_masks():
    # 20 documents of two 30-token sentences; document d has ids 100 d + 5 ... 100 d + 64.
    docs = [[list(range(100 * d + 5, 100 * d + 35)), list(range(100 * d + 35, 100 * d + 65))] for d in range(20)]
    vocab = synthetic_vocab(2100)
    once = MaskingConfig(short_seq_prob=0.0)
    thrice = dataclasses.replace(once, dupe_factor=3)
    a = create_examples(docs, vocab, once, random.Random(0))
    b = create_examples(docs, vocab, thrice, random.Random(0))
    assert len(a) == 20 and len(b) == 60  # each 60-token document is one chunk
    by_doc: dict[int, list[PretrainingExample]] = {}
    for e in b:
        by_doc.setdefault(segments(original_ids(e))[0][0] // 100, []).append(e)
    assert all(len(v) == 3 for v in by_doc.values())
    assert all(len({e.masked_positions for e in v}) > 1 for v in by_doc.values())


# ---------------------------------------------------------------------------------------------
# Masking rates.


def _random_sequences(n: int, length: int, vocab: PretrainingVocab, rng: random.Random) -> list[list[int]]:
    out = []
    for _ in range(n):
        body = [rng.randrange(5, vocab.vocab_size) for _ in range(length - 3)]
        cut = rng.randint(1, len(body) - 1)
        out.append([CLS, *body[:cut], SEP, *body[cut:], SEP])
    return out


def test_masked_count_is_exact_with_single_piece_words():
    vocab, config, rng = synthetic_vocab(1000), MaskingConfig(), random.Random(3)
    for length in (5, 6, 7, 10, 13, 17, 30, 50, 77, 100, 127, 128):
        for ids in _random_sequences(40, length, vocab, rng):
            _, positions, _ = create_masked_lm_predictions(ids, vocab, config, rng)
            assert len(positions) == expected_num_masked(length, config), (length, len(positions))


def test_ngram_sizes_are_drawn_with_p_proportional_to_1_over_n():
    vocab, config, rng = synthetic_vocab(1000), MaskingConfig(), random.Random(4)
    drawn: list[int] = []
    for ids in _random_sequences(1000, 128, vocab, rng):
        create_masked_lm_predictions(ids, vocab, config, rng, drawn_ngrams=drawn)
    counts = Counter(drawn)
    assert set(counts) == {1, 2, 3}
    for n, p in ((1, 6 / 11), (2, 3 / 11), (3, 2 / 11)):
        assert_rate(counts[n], len(drawn), p, f"p(n={n})")
    drawn.clear()
    create_masked_lm_predictions(ids, vocab, dataclasses.replace(config, max_ngram=1), rng, drawn_ngrams=drawn)
    assert set(drawn) == {1}


def test_replacement_split():
    vocab, config, rng = synthetic_vocab(1000), MaskingConfig(), random.Random(5)
    as_mask = kept = replaced = 0
    for ids in _random_sequences(1500, 128, vocab, rng):
        out, positions, labels = create_masked_lm_predictions(ids, vocab, config, rng)
        assert [ids[p] for p in positions] == labels
        for p in positions:
            if out[p] == MASK:
                as_mask += 1
            elif out[p] == ids[p]:
                kept += 1
            else:
                replaced += 1
                assert out[p] in vocab.replacement_ids
    n = as_mask + kept + replaced
    collide = 0.1 / len(vocab.replacement_ids)  # a random token equal to the original
    assert_rate(as_mask, n, 0.8, "[MASK]")
    assert_rate(kept, n, 0.1 + collide, "unchanged")
    assert_rate(replaced, n, 0.1 - collide, "random token")


def test_budget_fallback_and_skip():
    rng = random.Random(6)
    config = MaskingConfig()
    # Budget 1 (round(7 * 0.15) = 1): single-piece words are masked one at a time, whatever n
    # was drawn (the original falls back to shorter n-grams)...
    vocab = synthetic_vocab(100)
    for _ in range(200):
        _, positions, _ = create_masked_lm_predictions([CLS, 5, 6, SEP, 7, 8, SEP], vocab, config, rng)
        assert len(positions) == 1
    # ...but two-piece words never fit, and the original masks nothing then.
    starts = tuple(i not in (6, 8) for i in range(100))
    two_piece = synthetic_vocab(100, starts)
    for _ in range(50):
        _, positions, _ = create_masked_lm_predictions([CLS, 5, 6, SEP, 7, 8, SEP], two_piece, config, rng)
        assert positions == []
    no_mlm = dataclasses.replace(config, masked_lm_prob=0.0)
    assert create_masked_lm_predictions([CLS, 5, SEP, 7, SEP], vocab, no_mlm, rng)[1] == []


def test_continuation_after_sep_joins_the_last_word_of_a():
    # As in the original, [SEP] is skipped rather than ending a word: a B that starts with a
    # continuation piece (after front truncation) is masked together with A's last word.
    starts = tuple(i != 9 for i in range(100))
    vocab = synthetic_vocab(100, starts)
    ids = [CLS, 10, 11, 12, 13, 14, 15, 16, SEP, 9, SEP]  # budget round(11 * 0.15) = 2
    rng, seen = random.Random(7), 0
    for _ in range(300):
        _, positions, _ = create_masked_lm_predictions(ids, vocab, MaskingConfig(), rng)
        assert (7 in positions) == (9 in positions)
        seen += 7 in positions
    assert seen > 10


# ---------------------------------------------------------------------------------------------
# Batching.


def test_collate():
    a = PretrainingExample((CLS, 7, MASK, SEP, 9, SEP), (0, 0, 0, 0, 1, 1), (2,), (8,), 1)
    b = PretrainingExample((CLS, 7, SEP, 11, SEP), (0, 0, 0, 1, 1), (1, 3), (7, 10), 0)
    batch = collate([a, b], pad_id=PAD)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "sentence_order_label"}
    assert all(t.dtype == torch.int64 for t in batch.values())
    assert batch["input_ids"].tolist() == [[CLS, 7, MASK, SEP, 9, SEP], [CLS, 7, SEP, 11, SEP, PAD]]
    assert batch["attention_mask"].tolist() == [[1] * 6, [1] * 5 + [0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 8, -100, -100, -100], [-100, 7, -100, 10, -100, -100]]
    assert batch["sentence_order_label"].tolist() == [1, 0]
    with pytest.raises(PretrainingDataError, match="at least one example"):
        collate([], pad_id=PAD)


def test_batch_trains_albert_for_pretraining(token_docs, vocab):
    config = MaskingConfig(max_seq_len=64)
    examples = create_examples(token_docs[:40], vocab, config, random.Random(9))
    batch = collate(examples[:8], pad_id=vocab.pad_id)
    assert batch["input_ids"].shape[1] <= config.max_seq_len
    model = AlbertForPreTraining(
        AlbertConfig.from_name("tiny", vocab_size=vocab.vocab_size, max_position_embeddings=config.max_seq_len)
    )
    mlm_logits, sop_logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    loss = F.cross_entropy(mlm_logits.flatten(0, 1), batch["labels"].flatten()) + F.cross_entropy(
        sop_logits, batch["sentence_order_label"]
    )
    assert torch.isfinite(loss)
    loss.backward()
