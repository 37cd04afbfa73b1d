package org.pocketbert.demo

import android.app.Activity
import android.graphics.Typeface
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.text.Spannable
import android.text.style.BackgroundColorSpan
import android.view.View
import android.view.inputmethod.EditorInfo
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.Spinner
import android.widget.TextView
import org.pocketbert.qa.Engines
import org.pocketbert.qa.QaEngine
import org.pocketbert.qa.QaModel
import org.pocketbert.qa.SamplePassages
import java.io.File
import java.util.concurrent.Executors

/**
 * The demo screen: pick a bundle (e.g. fp32 / int8) and a sample passage (editable), ask a
 * question, see the answer highlighted in the passage and what it cost: tokenization, model,
 * post-processing. Everything but the views and the runtime calls (AppEngines) lives in qa-core.
 */
class MainActivity : Activity() {
    private val worker = Executors.newSingleThreadExecutor() // model load and inference, in order
    private val ui = Handler(Looper.getMainLooper())
    @Volatile private var engine: QaEngine? = null // written on the worker, read on the UI thread
    @Volatile private var model: QaModel? = null

    private lateinit var bundleInfo: TextView
    private lateinit var passage: EditText
    private lateinit var question: EditText
    private lateinit var ask: Button
    private lateinit var answer: TextView
    private lateinit var latency: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val pad = (16 * resources.displayMetrics.density).toInt()
        val column = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(pad, pad, pad, pad) }
        fun label(text: String) = TextView(this).apply { this.text = text; setTypeface(typeface, Typeface.BOLD); setPadding(0, pad, 0, 0) }

        val bundles = Bundles.packaged(this) + Bundles.pushed() // names in the APK, then pushed folders
        val bundlePicker = Spinner(this).apply {
            adapter = ArrayAdapter(this@MainActivity, android.R.layout.simple_spinner_dropdown_item,
                bundles.ifEmpty { listOf("(no bundle in the app)") })
        }
        bundleInfo = TextView(this)
        val passagePicker = Spinner(this).apply {
            adapter = ArrayAdapter(this@MainActivity, android.R.layout.simple_spinner_dropdown_item,
                SamplePassages.all.map { it.title })
        }
        passage = EditText(this).apply { minLines = 6; gravity = android.view.Gravity.TOP }
        question = EditText(this).apply {
            isSingleLine = true
            hint = "Ask a question about the passage"
            imeOptions = EditorInfo.IME_ACTION_GO
            setOnEditorActionListener { _, _, _ -> answerQuestion(); true }
        }
        ask = Button(this).apply { text = "Answer"; isEnabled = false; setOnClickListener { answerQuestion() } }
        answer = TextView(this).apply { textSize = 18f; setTypeface(typeface, Typeface.BOLD) }
        latency = TextView(this).apply { typeface = Typeface.MONOSPACE }

        listOf(label("Model bundle"), bundlePicker, bundleInfo, label("Passage"), passagePicker, passage,
            label("Question"), question, ask, label("Answer"), answer, latency).forEach { column.addView(it) }
        setContentView(ScrollView(this).apply { addView(column) })

        passagePicker.onItemSelectedListener = onSelect { i ->
            val p = SamplePassages.all[i]
            passage.setText(p.text)
            question.setText(p.questions.first())
            answer.text = ""
            latency.text = ""
        }
        if (bundles.isEmpty()) {
            bundleInfo.text = "No model bundle is packaged. On your computer: pocketbert export --target " +
                "executorch (or onnx) ..., then pocketbert android bundle BUNDLE and pocketbert android install " +
                "(or adb push a bundle folder to ${Bundles.PUSHED}/NAME and reopen the app)."
        } else {
            bundlePicker.onItemSelectedListener = onSelect { i -> load(bundles[i]) }
        }
    }

    private fun onSelect(action: (Int) -> Unit) = object : AdapterView.OnItemSelectedListener {
        override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = action(position)
        override fun onNothingSelected(parent: AdapterView<*>?) {}
    }

    /** Open a bundle (copied out of the APK the first time) and load its model, off the UI thread. */
    private fun load(name: String) {
        ask.isEnabled = false
        bundleInfo.text = "loading $name …"
        worker.execute {
            model?.close()
            model = null
            val text = try {
                val dir: File = Bundles.resolve(this, name)
                val e = QaEngine.open(dir)
                val t0 = System.nanoTime()
                model = Engines.pick(AppEngines.all, e.manifest, name).load(dir, e.manifest, 0) // ExecuTorch or ONNX Runtime, as the manifest says
                engine = e
                val m = e.manifest
                "${m.model} · ${m.target} · ${m.precision} · windows of ${e.seqLen} tokens (stride ${e.docStride}) · " +
                    "%.1f MB · loaded in %.0f ms".format(File(dir, m.modelFile).length() / 1e6, (System.nanoTime() - t0) / 1e6)
            } catch (ex: Exception) {
                engine = null
                "cannot load $name: ${ex.message}"
            }
            ui.post { bundleInfo.text = text; ask.isEnabled = model != null }
        }
    }

    private fun answerQuestion() {
        val e = engine ?: return
        val m = model ?: return
        val context = passage.text.toString()
        val q = question.text.toString().trim()
        if (q.isEmpty() || context.isBlank()) return
        ask.isEnabled = false
        worker.execute {
            val result = try { Result.success(e.answer(m, q, context)) } catch (ex: Exception) { Result.failure(ex) }
            ui.post {
                ask.isEnabled = true
                val editable = passage.text
                editable.getSpans(0, editable.length, BackgroundColorSpan::class.java).forEach { editable.removeSpan(it) }
                result.onFailure { answer.text = it.message; latency.text = "" }
                result.onSuccess { a ->
                    answer.text = a.text.ifEmpty { "(no answer found in the passage)" }
                    val span = a.span
                    if (span != null && passage.text.toString() == context) {
                        editable.setSpan(BackgroundColorSpan(0xFFFFE082.toInt()), span.start, span.end, Spannable.SPAN_EXCLUSIVE_EXCLUSIVE)
                    }
                    latency.text = "tokenization   %8.2f ms\nmodel          %8.2f ms  (%d window%s, %d tokens)\npost-processing%8.2f ms\ntotal          %8.2f ms"
                        .format(a.tokenizeMs, a.modelMs, a.windows, if (a.windows == 1) "" else "s", a.tokensFed, a.postprocessMs, a.totalMs)
                }
            }
        }
    }

    override fun onDestroy() {
        worker.execute { model?.close(); model = null }
        worker.shutdown()
        super.onDestroy()
    }
}
