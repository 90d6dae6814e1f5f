package org.albertedge.textcore

/** A text, option or model the tokenizer cannot use; the message says what is accepted. */
class TokenizerException(message: String) : IllegalArgumentException(message)

/**
 * One encoded example: `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, the three id arrays of length S,
 * int64 as the ExecuTorch programs take them (`Tensor.fromBlob(inputIds, longArrayOf(1, S))`).
 *
 * [offsets] (length 2 S) holds each token's span as flat pairs: token `i` came from code points
 * `offsets[2 * i] until offsets[2 * i + 1]` ([start] and [end]) of its text, `text` for token
 * type 0 and `pair` for type 1; `(0, 0)` for `[CLS]`, `[SEP]` and padding. They count code
 * points, exactly as the Python tokenizer's `Encoding.offsets` (Python `str` indices) and the
 * goldens do, so they differ from `String` indices after a character outside the BMP; use
 * [utf16Index] to highlight a token in the text. An `Encoding` built from ids alone gets all
 * `(0, 0)`.
 *
 * [wordIds] numbers the words of each token's text from 0 (an added token, or a
 * whitespace-separated run cut before every `▁`, as `tokenizers` counts them) and [sequenceIds]
 * says which text a token came from (0 or 1); both are -1 for `[CLS]`, `[SEP]` and padding, as
 * Python's `Encoding.word_ids` / `sequence_ids` are None there (all -1 when built from ids alone).
 */
data class Encoding(
    val inputIds: LongArray,
    val attentionMask: LongArray,
    val tokenTypeIds: LongArray,
    val offsets: IntArray = IntArray(2 * inputIds.size),
    val wordIds: IntArray = IntArray(inputIds.size) { -1 },
    val sequenceIds: IntArray = IntArray(inputIds.size) { -1 },
) {
    init {
        require(
            attentionMask.size == inputIds.size && tokenTypeIds.size == inputIds.size && offsets.size == 2 * inputIds.size &&
                wordIds.size == inputIds.size && sequenceIds.size == inputIds.size
        ) {
            "Encoding arrays disagree: ${inputIds.size} input ids, ${attentionMask.size} mask values, " +
                "${tokenTypeIds.size} token types, ${offsets.size} offsets, ${wordIds.size} word ids, " +
                "${sequenceIds.size} sequence ids; expected S, S, S, 2 S, S and S"
        }
    }

    val size: Int get() = inputIds.size

    /** First code point of token [i] in its text. */
    fun start(i: Int): Int = offsets[2 * i]

    /** End (exclusive) code point of token [i] in its text. */
    fun end(i: Int): Int = offsets[2 * i + 1]

    /** Pad to [length] with [padId], mask 0, type 0, offsets (0, 0), no word or sequence (for fixed-length programs); unchanged if already that long. */
    fun padTo(length: Int, padId: Int): Encoding {
        if (size >= length) return this
        return Encoding(
            inputIds.copyOf(length).also { it.fill(padId.toLong(), size, length) },
            attentionMask.copyOf(length),
            tokenTypeIds.copyOf(length),
            offsets.copyOf(2 * length),
            wordIds.copyOf(length).also { it.fill(-1, size, length) },
            sequenceIds.copyOf(length).also { it.fill(-1, size, length) },
        )
    }

    override fun equals(other: Any?): Boolean =
        other is Encoding && inputIds.contentEquals(other.inputIds) &&
            attentionMask.contentEquals(other.attentionMask) && tokenTypeIds.contentEquals(other.tokenTypeIds) &&
            offsets.contentEquals(other.offsets) && wordIds.contentEquals(other.wordIds) &&
            sequenceIds.contentEquals(other.sequenceIds)

    override fun hashCode(): Int =
        ((((inputIds.contentHashCode() * 31 + attentionMask.contentHashCode()) * 31 + tokenTypeIds.contentHashCode()) * 31 +
            offsets.contentHashCode()) * 31 + wordIds.contentHashCode()) * 31 + sequenceIds.contentHashCode()

    override fun toString(): String =
        "Encoding(inputIds=${inputIds.contentToString()}, attentionMask=${attentionMask.contentToString()}, " +
            "tokenTypeIds=${tokenTypeIds.contentToString()}, offsets=${offsets.contentToString()}, " +
            "wordIds=${wordIds.contentToString()}, sequenceIds=${sequenceIds.contentToString()})"
}

/**
 * The `String` (UTF-16) index of code point [codePointOffset] of [text], for an [Encoding] offset:
 * `text.substring(utf16Index(text, enc.start(i)), utf16Index(text, enc.end(i)))` is what the user
 * typed for token `i`, and the same pair of indices goes to `Spannable.setSpan`. [codePointOffset]
 * may be `0..text.codePointCount(0, text.length)`; the cost is linear in it.
 */
