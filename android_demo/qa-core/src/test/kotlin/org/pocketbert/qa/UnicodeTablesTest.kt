package org.pocketbert.qa

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

/**
 * Every code point of Unicode through the normalizer and the pre-tokenizer's split test, against
 * what Hugging Face's Rust code does (golden `unicode` section). Catches Unicode-version drift
 * between the JVM/Android tables and the `tokenizers` crate's.
 */
class UnicodeTablesTest {
    private val tok = BertTokenizer(Vocab(listOf("[UNK]")), 0)

    private fun expectedNormalized(): Map<Int, String> {
        val out = HashMap<Int, String>()
        val map = Golden.unicode.obj("normalize_map")
        for (run in Golden.unicode.list("normalize_runs")) {
            val r = run as List<*>
            val first = (r[0] as Number).toInt()
            val last = (r[1] as Number).toInt()
            val cls = r[2] as String
            for (cp in first..last) {
                val ch = String(Character.toChars(cp))
                out[cp] = when (cls) {
                    "same" -> ch
                    "removed" -> ""
                    "space" -> " "
                    "cjk" -> " $ch "
                    else -> map[cp.toString()] as String
                }
            }
        }
        return out
    }

    private fun report(what: String, bad: List<String>) =
        assertEquals(0, bad.size, "$what: ${bad.size} code points differ from Hugging Face, e.g. ${bad.take(12)}")

    @Test
    fun normalizerMatchesEveryCodePoint() {
        val want = expectedNormalized()
        val bad = ArrayList<String>()
        for ((cp, w) in want) {
            val got = tok.normalize(String(Character.toChars(cp))).text
            if (got != w) bad.add("U+%04X %s->%s want %s".format(cp, Character.getName(cp), got.codePoints().toArray().map { "%04X".format(it) }, w.codePoints().toArray().map { "%04X".format(it) }))
        }
        assertEquals(0x110000 - 0x800, want.size, "the golden table covers every code point but surrogates")
        report("normalize", bad)
    }

    @Test
    fun splitMatchesEveryCodePoint() {
        val want = HashMap<Int, String>()
        for (run in Golden.unicode.list("split_runs")) {
            val r = run as List<*>
            for (cp in (r[0] as Number).toInt()..(r[1] as Number).toInt()) want[cp] = r[2] as String
        }
        val bad = ArrayList<String>()
        for (cp in 0 until 0x110000) {
            if (cp in 0xD800..0xDFFF) continue
            val got = when {
                BertTokenizer.isWhitespace(cp) -> "space"
                BertTokenizer.isPunctuation(cp) -> "punct"
                else -> "word"
            }
            val w = want[cp] ?: "word"
            if (got != w) bad.add("U+%04X %s: %s, want %s".format(cp, Character.getName(cp), got, w))
        }
        report("split", bad)
    }
}
