"""The few bits of SentencePiece's ``ModelProto`` wire format the tokenizer needs, by hand.

Reading pieces and their types, and building a model from a Hugging Face ``tokenizer.json``,
need only protobuf's varint / length-delimited / fixed32 encodings, so the runtime does not
depend on the ``protobuf`` package. Field numbers follow
``sentencepiece_model.proto``; a test checks the output against ``sentencepiece_model_pb2``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# SentencePiece.Type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
# TrainerSpec.ModelType
UNIGRAM = 1
MODEL_TYPE_NAMES = {1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class ProtoError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass(frozen=True)
class Piece:
    piece: str
    score: float
    type: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtoError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)``; value is an int (varint) or raw bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ProtoError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield field, wire, value
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > len(buf):
                raise ProtoError("truncated fixed-size field")
            yield field, wire, buf[pos : pos + size]
            pos += size
        elif wire == _BYTES:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtoError("truncated length-delimited field")
            yield field, wire, buf[pos : pos + size]
            pos += size
        else:
            raise ProtoError(f"unsupported wire type {wire}")


def _enc_varint(n: int) -> bytes:
    n &= 0xFFFF_FFFF_FFFF_FFFF  # negative int32/int64 are sign-extended to 10 bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _enc_varint(field << 3 | wire)


def enc_int(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + _enc_varint(value)


def enc_bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _key(field, _BYTES) + _enc_varint(len(data)) + data


def enc_float(field: int, value: float) -> bytes:
    return _key(field, _FIXED32) + struct.pack("<f", value)


def read_pieces(model: bytes) -> list[Piece]:
    """Return the vocabulary of a serialized ``ModelProto`` (field 1), in id order."""
    pieces = []
    for field, wire, value in iter_fields(model):
        if field != 1:
            continue
        if wire != _BYTES:
            raise ProtoError("ModelProto.pieces is not a message")
        piece, score, kind = "", 0.0, NORMAL
        for f, w, v in iter_fields(value):  # type: ignore[arg-type]
            if f == 1 and w == _BYTES:
                piece = v.decode("utf-8")  # type: ignore[union-attr]
            elif f == 2 and w == _FIXED32:
                score = struct.unpack("<f", v)[0]  # type: ignore[arg-type]
            elif f == 3 and w == _VARINT:
                kind = int(v)  # type: ignore[arg-type]
        pieces.append(Piece(piece, score, kind))
    return pieces


def read_model_type(model: bytes) -> int:
    """Return ``trainer_spec.model_type`` (1 = UNIGRAM, the proto default)."""
    model_type = UNIGRAM
    for field, wire, value in iter_fields(model):
        if field == 2 and wire == _BYTES:
            for f, w, v in iter_fields(value):  # type: ignore[arg-type]
                if f == 3 and w == _VARINT:
                    model_type = int(v)  # type: ignore[arg-type]
    return model_type


def normalizer_spec(
    name: str,
    precompiled_charsmap: bytes = b"",
    *,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
) -> bytes:
    """Serialize a ``NormalizerSpec``. The booleans default to true in proto2, so all are written."""
    out = enc_bytes(1, name)
    if precompiled_charsmap:
        out += enc_bytes(2, precompiled_charsmap)
    out += enc_int(3, add_dummy_prefix) + enc_int(4, remove_extra_whitespaces)
    return out + enc_int(5, escape_whitespaces)


def build_unigram_model(pieces: Sequence[Piece], unk_id: int, normalizer: bytes) -> bytes:
    """Serialize a unigram ``ModelProto`` with ``pieces``; no BOS/EOS/PAD ids are declared."""
    out = bytearray()
    for p in pieces:
        out += enc_bytes(1, enc_bytes(1, p.piece) + enc_float(2, p.score) + enc_int(3, p.type))
    trainer = (
        enc_int(3, UNIGRAM)
        + enc_int(4, len(pieces))
        + enc_int(40, unk_id)
        + enc_int(41, -1)
        + enc_int(42, -1)
        + enc_int(43, -1)
    )
    out += enc_bytes(2, trainer)
    out += enc_bytes(3, normalizer)
    return bytes(out)
