package org.pocketbert.qa

/** An answer: UTF-16 [start, end) in the context, its score (start + end logit) and where it is. */
data class Span(val start: Int, val end: Int, val score: Double, val window: Int, val startToken: Int, val endToken: Int) {
    fun text(context: String): String = context.substring(start, end)
}

const val N_BEST = 20 // start/end candidates per window, as the reference SQuAD post-processing
const val MAX_ANSWER_TOKENS = 30 // SQuAD's standard answer-length cap

/**
 * The best answer over all windows of one question, as pocketbert.squad.best_span: per window the
 * top [nBest] start and end logits inside the context (stable order: ties keep the lower index),
 * every pair with start <= end < start + [maxAnswer], highest start + end logit (in double) wins;
 * a later pair must be strictly better. Null when no window has a legal span.
 */
fun bestSpan(
    windows: List<QaWindow>,
    startLogits: List<FloatArray>,
    endLogits: List<FloatArray>,
    nBest: Int = N_BEST,
    maxAnswer: Int = MAX_ANSWER_TOKENS,
): Span? {
    require(windows.size == startLogits.size && windows.size == endLogits.size) {
        "${windows.size} windows but ${startLogits.size} start / ${endLogits.size} end logit rows"
    }
    var best: Span? = null
    var bestScore = Double.NEGATIVE_INFINITY
    for (w in windows.indices) {
        val win = windows[w]
        val n = win.length
        require(startLogits[w].size >= n && endLogits[w].size >= n) {
            "window $w has $n tokens but ${startLogits[w].size} start / ${endLogits[w].size} end logits"
        }
        val mask = win.contextMask
        val s = DoubleArray(n) { if (mask[it]) startLogits[w][it].toDouble() else Double.NEGATIVE_INFINITY }
        val e = DoubleArray(n) { if (mask[it]) endLogits[w][it].toDouble() else Double.NEGATIVE_INFINITY }
        val starts = topIndices(s, nBest)
        val ends = topIndices(e, nBest)
        for (i in starts) {
            if (!mask[i]) continue
            for (j in ends) {
                if (mask[j] && i <= j && j < i + maxAnswer && s[i] + e[j] > bestScore) {
                    bestScore = s[i] + e[j]
                    best = Span(win.start(i), win.end(j), bestScore, w, i, j)
                }
            }
        }
    }
    return best
}

/** Indices of the [k] largest values, largest first, ties by lower index (numpy argsort(-x, stable)). */
internal fun topIndices(x: DoubleArray, k: Int): List<Int> =
    x.indices.sortedWith { a, b -> (-x[a]).compareTo(-x[b]).let { if (it != 0) it else a.compareTo(b) } }.take(k)
