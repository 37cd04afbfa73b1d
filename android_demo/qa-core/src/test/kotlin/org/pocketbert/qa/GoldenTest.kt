package org.pocketbert.qa

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.DynamicTest.dynamicTest
import org.junit.jupiter.api.TestFactory

/** Tokenization, windows and span decoding against Hugging Face + pocketbert (golden.json). */
class GoldenTest {
    private fun label(s: String) = s.take(40).replace(Regex("\\p{C}"), "?")

    private fun tokenizeTests(section: Map<String, Any?>, vocab: Vocab, tag: String): List<DynamicTest> {
        val tok = Golden.tokenizer(section, vocab)
        return section.list("tokenize").mapIndexed { k, c ->
            val case = c.asObj()
            dynamicTest("$tag tokenize #$k '${label(case.str("text"))}'") {
                val text = case.str("text")
                val got = tok.tokenize(text)
                assertEquals(Golden.ints(case["ids"]), got.map { it.id }, "ids of '$text'")
                assertEquals((case["tokens"] as List<*>), got.map { it.piece }, "pieces of '$text'")
                assertEquals(Golden.pairs(case["offsets"]), got.map { listOf(it.start, it.end) }, "offsets of '$text'")
            }
        }
    }

    private fun windowTests(section: Map<String, Any?>, vocab: Vocab, tag: String): List<DynamicTest> {
        val tok = Golden.tokenizer(section, vocab)
        val special = Golden.special(section)
        return section.list("windows").mapIndexed { k, c ->
            val case = c.asObj()
            val maxLength = case.int("max_length")
            val stride = case.int("stride")
            dynamicTest("$tag windows #$k max_length=$maxLength stride=$stride '${label(case.str("question"))}'") {
                val q = case.str("question")
                val ctx = case.str("context")
                if (case["error"] != null) {
                    val e = assertThrows(QaInputException::class.java) { qaWindows(tok, q, ctx, maxLength, stride, special) }
                    val want = if (case["error"] == "stride") QaInputException.Kind.STRIDE_TOO_LARGE else QaInputException.Kind.QUESTION_TOO_LONG
                    assertEquals(want, e.kind)
                    return@dynamicTest
                }
                val got = qaWindows(tok, q, ctx, maxLength, stride, special)
                val want = case.list("windows").map { it.asObj() }
                assertEquals(want.size, got.size, "number of windows")
                for ((w, g) in want.zip(got)) {
                    assertEquals(Golden.ints(w["input_ids"]), g.inputIds.toList(), "input_ids")
                    assertEquals(Golden.ints(w["token_type_ids"]), g.tokenTypeIds.toList(), "token_type_ids")
                    assertEquals(Golden.ints(w["sequence_ids"]), g.sequenceIds.toList(), "sequence_ids")
                    assertEquals(Golden.pairs(w["offsets"]), (0 until g.length).map { listOf(g.start(it), g.end(it)) }, "offsets")
                }
            }
        }
    }

    private fun checkAnswer(case: Map<String, Any?>, windows: List<QaWindow>) {
        val starts = case.list("start_logits").map { Golden.floats(it) }
        val ends = case.list("end_logits").map { Golden.floats(it) }
        val span = bestSpan(windows, starts, ends)
        val want = case.obj("answer")
        if (want["score"] == null) {
            assertNull(span, "no legal span expected")
            return
        }
        assertNotNull(span)
        assertEquals(want.int("start"), span!!.start, "answer start")
        assertEquals(want.int("end"), span.end, "answer end")
        assertEquals(want.str("text"), span.text(case.str("context")), "answer text")
        assertEquals((want["score"] as Number).toDouble(), span.score, "answer score")
    }

    @TestFactory
    fun presetTokenize() = tokenizeTests(Golden.preset, Golden.presetVocab, "preset")

    @TestFactory
    fun presetWindows() = windowTests(Golden.preset, Golden.presetVocab, "preset")

    @TestFactory
    fun presetDecode(): List<DynamicTest> {
        val tok = Golden.tokenizer(Golden.preset, Golden.presetVocab)
        val special = Golden.special(Golden.preset)
        return Golden.preset.list("decode").mapIndexed { k, c ->
            val case = c.asObj()
            dynamicTest("preset decode #$k seq_len=${case.int("seq_len")} '${label(case.str("question"))}'") {
                assertEquals(case.int("doc_stride"), docStride(case.int("seq_len")), "doc stride")
                val windows = questionWindows(tok, case.str("question"), case.str("context"), case.int("seq_len"),
                    docStride(case.int("seq_len")), special)
                checkAnswer(case, windows)
            }
        }
    }

    private fun realOrSkip(): Pair<Map<String, Any?>, Vocab> {
        val r = Golden.real
        assumeTrue(r != null, "golden.json has no `real` section")
        val v = Golden.realVocab
        assumeTrue(v != null, "real vocab not given (-Dpocketbert.vocab=../shared/data/vocab/vocab.txt)")
        return r!! to v!!
    }

    @TestFactory
    fun realTokenize(): List<DynamicTest> {
        val (r, v) = realOrSkip()
        return tokenizeTests(r, v, "bert-base-uncased")
    }

    @TestFactory
    fun realWindows(): List<DynamicTest> {
        val (r, v) = realOrSkip()
        return windowTests(r, v, "bert-base-uncased")
    }

    @TestFactory
    fun realModelAnswers(): List<DynamicTest> {
        val (r, v) = realOrSkip()
        val tok = Golden.tokenizer(r, v)
        val special = Golden.special(r)
        return r.list("qa").map { c ->
            val case = c.asObj()
            dynamicTest("minilm-l6-squad12 ${case.str("id")} seq_len=${case.int("seq_len")} '${label(case.str("question"))}'") {
                val windows = questionWindows(tok, case.str("question"), case.str("context"), case.int("seq_len"),
                    case.int("doc_stride"), special)
                assertEquals(case.list("windows").map { Golden.ints(it) }, windows.map { it.inputIds.toList() }, "window ids")
                checkAnswer(case, windows)
            }
        }
    }
}
