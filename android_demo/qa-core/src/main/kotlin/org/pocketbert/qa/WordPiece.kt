package org.pocketbert.qa

/** A WordPiece vocabulary: one token per line, the line number is the id (vocab.txt). */
class Vocab(val tokens: List<String>) {
    private val ids = HashMap<String, Int>(tokens.size * 2)

    init {
        tokens.forEachIndexed { i, t -> ids[t] = i } // a repeated token keeps its last id, as HF does
    }

    operator fun get(token: String): Int? = ids[token]
    val size: Int get() = tokens.size

    companion object {
        fun parse(text: String): Vocab {
            val lines = text.split('\n').map { it.removeSuffix("\r") }
            // a final newline ends the last line; it does not add an empty token
            return Vocab(if (lines.isNotEmpty() && lines.last().isEmpty()) lines.dropLast(1) else lines)
        }
    }
}

/** One token of the original text: its id, its piece and where it came from (UTF-16 offsets). */
data class Token(val id: Int, val piece: String, val start: Int, val end: Int)

/**
 * Hugging Face's BertTokenizer (the `tokenizers` BertNormalizer + BertPreTokenizer + WordPiece)
 * in plain Kotlin, with offsets into the original text in UTF-16 units.
 *
 *  normalize   drop NUL, U+FFFD and control/format/private-use characters (not tab/newline/CR);
 *              any whitespace becomes a space; CJK ideographs get spaces around them; with
 *              [stripAccents] NFD then drop non-spacing marks (Mn); with [lowercase] lower-case
 *              each code point on its own (Locale.ROOT, no context rules), as the Rust code does.
 *  split       on whitespace (dropped) and punctuation (each its own word): ASCII symbols
 *              !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ and every Unicode P* category.
 *  wordpiece   greedy longest-match-first with "##" continuations; a word longer than
 *              [maxInputCharsPerWord] code points, or one with a piece not in the vocab, is one [UNK].
 *
 * Character classes and lower-casing come from tables generated from the `tokenizers` crate
 * (BertUnicode.kt), not from the JVM's or Android's Unicode version, which differ from it.
 *
 * Every normalized code point remembers the original character it came from, so a token's
 * offsets are (start of its first character, end of its last) in the original string.
 */
