package org.pocketbert.demo

import android.content.Intent
import android.graphics.Insets
import android.os.Bundle
import android.text.FakeEditable
import android.text.style.BackgroundColorSpan
import android.view.View
import android.view.ViewGroup
import android.view.WindowInsets
import android.widget.Button
import android.widget.EditText
import android.widget.Spinner
import android.widget.TextView
import fakeandroid.Device
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import org.pocketbert.qa.Json
import java.io.File

/**
 * The app's Activities on the JVM (tests/android_jvm, run by tests/test_android_kotlin.py): the
 * real MainActivity, BenchmarkActivity and GameLoopActivity over a runnable android.* of the
 * stubs' signatures (tests/fake_android). ONNX bundles run with the app's own OnnxRuntimeEngine
 * over the fake phone's ai.onnxruntime, whose sessions run in onnxruntime's Python package
 * (-Dpocketbert.model_bridge, a real .onnx given by -Dpocketbert.test_onnx); ExecuTorch's native
 * library is not here, which is what a phone without it would show.
 */
class ActivitiesTest {
    @TempDir lateinit var tmp: File

    private val onnx: ByteArray? = System.getProperty("pocketbert.test_onnx")?.let { File(it).readBytes() }

    @BeforeEach
    fun phone() {
        Device.filesDir = File(tmp, "files")
        Device.externalFilesDir = null
        Device.assets = File(tmp, "assets")
        Device.log.clear()
    }

    private fun until(what: String, cond: () -> Boolean) {
        val end = System.nanoTime() + 60_000_000_000L
        while (!cond()) {
            if (System.nanoTime() > end) fail<Unit>("timed out waiting for $what")
            Thread.sleep(10)
        }
    }

    /** MainActivity's column: label, bundle picker, bundle info, label, passage picker, passage, label, question, ask, label, answer, timings. */
    private class Screen(val activity: MainActivity) {
        val root = activity.fakeContentView() as ViewGroup
        private val column = root.getChildAt(0) as ViewGroup
        private fun <T : View> at(i: Int): T = @Suppress("UNCHECKED_CAST") (column.getChildAt(i) as T)
        val bundles: Spinner get() = at(1)
        val info: TextView get() = at(2)
        val passages: Spinner get() = at(4)
        val passage: EditText get() = at(5)
        val question: EditText get() = at(7)
        val ask: Button get() = at(8)
        val answer: TextView get() = at(10)
        val timings: TextView get() = at(11)
        fun names(): List<*> = (bundles.adapter as android.widget.ArrayAdapter<*>).items
    }

    private fun start(): Screen = Screen(MainActivity().apply { fakeCreate(null) })

    @Test
    fun withoutBundlesTheScreenSaysHowToAddOne() {
        val s = start()
        assertEquals(listOf("(no bundle in the app)"), s.names())
        assertEquals(QaScreen.NO_BUNDLE, s.info.text.toString())
        s.passages.setSelection(1) // a sample passage and its first question
        assertTrue(s.passage.text.toString().length > 100 && s.question.text.toString().endsWith("?"))
        assertFalse(s.ask.performClick(), "no model: the button stays off")
        s.activity.fakeDestroy()
    }

    @Test
    fun aMalformedModelListIsShownOnTheScreen() { // the old app crashed in onCreate (JSONException)
        File(tmp, "assets/bundles").mkdirs()
        File(tmp, "assets/bundles/models.json").writeText("{\"bundles\": [")
        val s = start()
        assertTrue(s.info.text.toString().startsWith("bundles/models.json is not valid JSON"), s.info.text.toString())
    }

    @Test
    fun bundlesThatCannotRunAreOneLineEach() {
        val assets = File(tmp, "assets")
        Fixtures.assets(assets, "et", "lite", "tampered")
        Fixtures.bundle(File(assets, "bundles/lite"), target = "tflite")
        File(assets, "bundles/tampered/model.pte").appendBytes(byteArrayOf(9))
        val s = start()
        assertEquals(listOf("et", "lite", "tampered"), s.names())
        fun pick(i: Int): String {
            s.bundles.setSelection(i)
            until("bundle $i") { !s.info.text.toString().startsWith("loading") }
            return s.info.text.toString()
        }
        assertEquals("cannot load et: NoClassDefFoundError: org/pytorch/executorch/Module", pick(0))
        assertTrue(pick(1).endsWith("is a 'tflite' bundle; the app runs executorch, onnx bundles (pocketbert export --target executorch|onnx)"))
        assertTrue("model.pte does not match its sha256 in manifest.json" in pick(2))
        assertFalse(s.ask.isEnabled)
        s.activity.fakeDestroy()
    }

