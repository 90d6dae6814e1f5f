package org.albertedge.textcore

/** A JSON text that could not be parsed; the message gives the character offset. */
class JsonException(message: String) : IllegalArgumentException(message)

/**
 * A small strict JSON (RFC 8259) reader, so that textcore needs no library.
 *
 * Values map to Kotlin as: object -> `Map<String, Any?>` (insertion order kept), array ->
 * `List<Any?>`, string -> `String`, integer without fraction or exponent -> `Long`, other
 * numbers -> `Double`, `true`/`false` -> `Boolean`, `null` -> `null`.
 */
object MiniJson {
    fun parse(text: String): Any? {
        val p = Parser(text)
        p.skipWs()
        val value = p.value(0)
        p.skipWs()
        if (p.pos != text.length) p.fail("unexpected text after the JSON value")
        return value
    }

    private const val MAX_DEPTH = 200

    private class Parser(val s: String) {
        var pos = 0

        fun fail(what: String): Nothing = throw JsonException("invalid JSON at offset $pos: $what")

        fun skipWs() {
            while (pos < s.length && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) pos++
        }

        fun value(depth: Int): Any? {
            if (depth > MAX_DEPTH) fail("nesting deeper than $MAX_DEPTH")
            if (pos >= s.length) fail("unexpected end of text, expected a value")
            return when (val c = s[pos]) {
                '{' -> obj(depth)
                '[' -> array(depth)
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (c == '-' || c in '0'..'9') number() else fail("unexpected character '$c'")
            }
        }

        fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, pos)) fail("expected '$word'")
            pos += word.length
            return v
        }

        fun obj(depth: Int): Map<String, Any?> {
            pos++ // '{'
            val out = LinkedHashMap<String, Any?>()
            skipWs()
            if (pos < s.length && s[pos] == '}') { pos++; return out }
            while (true) {
                skipWs()
                if (pos >= s.length || s[pos] != '"') fail("expected a string key")
                val key = string()
                skipWs()
                if (pos >= s.length || s[pos] != ':') fail("expected ':' after key \"$key\"")
                pos++
                skipWs()
                if (out.containsKey(key)) fail("duplicate key \"$key\"")
                out[key] = value(depth + 1)
                skipWs()
                if (pos >= s.length) fail("unexpected end of text in an object")
                when (s[pos]) {
                    ',' -> pos++
                    '}' -> { pos++; return out }
                    else -> fail("expected ',' or '}' in an object")
                }
            }
        }

        fun array(depth: Int): List<Any?> {
            pos++ // '['
            val out = ArrayList<Any?>()
            skipWs()
            if (pos < s.length && s[pos] == ']') { pos++; return out }
            while (true) {
                skipWs()
                out.add(value(depth + 1))
                skipWs()
                if (pos >= s.length) fail("unexpected end of text in an array")
                when (s[pos]) {
                    ',' -> pos++
                    ']' -> { pos++; return out }
                    else -> fail("expected ',' or ']' in an array")
                }
            }
        }

        fun string(): String {
            pos++ // opening quote
            val b = StringBuilder()
            while (true) {
                if (pos >= s.length) fail("unterminated string")
                val c = s[pos++]
                when {
                    c == '"' -> return b.toString()
                    c == '\\' -> {
                        if (pos >= s.length) fail("unterminated escape")
                        when (val e = s[pos++]) {
                            '"' -> b.append('"'); '\\' -> b.append('\\'); '/' -> b.append('/')
                            'b' -> b.append('\b'); 'f' -> b.append('\u000C'); 'n' -> b.append('\n')
                            'r' -> b.append('\r'); 't' -> b.append('\t')
                            'u' -> {
                                if (pos + 4 > s.length) fail("truncated \\u escape")
                                val hex = s.substring(pos, pos + 4)
                                val code = hex.toIntOrNull(16) ?: fail("bad \\u escape '$hex'")
                                pos += 4
                                b.append(code.toChar()) // surrogate pairs arrive as two escapes
                            }
                            else -> fail("bad escape '\\$e'")
                        }
                    }
                    c < ' ' -> fail("control character U+%04X in a string".format(c.code))
                    else -> b.append(c)
                }
            }
        }

        fun number(): Any {
            val start = pos
            if (s[pos] == '-') pos++
            if (pos >= s.length || s[pos] !in '0'..'9') fail("expected a digit")
            if (s[pos] == '0') pos++ else while (pos < s.length && s[pos] in '0'..'9') pos++
            var integral = true
            if (pos < s.length && s[pos] == '.') {
                integral = false
                pos++
                if (pos >= s.length || s[pos] !in '0'..'9') fail("expected a digit after '.'")
                while (pos < s.length && s[pos] in '0'..'9') pos++
            }
            if (pos < s.length && (s[pos] == 'e' || s[pos] == 'E')) {
                integral = false
                pos++
                if (pos < s.length && (s[pos] == '+' || s[pos] == '-')) pos++
                if (pos >= s.length || s[pos] !in '0'..'9') fail("expected a digit in the exponent")
                while (pos < s.length && s[pos] in '0'..'9') pos++
            }
            val text = s.substring(start, pos)
            if (integral) text.toLongOrNull()?.let { return it }
            return text.toDouble()
        }
    }
}
