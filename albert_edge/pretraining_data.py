"""ALBERT pretraining examples: sentence-order pairs with n-gram whole-word masking.

Reference: google-research/albert ``create_pretraining_data.py`` (``create_training_instances``,
``create_instances_from_document``, ``create_masked_lm_predictions``, ``_is_start_piece_sp``,
``truncate_seq_pair``) with its default flags: ``do_whole_word_mask``, ``favor_shorter_ngram``,
no ``random_next_sentence``, no ``do_permutation``. What follows it, step for step:

- Documents are shuffled once, then each is processed ``dupe_factor`` times (a fresh short-target
  draw and fresh masks each time), and all examples are shuffled at the end.
- Per document pass, the target length is ``max_seq_len - 3``, or with probability
  ``short_seq_prob`` a random length in ``[2, max_seq_len - 3]``. Sentences accumulate into a
  chunk until it reaches the target (or the document ends); ``a_end`` is drawn in
  ``[1, len(chunk) - 1]``; A = sentences before it, B = the rest; with probability 0.5 A and B
  are swapped (``sop_label`` 1; 0 = in order, as Hugging Face's ``sentence_order_label``).
- A chunk of one sentence (a one-sentence document, a single sentence at least as long as the
  target, or the last sentence of a document) has no B of its own. As in the original, B is then
  text from a random *other* document (up to 10 tries to avoid this one; a one-document corpus
  ends up using itself), from a random sentence on, until it is ``target - len(A)`` long, and
  the label is 1. These examples are not sentence-order pairs at all; the original labels them
  like a swap, and so do we.
- ``truncate_seq_pair``: while A + B is too long, one token is cut from the longer of the two
  (B on a tie), at the front or the back with probability 0.5 each.
- ``[CLS] A [SEP] B [SEP]``, token types 0 up to the first ``[SEP]``, then 1.
- Masking: words are a start piece plus the following non-start pieces (``is_start_piece``, the
  original's rule, which is broader than "starts with ▁"); ``[CLS]``/``[SEP]`` are skipped, not
  word boundaries, so a B that begins with a continuation piece joins A's last word.
  ``num_to_predict = min(max_predictions, max(1, round(len(input_ids) * masked_lm_prob)))``
  (specials counted, Python's ``round``). Every word is a candidate start, visited in random
  order; at each, ``n`` is drawn with ``p(n) ∝ 1/n`` for ``n <= max_ngram`` and the span is the
  ``n`` words from there (fewer at the end of the sequence); if that exceeds the remaining budget
  the next shorter n-gram is tried, down to 1, else the candidate is skipped; a span touching an
  already masked position is skipped; masking stops once the budget is reached. Each position:
  ``[MASK]`` with p 0.8, else unchanged with p 0.5, else a uniformly random token.

Deliberate differences from the original:

- ``n`` is drawn from the ``rng`` passed in (inverse CDF, as numpy's ``choice`` does); the
  original draws it from numpy's global, unseeded generator, so its output could not be
  reproduced from ``--random_seed``. Every other draw uses ``rng`` in the original's order,
  including the second shuffle of the candidates that only ``do_permutation`` reads, so with the
  numpy draw replaced by the same inverse CDF the two produce identical examples.
- The random replacement token is drawn from :attr:`PretrainingVocab.replacement_ids`, by default
  every id but ``<pad> <unk> [CLS] [SEP] [MASK]``; the original draws from the whole vocabulary,
  specials included (a "random" ``[CLS]`` or ``[MASK]`` was possible). A vocab whose
  ``replacement_ids`` is ``range(vocab_size)`` restores the original.
- Input is token ids, not piece strings; ``[CLS]``/``[SEP]`` are recognized by id, and documents
  may not contain ``<pad> [CLS] [SEP] [MASK]`` ids (the original tokenizer never produced them
  from text; see :func:`tokenize_documents`).
- The ``random_next_sentence``, ``do_permutation``, ``favor_shorter_ngram=False`` and
  ``do_whole_word_mask=False`` modes are not implemented.
"""

from __future__ import annotations

import bisect
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from albert_edge.errors import PretrainingDataError

if TYPE_CHECKING:
    import torch

    from albert_edge.tokenizer import AlbertTokenizer

__all__ = [
    "MaskingConfig",
    "PretrainingDataError",
    "PretrainingExample",
    "PretrainingVocab",
    "collate",
    "create_examples",
    "create_masked_lm_predictions",
    "is_start_piece",
    "tokenize_documents",
]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # labels at unmasked positions (torch's cross_entropy default ignore_index)

