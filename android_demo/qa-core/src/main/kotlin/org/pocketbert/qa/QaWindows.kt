package org.pocketbert.qa

/** The ids of the special tokens a bundle's manifest lists (never constants: vocabs differ). */
data class SpecialTokens(val cls: Int, val sep: Int, val pad: Int, val unk: Int, val mask: Int? = null)

/**
 * One model call of a question: [CLS] question [SEP] context-part [SEP].
 * [sequenceIds] is -1 on special tokens, 0 on the question, 1 on the context; [offsets] holds
 * (start, end) pairs in UTF-16 units of the question (sequence 0) or the context (sequence 1).
 */
class QaWindow(
    val inputIds: IntArray,
    val tokenTypeIds: IntArray,
    val sequenceIds: IntArray,
    val offsets: IntArray,
) {
    val length: Int get() = inputIds.size
    val contextMask: BooleanArray get() = BooleanArray(length) { sequenceIds[it] == 1 }
    fun start(k: Int) = offsets[2 * k]
    fun end(k: Int) = offsets[2 * k + 1]

    /** Model inputs by name, int64, real length or right-padded to [padTo] with [padId]. */
    fun feeds(names: List<String>, padTo: Int = length, padId: Int = 0): Map<String, LongArray> {
        require(padTo >= length) { "window of $length tokens does not fit a $padTo-token input" }
        return names.associateWith { name ->
            val out = LongArray(padTo)
            when (name) {
                "input_ids" -> for (k in 0 until padTo) out[k] = (if (k < length) inputIds[k] else padId).toLong()
                "attention_mask" -> for (k in 0 until length) out[k] = 1L
                "token_type_ids" -> for (k in 0 until length) out[k] = tokenTypeIds[k].toLong()
                else -> throw IllegalArgumentException(
                    "model input '$name' is not one of input_ids, attention_mask, token_type_ids")
            }
            out
        }
    }
}

/** Why a (question, context) cannot be windowed; the message is for the user. */
class QaInputException(val kind: Kind, message: String) : IllegalArgumentException(message) {
    enum class Kind { QUESTION_TOO_LONG, STRIDE_TOO_LARGE, MAX_LENGTH_TOO_SMALL }
}

/**
 * Windows of (question, context) exactly as Hugging Face's tokenizer makes them with
 * truncation="only_second", max_length, stride, return_overflowing_tokens=True: the question is
 * never cut; the context is cut into parts of `room = maxLength - 3 - question tokens` tokens,
 * consecutive parts starting `room - stride` tokens apart (so `stride` tokens overlap), the last
 * one ending at the context's end. With [overflow] false only the first window is returned
 * (plain truncation).
 *
 * Refuses, as HF does: a question that leaves no room for context (QUESTION_TOO_LONG), and a
 * stride not smaller than the room when the context must be cut (STRIDE_TOO_LARGE).
 */
fun qaWindows(
    tokenizer: BertTokenizer,
    question: String,
    context: String,
    maxLength: Int,
    stride: Int,
    special: SpecialTokens,
    overflow: Boolean = true,
): List<QaWindow> = qaWindows(tokenizer.tokenize(question),
    // an empty context is no second sequence at all, as in transformers: [CLS] question [SEP]
    if (context.isEmpty()) null else tokenizer.tokenize(context), maxLength, stride, special, overflow)

/**
 * Windows of one question as pocketbert's `squad.question_windows` makes them (what the app runs):
 * when the window may be too short for the question (`question code points + stride + 3 >= seqLen`),
 * a question longer than `seqLen - 3 - max(1, seqLen / 4)` tokens is cut at that token's end and
 * re-tokenized, and the stride is clamped to `max(0, min(stride, room - 1))` with
 * `room = seqLen - 3 - question tokens`; then [qaWindows]. Refuses (MAX_LENGTH_TOO_SMALL) only a
 * [seqLen] with no room for a one-token question next to the context.
 */
