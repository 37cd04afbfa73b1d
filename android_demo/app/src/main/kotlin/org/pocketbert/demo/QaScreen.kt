package org.pocketbert.demo

import org.pocketbert.qa.Engine
import org.pocketbert.qa.Engines
import org.pocketbert.qa.QaEngine
import org.pocketbert.qa.QaModel
import java.io.File

/**
 * What the demo screen does, without its views (MainActivity binds them and calls this on its
 * worker thread): list the bundles, open one with the engine its manifest names, answer a
 * question. Every failure is one line for the screen, never an exception out of here.
 */
class QaScreen(private val store: BundleStore, private val engines: List<Engine>) {
    /** The picker's entries and the line under it (how to add a bundle, or what is wrong with models.json). */
    data class Choices(val names: List<String>, val message: String?)

    /** What the screen shows for one question: the answer (or why there is none), the span to highlight, the timings. */
    data class Shown(val answer: String, val highlight: IntRange?, val timings: String)

    @Volatile private var engine: QaEngine? = null
    @Volatile private var model: QaModel? = null

    val ready: Boolean get() = engine != null && model != null

    fun choices(): Choices {
        val listing = store.packaged()
        val names = listing.names + store.pushed() // names in the APK, then pushed folders
        return Choices(names, listing.problem ?: if (names.isEmpty()) NO_BUNDLE else null)
    }

    /** Open bundle [name] (copied out of the APK the first time) and load its model; the line to show. */
    fun load(name: String): String {
        close()
        return try {
            val dir = store.resolve(name)
            val e = QaEngine.open(dir)
            val t0 = System.nanoTime()
            model = Engines.pick(engines, e.manifest, name).load(dir, e.manifest, 0) // ExecuTorch or ONNX Runtime, as the manifest says
            engine = e
            val m = e.manifest
            "${m.model} · ${m.target} · ${m.precision} · windows of ${e.seqLen} tokens (stride ${e.docStride}) · " +
                "%.1f MB · loaded in %.0f ms".format(File(dir, m.modelFile).length() / 1e6, (System.nanoTime() - t0) / 1e6)
        } catch (ex: Exception) {
            close()
            "cannot load $name: ${oneLine(ex)}"
        } catch (ex: LinkageError) { // the runtime's native library (or class) is missing: a message, not a dead worker
            close()
            "cannot load $name: ${ex.javaClass.simpleName}: ${oneLine(ex)}"
        }
    }

    /** The answer to [question] about [context], or null when there is nothing to ask (no model, blank input). */
    fun answer(question: String, context: String): Shown? {
        val e = engine ?: return null
        val m = model ?: return null
        val q = question.trim()
        if (q.isEmpty() || context.isBlank()) return null
        return try {
            val a = e.answer(m, q, context)
            val span = a.span?.takeIf { it.start in 0..it.end && it.end <= context.length }
            Shown(a.text.ifEmpty { "(no answer found in the passage)" }, span?.let { it.start until it.end },
                ("tokenization   %8.2f ms\nmodel          %8.2f ms  (%d window%s, %d tokens)\npost-processing%8.2f ms\n" +
                    "total          %8.2f ms").format(a.tokenizeMs, a.modelMs, a.windows, if (a.windows == 1) "" else "s",
                    a.tokensFed, a.postprocessMs, a.totalMs))
        } catch (ex: Exception) {
            Shown(oneLine(ex), null, "")
        }
    }

    fun close() {
        val m = model
        model = null
        engine = null
        try { m?.close() } catch (e: Exception) { /* closing a model that failed: nothing left to free */ }
    }

    companion object {
        const val NO_BUNDLE = "No model bundle is packaged. On your computer: pocketbert export --target " +
            "executorch (or onnx) ..., then pocketbert android bundle BUNDLE and pocketbert android install " +
            "(or adb push a bundle folder to ${BundleStore.PUSHED}/NAME and reopen the app)."

        fun oneLine(e: Throwable): String = (e.message ?: e.javaClass.simpleName).lineSequence().first().take(300)

        /** The padding that keeps the content clear of the system bars and the keyboard (edge-to-edge, targetSdk 35). */
        fun insetPadding(base: Int, left: Int, top: Int, right: Int, bottom: Int): IntArray =
            intArrayOf(base + maxOf(left, 0), base + maxOf(top, 0), base + maxOf(right, 0), base + maxOf(bottom, 0))
    }
}
