"""transformers' ``tokenizer.json`` (a Unigram tokenizer) read back into a SentencePiece model.

Used by ``AlbertTokenizer.from_pretrained``: the vocabulary with its exact float64 scores, the
added tokens (cut out of the raw text, with their lstrip/rstrip flags) and the precompiled
charsmap, rebuilt into a ``ModelProto`` that SentencePiece and the Android tokenizer read.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from albert_edge import _spm_proto as proto
from albert_edge.errors import TokenizerError

__all__ = ["AddedToken", "model_from_tokenizer_json"]


@dataclass(frozen=True)
class AddedToken:
    """A token cut out of the raw text before segmenting (transformers' ``AddedToken``)."""

    content: str
    id: int
    special: bool
    lstrip: bool = False
    rstrip: bool = False


def model_from_tokenizer_json(path: Path) -> tuple[bytes, list[AddedToken], list[float]]:
    """Rebuild a SentencePiece ModelProto from a transformers ``tokenizer.json`` (Unigram).

    Returns the model, the added tokens and the exact (float64) scores.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{path} is not valid JSON ({e})") from e
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "Unigram":
        kind = model.get("type") if isinstance(model, dict) else None
        raise TokenizerError(
            f"{path}: model.type is {kind!r}; only 'Unigram' tokenizer.json files (ALBERT's) are accepted"
        )
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not vocab or not all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int | float)
        for v in vocab
    ):
        raise TokenizerError(f"{path}: model.vocab must be a non-empty list of [piece, score] pairs")
    unk_id = model.get("unk_id")
    if not isinstance(unk_id, int) or not 0 <= unk_id < len(vocab):
        raise TokenizerError(f"{path}: model.unk_id is {unk_id!r}; accepted: an id in [0, {len(vocab)})")
    if model.get("byte_fallback"):
        raise TokenizerError(f"{path}: model.byte_fallback is true; ALBERT tokenizers do not use it")

    added: list[AddedToken] = []
    for t in data.get("added_tokens") or []:
        content, tid = t.get("content"), t.get("id")
        if not isinstance(content, str) or not isinstance(tid, int) or not 0 <= tid < len(vocab):
            raise TokenizerError(
                f"{path}: added token {t!r} must have a string content and an id in [0, {len(vocab)})"
            )
        if vocab[tid][0] != content:
            raise TokenizerError(f"{path}: added token {content!r} has id {tid}, which is {vocab[tid][0]!r}")
        for flag in ("single_word", "normalized"):
            if t.get(flag):
                raise TokenizerError(
                    f"{path}: added token {content!r} has {flag}=true; only single_word=false, "
                    "normalized=false added tokens are supported"
                )
        added.append(AddedToken(content, tid, bool(t.get("special")), bool(t.get("lstrip")), bool(t.get("rstrip"))))

    types = {t.id: proto.CONTROL if t.special else proto.USER_DEFINED for t in added}
    types[unk_id] = proto.UNKNOWN
    pieces = [proto.Piece(p, float(s), types.get(i, proto.NORMAL)) for i, (p, s) in enumerate(vocab)]
    charsmap = _find_precompiled(data.get("normalizer"))
    spec = proto.normalizer_spec(
        "nmt_nfkc" if charsmap else "identity",
        charsmap,
        add_dummy_prefix=True,
        remove_extra_whitespaces=True,
        escape_whitespaces=True,
    )
    return proto.build_unigram_model(pieces, unk_id=unk_id, normalizer=spec), added, [float(s) for _, s in vocab]


def _find_precompiled(normalizer: Any) -> bytes:
    if not isinstance(normalizer, dict):
        return b""
    if normalizer.get("type") == "Precompiled":
        return base64.b64decode(normalizer.get("precompiled_charsmap") or "")
    for child in normalizer.get("normalizers") or []:
        found = _find_precompiled(child)
        if found:
            return found
    return b""