fun utf16Index(text: String, codePointOffset: Int): Int {
    val count = text.codePointCount(0, text.length)
    if (codePointOffset !in 0..count) {
        throw TokenizerException("code-point offset $codePointOffset is outside the text; accepted: 0..$count")
    }
    return text.offsetByCodePoints(0, codePointOffset)
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
 *
 * Every normalized code point remembers the span of the text it came from (Python's `_Aligned`),
 * which gives each token's [Encoding.offsets]: the `"` made from `` ``/'' `` spans both
 * characters, characters that normalization deletes join the span of the one before them, a bare
 * `▁` token gets the empty span at its word's start.
 */
class AlbertTokenizer(
    private val model: SentencePieceModel,
    val doLowerCase: Boolean = true,
    val keepAccents: Boolean = false,
    val splitDigitComma: Boolean = false,
    /** Cut user-defined pieces out of the raw text first, as transformers 5.0-5.24 did (Python's `split_user_defined`). */
    val splitUserDefined: Boolean = false,
) {
    private val pieceToId = HashMap<String, Int>(model.size * 2)
    private val charsMap: CharsMap?
    private val addedTokens: List<Pair<IntArray, Int>> // code points and id, longest first
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
        // Control and unknown pieces (and the special ones) are cut out of the raw text before
        // anything else, as transformers does. User-defined pieces only with splitUserDefined:
        // otherwise Viterbi segments them as SentencePiece does (score 0.0 beats every normal piece).
        val added = LinkedHashMap<Int, String>()
        model.types.forEachIndexed { i, t ->
            if (t == SentencePieceModel.UNKNOWN || t == SentencePieceModel.CONTROL ||
                (splitUserDefined && t == SentencePieceModel.USER_DEFINED)
            ) {
                added[i] = model.pieces[i]
            }
        }
        for (i in listOf(padId, unkId, clsId, sepId, maskId)) added.getOrPut(i) { model.pieces[i] }
        val byContent = LinkedHashMap<String, Int>()
        for ((i, content) in added) if (content.isNotEmpty()) byContent[content] = i
        addedTokens = byContent.entries.map { it.key.codePoints().toArray() to it.value }.sortedByDescending { it.first.size }
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
        var a = encodeText(text, "text")
        var b = pair?.let { encodeText(it, "text_pair") }
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
        return assemble(a, b)
    }

    /**
     * `[CLS] text [SEP] window [SEP]` for each window of [pair] that fits [maxLength]: what
     * `tokenizers` gives with `truncation="only_second"`, `return_overflowing_tokens=True` and
     * [stride] (the question-answering features; Python's `AlbertTokenizer.encode_windows`).
     *
     * [text] is first cut to [maxTextTokens] tokens; each window holds `n = maxLength - |text| - 3`
     * tokens of [pair], consecutive windows start `n - stride` tokens apart, the last ends at the
     * pair's last token; one window when it fits. A [stride] of at least `n` is an error, or with
     * [shrinkStride] becomes `n / 2`.
     */
    fun encodeWindows(
        text: String,
        pair: String,
        maxLength: Int,
        stride: Int = 0,
        maxTextTokens: Int? = null,
        shrinkStride: Boolean = false,
    ): List<Encoding> {
        if (maxLength < 2) throw TokenizerException("maxLength=$maxLength; accepted: an int >= 2 (room for [CLS] and [SEP])")
        if (stride < 0) throw TokenizerException("stride=$stride; accepted: an int >= 0")
        var a = encodeText(text, "text")
        if (maxTextTokens != null && a.size > maxTextTokens) a = a.subList(0, maxOf(maxTextTokens, 0))
        val b = encodeText(pair, "text_pair")
        val size = maxLength - a.size - 3
        if (size <= 0) {
            throw TokenizerException(
                "text has ${a.size} tokens, which leaves no room for text_pair in max_length=$maxLength " +
                    "([CLS] text [SEP] text_pair [SEP]); use a shorter text or a larger max_length"
            )
        }
        if (b.size <= size) return listOf(assemble(a, b))
        var step = stride
        if (step >= size && shrinkStride) step = size / 2
        if (step >= size) {
            throw TokenizerException(
                "stride=$step must be smaller than the $size tokens of text_pair that fit in each window " +
                    "(max_length=$maxLength, text of ${a.size} tokens)"
            )
        }
        val windows = ArrayList<Encoding>()
        var start = 0
        while (true) {
            val stop = minOf(start + size, b.size)
            windows.add(assemble(a, b.subList(start, stop)))
            if (stop == b.size) return windows
            start += size - step
        }
    }

    /** `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`; the added tokens have the span (0, 0) and no word. */
    private fun assemble(a: List<Token>, b: List<Token>?): Encoding {
        val cls = Token(clsId, 0, 0, -1)
        val sep = Token(sepId, 0, 0, -1)
        val tokens = ArrayList<Token>(a.size + (b?.size ?: 0) + 3)
        tokens.add(cls); tokens.addAll(a); tokens.add(sep)
        val firstLen = tokens.size
        if (b != null) { tokens.addAll(b); tokens.add(sep) }
        val last = tokens.size - 1
        return Encoding(
            LongArray(tokens.size) { tokens[it].id.toLong() },
            LongArray(tokens.size) { 1L },
            LongArray(tokens.size) { if (it < firstLen) 0L else 1L },
            IntArray(2 * tokens.size) { if (it % 2 == 0) tokens[it / 2].start else tokens[it / 2].end },
            IntArray(tokens.size) { tokens[it].word },
            IntArray(tokens.size) {
                when {
                    it == 0 || it == firstLen - 1 || it == last -> -1
                    it < firstLen -> 0
                    else -> 1
                }
            },
        )
    }

    /** Pieces of [text] without special tokens (for display and debugging). */
    fun tokenize(text: String): List<String> = encodeText(text, "text").map { model.pieces[it.id] }

    // -- the pipeline --------------------------------------------------------------------------

    /** The tokens of [text] without special tokens, spans in code points of [text]; [name] names it in errors. */
    private fun encodeText(text: String, name: String): List<Token> {
        val cps = text.codePoints().toArray()
        // A lone UTF-16 surrogate (pasted half of an emoji) is not text; Python refuses it too.
        val bad = cps.indexOfFirst { it in 0xD800..0xDFFF }
        if (bad >= 0) {
            throw TokenizerException(
                "$name is not valid Unicode: lone surrogate U+${Integer.toHexString(cps[bad]).map { if (it in 'a'..'f') it - 32 else it }.joinToString("")} at code point $bad"
            )
        }
        val out = ArrayList<Token>()
        var pos = 0
        var i = 0
        var word = 0
        // Leftmost, then longest, added token (what Python's longest-first alternation regex finds).
        while (i < cps.size) {
            val hit = addedTokens.firstOrNull { startsWith(cps, i, it.first) }
            if (hit == null) { i++; continue }
            if (i > pos) word = encodeSegment(cps, pos, i, out, word)
            out.add(Token(hit.second, i, i + hit.first.size, word++))
            i += hit.first.size
            pos = i
        }
        if (pos < cps.size) encodeSegment(cps, pos, cps.size, out, word)
        return out
    }

    private fun startsWith(cps: IntArray, at: Int, prefix: IntArray): Boolean {
        if (at + prefix.size > cps.size) return false
        for (k in prefix.indices) if (cps[at + k] != prefix[k]) return false
        return true
    }

    private fun fold(cp: Int): IntArray = foldCache.getOrPut(cp) {
        val stripped = if (!keepAccents && cp >= 0x80) UnicodeProps.stripAccents(cp) else intArrayOf(cp)
        if (!doLowerCase) stripped else stripped.flatMap { UnicodeProps.lower(it).asList() }.toIntArray()
    }.also { if (foldCache.size > 65536) foldCache.clear() }

    /** Quotes, accents, case, then the charsmap, of code points `text[start until end]`; spans index [text]. */
    private fun normalize(text: IntArray, start: Int, end: Int): Aligned {
        val folded = Aligned()
        var i = start
        while (i < end) {
            if (i + 1 < end && text[i] == text[i + 1] && (text[i] == '`'.code || text[i] == '\''.code)) {
                folded.add(QUOTE, i, i + 2)
                i += 2
            } else {
                folded.add(fold(text[i]), i, i + 1)
                i += 1
            }
        }
        val map = charsMap ?: return folded
        val out = Aligned()
        map.units(folded.chars.toArray()) { a, b, rep ->
            if (rep == null) {
                out.add(folded.chars[a], folded.starts[a], folded.ends[a])
            } else {
                var spanEnd = folded.ends[a]
                for (k in a + 1 until b) spanEnd = maxOf(spanEnd, folded.ends[k])
                out.add(rep, folded.starts[a], spanEnd)
            }
        }
        return out
    }

    /** Tokens of one stretch between added tokens; each split is a word numbered from [firstWord]; returns the next word number. */
    private fun encodeSegment(text: IntArray, start: Int, end: Int, out: MutableList<Token>, firstWord: Int): Int {
        var word = firstWord
        val norm = normalize(text, start, end)
        val chars = norm.chars
        var j = 0
        val n = chars.size
        while (j < n) {
            if (isWhitespace(chars[j])) { j++; continue }
            val wordStart = j
            while (j < n && !isWhitespace(chars[j])) j++
            // Metaspace: "▁" in front unless the word has one, then a split before every "▁".
            // A split is its marker (a real "▁" at index m, or m = -1 for the added one) plus body.
            var m = if (chars[wordStart] == UNDERLINE) wordStart else -1
            var body = if (m >= 0) wordStart + 1 else wordStart
            while (true) {
                var k = body
                while (k < j && chars[k] != UNDERLINE) k++
                encodeSplit(norm, m, body, k, out, word++)
                if (k == j) break
                m = k
                body = k + 1
            }
        }
        return word
    }

    /** Tokens of `"▁" + chars[body until end]`; [marker] is the real "▁"'s index in [norm], or -1. */
    private fun encodeSplit(norm: Aligned, marker: Int, body: Int, end: Int, out: MutableList<Token>, word: Int) {
        val piece = IntArray(end - body + 1)
        piece[0] = UNDERLINE
        for (k in body until end) piece[k - body + 1] = norm.chars[k]
        var tokens = viterbi(piece)
        if (splitDigitComma) tokens = tokens.flatMap { splitDigitComma(piece, it) }
        for (t in tokens) {
            // Split coordinates: 0 is the marker, c >= 1 is norm index body + c - 1.
            var lo = Int.MAX_VALUE
            var hi = Int.MIN_VALUE
            for (k in body + maxOf(t.start - 1, 0) until body + t.end - 1) {
                lo = minOf(lo, norm.starts[k]); hi = maxOf(hi, norm.ends[k])
            }
            if (t.start == 0 && marker >= 0) {
                lo = minOf(lo, norm.starts[marker]); hi = maxOf(hi, norm.ends[marker])
            }
            // A bare added "▁": an empty span where its word starts.
            if (lo == Int.MAX_VALUE) { lo = norm.starts[body]; hi = lo }
            out.add(Token(t.id, lo, hi, word))
        }
    }

    /** A token: its id, `[start, end)` in code points (of the split in [viterbi], else of the text) and word number. */
    private class Token(val id: Int, val start: Int, val end: Int, val word: Int = -1)

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
     * Original ALBERT's rule: `▁12,` -> the pieces of `12` (encoded again) and `,`, in the
     * coordinates of [text]. As in the original, when the piece had no `▁`, the one added for
     * re-encoding is cut off the first piece, which may leave a string outside the vocabulary: `<unk>`.
     */
    private fun splitDigitComma(text: IntArray, token: Token): List<Token> {
        val len = token.end - token.start
        if (!(len > 1 && text[token.end - 1] == ','.code && UnicodeProps.isDigit(text[token.end - 2]))) {
            return listOf(token)
        }
        val startsWithMarker = text[token.start] == UNDERLINE
        val body = IntList()
        body.add(UNDERLINE)
        for (k in token.start until token.end - 1) if (text[k] != UNDERLINE) body.add(text[k])
        val reText = body.toArray()
        // Re-encoded coordinates map into [text]: the body sits just after the piece's "▁".
        val shift = if (startsWithMarker) token.start else token.start - 1
        val out = ArrayList<Token>()
        viterbi(reText).forEachIndexed { i, t ->
            var ps = t.start
            if (i == 0 && !startsWithMarker) {
                if (t.end == 1) return@forEachIndexed // a bare "▁"
                ps += 1
            }
            out.add(Token(idOf(reText, ps, t.end), ps + shift, t.end + shift))
        }
        out.add(Token(pieceToId[","] ?: unkId, token.end - 1, token.end))
        return out
    }

    companion object {
        private const val UNDERLINE = 0x2581 // "▁"
        private val QUOTE = intArrayOf('"'.code)

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
            val tok = AlbertTokenizer(
                model, settings.doLowerCase, settings.keepAccents, settings.splitDigitComma, settings.splitUserDefined,
            )
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

/**
 * Normalized code points, each with the `[start, end)` code-point span of the text it came from
 * (Python's `_Aligned`).
 */
private class Aligned {
    val chars = IntList()
    val starts = IntList()
    val ends = IntList()

    fun add(cps: IntArray, start: Int, end: Int) {
        if (cps.isEmpty()) {
            // Deleted text joins the previous character's span, so a token's span covers what the
            // user typed (e.g. the accent of "e\u0301"); tokenizers leaves it out of every span.
            if (ends.size > 0) ends[ends.size - 1] = maxOf(ends[ends.size - 1], end)
            return
        }
        for (c in cps) add(c, start, end)
    }

    fun add(cp: Int, start: Int, end: Int) {
        chars.add(cp); starts.add(start); ends.add(end)
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

    operator fun get(i: Int): Int {
        if (i !in 0 until size) throw IndexOutOfBoundsException("index $i of an IntList of size $size")
        return data[i]
    }

    operator fun set(i: Int, x: Int) {
        if (i !in 0 until size) throw IndexOutOfBoundsException("index $i of an IntList of size $size")
        data[i] = x
    }

    fun toArray(): IntArray = data.copyOf(size)
}
