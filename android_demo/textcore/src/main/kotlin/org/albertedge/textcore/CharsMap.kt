package org.albertedge.textcore

/**
 * SentencePiece's precompiled character map, applied the way Hugging Face `tokenizers` does:
 * a port of albert_edge/_charsmap.py (read its docstring for the why).
 *
 * The blob is a little-endian uint32 trie size, a darts-clone double-array trie over UTF-8 keys,
 * then NUL-terminated replacement strings. Text is cut into extended grapheme clusters; a
 * cluster of more than one character and fewer than 6 UTF-8 bytes becomes the replacement of the
 * *shortest* key that is a prefix of it, if any; otherwise each character is looked up alone.
 */
internal class CharsMap(blob: ByteArray) {
    private val units: IntArray
    private val strings: ByteArray
    private val charCache = HashMap<Int, IntArray?>()

    init {
        if (blob.size <= 4) throw SentencePieceException("precompiled charsmap is ${blob.size} bytes, too short")
        val trieSize = SentencePieceModel.le32(blob, 0).toLong() and 0xFFFFFFFFL
        if (trieSize % 4 != 0L || 4 + trieSize > blob.size) {
            throw SentencePieceException("precompiled charsmap trie size $trieSize does not fit the blob")
        }
        units = IntArray((trieSize / 4).toInt()) { SentencePieceModel.le32(blob, 4 + 4 * it) }
        strings = blob.copyOfRange(4 + trieSize.toInt(), blob.size)
    }

    private fun value(offset: Int): IntArray {
        var end = offset
        while (end < strings.size && strings[end] != 0.toByte()) end++
        return String(strings, offset, end - offset, Charsets.UTF_8).codePoints().toArray()
    }

    private fun offsetOf(unit: Int): Int = (unit ushr 10) shl ((unit and (1 shl 9)) ushr 6)

    /** Replacement of the shortest key that is a prefix of [key], or null. */
    fun shortestPrefix(key: ByteArray): IntArray? {
        var pos = offsetOf(units[0])
        for (b in key) {
            val byte = b.toInt() and 0xFF
            pos = pos xor byte
            if (pos < 0 || pos >= units.size) return null
            val unit = units[pos]
            if (unit and (0x800000FF).toInt() != byte) return null // label mismatch
            pos = pos xor offsetOf(unit)
            if ((unit ushr 8) and 1 != 0) return value(units[pos] and 0x7FFFFFFF) // a key ends here
        }
        return null
    }

    /** Replacement of the single code point [cp], or null when it maps to itself. */
    fun char(cp: Int): IntArray? =
        if (charCache.containsKey(cp)) charCache[cp]
        else shortestPrefix(utf8(intArrayOf(cp), 0, 1)).also { charCache[cp] = it }

    /** Apply the map to code points [cps]; [emit] receives, per unit, its [start, end) and replacement (null: unchanged). */
    inline fun units(cps: IntArray, emit: (start: Int, end: Int, replacement: IntArray?) -> Unit) {
        for ((start, end) in Graphemes.spans(cps)) {
            if (end - start > 1) {
                val cluster = utf8(cps, start, end)
                if (cluster.size < 6) {
                    val value = shortestPrefix(cluster)
                    if (value != null) {
                        emit(start, end, value)
                        continue
                    }
                }
            }
            for (i in start until end) emit(i, i + 1, char(cps[i]))
        }
    }

    companion object {
        fun utf8(cps: IntArray, from: Int, to: Int): ByteArray = String(cps, from, to - from).toByteArray(Charsets.UTF_8)
    }
}

/**
 * Extended grapheme clusters, UAX #29 rules GB3-GB13 without GB11, exactly as
 * albert_edge/_charsmap.py computes them (the JDK's `\X` follows a different Unicode version and
 * applies GB11, so it is not used). Categories come from [UnicodeProps] (Python's Unicode 14).
 */
