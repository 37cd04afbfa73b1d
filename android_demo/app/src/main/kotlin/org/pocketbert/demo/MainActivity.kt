package org.pocketbert.demo

import android.app.Activity
import android.graphics.Typeface
import android.os.Build
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.text.Spannable
import android.text.style.BackgroundColorSpan
import android.view.View
import android.view.WindowInsets
import android.view.inputmethod.EditorInfo
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.Spinner
import android.widget.TextView
import org.pocketbert.qa.SamplePassages
import java.util.concurrent.Executors

/**
 * The demo screen: pick a bundle (e.g. fp32 / int8) and a sample passage (editable), ask a
 * question, see the answer highlighted in the passage and what it cost. Views only: what the
 * screen does is QaScreen (plain Kotlin, run by the JVM tests), called on one worker thread.
 */
class MainActivity : Activity() {
    private val worker = Executors.newSingleThreadExecutor() // model load and inference, in order
    private val ui = Handler(Looper.getMainLooper())
    private lateinit var screen: QaScreen

    private lateinit var bundleInfo: TextView
    private lateinit var passage: EditText
    private lateinit var question: EditText
    private lateinit var ask: Button
    private lateinit var answer: TextView
    private lateinit var latency: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        screen = QaScreen(Bundles.store(this), AppEngines.all)
        val pad = (16 * resources.displayMetrics.density).toInt()
        val column = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(pad, pad, pad, pad) }
        fun label(text: String) = TextView(this).apply { this.text = text; setTypeface(typeface, Typeface.BOLD); setPadding(0, pad, 0, 0) }

        val choices = screen.choices()
        val bundlePicker = Spinner(this).apply {
            adapter = ArrayAdapter(this@MainActivity, android.R.layout.simple_spinner_dropdown_item,
                choices.names.ifEmpty { listOf("(no bundle in the app)") })
        }
        bundleInfo = TextView(this).apply { text = choices.message ?: "" }
        val passagePicker = Spinner(this).apply {
            adapter = ArrayAdapter(this@MainActivity, android.R.layout.simple_spinner_dropdown_item, SamplePassages.all.map { it.title })
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
        val root = ScrollView(this).apply { addView(column) }
        if (Build.VERSION.SDK_INT >= 30) { // targetSdk 35 draws edge to edge on Android 15: keep clear of the bars and the keyboard
            root.setOnApplyWindowInsetsListener { v, insets ->
                val i = insets.getInsets(WindowInsets.Type.systemBars() or WindowInsets.Type.ime() or WindowInsets.Type.displayCutout())
                val p = QaScreen.insetPadding(0, i.left, i.top, i.right, i.bottom)
                v.setPadding(p[0], p[1], p[2], p[3])
                WindowInsets.CONSUMED
            }
        }
        setContentView(root)

        passagePicker.onItemSelectedListener = onSelect { i ->
            val p = SamplePassages.all[i]
            passage.setText(p.text)
            question.setText(p.questions.first())
            answer.text = ""
            latency.text = ""
        }
        if (choices.names.isNotEmpty()) bundlePicker.onItemSelectedListener = onSelect { i -> load(choices.names[i]) }
    }

    private fun onSelect(action: (Int) -> Unit) = object : AdapterView.OnItemSelectedListener {
        override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = action(position)
        override fun onNothingSelected(parent: AdapterView<*>?) {}
    }

    private fun load(name: String) {
        ask.isEnabled = false
        bundleInfo.text = "loading $name …"
        worker.execute {
            val text = screen.load(name)
            ui.post { bundleInfo.text = text; ask.isEnabled = screen.ready }
        }
    }

    private fun answerQuestion() {
        val context = passage.text.toString()
        val q = question.text.toString()
        if (!screen.ready) return
        ask.isEnabled = false
        worker.execute {
            val shown = screen.answer(q, context)
            ui.post {
                ask.isEnabled = true
                val editable = passage.text
                editable.getSpans(0, editable.length, BackgroundColorSpan::class.java).forEach { editable.removeSpan(it) }
                if (shown == null) return@post
                answer.text = shown.answer
                latency.text = shown.timings
                val span = shown.highlight
                if (span != null && passage.text.toString() == context) {
                    editable.setSpan(BackgroundColorSpan(0xFFFFE082.toInt()), span.first, span.last + 1, Spannable.SPAN_EXCLUSIVE_EXCLUSIVE)
                }
            }
        }
    }

    override fun onDestroy() {
        worker.execute { screen.close() }
        worker.shutdown()
        super.onDestroy()
    }
}
