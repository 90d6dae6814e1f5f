"""ALBERT tokenizer: ALBERT's text preprocessing over a SentencePiece unigram model.

References: google-research/albert ``tokenization.py`` (``preprocess_text``, ``encode_pieces``),
transformers 5 ``models/albert/tokenization_albert.py`` (a ``tokenizers`` pipeline built from
``spiece.model``), ``tokenizers``' ``Precompiled`` normalizer and ``TruncationStrategy``.

Default ids equal SentencePiece's after ALBERT's preprocessing (but for the rules in
docs/tokenizer.md) and transformers >= 5.25's ``AlbertTokenizer`` (ids, token types, attention
mask; offsets too, but for the deviations below). The pipeline, for each stretch of raw text
between added tokens:

1. Added tokens are cut out of the *raw* text first, leftmost-longest: the control pieces
   (``<pad> <unk> [CLS] [SEP] [MASK]``). ``"a [MASK] b"`` therefore contains a real mask token;
   ``split_special_tokens=True`` leaves them in the text. User-defined pieces (ALBERT's
   ``( ) ” - . – £ €``) are not cut out: step 4's Viterbi keeps each one a piece of its own, as
   SentencePiece does (``split_user_defined=True``: cut out, as transformers 5.0-5.24 did).
2. ``````/``''`` → ``"``; unless ``keep_accents``, NFKD and removal of combining marks
   (general category M); if ``do_lower_case``, per-character lower-casing (so ``Σ`` → ``σ`` even
   at a word end, like Rust's per-char ``to_lowercase``).
3. The model's precompiled charsmap (``nmt_nfkc`` for ALBERT), per grapheme cluster the way
   ``tokenizers`` does it (see ``_charsmap``).
4. Split on Unicode White_Space (Rust's ``char::is_whitespace``); each word gets a ``▁`` prefix
   unless it already starts with one and is cut before every further ``▁``; each part gets a
   unigram Viterbi over all vocabulary pieces (special ones included) in float64, as
   ``tokenizers``' ``Unigram`` does. SentencePiece is used to validate models and to train them.
5. ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``; truncation, padding.

Deliberate deviations, all documented in docs/tokenizer.md:
- Offsets: a token that is only the ``▁`` marker gets the empty span ``(p, p)`` at the start of
  its word (transformers: the span of the word's first character, overlapping the next token).
  Characters that normalization deletes (combining accents, control characters, variation
  selectors) stay inside the span of the character before them, and the ``"`` made from ``````
  spans both backticks (transformers drops them from all spans), so ``text[start:end]`` is what
  the user typed.
- ``split_digit_comma=True`` restores the original ALBERT / transformers 4 rule that re-splits a
  piece ending in digit + comma (``▁9,`` → ``▁9`` ``,``); off by default because transformers 5
  dropped it.
- An empty ``text_pair`` is a real (empty) second segment. transformers' single-example call
  treats ``""`` as "no pair"; its batch call agrees with us.
- Unicode tables: Python's ``unicodedata`` (14.0) decides NFKD, marks and case; ``tokenizers``
  uses older NFKD/mark tables and newer case tables, so about 440 recently assigned code points
  normalize differently.
"""

from __future__ import annotations

import io
import json
import logging
import operator
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sentencepiece as spm

from albert_edge import _spm_proto as proto
from albert_edge._charsmap import CharsMap
from albert_edge._io import atomic_write_bytes, atomic_write_text, read_json_object
from albert_edge._tokenizer_json import AddedToken, model_from_tokenizer_json
from albert_edge.errors import TokenizerError

if TYPE_CHECKING:
    import torch

__all__ = [
    "AlbertTokenizer",
    "Encoding",
    "TokenizerError",
    "batch_to_tensors",
    "preprocess_text",
    "train_sentencepiece",
    "TRUNCATION_STRATEGIES",
    "PADDING_STRATEGIES",
]

logger = logging.getLogger(__name__)

SPIECE_UNDERLINE = "▁"
# ALBERT's special pieces, by role, with the ids they have in every ALBERT spiece.model.
ALBERT_SPECIAL_TOKENS = {"pad": "<pad>", "unk": "<unk>", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
PADDING_STRATEGIES = ("do_not_pad", "longest", "max_length")
SPIECE_MODEL = "spiece.model"
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"

# Unicode White_Space, i.e. Rust's char::is_whitespace, which tokenizers' WhitespaceSplit uses.
# (Python's str.isspace also counts U+001C..U+001F; those are not word separators here.)
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)


# Tokens of one text before special tokens are added: (id, (start, end) in the text, word index).
_Tokens = list[tuple[int, tuple[int, int], int]]



