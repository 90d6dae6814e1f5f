package org.albertedge.textcore

/** A text, option or model the tokenizer cannot use; the message says what is accepted. */
class TokenizerException(message: String) : IllegalArgumentException(message)

/**
 * One encoded example: `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, all three arrays of length S,
 * int64 as the ExecuTorch programs take them (`Tensor.fromBlob(inputIds, longArrayOf(1, S))`).
 */
data class Encoding(val inputIds: LongArray, val attentionMask: LongArray, val tokenTypeIds: LongArray) {
    val size: Int get() = inputIds.size

    /** Pad to [length] with [padId], mask 0, type 0 (for fixed-length programs); unchanged if already that long. */
    fun padTo(length: Int, padId: Int): Encoding {
        if (size >= length) return this
        return Encoding(
            inputIds.copyOf(length).also { it.fill(padId.toLong(), size, length) },
            attentionMask.copyOf(length),
            tokenTypeIds.copyOf(length),
        )
    }

    override fun equals(other: Any?): Boolean =
        other is Encoding && inputIds.contentEquals(other.inputIds) &&
            attentionMask.contentEquals(other.attentionMask) && tokenTypeIds.contentEquals(other.tokenTypeIds)

    override fun hashCode(): Int =
        (inputIds.contentHashCode() * 31 + attentionMask.contentHashCode()) * 31 + tokenTypeIds.contentHashCode()

    override fun toString(): String =
        "Encoding(inputIds=${inputIds.contentToString()}, attentionMask=${attentionMask.contentToString()}, " +
            "tokenTypeIds=${tokenTypeIds.contentToString()})"
}

/**
 * ALBERT's tokenizer over a SentencePiece unigram model: a port of albert_edge/tokenizer.py
 * (docs/tokenizer.md), whose ids it reproduces exactly (export/goldens/tokenizer_cases.jsonl).
 *
 * For each stretch of text between added tokens: `` ``/'' `` -> `"`; unless [keepAccents], NFKD
 * and removal of marks; if [doLowerCase], per-character lower case; the model's precompiled
 * charsmap per grapheme cluster; words split on White_Space, each with a `▁` in front and cut
 * before every further `▁`; each part segmented by unigram Viterbi (float64, ties to the earlier
 * candidate, unknown characters fused into one `<unk>`). Then `[CLS] A [SEP] (B [SEP])` with
 * longest-first truncation.
 */
