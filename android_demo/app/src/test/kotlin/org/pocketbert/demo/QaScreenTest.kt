package org.pocketbert.demo

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File

class QaScreenTest {
    @TempDir lateinit var tmp: File

    private val engines = listOf(PieceEngine("executorch"), PieceEngine("onnx"))

    private fun screen(vararg names: String, engines: List<org.pocketbert.qa.Engine> = this.engines): QaScreen {
        Fixtures.assets(File(tmp, "assets"), *names)
        return QaScreen(BundleStore(FolderAssets(File(tmp, "assets")), File(tmp, "files"), File(tmp, "pushed")), engines)
    }

    @Test
    fun answersWithTheEngineTheManifestNames() {
        val s = screen("tiny")
        assertEquals(QaScreen.Choices(listOf("tiny"), null), s.choices())
        val line = s.load("tiny")
        assertTrue(line.startsWith("tiny-bert · executorch · fp32 · windows of 64 tokens (stride 21) · 0.0 MB · loaded in"), line)
        assertTrue(s.ready)
        val context = "The cat sat on the mat in Paris."
        val shown = s.answer("  where did the cat sit ?  ", context)!!
        assertEquals("Paris", shown.answer)
        assertEquals("Paris", context.substring(shown.highlight!!))
        assertTrue(shown.timings.startsWith("tokenization") && "(1 window, " in shown.timings, shown.timings)
        assertNull(s.answer(" ", context))
        assertNull(s.answer("who?", "  "))
        val first = (engines[0] as PieceEngine).loaded.single()
        s.load("tiny")
        assertTrue(first.closed, "loading another bundle closes the model before")
        s.close()
        assertFalse(s.ready)
        assertNull(s.answer("where?", context))
    }

    @Test
    fun noBundleSaysHowToAddOne() {
        val s = QaScreen(BundleStore(FolderAssets(File(tmp, "none")), File(tmp, "files"), File(tmp, "pushed")), engines)
        assertEquals(QaScreen.Choices(emptyList(), QaScreen.NO_BUNDLE), s.choices())
    }

    @Test
    fun aMalformedModelListIsShownNotThrown() {
        File(tmp, "assets/bundles").mkdirs()
        File(tmp, "assets/bundles/models.json").writeText("{\"format\": ")
        val s = QaScreen(BundleStore(FolderAssets(File(tmp, "assets")), File(tmp, "files"), File(tmp, "pushed")), engines)
        val c = s.choices()
        assertEquals(emptyList<String>(), c.names)
        assertTrue(c.message!!.startsWith("bundles/models.json is not valid JSON"), c.message)
    }

    @Test
    fun anUnknownEngineIsOneLine() {
        Fixtures.assets(File(tmp, "assets"), "lite", target = "tflite")
        val s = QaScreen(BundleStore(FolderAssets(File(tmp, "assets")), File(tmp, "files"), File(tmp, "pushed")), engines)
        assertEquals("cannot load lite: lite is a 'tflite' bundle; the app runs executorch, onnx bundles " +
            "(pocketbert export --target executorch|onnx)", s.load("lite"))
        assertFalse(s.ready)
    }

    @Test
    fun everyWordPieceFamilyLoadsAndOtherTokenizersAreRefused() { // issue 30: the app side
        val store = BundleStore(FolderAssets(File(tmp, "assets")), File(tmp, "files"), File(tmp, "pushed"))
        val s = QaScreen(store, engines)
        for (family in listOf("bert", "distilbert", "electra", "mobilebert")) {
            val dir = Fixtures.bundle(File(tmp, "files/$family"), modelType = family, extra = mapOf("tokenizer_kind" to "wordpiece"))
            assertTrue(s.load(dir.path).startsWith("tiny-$family · executorch"), family)
            assertEquals("Paris", s.answer("where?", "the cat sat in paris .".replace("paris", "Paris"))!!.answer)
        }
        Fixtures.bundle(File(tmp, "files/legacy"))  // no tokenizer_kind: an older bundle, WordPiece
        assertTrue(s.load(File(tmp, "files/legacy").path).startsWith("tiny-bert"))
        for (kind in listOf("bpe", "sentencepiece", "unigram")) {
            val dir = Fixtures.bundle(File(tmp, "files/$kind"), modelType = "roberta", extra = mapOf("tokenizer_kind" to kind))
            assertEquals("cannot load ${dir.path}: ${dir.path}/manifest.json needs a '$kind' tokenizer; the app tokenizes " +
                "WordPiece only (bert, distilbert, electra, mobilebert bundles)", s.load(dir.path))
            assertFalse(s.ready)
        }
    }

    @Test
    fun aFailingModelIsAMessage() {
        val s = screen("tiny", engines = listOf(PieceEngine("executorch", fail = "XNNPACK delegate failed\nstack...")))
        s.load("tiny")
        val shown = s.answer("where?", "in Paris")!!
        assertEquals(QaScreen.Shown("XNNPACK delegate failed", null, ""), shown)
        val broken = screen("tiny", engines = listOf(PieceEngine("executorch", loadFails = "cannot mmap")))
        assertEquals("cannot load tiny: cannot mmap", broken.load("tiny"))
    }

    @Test
    fun insetsPadTheContent() {
        assertEquals(listOf(16, 40, 16, 300), QaScreen.insetPadding(16, 0, 24, 0, 284).toList())
        assertEquals(listOf(0, 0, 0, 0), QaScreen.insetPadding(0, -1, -5, 0, 0).toList())
        assertNotNull(QaScreen.oneLine(RuntimeException()))
    }
}