fun questionWindows(
    tokenizer: BertTokenizer,
    question: String,
    context: String,
    seqLen: Int,
    stride: Int,
    special: SpecialTokens,
): List<QaWindow> {
    var q = question
    var s = stride
    if (question.codePointCount(0, question.length) + stride + 3 >= seqLen) {  // a token has >= 1 char
        val specials = 3  // [CLS] question [SEP] context [SEP]
        val maxQuestion = seqLen - specials - maxOf(1, seqLen / 4)
        if (maxQuestion < 1) throw QaInputException(QaInputException.Kind.MAX_LENGTH_TOO_SMALL,
            "sequence length $seqLen is too short for question + context windows: use at least ${specials + 2}")
        var tokens = tokenizer.tokenize(q)
        if (tokens.size > maxQuestion) {
            q = q.substring(0, tokens[maxQuestion - 1].end)
            tokens = tokenizer.tokenize(q)
        }
        val room = seqLen - specials - tokens.size  // context tokens per window
        s = maxOf(0, minOf(stride, room - 1))
    }
    return qaWindows(tokenizer, q, context, seqLen, s, special)
}

/** Windows from already tokenized question and context ([c] null: no context, one sequence). */
fun qaWindows(
    q: List<Token>,
    c: List<Token>?,
    maxLength: Int,
    stride: Int,
    special: SpecialTokens,
    overflow: Boolean = true,
): List<QaWindow> {
    if (maxLength < 4) throw QaInputException(QaInputException.Kind.MAX_LENGTH_TOO_SMALL,
        "max length $maxLength leaves no room for [CLS] question [SEP] context [SEP]")
    require(stride >= 0) { "stride must be >= 0, got $stride" }
    if (c == null) {
        if (q.size > maxLength - 2) throw QaInputException(QaInputException.Kind.QUESTION_TOO_LONG,
            "the question is ${q.size} tokens, more than a $maxLength-token window holds (ask a shorter question)")
        val n = q.size + 2
        val ids = IntArray(n)
        val seq = IntArray(n) { -1 }
        val offs = IntArray(2 * n)
        ids[0] = special.cls
        q.forEachIndexed { k, t -> ids[k + 1] = t.id; seq[k + 1] = 0; offs[2 * k + 2] = t.start; offs[2 * k + 3] = t.end }
        ids[n - 1] = special.sep
        return listOf(QaWindow(ids, IntArray(n), seq, offs))
    }
    val budget = maxLength - 3
    val parts: List<IntRange> = if (q.size + c.size <= budget) {
        listOf(c.indices)
    } else {
        val room = budget - q.size
        if (room <= 0) throw QaInputException(QaInputException.Kind.QUESTION_TOO_LONG,
            "the question is ${q.size} tokens: with [CLS]/[SEP] it leaves no room for the passage in a " +
                "$maxLength-token window (ask a shorter question)")
        if (stride >= room) throw QaInputException(QaInputException.Kind.STRIDE_TOO_LARGE,
            "doc stride $stride must be smaller than the $room passage tokens that fit next to the question")
        val step = room - stride
        val out = ArrayList<IntRange>()
        var start = 0
        while (true) {
            val stop = minOf(start + room, c.size)
            out.add(start until stop)
            if (stop == c.size || !overflow) break
            start += step
        }
        out
    }
    return parts.map { part ->
        val n = q.size + part.count() + 3
        val ids = IntArray(n)
        val types = IntArray(n)
        val seq = IntArray(n) { -1 }
        val offs = IntArray(2 * n)
        var k = 0
        ids[k++] = special.cls
        for (t in q) { ids[k] = t.id; seq[k] = 0; offs[2 * k] = t.start; offs[2 * k + 1] = t.end; k++ }
        ids[k++] = special.sep
        for (j in part) {
            val t = c[j]
            ids[k] = t.id; types[k] = 1; seq[k] = 1; offs[2 * k] = t.start; offs[2 * k + 1] = t.end; k++
        }
        ids[k] = special.sep; types[k] = 1
        QaWindow(ids, types, seq, offs)
    }
}

/** Overlap between windows: 128 at 384 (BERT's run_squad), scaled; as pocketbert's doc_stride. */
fun docStride(seqLen: Int): Int = maxOf(1, seqLen / 3)