class AlbertTokenizer(
    private val model: SentencePieceModel,
    val doLowerCase: Boolean = true,
    val keepAccents: Boolean = false,
    val splitDigitComma: Boolean = false,
) {
    private val pieceToId = HashMap<String, Int>(model.size * 2)
    private val charsMap: CharsMap?
    private val addedTokens: List<Pair<String, Int>> // longest first
    private val maxPieceLen: Int
    private val unkScore: Double
    private val foldCache = HashMap<Int, IntArray>()

    val vocabSize: Int get() = model.size
    val padId: Int
    val unkId: Int
    val clsId: Int
    val sepId: Int
    val maskId: Int

    init {
        model.pieces.forEachIndexed { i, p -> pieceToId[p] = i } // a later duplicate wins, as in Python
        fun special(role: String, name: String): Int = pieceToId[name] ?: throw TokenizerException(
            "the SentencePiece model has no piece '$name' ($role token); an ALBERT model needs " +
                "<pad>, <unk>, [CLS], [SEP], [MASK] (ids 0-4 in ALBERT's layout)"
        )
        padId = special("pad", "<pad>")
        unkId = special("unk", "<unk>")
        clsId = special("cls", "[CLS]")
        sepId = special("sep", "[SEP]")
        maskId = special("mask", "[MASK]")
        val unknown = model.types.indices.filter { model.types[it] == SentencePieceModel.UNKNOWN }
        if (unknown.isNotEmpty() && unknown != listOf(unkId)) {
            throw TokenizerException("the unknown piece is '${model.pieces[unknown[0]]}' (id ${unknown[0]}) but unk_token is '<unk>'")
        }
        charsMap = if (model.precompiledCharsmap.isNotEmpty()) CharsMap(model.precompiledCharsmap) else null
        // transformers 5: control, unknown and user-defined pieces (and the special ones) are cut
        // out of the raw text before anything else.
        val added = LinkedHashMap<Int, String>()
        model.types.forEachIndexed { i, t ->
            if (t == SentencePieceModel.UNKNOWN || t == SentencePieceModel.CONTROL || t == SentencePieceModel.USER_DEFINED) {
                added[i] = model.pieces[i]
            }
        }
        for (i in listOf(padId, unkId, clsId, sepId, maskId)) added.getOrPut(i) { model.pieces[i] }
        val byContent = LinkedHashMap<String, Int>()
        for ((i, content) in added) if (content.isNotEmpty()) byContent[content] = i
        addedTokens = byContent.entries.map { it.key to it.value }.sortedByDescending { it.first.length }
        maxPieceLen = model.pieces.maxOf { it.codePointCount(0, it.length) }
        // tokenizers' Unigram: an unknown character scores min(all scores) - 10.
        unkScore = model.scores.minOf { it.toDouble() } - 10.0
    }

    /**
     * Encode [text] (and [pair]) as `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, unpadded.
     *
     * [maxLength] is the total length with special tokens (>= 2, >= 3 for a pair); longer input
     * is cut from the end, longest first: the shorter sequence (the first on a tie) keeps
     * `min(its length, budget / 2)` tokens and the longer fills the rest, as `tokenizers` does.
     */
    fun encode(text: String, pair: String? = null, maxLength: Int? = null): Encoding {
        if (maxLength != null && maxLength < 2) {
            throw TokenizerException("maxLength=$maxLength; accepted: null or an int >= 2 (room for [CLS] and [SEP])")
        }
        var a = encodeText(text)
        var b = pair?.let { encodeText(it) }
        if (maxLength != null) {
            if (b == null) {
                if (a.size > maxLength - 2) a = a.subList(0, maxLength - 2)
            } else {
                val budget = maxLength - 3
                if (budget < 0) throw TokenizerException("maxLength=$maxLength is too small for a pair: [CLS] A [SEP] B [SEP] needs >= 3")
                if (a.size + b.size > budget) {
                    val k1: Int
                    val k2: Int
                    if (a.size > b.size) {
                        k2 = minOf(b.size, budget / 2); k1 = budget - k2
                    } else {
                        k1 = minOf(a.size, budget / 2); k2 = budget - k1
                    }
                    a = a.subList(0, k1); b = b.subList(0, k2)
                }
            }
        }
        val ids = ArrayList<Int>(a.size + (b?.size ?: 0) + 3)
        ids.add(clsId); ids.addAll(a); ids.add(sepId)
        val firstLen = ids.size
        if (b != null) { ids.addAll(b); ids.add(sepId) }
        return Encoding(
            LongArray(ids.size) { ids[it].toLong() },
            LongArray(ids.size) { 1L },
            LongArray(ids.size) { if (it < firstLen) 0L else 1L },
        )
    }

    /** Pieces of [text] without special tokens (for display and debugging). */
    fun tokenize(text: String): List<String> = encodeText(text).map { model.pieces[it] }

    // -- the pipeline --------------------------------------------------------------------------

    private fun encodeText(text: String): List<Int> {
        val out = ArrayList<Int>()
        var pos = 0
        var i = 0
        // Leftmost, then longest, added token (what Python's longest-first alternation regex finds).
        while (i < text.length) {
            val hit = addedTokens.firstOrNull { text.startsWith(it.first, i) }
            if (hit == null) { i++; continue }
            if (i > pos) encodeSegment(text.substring(pos, i), out)
            out.add(hit.second)
            i += hit.first.length
            pos = i
        }
        if (pos < text.length) encodeSegment(text.substring(pos), out)
        return out
    }

    private fun fold(cp: Int): IntArray = foldCache.getOrPut(cp) {
        val stripped = if (!keepAccents && cp >= 0x80) UnicodeProps.stripAccents(cp) else intArrayOf(cp)
        if (!doLowerCase) stripped else stripped.flatMap { UnicodeProps.lower(it).asList() }.toIntArray()
    }.also { if (foldCache.size > 65536) foldCache.clear() }

    /** Quotes, accents, case, then the charsmap: the normalized code points of [segment]. */
    private fun normalize(segment: String): IntArray {
        val cps = segment.codePoints().toArray()
        val folded = IntList()
        var i = 0
        while (i < cps.size) {
            if (i + 1 < cps.size && cps[i] == cps[i + 1] && (cps[i] == '`'.code || cps[i] == '\''.code)) {
                folded.add('"'.code)
                i += 2
            } else {
                folded.addAll(fold(cps[i]))
                i += 1
            }
        }
        val map = charsMap ?: return folded.toArray()
        val source = folded.toArray()
        val out = IntList()
        map.units(source) { start, _, rep -> if (rep == null) out.add(source[start]) else out.addAll(rep) }
        return out.toArray()
    }

    private fun encodeSegment(segment: String, out: MutableList<Int>) {
        val chars = normalize(segment)
        var j = 0
        val n = chars.size
        while (j < n) {
            if (isWhitespace(chars[j])) { j++; continue }
            val wordStart = j
            while (j < n && !isWhitespace(chars[j])) j++
            // Metaspace: "▁" in front unless the word has one, then a split before every "▁".
            var body = if (chars[wordStart] == UNDERLINE) wordStart + 1 else wordStart
            while (true) {
                var k = body
                while (k < j && chars[k] != UNDERLINE) k++
                val piece = IntArray(k - body + 1)
                piece[0] = UNDERLINE
                System.arraycopy(chars, body, piece, 1, k - body)
                encodeSplit(piece, out)
                if (k == j) break
                body = k + 1
            }
        }
    }

    private fun encodeSplit(piece: IntArray, out: MutableList<Int>) {
        for (t in viterbi(piece)) {
            if (splitDigitComma) splitDigitComma(piece, t, out) else out.add(t.id)
        }
    }

    private class Token(val id: Int, val start: Int, val end: Int)

    /** tokenizers' `encode_optimized`: best segmentation of code points [text] as (id, start, end). */
    private fun viterbi(text: IntArray): List<Token> {
        val n = text.size
        val best = DoubleArray(n + 1)
        val back = IntArray(n + 1) { -1 }
        val ids = IntArray(n + 1) { unkId }
        val sb = StringBuilder()
        for (i in 0 until n) {
            val base = best[i]
            var single = false
            sb.setLength(0)
            for (t in i + 1..minOf(n, i + maxPieceLen)) {
                sb.appendCodePoint(text[t - 1])
                val pid = pieceToId[sb.toString()] ?: continue
                val score = model.scores[pid].toDouble() + base
                if (back[t] < 0 || score > best[t]) { best[t] = score; back[t] = i; ids[t] = pid }
                single = single || t == i + 1
            }
            if (!single) {
                val score = unkScore + base
                if (back[i + 1] < 0 || score > best[i + 1]) { best[i + 1] = score; back[i + 1] = i; ids[i + 1] = unkId }
            }
        }
        val result = ArrayList<Token>()
        var e = n
        while (e > 0) {
            val s = back[e]
            val last = result.lastOrNull()
            if (ids[e] == unkId && last != null && last.id == unkId && last.start == e) {
                result[result.size - 1] = Token(unkId, s, last.end) // adjacent unknowns fuse
            } else {
                result.add(Token(ids[e], s, e))
            }
            e = s
        }
        result.reverse()
        // A fused unknown run is looked up again as a whole, as tokenizers does.
        return result.map { if (it.id == unkId) Token(idOf(text, it.start, it.end), it.start, it.end) else it }
    }

    private fun idOf(text: IntArray, start: Int, end: Int): Int = pieceToId[String(text, start, end - start)] ?: unkId

    /**
     * Original ALBERT's rule: `▁12,` -> the pieces of `12` (encoded again) and `,`. As in the
     * original, when the piece had no `▁`, the one added for re-encoding is cut off the first
     * piece, which may leave a string outside the vocabulary: `<unk>`.
     */
    private fun splitDigitComma(text: IntArray, token: Token, out: MutableList<Int>) {
        val len = token.end - token.start
        if (!(len > 1 && text[token.end - 1] == ','.code && UnicodeProps.isDigit(text[token.end - 2]))) {
            out.add(token.id)
            return
        }
        val startsWithMarker = text[token.start] == UNDERLINE
        val body = IntList()
        body.add(UNDERLINE)
        for (k in token.start until token.end - 1) if (text[k] != UNDERLINE) body.add(text[k])
        val reText = body.toArray()
        viterbi(reText).forEachIndexed { i, t ->
            var ps = t.start
            if (i == 0 && !startsWithMarker) {
                if (t.end == 1) return@forEachIndexed // a bare "▁"
                ps += 1
            }
            out.add(idOf(reText, ps, t.end))
        }
        out.add(pieceToId[","] ?: unkId)
    }

    companion object {
        private const val UNDERLINE = 0x2581 // "▁"

        /**
         * The tokenizer a bundle's manifest describes, from its `spiece.model` bytes; checks that
         * the model's special ids are the manifest's.
         */
        fun fromManifest(manifest: BundleManifest, spiece: ByteArray): AlbertTokenizer {
            val settings = manifest.tokenizer
                ?: throw ManifestException("manifest.json: field 'tokenizer' is null; this bundle was exported without a tokenizer")
            val model = try {
                SentencePieceModel.parse(spiece)
            } catch (e: SentencePieceException) {
                throw TokenizerException("${settings.file.file}: ${e.message}")
            }
            val tok = AlbertTokenizer(model, settings.doLowerCase, settings.keepAccents, settings.splitDigitComma)
            val pairs = listOf(
                Triple("vocab_size", settings.vocabSize, tok.vocabSize),
                Triple("pad_id", settings.padId, tok.padId),
                Triple("unk_id", settings.unkId, tok.unkId),
                Triple("cls_id", settings.clsId, tok.clsId),
                Triple("sep_id", settings.sepId, tok.sepId),
                Triple("mask_id", settings.maskId, tok.maskId),
            )
            for ((field, expected, actual) in pairs) {
                if (expected != actual) {
                    throw ManifestException(
                        "manifest.json: field 'tokenizer.$field' is $expected but ${settings.file.file} gives $actual; " +
                            "the tokenizer file does not belong to this manifest"
                    )
                }
            }
            if (settings.vocabSize > manifest.vocabSize) {
                throw ManifestException("manifest.json: field 'tokenizer.vocab_size' (${settings.vocabSize}) is larger than 'vocab_size' (${manifest.vocabSize})")
            }
            return tok
        }

        // Unicode White_Space, i.e. Rust's char::is_whitespace (not Java's Character.isWhitespace).
        private fun isWhitespace(cp: Int): Boolean = when (cp) {
            0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 -> true
            else -> cp in 0x2000..0x200A
        }
    }
}

/** A growable IntArray. */
internal class IntList {
    private var data = IntArray(16)
    var size = 0
        private set

    fun add(x: Int) {
        if (size == data.size) data = data.copyOf(size * 2)
        data[size++] = x
    }

    fun addAll(xs: IntArray) = xs.forEach { add(it) }
    fun toArray(): IntArray = data.copyOf(size)
}
