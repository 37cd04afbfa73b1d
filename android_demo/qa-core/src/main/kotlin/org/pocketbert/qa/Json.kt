package org.pocketbert.qa

/**
 * A small JSON reader and writer (RFC 8259), so this module needs nothing but the Kotlin stdlib.
 *
 * Values map to: object -> Map<String, Any?> (insertion-ordered), array -> List<Any?>,
 * string -> String, number -> Long when it is an integer literal that fits, else Double,
 * true/false -> Boolean, null -> null.
 */
object Json {
    class ParseException(message: String) : IllegalArgumentException(message)

    fun parse(text: String): Any? {
        val p = Parser(text)
        p.ws()
        val v = p.value()
        p.ws()
        if (p.i != text.length) p.fail("trailing characters")
        return v
    }

    /** JSON text of [value]; [indent] > 0 pretty-prints. Non-finite doubles become null. */
    fun write(value: Any?, indent: Int = 0): String {
        val sb = StringBuilder()
        writeTo(sb, value, indent, 0)
        return sb.toString()
    }

    private class Parser(val s: String) {
        var i = 0

        fun fail(what: String): Nothing {
            val line = s.substring(0, minOf(i, s.length)).count { it == '\n' } + 1
            throw ParseException("invalid JSON at line $line (offset $i): $what")
        }

        fun ws() {
            while (i < s.length && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++
        }

        fun value(): Any? {
            if (i >= s.length) fail("unexpected end")
            return when (val c = s[i]) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> lit("true", true)
                'f' -> lit("false", false)
                'n' -> lit("null", null)
                else -> if (c == '-' || c in '0'..'9') num() else fail("unexpected '$c'")
            }
        }

        fun lit(word: String, v: Any?): Any? {
            if (!s.startsWith(word, i)) fail("expected $word")
            i += word.length
            return v
        }