@dataclass(frozen=True)
class Encoding:
    """One encoded example, all fields of equal length S.

    ``offsets[i]`` is the ``(start, end)`` character span of token ``i`` in the string it came
    from (``text`` for token type 0, ``text_pair`` for type 1); ``(0, 0)`` for the ``[CLS]`` and
    ``[SEP]`` that encoding adds and for padding.

    ``word_ids[i]`` numbers the words of token ``i``'s text from 0 (a word is what ``tokenizers``
    calls one: an added token, or a whitespace-separated run cut before every ``▁``); None for
    added ``[CLS]``/``[SEP]`` and padding. ``sequence_ids[i]`` is 0 or 1 (the text), None there.
    """

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]
    attention_mask: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    tokens: tuple[str, ...]
    word_ids: tuple[int | None, ...]
    sequence_ids: tuple[int | None, ...]

    def __len__(self) -> int:
        return len(self.input_ids)

    def word_to_chars(self, word: int, sequence: int = 0) -> tuple[int, int]:
        """``(start, end)`` characters of word ``word`` of text ``sequence`` (first token's start, last's end)."""
        idx = [i for i, (w, q) in enumerate(zip(self.word_ids, self.sequence_ids)) if w == word and q == sequence]
        if not idx:
            raise TokenizerError(f"this encoding has no word {word} in sequence {sequence}")
        return self.offsets[idx[0]][0], self.offsets[idx[-1]][1]


# ---------------------------------------------------------------------------------------------
# Text preprocessing (steps 2-3 of the module docstring), keeping character alignment.


@lru_cache(maxsize=65536)
def _fold_char(c: str, strip_accents: bool, lower: bool) -> str:
    """NFKD + drop marks (if ``strip_accents``) then lower-case, for one character."""
    out = c
    if strip_accents and not c.isascii():
        out = "".join(x for x in unicodedata.normalize("NFKD", c) if unicodedata.category(x)[0] != "M")
    if lower:
        out = "".join(x.lower() for x in out)
    return out


def preprocess_text(text: str, *, do_lower_case: bool = True, keep_accents: bool = False) -> str:
    """ALBERT's ``preprocess_text``: collapse whitespace, TeX quotes to ``"``, strip accents, lower.

    This is what :func:`train_sentencepiece` feeds the trainer; encoding applies the same steps
    (without the whitespace collapsing, which word splitting makes unnecessary).
    """
    text = " ".join(text.split()).replace("``", '"').replace("''", '"')
    return "".join(_fold_char(c, not keep_accents, do_lower_case) for c in text)


class _Aligned:
    """A string as a list of code points, each with the ``[start, end)`` span it came from."""

    __slots__ = ("chars", "starts", "ends")

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, chars: str, start: int, end: int) -> None:
        if not chars:
            # Deleted text joins the previous character's span, so a token's span covers what the
            # user typed (e.g. the accent of "e\u0301"); tokenizers leaves it out of every span.
            if self.ends:
                self.ends[-1] = max(self.ends[-1], end)
            return
        for c in chars:
            self.chars.append(c)
            self.starts.append(start)
            self.ends.append(end)


# ---------------------------------------------------------------------------------------------
# The tokenizer.