internal object Graphemes {
    private const val CR = 0
    private const val LF = 1
    private const val CONTROL = 2
    private const val EXTEND = 3
    private const val ZWJ = 4
    private const val SPACING = 5
    private const val PREPEND = 6
    private const val RI = 7
    private const val L = 8
    private const val V = 9
    private const val T = 10
    private const val LV = 11
    private const val LVT = 12
    private const val OTHER = 13

    private val OTHER_GRAPHEME_EXTEND: Set<Int> = buildSet {
        addAll(listOf(0x09BE, 0x09D7, 0x0B3E, 0x0B57, 0x0BBE, 0x0BD7, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E, 0x0D57,
            0x0DCF, 0x0DDF, 0x1B35, 0x200C, 0x302E, 0x302F, 0xFF9E, 0xFF9F, 0x1133E, 0x11357, 0x114B0,
            0x114BD, 0x115AF, 0x11930, 0x1D165))
        addAll(0x1D16E until 0x1D173); addAll(0xE0020 until 0xE0080)
        addAll(0x1F3FB until 0x1F400) // emoji modifiers, Extend since Unicode 11
    }
    private val PREPEND_CHARS: Set<Int> = buildSet {
        addAll(0x0600 until 0x0606)
        addAll(listOf(0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x0D4E, 0x110BD, 0x110CD, 0x111C2, 0x111C3,
            0x1193F, 0x11941, 0x11A3A))
        addAll(0x11A84 until 0x11A8A); add(0x11D46)
    }

    private fun gcb(cp: Int): Int = when {
        cp == 0x0D -> CR
        cp == 0x0A -> LF
        cp == 0x200D -> ZWJ
        cp in PREPEND_CHARS -> PREPEND
        cp in OTHER_GRAPHEME_EXTEND -> EXTEND
        cp in 0x1F1E6..0x1F1FF -> RI
        cp in 0x1100..0x115F || cp in 0xA960..0xA97C -> L
        cp in 0x1160..0x11A7 || cp in 0xD7B0..0xD7C6 -> V
        cp in 0x11A8..0x11FF || cp in 0xD7CB..0xD7FB -> T
        cp in 0xAC00..0xD7A3 -> if ((cp - 0xAC00) % 28 == 0) LV else LVT
        else -> when (UnicodeProps.category(cp)) {
            UnicodeProps.CONTROL -> CONTROL
            UnicodeProps.MN, UnicodeProps.ME -> EXTEND
            UnicodeProps.MC -> SPACING
            else -> if (cp == 0x0E33 || cp == 0x0EB3) SPACING else OTHER
        }
    }

    private fun noBreak(prev: Int, cur: Int, riRun: Int): Boolean {
        if (prev == CR && cur == LF) return true // GB3
        if (prev == CR || prev == LF || prev == CONTROL || cur == CR || cur == LF || cur == CONTROL) return false // GB4, GB5
        if (prev == L && (cur == L || cur == V || cur == LV || cur == LVT)) return true // GB6
        if ((prev == LV || prev == V) && (cur == V || cur == T)) return true // GB7
        if ((prev == LVT || prev == T) && cur == T) return true // GB8
        if (cur == EXTEND || cur == ZWJ || cur == SPACING || prev == PREPEND) return true // GB9, GB9a, GB9b
        return prev == RI && cur == RI && riRun % 2 == 1 // GB12, GB13
    }

    /** `(start, end)` code-point spans of the clusters of [cps]. */
    fun spans(cps: IntArray): List<Pair<Int, Int>> {
        val out = ArrayList<Pair<Int, Int>>()
        var start = 0
        var prev = -1
        var riRun = 0 // regional indicators in a row, for pairing flags
        for (i in cps.indices) {
            val cur = gcb(cps[i])
            if (i > 0 && !noBreak(prev, cur, riRun)) {
                out.add(start to i)
                start = i
            }
            riRun = if (cur == RI) riRun + 1 else 0
            prev = cur
        }
        if (cps.isNotEmpty()) out.add(start to cps.size)
        return out
    }
}