# _is_start_piece_sp's character sets. The punctuation string is the original's, which lacks
# ' < = > (its two byte-string entries for € and £ never equal a str piece, so they are left out).
_PUNCTUATION = frozenset('!"#$%&()*+,-./:;?@[\\]^_`{|}~')
_CONTINUATION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz") | _PUNCTUATION



def is_start_piece(piece: str) -> bool:
    """Whether a SentencePiece piece starts a word (google-research/albert ``_is_start_piece_sp``).

    True for pieces starting with ``▁`` or ``<``, single punctuation characters, and pieces with
    any character outside a-z (after lower-casing) and the punctuation set, so digits and
    non-English characters are always whole words. Pieces of only English letters and
    punctuation, without ``▁`` (``ing``, ``s.``, ``).``), continue the word before them.
    """
    return (
        piece.startswith(("▁", "<"))
        or piece in _PUNCTUATION
        or not all(c.lower() in _CONTINUATION_CHARS for c in piece)
    )


@dataclass(frozen=True)
class MaskingConfig:
    """How examples are built; the defaults are ALBERT's, but for ``max_seq_len`` and ``dupe_factor``."""

    max_seq_len: int = 128  # [CLS] A [SEP] B [SEP] never exceeds this (ALBERT: 512)
    masked_lm_prob: float = 0.15  # share of the sequence (specials included) to predict
    max_predictions: int = 20  # at most this many masked positions per example
    max_ngram: int = 3  # spans of 1..max_ngram words, p(n) ∝ 1/n
    short_seq_prob: float = 0.1  # per document pass: a random target length in [2, max_seq_len - 3]
    mask_token_prob: float = 0.8  # a masked position becomes [MASK] ...
    random_token_prob: float = 0.1  # ... or a random token; otherwise it keeps its id
    dupe_factor: int = 1  # passes over the corpus, each with new masks (ALBERT: 40)

    def __post_init__(self) -> None:
        def check_int(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise PretrainingDataError(f"MaskingConfig.{name}={value!r}; accepted: an int >= {low}")

        def check_prob(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise PretrainingDataError(f"MaskingConfig.{name}={value!r}; accepted: a number in [0, 1]")

        # [CLS] [SEP] [SEP] plus a short target of at least 2 tokens.
        check_int("max_seq_len", 5)
        check_int("max_predictions", 0)
        check_int("max_ngram", 1)
        check_int("dupe_factor", 1)
        for name in ("masked_lm_prob", "short_seq_prob", "mask_token_prob", "random_token_prob"):
            check_prob(name)
        if self.mask_token_prob + self.random_token_prob > 1.0 + 1e-12:
            raise PretrainingDataError(
                f"MaskingConfig.mask_token_prob + random_token_prob = "
                f"{self.mask_token_prob} + {self.random_token_prob} > 1; accepted: a sum <= 1"
            )

    @property
    def max_num_tokens(self) -> int:
        """Room for A + B: ``max_seq_len`` less ``[CLS]``, ``[SEP]``, ``[SEP]``."""
        return self.max_seq_len - 3

    @property
    def ngram_cdf(self) -> tuple[float, ...]:
        """Cumulative p(n) for n = 1..max_ngram, p(n) ∝ 1/n (3 → 6/11, 9/11, 1)."""
        weights = [1.0 / n for n in range(1, self.max_ngram + 1)]
        total = sum(weights)
        cdf, acc = [], 0.0
        for w in weights:
            acc += w / total
            cdf.append(acc)
        cdf[-1] = 1.0
        return tuple(cdf)

    @property
    def keep_share(self) -> float:
        """P(unchanged | not [MASK]); the original's second draw (0.5 by default).

        Rounded to 12 digits so that the defaults give exactly 0.5 (the float arithmetic gives
        0.49999999999999983).
        """
        if self.mask_token_prob >= 1.0:
            return 1.0
        keep = max(0.0, 1.0 - self.mask_token_prob - self.random_token_prob)
        return round(keep / (1.0 - self.mask_token_prob), 12)


@dataclass(frozen=True)
class PretrainingVocab:
    """What masking needs to know about the vocabulary; build it with :meth:`from_tokenizer`.

    ``is_word_start[i]`` is :func:`is_start_piece` of piece ``i``; ``replacement_ids`` are the
    ids a masked position may be replaced with at random.
    """

    vocab_size: int
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    is_word_start: tuple[bool, ...] = field(repr=False)
    replacement_ids: tuple[int, ...] = field(repr=False)

    def __post_init__(self) -> None:
        V = self.vocab_size
        if isinstance(V, bool) or not isinstance(V, int) or V < 1:
            raise PretrainingDataError(f"PretrainingVocab.vocab_size={V!r}; accepted: an int >= 1")
        for name in ("pad_id", "unk_id", "cls_id", "sep_id", "mask_id"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < V:
                raise PretrainingDataError(f"PretrainingVocab.{name}={value!r}; accepted: an id in [0, {V})")
        if len(self.is_word_start) != V:
            raise PretrainingDataError(
                f"PretrainingVocab.is_word_start has {len(self.is_word_start)} entries; "
                f"accepted: one per id ({V})"
            )
        if not self.replacement_ids or not all(0 <= i < V for i in self.replacement_ids):
            raise PretrainingDataError(
                f"PretrainingVocab.replacement_ids must be a non-empty list of ids in [0, {V})"
            )

    @classmethod
    def from_tokenizer(cls, tokenizer: AlbertTokenizer) -> PretrainingVocab:
        """Special ids, word starts of every piece, and every non-special id as a replacement."""
        pieces = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
        special = {tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id}
        return cls(
            vocab_size=tokenizer.vocab_size,
            pad_id=tokenizer.pad_id,
            unk_id=tokenizer.unk_id,
            cls_id=tokenizer.cls_id,
            sep_id=tokenizer.sep_id,
            mask_id=tokenizer.mask_id,
            is_word_start=tuple(is_start_piece(p) for p in pieces),
            replacement_ids=tuple(i for i in range(tokenizer.vocab_size) if i not in special),
        )

    @property
    def forbidden_ids(self) -> frozenset[int]:
        """Ids that may not occur in document text: ``<pad> [CLS] [SEP] [MASK]``."""
        return frozenset((self.pad_id, self.cls_id, self.sep_id, self.mask_id))


@dataclass(frozen=True)
class PretrainingExample:
    """``[CLS] A [SEP] B [SEP]`` after masking, length S <= max_seq_len.

    ``masked_positions`` (ascending) index ``input_ids``; ``masked_ids`` are the original ids
    there. ``sop_label`` is 0 when A precedes B in the document, 1 when they were swapped (or B
    came from another document).
    """

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]
    masked_positions: tuple[int, ...]
    masked_ids: tuple[int, ...]
    sop_label: int

    def __len__(self) -> int:
        return len(self.input_ids)


# ---------------------------------------------------------------------------------------------
# Masking.


def create_masked_lm_predictions(
    input_ids: Sequence[int],
    vocab: PretrainingVocab,
    config: MaskingConfig,
    rng: random.Random,
    *,
    drawn_ngrams: list[int] | None = None,
) -> tuple[list[int], list[int], list[int]]:
    """Mask whole-word n-grams of ``[CLS] A [SEP] B [SEP]`` as the original does.

    Args:
        input_ids: the unmasked sequence, specials included.
        drawn_ngrams: if given, every drawn ``n`` is appended, before the budget fallback and
            the overlap check, so tests can see the sampling distribution itself (the n-grams
            that end up masked are biased towards short ones).

    Returns:
        ``(masked_input_ids, masked_positions, masked_ids)``: the sequence after replacement,
        the masked positions in ascending order, and the original ids there.
    """
    is_start = vocab.is_word_start
    cls_id, sep_id = vocab.cls_id, vocab.sep_id
    words: list[list[int]] = []  # positions of each whole word, in order
    for i, t in enumerate(input_ids):
        if t == cls_id or t == sep_id:
            continue
        if words and not is_start[t]:
            words[-1].append(i)
        else:
            words.append([i])

    output = list(input_ids)
    if config.masked_lm_prob == 0:
        return output, [], []
    num_to_predict = min(config.max_predictions, max(1, round(len(input_ids) * config.masked_lm_prob)))

    cdf = config.ngram_cdf
    last_n = len(cdf)
    mask_prob, keep_share = config.mask_token_prob, config.keep_share
    replacements = vocab.replacement_ids
    mask_id = vocab.mask_id

    # The original shuffles the list of per-start n-gram candidates; shuffling the start indices
    # is the same permutation for the same draws.
    order = list(range(len(words)))
    rng.shuffle(order)
    covered: set[int] = set()
    masked: list[int] = []
    for start in order:
        if len(masked) >= num_to_predict:
            break
        n = min(bisect.bisect_right(cdf, rng.random()), last_n - 1) + 1
        if drawn_ngrams is not None:
            drawn_ngrams.append(n)
        budget = num_to_predict - len(masked)
        span = [p for w in words[start : start + n] for p in w]
        while len(span) > budget and n > 1:  # try the shorter n-grams from the same start
            n -= 1
            span = [p for w in words[start : start + n] for p in w]
        if len(span) > budget or not covered.isdisjoint(span):
            continue
        for p in span:
            covered.add(p)
            if rng.random() < mask_prob:
                output[p] = mask_id
            elif rng.random() >= keep_share:
                output[p] = replacements[rng.randrange(len(replacements))]
            masked.append(p)
    # Only the original's do_permutation reads this second shuffle; it is kept so the random
    # stream stays the original's.
    rng.shuffle(order)
    masked.sort()
    return output, masked, [input_ids[p] for p in masked]


# ---------------------------------------------------------------------------------------------
# Sentence-order pairs.


def _truncate_seq_pair(
    a: list[int], b: list[int], max_num_tokens: int, rng: random.Random
) -> tuple[list[int], list[int]]:
    """Cut the longer of A and B (B on a tie) one token at a time, front or back at random."""
    a_lo, a_hi, b_lo, b_hi = 0, len(a), 0, len(b)
    while (a_hi - a_lo) + (b_hi - b_lo) > max_num_tokens:
        if a_hi - a_lo > b_hi - b_lo:
            if rng.random() < 0.5:
                a_lo += 1
            else:
                a_hi -= 1
        elif rng.random() < 0.5:
            b_lo += 1
        else:
            b_hi -= 1
    return a[a_lo:a_hi], b[b_lo:b_hi]


def _examples_from_document(
    documents: list[list[Sequence[int]]],
    doc_index: int,
    vocab: PretrainingVocab,
    config: MaskingConfig,
    rng: random.Random,
) -> list[PretrainingExample]:
    """One pass over ``documents[doc_index]`` (``create_instances_from_document``)."""
    document = documents[doc_index]
    max_num_tokens = config.max_num_tokens
    target = max_num_tokens
    if rng.random() < config.short_seq_prob:
        target = rng.randint(2, max_num_tokens)

    examples = []
    chunk: list[Sequence[int]] = []
    length = 0
    for i, sentence in enumerate(document):
        chunk.append(sentence)
        length += len(sentence)
        if i < len(document) - 1 and length < target:
            continue
        a_end = 1 if len(chunk) == 1 else rng.randint(1, len(chunk) - 1)
        tokens_a = [t for s in chunk[:a_end] for t in s]
        if len(chunk) == 1:
            # No B in this chunk: take one from another document (the original's random-next
            # path; with one chunk nothing is "put back", since A used the whole chunk).
            sop_label = 1
            target_b = target - len(tokens_a)
            for _ in range(10):
                other = rng.randint(0, len(documents) - 1)
                if other != doc_index:
                    break
            source = documents[other]
            tokens_b: list[int] = []
            for j in range(rng.randint(0, len(source) - 1), len(source)):
                tokens_b.extend(source[j])
                if len(tokens_b) >= target_b:
                    break
        else:
            tokens_b = [t for s in chunk[a_end:] for t in s]
            sop_label = 1 if rng.random() < 0.5 else 0
            if sop_label:
                tokens_a, tokens_b = tokens_b, tokens_a
        tokens_a, tokens_b = _truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)

        ids = [vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id]
        token_types = (0,) * (len(tokens_a) + 2) + (1,) * (len(tokens_b) + 1)
        masked_ids, positions, labels = create_masked_lm_predictions(ids, vocab, config, rng)
        examples.append(
            PretrainingExample(
                input_ids=tuple(masked_ids),
                token_type_ids=token_types,
                masked_positions=tuple(positions),
                masked_ids=tuple(labels),
                sop_label=sop_label,
            )
        )
        chunk = []
        length = 0
    return examples


def _checked_documents(
    documents: Sequence[Sequence[Sequence[int]]], vocab: PretrainingVocab
) -> list[list[Sequence[int]]]:
    """Documents without empty sentences or empty documents; raises on ids text cannot have."""
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise PretrainingDataError(
            f"documents is {type(documents).__name__}; accepted: a list of documents, each a list "
            "of sentences, each a list of token ids"
        )
    forbidden = vocab.forbidden_ids
    out = []
    for d, doc in enumerate(documents):
        if isinstance(doc, str | bytes) or not isinstance(doc, Sequence):
            raise PretrainingDataError(
                f"documents[{d}] is {type(doc).__name__}; accepted: a list of sentences (lists of token ids)"
            )
        kept = []
        for s, sentence in enumerate(doc):
            if isinstance(sentence, str | bytes) or not isinstance(sentence, Sequence):
                raise PretrainingDataError(
                    f"documents[{d}][{s}] is {type(sentence).__name__}; accepted: a list of token ids"
                )
            if not sentence:
                continue
            low, high = min(sentence), max(sentence)
            if low < 0 or high >= vocab.vocab_size:
                raise PretrainingDataError(
                    f"documents[{d}][{s}] has token id {low if low < 0 else high}; "
                    f"accepted: ids in [0, {vocab.vocab_size})"
                )
            if not forbidden.isdisjoint(sentence):
                bad = sorted(forbidden.intersection(sentence))
                raise PretrainingDataError(
                    f"documents[{d}][{s}] contains special id(s) {bad}; document text may not hold "
                    "<pad> [CLS] [SEP] [MASK] (tokenize with split_special_tokens=True)"
                )
            kept.append(sentence)
        if kept:
            out.append(kept)
    return out


def create_examples(
    documents: Sequence[Sequence[Sequence[int]]],
    vocab: PretrainingVocab,
    config: MaskingConfig,
    rng: random.Random,
) -> list[PretrainingExample]:
    """Pretraining examples from ``documents`` (``create_training_instances``).

    Args:
        documents: documents → sentences → token ids, without special tokens. Empty sentences
            and documents are dropped (the original skipped them while reading).
        rng: the only source of randomness; the same seed gives the same examples.

    Returns:
        About ``dupe_factor * tokens / (max_seq_len - 3)`` examples, in random order.
    """
    docs = _checked_documents(documents, vocab)
    rng.shuffle(docs)
    examples: list[PretrainingExample] = []
    for _ in range(config.dupe_factor):
        for doc_index in range(len(docs)):
            examples.extend(_examples_from_document(docs, doc_index, vocab, config, rng))
    rng.shuffle(examples)
    logger.info(
        "%d pretraining examples from %d documents (dupe_factor=%d)", len(examples), len(docs), config.dupe_factor
    )
    return examples


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer: AlbertTokenizer) -> list[list[list[int]]]:
    """Token ids (no specials) of each sentence of each document; empty ones are dropped.

    The original tokenized text with SentencePiece, which never turns ``[MASK]`` in the text into
    the mask id. Load the tokenizer with ``split_special_tokens=True`` for the same; a special id
    in the output raises.
    """
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise PretrainingDataError(
            f"documents is {type(documents).__name__}; accepted: a list of documents, each a list of sentence strings"
        )
    forbidden = {tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id}
    out = []
    for d, doc in enumerate(documents):
        if isinstance(doc, str | bytes) or not isinstance(doc, Sequence):
            raise PretrainingDataError(
                f"documents[{d}] is {type(doc).__name__}; accepted: a list of sentence strings"
            )
        sentences = []
        for s, text in enumerate(doc):
            if not isinstance(text, str):
                raise PretrainingDataError(f"documents[{d}][{s}] is {type(text).__name__}; accepted: str")
            ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
            if not forbidden.isdisjoint(ids):
                raise PretrainingDataError(
                    f"documents[{d}][{s}] ({text[:40]!r}) encodes to special token ids "
                    f"{sorted(forbidden.intersection(ids))}; load the tokenizer with "
                    "split_special_tokens=True to treat them as text"
                )
            if ids:
                sentences.append(ids)
        if sentences:
            out.append(sentences)
    return out


def collate(examples: Sequence[PretrainingExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest example; all tensors int64.

    Returns ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``labels`` (B, S), with
    ``labels`` = -100 except at masked positions, which hold the original id, and
    ``sentence_order_label`` (B,).
    """
    import torch

    if not examples:
        raise PretrainingDataError("collate needs at least one example")
    S = max(len(e) for e in examples)
    input_ids, attention_mask, token_type_ids, labels = [], [], [], []
    for e in examples:
        pad = S - len(e)
        input_ids.append([*e.input_ids, *(pad_id,) * pad])
        attention_mask.append([1] * len(e) + [0] * pad)
        token_type_ids.append([*e.token_type_ids, *(0,) * pad])
        row = [IGNORE_INDEX] * S
        for p, t in zip(e.masked_positions, e.masked_ids, strict=True):
            row[p] = t
        labels.append(row)
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.int64),
        "attention_mask": torch.tensor(attention_mask, dtype=torch.int64),
        "token_type_ids": torch.tensor(token_type_ids, dtype=torch.int64),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "sentence_order_label": torch.tensor([e.sop_label for e in examples], dtype=torch.int64),
    }