        fun obj(): Map<String, Any?> {
            val m = LinkedHashMap<String, Any?>()
            i++
            ws()
            if (i < s.length && s[i] == '}') { i++; return m }
            while (true) {
                ws()
                if (i >= s.length || s[i] != '"') fail("expected a string key")
                val k = str()
                ws()
                if (i >= s.length || s[i] != ':') fail("expected ':'")
                i++
                ws()
                m[k] = value()
                ws()
                if (i >= s.length) fail("unexpected end in object")
                when (s[i]) {
                    ',' -> i++
                    '}' -> { i++; return m }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        fun arr(): List<Any?> {
            val a = ArrayList<Any?>()
            i++
            ws()
            if (i < s.length && s[i] == ']') { i++; return a }
            while (true) {
                ws()
                a.add(value())
                ws()
                if (i >= s.length) fail("unexpected end in array")
                when (s[i]) {
                    ',' -> i++
                    ']' -> { i++; return a }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        fun str(): String {
            i++ // opening quote
            val sb = StringBuilder()
            while (true) {
                if (i >= s.length) fail("unterminated string")
                val c = s[i++]
                when {
                    c == '"' -> return sb.toString()
                    c == '\\' -> {
                        if (i >= s.length) fail("unterminated escape")
                        when (val e = s[i++]) {
                            '"' -> sb.append('"'); '\\' -> sb.append('\\'); '/' -> sb.append('/')
                            'b' -> sb.append('\b'); 'f' -> sb.append('\u000C'); 'n' -> sb.append('\n')
                            'r' -> sb.append('\r'); 't' -> sb.append('\t')
                            'u' -> {
                                if (i + 4 > s.length) fail("short \\u escape")
                                val hex = s.substring(i, i + 4)
                                sb.append(hex.toIntOrNull(16)?.toChar() ?: fail("bad \\u escape '$hex'"))
                                i += 4
                            }
                            else -> fail("bad escape '\\$e'")
                        }
                    }
                    c < ' ' -> fail("control character in string")
                    else -> sb.append(c)
                }
            }
        }

        fun num(): Any {
            val start = i
            if (s[i] == '-') i++
            while (i < s.length && s[i] in '0'..'9') i++
            var integer = true
            if (i < s.length && s[i] == '.') { integer = false; i++; while (i < s.length && s[i] in '0'..'9') i++ }
            if (i < s.length && (s[i] == 'e' || s[i] == 'E')) {
                integer = false
                i++
                if (i < s.length && (s[i] == '+' || s[i] == '-')) i++
                while (i < s.length && s[i] in '0'..'9') i++
            }
            val text = s.substring(start, i)
            if (text == "-" || text.isEmpty()) fail("bad number")
            return (if (integer) text.toLongOrNull() else null) ?: text.toDoubleOrNull() ?: fail("bad number '$text'")
        }
    }

    private fun writeTo(sb: StringBuilder, v: Any?, indent: Int, depth: Int) {
        fun newline(d: Int) {
            if (indent > 0) { sb.append('\n'); repeat(indent * d) { sb.append(' ') } }
        }
        when (v) {
            null -> sb.append("null")
            is String -> quote(sb, v)
            is Boolean -> sb.append(v)
            is Double -> if (v.isFinite()) sb.append(v) else sb.append("null")
            is Float -> if (v.isFinite()) sb.append(v.toString()) else sb.append("null")
            is Number -> sb.append(v.toLong())
            is Map<*, *> -> {
                sb.append('{')
                var first = true
                for ((k, x) in v) {
                    if (!first) sb.append(',')
                    first = false
                    newline(depth + 1)
                    quote(sb, k.toString())
                    sb.append(if (indent > 0) ": " else ":")
                    writeTo(sb, x, indent, depth + 1)
                }
                if (!first) newline(depth)
                sb.append('}')
            }
            is Iterable<*> -> {
                sb.append('[')
                var first = true
                for (x in v) {
                    if (!first) sb.append(if (indent > 0) ", " else ",")
                    first = false
                    writeTo(sb, x, 0, depth + 1) // arrays stay on one line: raw sample lists are long
                }
                sb.append(']')
            }
            is DoubleArray -> writeTo(sb, v.toList(), indent, depth)
            is IntArray -> writeTo(sb, v.toList(), indent, depth)
            is LongArray -> writeTo(sb, v.toList(), indent, depth)
            else -> quote(sb, v.toString())
        }
    }

    private fun quote(sb: StringBuilder, s: String) {
        sb.append('"')
        for (c in s) {
            when {
                c == '"' -> sb.append("\\\"")
                c == '\\' -> sb.append("\\\\")
                c == '\n' -> sb.append("\\n")
                c == '\r' -> sb.append("\\r")
                c == '\t' -> sb.append("\\t")
                c < ' ' -> sb.append(String.format("\\u%04x", c.code))
                else -> sb.append(c)
            }
        }
        sb.append('"')
    }
}

// Typed accessors for parsed JSON, failing with the key's name.
internal fun Map<String, Any?>.obj(key: String): Map<String, Any?> =
    (this[key] as? Map<*, *>)?.let { @Suppress("UNCHECKED_CAST") (it as Map<String, Any?>) }
        ?: throw IllegalArgumentException("'$key' missing or not an object")

internal fun Map<String, Any?>.list(key: String): List<Any?> =
    this[key] as? List<Any?> ?: throw IllegalArgumentException("'$key' missing or not a list")

internal fun Map<String, Any?>.str(key: String): String =
    this[key] as? String ?: throw IllegalArgumentException("'$key' missing or not a string")

internal fun Map<String, Any?>.int(key: String): Int =
    (this[key] as? Number)?.toInt() ?: throw IllegalArgumentException("'$key' missing or not a number")

internal fun Map<String, Any?>.bool(key: String): Boolean =
    this[key] as? Boolean ?: throw IllegalArgumentException("'$key' missing or not true/false")

@Suppress("UNCHECKED_CAST")
internal fun Any?.asObj(): Map<String, Any?> =
    this as? Map<String, Any?> ?: throw IllegalArgumentException("expected a JSON object")
