package org.pocketbert.qa

import java.io.File

/** The model behind the app: one forward pass on one window; the Android layer wraps the runtime (an Engine loads it). */
interface QaModel : AutoCloseable {
    /** (start_logits, end_logits) for inputs of shape (1, [length]) given by name. */
    fun run(inputs: Map<String, LongArray>, length: Int): Pair<FloatArray, FloatArray>
    override fun close() {}
}

/** An answer and what it cost, in milliseconds. */
data class Answer(
    val text: String,
    val span: Span?,
    val windows: Int,
    val tokens: Int,
    val tokensFed: Int,
    val tokenizeMs: Double,
    val modelMs: Double,
    val postprocessMs: Double,
) {
    val totalMs: Double get() = tokenizeMs + modelMs + postprocessMs
}

/**
 * Question answering with a bundle: tokenize into windows (manifest's sequence length, doc stride
 * seqLen/3 unless given), run the model on each window, pick the best span over all of them.
 *
 * [fixedShape] right-pads every window to the manifest's seq_len (what a fixed-shape model
 * needs); otherwise windows go in at their real length (the bundle's sequence axis is dynamic).
 */
class QaEngine(
    val manifest: BundleManifest,
    val tokenizer: BertTokenizer,
    seqLen: Int? = null,
    docStride: Int? = null,
    val fixedShape: Boolean = !manifest.dynamicSeq,
    private val clock: () -> Long = System::nanoTime,
) {
    val seqLen: Int = seqLen ?: manifest.seqLen
    val docStride: Int = docStride ?: docStride(this.seqLen)

    init {
        require(this.seqLen in 4..manifest.seqLen) { "window length ${this.seqLen} must be in 4..${manifest.seqLen} (the bundle's seq_len)" }
    }

    /** Tokenized windows of one question; [maxTokens] makes one truncated window of that length. */
    fun windows(question: String, context: String, maxTokens: Int? = null): List<QaWindow> =
        if (maxTokens != null) qaWindows(tokenizer, question, context, minOf(maxTokens, seqLen), 0, manifest.special, overflow = false)
        else questionWindows(tokenizer, question, context, seqLen, docStride, manifest.special)

    /** Input length fed for a window: real, or padded (a fixed-shape model: to its own seq_len). */
    fun fedLength(w: QaWindow): Int = when {
        !manifest.dynamicSeq -> manifest.seqLen
        fixedShape -> seqLen
        else -> w.length
    }

    fun feedsOf(w: QaWindow): Map<String, LongArray> = w.feeds(manifest.inputNames, fedLength(w), manifest.special.pad)

    fun answer(model: QaModel, question: String, context: String, maxTokens: Int? = null): Answer {
        val t0 = clock()
        val wins = windows(question, context, maxTokens)
        val feeds = wins.map { feedsOf(it) }
        val t1 = clock()
        val starts = ArrayList<FloatArray>(wins.size)
        val ends = ArrayList<FloatArray>(wins.size)
        for ((w, f) in wins.zip(feeds)) {
            val (s, e) = model.run(f, f.getValue(manifest.inputNames[0]).size)
            starts.add(s); ends.add(e)
            check(s.size >= w.length && e.size >= w.length) { "model returned ${s.size} logits for ${w.length} tokens" }
        }
        val t2 = clock()
        val span = bestSpan(wins, starts, ends)
        val text = span?.text(context) ?: ""
        val t3 = clock()
        return Answer(text, span, wins.size, wins.sumOf { it.length },
            wins.sumOf { fedLength(it) },
            (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6)
    }

    companion object {
        /** Manifest + vocab of a bundle folder, checked against their sha256. */
        fun open(dir: File, seqLen: Int? = null, docStride: Int? = null, fixedShape: Boolean? = null, verify: Boolean = true): QaEngine {
            val mf = File(dir, BundleManifest.FILE)
            if (!mf.isFile) throw BundleException("$dir is not a pocketbert bundle (no manifest.json): create one with `pocketbert export`")
            val manifest = BundleManifest.parse(mf.readText(), mf.path)
            if (verify) manifest.verify(dir)
            val vocab = Vocab.parse(File(dir, BundleManifest.VOCAB).readText())
            val tok = BertTokenizer(vocab, manifest.special.unk, lowercase = manifest.doLowerCase)
            return QaEngine(manifest, tok, seqLen, docStride, fixedShape ?: !manifest.dynamicSeq)
        }
    }
}
