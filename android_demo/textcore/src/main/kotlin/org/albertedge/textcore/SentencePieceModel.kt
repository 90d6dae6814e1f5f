package org.albertedge.textcore

/** A file that is not a SentencePiece unigram model (or a malformed one); the message says why. */
class SentencePieceException(message: String) : IllegalArgumentException(message)

/**
 * The parts of a serialized SentencePiece `ModelProto` (`spiece.model`) that ALBERT's tokenizer
 * needs, read by hand: a mirror of albert_edge/_spm_proto.py. Field numbers follow
 * `sentencepiece_model.proto`.
 */
class SentencePieceModel private constructor(
    /** Pieces in id order. */
    val pieces: List<String>,
    /** Float32 scores, in id order. */
    val scores: FloatArray,
    /** `SentencePiece.Type` per id: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
    val types: IntArray,
    /** `normalizer_spec.precompiled_charsmap`; empty when the model has none. */
    val precompiledCharsmap: ByteArray,
    val addDummyPrefix: Boolean,
    val removeExtraWhitespaces: Boolean,
    val escapeWhitespaces: Boolean,
) {
    val size: Int get() = pieces.size

    companion object {
        const val NORMAL = 1
        const val UNKNOWN = 2
        const val CONTROL = 3
        const val USER_DEFINED = 4
        const val UNIGRAM = 1
        private val MODEL_TYPE_NAMES = mapOf(1 to "UNIGRAM", 2 to "BPE", 3 to "WORD", 4 to "CHAR")

        private const val VARINT = 0
        private const val FIXED64 = 1
        private const val BYTES = 2
        private const val FIXED32 = 5

        /** Parse `spiece.model` bytes; throws [SentencePieceException] for anything but a unigram model. */
        fun parse(bytes: ByteArray): SentencePieceModel {
            val pieces = ArrayList<String>()
            val scores = ArrayList<Float>()
            val types = ArrayList<Int>()
            var modelType = UNIGRAM
            var charsmap = ByteArray(0)
            // proto2 defaults of NormalizerSpec.
            var addDummyPrefix = true
            var removeExtra = true
            var escape = true
            for (f in fields(bytes, 0, bytes.size)) {
                when (f.number) {
                    1 -> { // pieces
                        if (f.wire != BYTES) throw SentencePieceException("ModelProto.pieces is not a message")
                        var piece = ""
                        var score = 0f
                        var type = NORMAL
                        for (g in fields(bytes, f.start, f.end)) {
                            when {
                                g.number == 1 && g.wire == BYTES -> piece = utf8(bytes, g.start, g.end)
                                g.number == 2 && g.wire == FIXED32 -> score = Float.fromBits(le32(bytes, g.start))
                                g.number == 3 && g.wire == VARINT -> type = g.value.toInt()
                            }
                        }
                        pieces.add(piece); scores.add(score); types.add(type)
                    }
                    2 -> if (f.wire == BYTES) { // trainer_spec
                        for (g in fields(bytes, f.start, f.end)) if (g.number == 3 && g.wire == VARINT) modelType = g.value.toInt()
                    }
                    3 -> if (f.wire == BYTES) { // normalizer_spec
                        for (g in fields(bytes, f.start, f.end)) {
                            when {
                                g.number == 2 && g.wire == BYTES -> charsmap = bytes.copyOfRange(g.start, g.end)
                                g.number == 3 && g.wire == VARINT -> addDummyPrefix = g.value != 0L
                                g.number == 4 && g.wire == VARINT -> removeExtra = g.value != 0L
                                g.number == 5 && g.wire == VARINT -> escape = g.value != 0L
                            }
                        }
                    }
                }
            }
            if (pieces.isEmpty()) throw SentencePieceException("not a SentencePiece model file (it has no pieces)")
            if (modelType != UNIGRAM) {
                val name = MODEL_TYPE_NAMES[modelType] ?: modelType.toString()
                throw SentencePieceException("a SentencePiece $name model; ALBERT tokenizers are UNIGRAM models")
            }
            return SentencePieceModel(
                pieces, scores.toFloatArray(), types.toIntArray(), charsmap, addDummyPrefix, removeExtra, escape,
            )
        }

        /** One field: number, wire type, and either a varint value or the [start, end) of its bytes. */
        private class Field(val number: Int, val wire: Int, val value: Long, val start: Int, val end: Int)

        private fun fields(buf: ByteArray, from: Int, to: Int): List<Field> {
            val out = ArrayList<Field>()
            var pos = from
            fun varint(): Long {
                var result = 0L
                var shift = 0
                while (true) {
                    if (pos >= to) throw SentencePieceException("not a SentencePiece model file (truncated varint)")
                    val b = buf[pos++].toInt() and 0xFF
                    result = result or ((b and 0x7F).toLong() shl shift)
                    if (b and 0x80 == 0) return result
                    shift += 7
                    if (shift > 63) throw SentencePieceException("not a SentencePiece model file (varint longer than 10 bytes)")
                }
            }
            while (pos < to) {
                val key = varint()
                val number = (key ushr 3).toInt()
                val wire = (key and 7).toInt()
                if (number == 0) throw SentencePieceException("not a SentencePiece model file (field number 0)")
                when (wire) {
                    VARINT -> out.add(Field(number, wire, varint(), pos, pos))
                    FIXED64, FIXED32 -> {
                        val size = if (wire == FIXED64) 8 else 4
                        if (pos + size > to) throw SentencePieceException("not a SentencePiece model file (truncated fixed-size field)")
                        out.add(Field(number, wire, 0, pos, pos + size))
                        pos += size
                    }
                    BYTES -> {
                        val size = varint()
                        if (size < 0 || pos + size > to) throw SentencePieceException("not a SentencePiece model file (truncated length-delimited field)")
                        out.add(Field(number, wire, 0, pos, pos + size.toInt()))
                        pos += size.toInt()
                    }
                    else -> throw SentencePieceException("not a SentencePiece model file (unsupported wire type $wire)")
                }
            }
            return out
        }

        internal fun le32(buf: ByteArray, at: Int): Int =
            (buf[at].toInt() and 0xFF) or ((buf[at + 1].toInt() and 0xFF) shl 8) or
                ((buf[at + 2].toInt() and 0xFF) shl 16) or ((buf[at + 3].toInt() and 0xFF) shl 24)

        private fun utf8(buf: ByteArray, from: Int, to: Int): String {
            val decoder = Charsets.UTF_8.newDecoder() // strict: a malformed piece is an error, as in Python
            return try {
                decoder.decode(java.nio.ByteBuffer.wrap(buf, from, to - from)).toString()
            } catch (e: java.nio.charset.CharacterCodingException) {
                throw SentencePieceException("not a SentencePiece model file (a piece is not valid UTF-8)")
            }
        }
    }
}
