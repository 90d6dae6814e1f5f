package org.albertedge.textcore

/**
 * The per-character Unicode facts the tokenizer needs, as Python's `unicodedata` (Unicode 14,
 * what the reference tokenizer uses) gives them: general category (only the classes that
 * matter), NFKD with marks removed, lower case, and `str.isdigit`.
 *
 * Nothing comes from the platform (`Character`, `Normalizer`, `String.lowercase`): Android 7
 * (minSdk 24) has about Unicode 8, newer versions up to 15, so their answers differ from
 * Python's and from each other. Everything is read from [UnicodeTables], generated from Python by
 * android_demo/tools/gen_unicode_tables.py; tests/test_android_textcore.py compares all 1.1M code
 * points with Python and checks that textcore's bytecode calls none of the platform's Unicode
 * lookups.
 */
internal object UnicodeProps {
    // Category classes (everything else is OTHER).
    const val OTHER = 0
    const val CONTROL = 1 // Cc, Cf, Zl, Zp, Cs
    const val MN = 2
    const val ME = 3
    const val MC = 4

    /** Sorted ranges: [starts], [ends] (inclusive) and one value each. */
    private class Ranges(val starts: IntArray, val ends: IntArray, val values: IntArray) {
        /** The value of the range holding [cp], or [default]. */
        fun lookup(cp: Int, default: Int): Int {
            var lo = 0
            var hi = starts.size - 1
            while (lo <= hi) {
                val mid = (lo + hi) ushr 1
                when {
                    cp < starts[mid] -> hi = mid - 1
                    cp > ends[mid] -> lo = mid + 1
                    else -> return values[mid]
                }
            }
            return default
        }
    }

    /** A code-point mapping: sorted [keys], and key i's result `targets[from[i] until from[i + 1]]`. */
    private class Mapping(val keys: IntArray, val from: IntArray, val targets: IntArray) {
        /** The mapping of [cp], or null where the table has none. */
        fun lookup(cp: Int): IntArray? {
            val i = java.util.Arrays.binarySearch(keys, cp)
            return if (i < 0) null else targets.copyOfRange(from[i], from[i + 1])
        }
    }

    private fun entries(chunks: Array<String>): List<String> =
        chunks.joinToString(";").split(';').filter { it.isNotEmpty() }

    private fun hex(s: String): Int = s.toInt(16)

    private fun ranges(chunks: Array<String>): Ranges {
        val e = entries(chunks)
        val starts = IntArray(e.size)
        val ends = IntArray(e.size)
        val values = IntArray(e.size)
        e.forEachIndexed { i, entry ->
            val range = entry.substringBefore(':')
            starts[i] = hex(range.substringBefore('-'))
            ends[i] = hex(range.substringAfter('-'))
            values[i] = if (':' in entry) entry.substringAfter(':').toInt() else 1
        }
        return Ranges(starts, ends, values)
    }

    /** Runs `start,count,step,target,tstep` and explicit `cp=t1 t2 ...` entries, expanded. */
    private fun mapping(chunks: Array<String>): Mapping {
        val map = java.util.TreeMap<Int, IntArray>()
        for (entry in entries(chunks)) {
            if ('=' in entry) {
                val targets = entry.substringAfter('=')
                map[hex(entry.substringBefore('='))] =
                    if (targets.isEmpty()) IntArray(0) else targets.split(' ').map(::hex).toIntArray()
            } else {
                val f = entry.split(',')
                val (start, count, step, target) = f.take(4).map(::hex)
                val tstep = if (f[4].startsWith("-")) -hex(f[4].substring(1)) else hex(f[4])
                for (k in 0 until count) map[start + k * step] = intArrayOf(target + k * tstep)
            }
        }
        val keys = IntArray(map.size)
        val from = IntArray(map.size + 1)
        val targets = IntList()
        var i = 0
        for ((cp, t) in map) {
            keys[i] = cp
            for (x in t) targets.add(x)
            from[++i] = targets.size
        }
        return Mapping(keys, from, targets.toArray())
    }

    private val categories by lazy { ranges(UnicodeTables.CATEGORIES) }
    private val digits by lazy { ranges(UnicodeTables.DIGITS) }
    private val strip by lazy { mapping(UnicodeTables.STRIP) }
    private val lower by lazy { mapping(UnicodeTables.LOWER) }

    fun category(cp: Int): Int = categories.lookup(cp, OTHER)

    /** NFKD, then characters of general category M removed (ASCII is left alone). */
    fun stripAccents(cp: Int): IntArray {
        if (cp < 0x80) return intArrayOf(cp)
        strip.lookup(cp)?.let { return it }
        if (cp in 0xAC00..0xD7A3) return hangul(cp)
        return if (isMark(cp)) IntArray(0) else intArrayOf(cp)
    }

    /** Lower case of one character on its own (may be several: `İ` -> `i̇`). */
    fun lower(cp: Int): IntArray = lower.lookup(cp) ?: intArrayOf(cp)

    /** Python's `str.isdigit`: decimal digits and other characters of Numeric_Type Digit (`²`, `①`). */
    fun isDigit(cp: Int): Boolean = digits.lookup(cp, 0) == 1

    fun isMark(cp: Int): Boolean = category(cp).let { it == MN || it == ME || it == MC }

    /** A Hangul syllable's canonical decomposition into jamo (Unicode's arithmetic, chapter 3.12). */
    private fun hangul(cp: Int): IntArray {
        val s = cp - 0xAC00
        val l = 0x1100 + s / 588
        val v = 0x1161 + (s % 588) / 28
        val t = s % 28
        return if (t == 0) intArrayOf(l, v) else intArrayOf(l, v, 0x11A7 + t)
    }
}