    @Test
    fun anOnnxBundleAnswersAndTheAnswerIsHighlighted() {
        assumeTrue(onnx != null && System.getProperty("pocketbert.model_bridge") != null, "needs the model bridge and a real .onnx")
        Fixtures.assets(File(tmp, "assets"), "tiny-onnx", target = "onnx", model = onnx)
        val s = start()
        s.bundles.setSelection(0)
        until("the model") { s.ask.isEnabled || s.info.text.startsWith("cannot") }
        assertTrue(s.info.text.toString().startsWith("tiny-bert · onnx · fp32 · windows of 64 tokens"), s.info.text.toString())
        s.passage.setText("The cat sat on the mat in Paris.")
        s.question.setText("where did the cat sit?")
        assertTrue(s.ask.performClick())
        until("the answer") { s.answer.text.isNotEmpty() }
        assertEquals("Paris", s.answer.text.toString())
        assertTrue(s.timings.text.startsWith("tokenization"))
        val spans = (s.passage.text as FakeEditable).spans
        assertEquals(listOf(26, 31), spans.entries.single { it.key is BackgroundColorSpan }.value.toList())
        s.question.setText("what?") // the keyboard's Go key asks too
        assertTrue(s.question.onEditorAction(2))
        until("the second answer") { s.ask.isEnabled }
        s.activity.fakeDestroy()
    }

    @Test
    fun theContentKeepsClearOfTheSystemBars() { // targetSdk 35: edge to edge on Android 15
        val s = start()
        s.root.dispatchApplyWindowInsets(WindowInsets(Insets.of(0, 63, 0, 840)))
        assertEquals(listOf(0, 63, 0, 840), s.root.padding.toList())
    }

    private fun record(dir: File): Map<*, *> = Json.parse(File(dir, "record.json").readText()) as Map<*, *>

    @Test
    fun theBenchmarkIntentWritesARecordForGoodAndBadExtras() {
        Fixtures.assets(File(tmp, "assets"), "et")
        val ok = BenchmarkActivity().apply {
            intent = Intent().fakeExtras(Bundle().apply { putString("bundle", "et"); putInt("iterations", 1); putInt("warmup", 0) })
            fakeCreate(null)
        }
        until("the benchmark") { ok.isFinishing }
        val rec = record(File(tmp, "files/bench"))
        assertEquals("failed", rec["status"]) // no ExecuTorch native library on the JVM: a record says so
        assertTrue((rec["reason"] as String).contains("org/pytorch/executorch/Module"), rec["reason"].toString())
        assertEquals(mapOf("executorch-android" to "1.4.1", "onnxruntime-android" to "1.32.0", "app" to "0.1.0"), rec["versions"])
        assertEquals("JVM phone", (rec["machine"] as Map<*, *>)["model"])
        ok.fakeDestroy()
        val bad = BenchmarkActivity().apply {
            intent = Intent().fakeExtras(Bundle().apply {
                putString("bundle", "et"); putLong("iterations", 1L shl 40); fakeUnreadable("x", RuntimeException("bad parcel"))
            })
            fakeCreate(null)
        }
        until("the refusal") { bad.isFinishing }
        assertEquals("extra 'iterations' is out of range: 1099511627776", record(File(tmp, "files/bench"))["reason"])
        assertTrue(Device.log.any { it.startsWith("I PocketbertBench: FAILED") }, Device.log.toString())
        val none = BenchmarkActivity().apply { intent = Intent(); fakeCreate(null) } // no extras at all
        until("no extras") { none.isFinishing }
        assertEquals("no bundle: pass --es bundle PATH_OR_NAME", record(File(tmp, "files/bench"))["reason"])
        BenchmarkActivity().apply { fakeCreate(Bundle()) } // recreated: the first run goes on, no second one
    }

    @Test
    fun theGameLoopWritesTheFarmRecordWhereTheFarmPullsIt() {
        assumeTrue(onnx != null && System.getProperty("pocketbert.model_bridge") != null, "needs the model bridge and a real .onnx")
        Fixtures.assets(File(tmp, "assets"), "tiny-onnx", target = "onnx", model = onnx)
        Device.externalFilesDir = File(tmp, "sdcard/Android/data/org.pocketbert.demo/files")
        val loop = GameLoopActivity().apply { fakeCreate(null) }
        until("the farm run") { loop.isFinishing }
        val rec = record(File(Device.externalFilesDir, "pocketbert"))
        assertEquals("ok", rec["status"], rec["reason"].toString())
        assertEquals("onnx", rec["runtime"])
    }
}