class BertTokenizer(
    val vocab: Vocab,
    val unkId: Int,
    val lowercase: Boolean = true,
    val stripAccents: Boolean = lowercase, // HF: strip_accents=None follows lowercase
    val tokenizeChineseChars: Boolean = true,
    val maxInputCharsPerWord: Int = 100,
    val continuingPrefix: String = "##",
) {
    init {
        require(unkId in 0 until vocab.size) { "unk token id $unkId is outside the vocab (${vocab.size} tokens)" }
    }

    /** Normalized code points and, for each, the UTF-16 [start, end) of its original character. */
    class Normalized(val codePoints: IntArray, val origStart: IntArray, val origEnd: IntArray) {
        val text: String get() = String(codePoints, 0, codePoints.size)
    }

    fun normalize(text: String): Normalized {
        val cps = IntList(text.length + 8)
        val starts = IntList(text.length + 8)
        val ends = IntList(text.length + 8)
        fun emit(cp: Int, s: Int, e: Int) { cps.add(cp); starts.add(s); ends.add(e) }
        var i = 0
        while (i < text.length) {
            val cp = text.codePointAt(i)
            val s = i
            i += Character.charCount(cp)
            if (cp == 0 || cp == 0xFFFD || isControl(cp)) continue
            if (isWhitespace(cp)) { emit(' '.code, s, i); continue }
            val cjk = tokenizeChineseChars && isChineseChar(cp)
            if (cjk) emit(' '.code, s, i)
            // NFD applies to CJK compatibility ideographs too (U+F900 -> U+8C48)
            val decomposed = if (stripAccents) nfdWithoutMarks(cp) else intArrayOf(cp)
            for (d in decomposed) {
                val lower = if (lowercase) BertUnicode.LOWER[d] else null
                if (lower == null) emit(d, s, i) else for (l in lower) emit(l, s, i)
            }
            if (cjk) emit(' '.code, s, i)
        }
        return Normalized(cps.toArray(), starts.toArray(), ends.toArray())
    }

    /** Words after BertPreTokenizer: [start, end) ranges of normalized code point indices. */
    fun split(n: Normalized): List<IntRange> {
        val words = ArrayList<IntRange>()
        var wordStart = -1
        for (k in n.codePoints.indices) {
            val cp = n.codePoints[k]
            if (isWhitespace(cp)) {
                if (wordStart >= 0) { words.add(wordStart until k); wordStart = -1 }
            } else if (isPunctuation(cp)) {
                if (wordStart >= 0) { words.add(wordStart until k); wordStart = -1 }
                words.add(k until k + 1)
            } else if (wordStart < 0) wordStart = k
        }
        if (wordStart >= 0) words.add(wordStart until n.codePoints.size)
        return words
    }

    /** Tokens of [text] without special tokens. */
    fun tokenize(text: String): List<Token> {
        val n = normalize(text)
        val out = ArrayList<Token>()
        for (w in split(n)) wordPiece(n, w, out)
        return out
    }

    private fun wordPiece(n: Normalized, word: IntRange, out: MutableList<Token>) {
        val first = word.first
        val last = word.last
        val len = last - first + 1
        if (len > maxInputCharsPerWord) {
            out.add(Token(unkId, vocab.tokens[unkId], n.origStart[first], n.origEnd[last]))
            return
        }
        val pieces = ArrayList<Token>()
        var start = first
        while (start <= last) {
            var end = last + 1
            var found: Token? = null
            while (end > start) {
                val sub = String(n.codePoints, start, end - start)
                val piece = if (start > first) continuingPrefix + sub else sub
                val id = vocab[piece]
                if (id != null) {
                    found = Token(id, piece, n.origStart[start], n.origEnd[end - 1])
                    break
                }
                end--
            }
            if (found == null) {
                out.add(Token(unkId, vocab.tokens[unkId], n.origStart[first], n.origEnd[last]))
                return
            }
            pieces.add(found)
            start = end
        }
        out.addAll(pieces)
    }

    companion object {
        /** Removed by clean_text: Cc, Cf, Co (not tab, newline, CR), as the `tokenizers` tables have them. */
        fun isControl(cp: Int): Boolean = cp in BertUnicode.CONTROL

        /** Unicode White_Space (Rust's char::is_whitespace), which Java's isWhitespace is not. */
        fun isWhitespace(cp: Int): Boolean = when (cp) {
            in 0x09..0x0D, 0x20, 0x85, 0xA0, 0x1680, in 0x2000..0x200A, 0x2028, 0x2029, 0x202F, 0x205F,
            0x3000 -> true
            else -> false
        }

        /** ASCII symbols !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ and P* (HF's is_bert_punc, its tables). */
        fun isPunctuation(cp: Int): Boolean = cp in BertUnicode.PUNCT

        /** A non-spacing mark (Mn) that strip_accents drops, per the `tokenizers` tables. */
        fun isMark(cp: Int): Boolean = cp in BertUnicode.MARK

        /** The ideograph blocks BERT isolates, as the `tokenizers` crate lists them. */
        fun isChineseChar(cp: Int): Boolean = cp in BertUnicode.CJK

        /** NFD (the crate's decomposition tables; Hangul by the algorithm) without Mn marks. */
        private fun nfdWithoutMarks(cp: Int): IntArray {
            if (cp < 0xC0) return intArrayOf(cp) // ASCII and Latin-1 controls/symbols: NFD is identity
            if (cp in 0xAC00..0xD7A3) { // Hangul syllable -> L V (T) jamo
                val s = cp - 0xAC00
                val t = s % 28
                val lv = intArrayOf(0x1100 + s / 588, 0x1161 + (s % 588) / 28)
                return if (t == 0) lv else lv + (0x11A7 + t)
            }
            val nfd = BertUnicode.NFD[cp] ?: return if (isMark(cp)) IntArray(0) else intArrayOf(cp)
            return nfd.filter { !isMark(it) }.toIntArray()
        }
    }
}

/** A growable int array (no boxing on the hot path). */
internal class IntList(capacity: Int = 16) {
    private var a = IntArray(maxOf(capacity, 4))
    var size = 0
        private set

    fun add(v: Int) {
        if (size == a.size) a = a.copyOf(a.size * 2)
        a[size++] = v
    }

    operator fun get(i: Int): Int = a[i]
    fun toArray(): IntArray = a.copyOf(size)
}

/** Sorted, disjoint code point ranges from "a-b,c,..." (hex), with a binary-search lookup. */
internal class CodePointRanges(spec: String) {
    private val starts: IntArray
    private val ends: IntArray

    init {
        val parts = spec.split(',').filter { it.isNotEmpty() }
        starts = IntArray(parts.size)
        ends = IntArray(parts.size)
        parts.forEachIndexed { i, p ->
            val dash = p.indexOf('-')
            starts[i] = (if (dash < 0) p else p.substring(0, dash)).toInt(16)
            ends[i] = (if (dash < 0) p else p.substring(dash + 1)).toInt(16)
        }
    }

    operator fun contains(cp: Int): Boolean {
        var lo = 0
        var hi = starts.size - 1
        while (lo <= hi) {
            val mid = (lo + hi) ushr 1
            when {
                cp < starts[mid] -> hi = mid - 1
                cp > ends[mid] -> lo = mid + 1
                else -> return true
            }
        }
        return false
    }
}

/** Code point -> code points, from "41>61,130>69 307,..." (hex). */
internal class CodePointMap(spec: String) {
    private val map = HashMap<Int, IntArray>()

    init {
        for (entry in spec.split(',')) {
            if (entry.isEmpty()) continue
            val (k, v) = entry.split('>')
            map[k.toInt(16)] = v.split(' ').map { it.toInt(16) }.toIntArray()
        }
    }

    operator fun get(cp: Int): IntArray? = map[cp]
}