class AlbertTokenizer:
    """ALBERT's SentencePiece tokenizer; load it with :meth:`from_file` or :meth:`from_pretrained`.

    Args:
        model_proto: a serialized SentencePiece ``ModelProto`` (unigram), e.g. ``spiece.model``.
        do_lower_case: lower-case the text (ALBERT's uncased models; transformers' default).
        keep_accents: keep combining marks instead of NFKD + stripping them.
        split_digit_comma: re-split pieces ending in digit + comma, as original ALBERT did.
        split_special_tokens: treat ``[MASK]`` etc. in the input as plain text.
        split_user_defined: cut the model's user-defined pieces (ALBERT's ``( ) ” - . – £ €``) out
            of the raw text before segmenting, as transformers 5.0-5.24 did. Off (the default),
            they are pieces inside the normal segmentation, as SentencePiece (and so ALBERT's
            pretraining) has them: ``3.5`` is ``▁3 . 5``, not ``▁3 . ▁5``.
        added_tokens: tokens cut out of the raw text; by default the model's control and unknown
            pieces (and its user-defined ones with ``split_user_defined``). Non-special ones are
            kept only with ``split_user_defined``.
        special_tokens: role → piece name for pad/unk/cls/sep/mask (ALBERT's names by default).
        scores: float64 piece scores overriding the model's float32 ones (``tokenizer.json``
            stores float64, and transformers scores with those).
        source: where the model came from, for error messages.
    """

    def __init__(
        self,
        model_proto: bytes,
        *,
        do_lower_case: bool = True,
        keep_accents: bool = False,
        split_digit_comma: bool = False,
        split_special_tokens: bool = False,
        split_user_defined: bool = False,
        added_tokens: Sequence[AddedToken] | None = None,
        special_tokens: Mapping[str, str] | None = None,
        scores: Sequence[float] | None = None,
        source: str = "<model_proto>",
    ) -> None:
        self.do_lower_case = bool(do_lower_case)
        self.keep_accents = bool(keep_accents)
        self.split_digit_comma = bool(split_digit_comma)
        self.split_special_tokens = bool(split_special_tokens)
        self.split_user_defined = bool(split_user_defined)
        self._model_proto = bytes(model_proto)
        self._source = source

        try:
            pieces = proto.read_pieces(self._model_proto)
            model_type = proto.read_model_type(self._model_proto)
            charsmap = _read_charsmap(self._model_proto)
        except (proto.ProtoError, UnicodeDecodeError, ValueError) as e:
            raise TokenizerError(f"{source} is not a SentencePiece model file ({e})") from e
        if not pieces:
            raise TokenizerError(f"{source} is not a SentencePiece model file (it has no pieces)")
        if model_type != proto.UNIGRAM:
            name = proto.MODEL_TYPE_NAMES.get(model_type, str(model_type))
            raise TokenizerError(
                f"{source} is a SentencePiece {name} model; ALBERT tokenizers are UNIGRAM models"
            )
        self._pieces = [p.piece for p in pieces]
        self._piece_to_id = {p: i for i, p in enumerate(self._pieces)}
        self._charsmap = CharsMap(charsmap) if charsmap else None

        names = {**ALBERT_SPECIAL_TOKENS, **(special_tokens or {})}
        ids = {}
        for role, name in names.items():
            if name not in self._piece_to_id:
                raise TokenizerError(
                    f"{source} has no piece {name!r} ({role} token); an ALBERT model needs "
                    f"{', '.join(ALBERT_SPECIAL_TOKENS.values())} (ids 0-4 in ALBERT's layout)"
                )
            ids[role] = self._piece_to_id[name]
        unknown = [i for i, p in enumerate(pieces) if p.type == proto.UNKNOWN]
        if unknown and unknown != [ids["unk"]]:
            raise TokenizerError(
                f"{source}: the unknown piece is {self._pieces[unknown[0]]!r} (id {unknown[0]}) but "
                f"unk_token is {names['unk']!r}; they must be the same piece"
            )
        self._ids = ids

        if added_tokens is None:
            # Control and unknown pieces are cut out of the raw text, as transformers does
            # (SentencePiece never matches them in text); user-defined ones are not special.
            added = {
                i: AddedToken(p.piece, i, special=p.type != proto.USER_DEFINED)
                for i, p in enumerate(pieces)
                if p.type in (proto.UNKNOWN, proto.CONTROL, proto.USER_DEFINED)
            }
            for i in ids.values():
                added.setdefault(i, AddedToken(self._pieces[i], i, special=True))
            added_tokens = list(added.values())
        # Non-special added tokens (user-defined pieces) are cut out only on request; otherwise
        # the Viterbi below segments them like SentencePiece: a user-defined piece scores 0.0,
        # above every normal piece, so it is always one piece of its own.
        added_tokens = [t for t in added_tokens if t.special or self.split_user_defined]
        self._added = {t.content: t for t in added_tokens}
        self._special_ids = frozenset(t.id for t in added_tokens if t.special)
        active = [t.content for t in added_tokens if not (t.special and self.split_special_tokens)]
        # Longest first, so that the regex's leftmost match is also the longest.
        self._added_re = (
            re.compile("|".join(re.escape(t) for t in sorted(active, key=len, reverse=True)))
            if active
            else None
        )

        # SentencePiece itself must accept the model (a strong "is this a model file" check).
        try:
            spm.SentencePieceProcessor().LoadFromSerializedProto(self._model_proto)
        except RuntimeError as e:
            raise TokenizerError(f"{source} is not a valid SentencePiece model ({e})") from e
        self._scores = [p.score for p in pieces] if scores is None else [float(x) for x in scores]
        if len(self._scores) != len(pieces):
            raise TokenizerError(f"{source}: {len(self._scores)} scores for {len(pieces)} pieces")
        self._max_piece_len = max(len(p) for p in self._pieces)
        # tokenizers' Unigram: unknown characters score min(all scores) - 10.
        self._unk_score = min(self._scores) - 10.0
        self._viterbi_cache: dict[str, tuple[tuple[int, int, int], ...]] = {}

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_file(
        cls,
        spiece_model_path: str | Path,
        do_lower_case: bool = True,
        keep_accents: bool = False,
        split_digit_comma: bool = False,
        split_special_tokens: bool = False,
        split_user_defined: bool = False,
    ) -> AlbertTokenizer:
        """Load a SentencePiece ``spiece.model`` file."""
        path = Path(spiece_model_path)
        if not path.is_file():
            raise TokenizerError(f"SentencePiece model file {path} does not exist (expected e.g. spiece.model)")
        return cls(
            path.read_bytes(),
            do_lower_case=do_lower_case,
            keep_accents=keep_accents,
            split_digit_comma=split_digit_comma,
            split_special_tokens=split_special_tokens,
            split_user_defined=split_user_defined,
            source=str(path),
        )

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        *,
        do_lower_case: bool | None = None,
        keep_accents: bool | None = None,
        split_digit_comma: bool = False,
        split_special_tokens: bool = False,
        split_user_defined: bool | None = None,
        prefer: str = "tokenizer.json",
    ) -> AlbertTokenizer:
        """Load a Hugging Face checkpoint directory (``tokenizer.json`` and/or ``spiece.model``).

        With both files present ``prefer`` picks one; the default, ``tokenizer.json``, is what
        transformers 5 loads (checkpoints converted by transformers 4 have digit-comma pieces
        down-weighted there, so the two files can disagree). ``do_lower_case`` and
        ``keep_accents`` default to ``tokenizer_config.json``'s values, else True / False.
        ``split_user_defined`` defaults to ``tokenizer_config.json``'s value, else to whether the
        ``tokenizer.json`` read lists non-special added tokens (transformers 5.0-5.24 saved ALBERT's
        user-defined pieces that way, and transformers cuts whatever that list holds), else False.
        """
        root = Path(directory)
        if not root.is_dir():
            raise TokenizerError(f"checkpoint directory {root} does not exist")
        if prefer not in (SPIECE_MODEL, TOKENIZER_JSON):
            raise TokenizerError(f"prefer={prefer!r}; accepted: {SPIECE_MODEL!r}, {TOKENIZER_JSON!r}")
        config = _read_tokenizer_config(root / TOKENIZER_CONFIG)
        options = {
            "do_lower_case": config.get("do_lower_case", True) if do_lower_case is None else do_lower_case,
            "keep_accents": config.get("keep_accents", False) if keep_accents is None else keep_accents,
            "split_digit_comma": split_digit_comma,
            "split_special_tokens": split_special_tokens,
        }
        specials = {}
        for role in ALBERT_SPECIAL_TOKENS:
            value = config.get(f"{role}_token")
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                specials[role] = value
        candidates = [root / prefer, root / (TOKENIZER_JSON if prefer == SPIECE_MODEL else SPIECE_MODEL)]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise TokenizerError(f"{root} has neither {SPIECE_MODEL} nor {TOKENIZER_JSON}")
        logger.info("loading ALBERT tokenizer from %s", path)
        configured = config.get("split_user_defined") if split_user_defined is None else split_user_defined
        if path.name == SPIECE_MODEL:
            return cls(
                path.read_bytes(), special_tokens=specials, source=str(path),
                split_user_defined=bool(configured), **options
            )
        model, added, scores = model_from_tokenizer_json(path)
        options["split_user_defined"] = (
            any(not t.special for t in added) if configured is None else bool(configured)
        )
        return cls(
            model, added_tokens=added, special_tokens=specials, scores=scores, source=str(path), **options
        )

    def save(self, directory: str | Path) -> Path:
        """Write ``spiece.model`` and ``tokenizer_config.json`` into ``directory`` (atomically).

        transformers' ``AlbertTokenizer.from_pretrained`` reads the result.
        """
        root = Path(directory)
        atomic_write_bytes(root / SPIECE_MODEL, self._model_proto)
        config: dict[str, Any] = {
            "tokenizer_class": "AlbertTokenizer",
            "do_lower_case": self.do_lower_case,
            "keep_accents": self.keep_accents,
            **{f"{role}_token": self._pieces[i] for role, i in self._ids.items()},
        }
        if self.split_digit_comma:
            config["split_digit_comma"] = True
        if self.split_user_defined:
            config["split_user_defined"] = True
        atomic_write_text(root / TOKENIZER_CONFIG, json.dumps(config, indent=2) + "\n")
        return root / SPIECE_MODEL

    # -- vocabulary ---------------------------------------------------------------------------

    @property
    def model_proto(self) -> bytes:
        """The serialized SentencePiece model (what :meth:`save` writes as ``spiece.model``)."""
        return self._model_proto

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def pad_id(self) -> int:
        return self._ids["pad"]

    @property
    def unk_id(self) -> int:
        return self._ids["unk"]

    @property
    def cls_id(self) -> int:
        return self._ids["cls"]

    @property
    def sep_id(self) -> int:
        return self._ids["sep"]

    @property
    def mask_id(self) -> int:
        return self._ids["mask"]

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        out = []
        for i in ids:
            try:
                value = operator.index(i)
            except TypeError:
                value = -1
            if isinstance(i, bool) or not 0 <= value < len(self._pieces):
                raise TokenizerError(f"token id {i!r} is not an int in [0, {len(self._pieces)})")
            out.append(value)
        return out

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Piece strings of ``ids``."""
        return [self._pieces[i] for i in self._check_ids(ids)]

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Ids of piece strings; pieces not in the vocabulary get ``unk_id``."""
        return [self._piece_to_id.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``: pieces joined, ``▁`` → space, the first leading space dropped.

        Normalization is not undone (lower case, stripped accents stay so).
        """
        tokens = [
            self._pieces[i]
            for i in self._check_ids(ids)
            if not (skip_special_tokens and i in self._special_ids)
        ]
        text = "".join(tokens).replace(SPIECE_UNDERLINE, " ")
        return text[1:] if tokens and tokens[0].startswith(SPIECE_UNDERLINE) else text

    # -- encoding -----------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """Pieces of ``text`` without special tokens."""
        return [self._pieces[i] for i, _, _ in self._encode_text(text, "text")]

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        *,
        max_length: int | None = None,
        truncation: str | None = "longest_first",
        padding: str = "do_not_pad",
    ) -> Encoding:
        """Encode ``text`` (and ``text_pair``) as ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``.

        Args:
            max_length: total length including special tokens; None means no limit.
            truncation: one of ``TRUNCATION_STRATEGIES``, or None to never truncate; used only
                with ``max_length``. ``longest_first`` keeps ``min(len(shorter), budget // 2)``
                tokens of the shorter sequence (the first one on a tie) and fills the budget
                with the longer, exactly as ``tokenizers`` does.
            padding: ``do_not_pad``, or ``max_length`` (pad to ``max_length``); ``longest`` is
                the same as ``do_not_pad`` for a single example.
        """
        max_length, truncation = self._check_options(max_length, truncation, padding)
        enc = self._encode_one(text, text_pair, max_length, truncation)
        if padding == "max_length":
            enc = self._pad(enc, max_length)  # type: ignore[arg-type]
        return enc

    def encode_batch(
        self,
        texts: Sequence[str],
        text_pairs: Sequence[str | None] | None = None,
        *,
        max_length: int | None = None,
        truncation: str | None = "longest_first",
        padding: str = "longest",
    ) -> list[Encoding]:
        """Encode a batch; by default pad to the longest example (``padding='longest'``)."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TokenizerError(f"texts must be a list of strings, got {type(texts).__name__}")
        if text_pairs is not None and (isinstance(text_pairs, str) or len(text_pairs) != len(texts)):
            raise TokenizerError(
                f"text_pairs must be a list as long as texts ({len(texts)}), got "
                f"{len(text_pairs) if not isinstance(text_pairs, str) else 'a string'}"
            )
        max_length, truncation = self._check_options(max_length, truncation, padding)
        pairs = text_pairs if text_pairs is not None else [None] * len(texts)
        encs = [self._encode_one(t, p, max_length, truncation) for t, p in zip(texts, pairs)]
        if padding == "longest" and encs:
            target = max(len(e) for e in encs)
            encs = [self._pad(e, target) for e in encs]
        elif padding == "max_length":
            encs = [self._pad(e, max_length) for e in encs]  # type: ignore[arg-type]
        return encs

    def encode_windows(
        self,
        text: str,
        text_pair: str,
        *,
        max_length: int,
        stride: int = 0,
        max_text_tokens: int | None = None,
        shrink_stride: bool = False,
    ) -> list[Encoding]:
        """``[CLS] text [SEP] window [SEP]`` for each window of ``text_pair`` that fits ``max_length``.

        What ``tokenizers`` gives with ``truncation="only_second", return_overflowing_tokens=True,
        stride=stride`` (the question-answering pipeline's features): windows of ``n = max_length -
        len(text) - 3`` tokens of ``text_pair`` starting every ``n - stride`` tokens, the last one
        ending at the pair's last token; one window when it fits. ``max_text_tokens`` first cuts
        ``text`` to that many tokens (the pipeline's ``max_question_len``, which only its slow
        path applies). Offsets index ``text`` (type 0) and ``text_pair`` (type 1).
        A ``stride`` of at least ``n`` is an error (as in ``tokenizers``), or with
        ``shrink_stride`` becomes ``n // 2``.
        """
        self._check_options(max_length, "only_second", "do_not_pad")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
            raise TokenizerError(f"stride={stride!r}; accepted: an int >= 0")
        cut = max_text_tokens
        if cut is not None and (isinstance(cut, bool) or not isinstance(cut, int) or cut < 1):
            raise TokenizerError(f"max_text_tokens={cut!r}; accepted: an int >= 1 (tokens of text kept), or None")
        a = self._encode_text(text, "text")[:cut]
        b = self._encode_text(text_pair, "text_pair")
        size = max_length - len(a) - 3
        if size <= 0:
            raise TokenizerError(
                f"text has {len(a)} tokens, which leaves no room for text_pair in max_length={max_length} "
                "([CLS] text [SEP] text_pair [SEP]); use a shorter text or a larger max_length"
            )
        if len(b) <= size:
            return [self._assemble(a, b)]
        if stride >= size and shrink_stride:
            stride = size // 2
        if stride >= size:
            raise TokenizerError(
                f"stride={stride} must be smaller than the {size} tokens of text_pair that fit in each "
                f"window (max_length={max_length}, text of {len(a)} tokens)"
            )
        windows, start = [], 0
        while True:
            stop = min(start + size, len(b))
            windows.append(self._assemble(a, b[start:stop]))
            if stop == len(b):
                return windows
            start += size - stride

    def _check_options(
        self, max_length: int | None, truncation: str | None, padding: str
    ) -> tuple[int | None, str | None]:
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2
        ):
            raise TokenizerError(
                f"max_length={max_length!r}; accepted: None or an int >= 2 (room for [CLS] and [SEP])"
            )
        if truncation is not None and truncation not in TRUNCATION_STRATEGIES:
            raise TokenizerError(
                f"truncation={truncation!r}; accepted: None or one of {', '.join(TRUNCATION_STRATEGIES)}"
            )
        if padding not in PADDING_STRATEGIES:
            raise TokenizerError(f"padding={padding!r}; accepted: {', '.join(PADDING_STRATEGIES)}")
        if padding == "max_length" and max_length is None:
            raise TokenizerError("padding='max_length' needs max_length")
        return max_length, truncation if max_length is not None else None

    def _encode_one(
        self, text: str, text_pair: str | None, max_length: int | None, truncation: str | None
    ) -> Encoding:
        a = self._encode_text(text, "text")
        b = self._encode_text(text_pair, "text_pair") if text_pair is not None else None
        if truncation is not None and max_length is not None:
            a, b = self._truncate(a, b, max_length, truncation)
        return self._assemble(a, b)

    def _assemble(self, a: _Tokens, b: _Tokens | None) -> Encoding:
        """``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` as an :class:`Encoding`."""
        cls, sep = self.cls_id, self.sep_id
        ids = [cls, *(i for i, _, _ in a), sep]
        offsets = [(0, 0), *(o for _, o, _ in a), (0, 0)]
        words: list[int | None] = [None, *(w for _, _, w in a), None]
        seqs: list[int | None] = [None, *([0] * len(a)), None]
        types = [0] * len(ids)
        if b is not None:
            ids += [*(i for i, _, _ in b), sep]
            offsets += [*(o for _, o, _ in b), (0, 0)]
            words += [*(w for _, _, w in b), None]
            seqs += [*([1] * len(b)), None]
            types += [1] * (len(b) + 1)
        return Encoding(
            input_ids=tuple(ids),
            token_type_ids=tuple(types),
            attention_mask=(1,) * len(ids),
            offsets=tuple(offsets),
            tokens=tuple(self._pieces[i] for i in ids),
            word_ids=tuple(words),
            sequence_ids=tuple(seqs),
        )

    @staticmethod
    def _truncate(
        a: _Tokens, b: _Tokens | None, max_length: int, strategy: str
    ) -> tuple[_Tokens, _Tokens | None]:
        if b is None:
            budget = max_length - 2
            if len(a) <= budget:
                return a, None
            if strategy == "only_second":
                raise TokenizerError(
                    f"text has {len(a)} tokens, more than max_length={max_length} allows, and "
                    "truncation='only_second' has no text_pair to cut; use 'longest_first' or 'only_first'"
                )
            return a[:budget], None
        budget = max_length - 3
        if budget < 0:
            raise TokenizerError(f"max_length={max_length} is too small for a pair: [CLS] A [SEP] B [SEP] needs >= 3")
        n1, n2 = len(a), len(b)
        if n1 + n2 <= budget:
            return a, b
        if strategy == "longest_first":
            # tokenizers: the shorter sequence (the first on a tie) keeps up to half the budget.
            if n1 > n2:
                k2 = min(n2, budget // 2)
                k1 = budget - k2
            else:
                k1 = min(n1, budget // 2)
                k2 = budget - k1
            return a[:k1], b[:k2]
        name, seq, other = ("text", a, n2) if strategy == "only_first" else ("text_pair", b, n1)
        keep = budget - other
        if keep <= 0:
            # Like tokenizers, never cut a sequence down to nothing.
            raise TokenizerError(
                f"cannot truncate with truncation={strategy!r}: {name} ({len(seq)} tokens) would have to "
                f"shrink to {keep} tokens to fit max_length={max_length}; use 'longest_first' or a "
                "larger max_length"
            )
        return (a[:keep], b) if strategy == "only_first" else (a, b[:keep])

    def pad(self, enc: Encoding, length: int) -> Encoding:
        """``enc`` padded to ``length`` (pad id, mask 0, type 0, offsets (0, 0)); unchanged if not shorter."""
        return self._pad(enc, length)

    def _pad(self, enc: Encoding, length: int) -> Encoding:
        n = length - len(enc)
        if n <= 0:
            return enc
        return Encoding(
            input_ids=enc.input_ids + (self.pad_id,) * n,
            token_type_ids=enc.token_type_ids + (0,) * n,
            attention_mask=enc.attention_mask + (0,) * n,
            offsets=enc.offsets + ((0, 0),) * n,
            tokens=enc.tokens + (self._pieces[self.pad_id],) * n,
            word_ids=enc.word_ids + (None,) * n,
            sequence_ids=enc.sequence_ids + (None,) * n,
        )

    # -- the pipeline -------------------------------------------------------------------------

    def _encode_text(self, text: Any, name: str) -> _Tokens:
        """``(id, (start, end))`` for each token of ``text``, without special tokens."""
        if not isinstance(text, str):
            raise TokenizerError(f"{name} must be a str, got {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise TokenizerError(
                f"{name} is not valid Unicode: lone surrogate {text[e.start]!r} at index {e.start}"
            ) from e
        out: _Tokens = []
        word = 0
        for start, end, token in self._split_added(text):
            if token is not None:
                out.append((token.id, (start, end), word))
                word += 1
            else:
                word = self._encode_segment(text, start, end, out, word)
        return out

    def _split_added(self, text: str) -> Iterator[tuple[int, int, AddedToken | None]]:
        """Cut added tokens out of raw text: ``(start, end, token)``, token None for plain text."""
        pos = 0
        if self._added_re is not None:
            for m in self._added_re.finditer(text):
                token = self._added[m.group()]
                start, end = m.span()
                if token.lstrip:
                    while start > pos and text[start - 1] in _WHITESPACE:
                        start -= 1
                if token.rstrip:
                    while end < len(text) and text[end] in _WHITESPACE:
                        end += 1
                if start < pos:  # a previous rstrip already took this text
                    continue
                if start > pos:
                    yield pos, start, None
                yield start, end, token
                pos = end
        if pos < len(text):
            yield pos, len(text), None

    def _normalize(self, text: str, start: int, end: int) -> _Aligned:
        """Steps 2-3: quotes, accents, case, charsmap; spans index ``text``."""
        folded = _Aligned()
        strip, lower = not self.keep_accents, self.do_lower_case
        i = start
        while i < end:
            if i + 1 < end and text[i] == text[i + 1] and text[i] in "`'":
                folded.add('"', i, i + 2)
                i += 2
            else:
                folded.add(_fold_char(text[i], strip, lower), i, i + 1)
                i += 1
        if self._charsmap is None:
            return folded
        out = _Aligned()
        for a, b, rep in self._charsmap.units("".join(folded.chars)):
            if rep is None:
                out.add(folded.chars[a], folded.starts[a], folded.ends[a])
            else:
                out.add(rep, folded.starts[a], max(folded.ends[a:b]))
        return out

    def _encode_segment(self, text: str, start: int, end: int, out: _Tokens, word: int) -> int:
        """Steps 4-5 of the module docstring for ``text[start:end]``; appends to ``out``.

        Each split is a word, numbered from ``word``; returns the next word number.
        """
        norm = self._normalize(text, start, end)
        chars = norm.chars
        j, n = 0, len(chars)
        while j < n:
            if chars[j] in _WHITESPACE:
                j += 1
                continue
            word_start = j
            while j < n and chars[j] not in _WHITESPACE:
                j += 1
            # Metaspace: "▁" in front unless the word has one, then split before every "▁".
            # A split is its marker (a real "▁" at index m, or m = -1 for the added one) plus body.
            m = word_start if chars[word_start] == SPIECE_UNDERLINE else -1
            body = word_start + (m >= 0)
            while True:
                k = body
                while k < j and chars[k] != SPIECE_UNDERLINE:
                    k += 1
                self._encode_split(norm, m, body, k, out, word)
                word += 1
                if k == j:
                    break
                m, body = k, k + 1
        return word

    def _encode_split(
        self, norm: _Aligned, marker: int, body: int, end: int, out: _Tokens, word: int
    ) -> None:
        """Tokens of ``"▁" + chars[body:end]``; ``marker`` is the real "▁" char index or -1."""
        piece_text = SPIECE_UNDERLINE + "".join(norm.chars[body:end])
        tokens = list(self._viterbi(piece_text))
        if self.split_digit_comma:
            tokens = [t for tok in tokens for t in self._split_digit_comma(piece_text, tok)]
        for tid, s, e in tokens:
            # Split coordinates: 0 is the marker, c >= 1 is norm index body + c - 1.
            idx = list(range(body + max(s - 1, 0), body + e - 1))
            if s == 0 and marker >= 0:
                idx.insert(0, marker)
            if idx:
                span = (min(norm.starts[k] for k in idx), max(norm.ends[k] for k in idx))
            else:  # a bare added "▁": an empty span where its word starts
                span = (norm.starts[body], norm.starts[body])
            out.append((tid, span, word))

    def _viterbi(self, text: str) -> tuple[tuple[int, int, int], ...]:
        """Best segmentation of ``text`` as ``(id, start, end)``; tokenizers' ``encode_optimized``.

        Float64 scores accumulated from the start of the split, candidates in order of start
        then length, a later candidate replaces an earlier one only if strictly better, a
        character no piece starts with becomes an unknown node, adjacent unknowns are fused.
        (SentencePiece's own Viterbi sums in float32 over the whole text, which resolves exact
        ties such as ``00|0`` vs ``0|00`` differently.)
        """
        cached = self._viterbi_cache.get(text)
        if cached is not None:
            return cached
        vocab, scores, unk = self._piece_to_id, self._scores, self.unk_id
        n = len(text)
        best = [0.0] * (n + 1)
        back = [-1] * (n + 1)
        ids = [unk] * (n + 1)
        for i in range(n):
            base = best[i]
            single = False
            for t in range(i + 1, min(n, i + self._max_piece_len) + 1):
                pid = vocab.get(text[i:t])
                if pid is None:
                    continue
                score = scores[pid] + base
                if back[t] < 0 or score > best[t]:
                    best[t], back[t], ids[t] = score, i, pid
                single = single or t == i + 1
            if not single:
                score = self._unk_score + base
                if back[i + 1] < 0 or score > best[i + 1]:
                    best[i + 1], back[i + 1], ids[i + 1] = score, i, unk
        result: list[tuple[int, int, int]] = []
        e = n
        while e > 0:
            s = back[e]
            if ids[e] == unk and result and result[-1][0] == unk and result[-1][1] == e:
                result[-1] = (unk, s, result[-1][2])
            else:
                result.append((ids[e], s, e))
            e = s
        result.reverse()
        # A fused unknown run is looked up again as a whole, as tokenizers does.
        out = tuple(
            (vocab.get(text[s:e], unk) if tid == unk else tid, s, e) for tid, s, e in result
        )
        if len(self._viterbi_cache) > 50_000:
            self._viterbi_cache.clear()
        self._viterbi_cache[text] = out
        return out

    def _split_digit_comma(self, text: str, token: tuple[int, int, int]) -> list[tuple[int, int, int]]:
        """Original ALBERT's rule: ``▁12,`` → the pieces of ``12`` (encoded again) and ``,``.

        As in the original, when the piece had no ``▁`` the one SentencePiece adds is cut off
        the first re-encoded piece, which may leave a string outside the vocabulary: ``<unk>``.
        """
        tid, s, e = token
        piece = text[s:e]
        if not (len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()):
            return [token]
        body = piece[:-1].replace(SPIECE_UNDERLINE, "")
        # Re-encode "▁" + body (SentencePiece's dummy prefix); map its coordinates into `text`.
        shift = s if piece.startswith(SPIECE_UNDERLINE) else s - 1
        out = []
        for i, (_, ps, pe) in enumerate(self._viterbi(SPIECE_UNDERLINE + body)):
            if i == 0 and not piece.startswith(SPIECE_UNDERLINE):
                if pe == 1:  # a bare "▁"
                    continue
                ps += 1
            p = (SPIECE_UNDERLINE + body)[ps:pe]
            out.append((self._piece_to_id.get(p, self.unk_id), ps + shift, pe + shift))
        out.append((self._piece_to_id.get(",", self.unk_id), e - 1, e))
        return out

    def __repr__(self) -> str:
        return (
            f"AlbertTokenizer(source={self._source!r}, vocab_size={self.vocab_size}, "
            f"do_lower_case={self.do_lower_case}, keep_accents={self.keep_accents}, "
            f"split_digit_comma={self.split_digit_comma}, split_special_tokens={self.split_special_tokens}, "
            f"split_user_defined={self.split_user_defined})"
        )


# ---------------------------------------------------------------------------------------------
# Model files.


def _read_charsmap(model: bytes) -> bytes:
    """``normalizer_spec.precompiled_charsmap`` of a serialized ModelProto (b"" if none)."""
    for field, _, value in proto.iter_fields(model):
        if field == 3 and isinstance(value, bytes):
            for f, _, v in proto.iter_fields(value):
                if f == 2 and isinstance(v, bytes):
                    return v
    return b""


def _read_tokenizer_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    config = read_json_object(path, TokenizerError)
    for key in ("do_lower_case", "keep_accents", "split_user_defined"):
        if key in config and not isinstance(config[key], bool):
            raise TokenizerError(f"{path}: {key} is {config[key]!r}; accepted: true or false")
    return config


# ---------------------------------------------------------------------------------------------
# Training and tensors.


def train_sentencepiece(
    texts: Iterable[str],
    out_path: str | Path,
    vocab_size: int,
    *,
    do_lower_case: bool = True,
    keep_accents: bool = False,
    user_defined_symbols: Sequence[str] = (),
    character_coverage: float = 0.99995,
) -> Path:
    """Train an ALBERT-style unigram ``spiece.model`` on ``texts`` and write it atomically.

    Same layout and settings as ALBERT's: ids 0-4 are ``<pad> <unk> [CLS] [SEP] [MASK]``
    (``[CLS] [SEP] [MASK]`` as control symbols), no BOS/EOS, ``nmt_nfkc`` normalization, and the
    text goes through :func:`preprocess_text` first. Deterministic: one thread, no sampling or
    shuffling of the input.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= 5 + len(user_defined_symbols):
        raise TokenizerError(
            f"vocab_size={vocab_size!r}; accepted: an int > {5 + len(user_defined_symbols)} "
            "(5 special pieces plus the user-defined symbols)"
        )

    def sentences() -> Iterator[str]:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TokenizerError(f"texts[{i}] is {type(text).__name__}; accepted: str")
            text = preprocess_text(text, do_lower_case=do_lower_case, keep_accents=keep_accents)
            if text:
                yield text

    buffer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sentences(),
            model_writer=buffer,
            model_type="unigram",
            vocab_size=vocab_size,
            pad_id=0,
            unk_id=1,
            bos_id=-1,
            eos_id=-1,
            control_symbols=["[CLS]", "[SEP]", "[MASK]"],
            user_defined_symbols=list(user_defined_symbols),
            normalization_rule_name="nmt_nfkc",
            character_coverage=character_coverage,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise TokenizerError(f"SentencePiece training for {out_path} failed: {e}") from e
    out = Path(out_path)
    atomic_write_bytes(out, buffer.getvalue())
    logger.info("wrote %s (vocab_size=%d, %d bytes)", out, vocab_size, len(buffer.getvalue()))
    return out


def batch_to_tensors(encodings: Sequence[Encoding]) -> dict[str, torch.Tensor]:
    """Stack equal-length encodings into int64 tensors of shape (B, S).

    Returns ``input_ids``, ``attention_mask`` and ``token_type_ids``. Encodings of different
    lengths must be padded first (``encode_batch(..., padding='longest')``).
    """
    import torch

    if not encodings:
        raise TokenizerError("batch_to_tensors needs at least one encoding")
    lengths = {len(e) for e in encodings}
    if len(lengths) != 1:
        raise TokenizerError(
            f"encodings have different lengths {sorted(lengths)}; pad them first "
            "(encode_batch(..., padding='longest') or padding='max_length')"
        )
    return {
        name: torch.tensor([getattr(e, name) for e in encodings], dtype=torch.int64)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
