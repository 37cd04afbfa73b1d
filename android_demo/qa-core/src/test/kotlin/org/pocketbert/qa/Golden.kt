package org.pocketbert.qa

import java.io.File

/**
 * The golden vectors made by scripts/make_android_golden.py with Hugging Face's tokenizer and
 * pocketbert's SQuAD code. Found via -Dpocketbert.golden=PATH or on the test classpath; the real
 * bert-base-uncased vocab via -Dpocketbert.vocab=PATH (absent: those cases are skipped).
 */
object Golden {
    val root: Map<String, Any?> by lazy {
        val path = System.getProperty("pocketbert.golden")
        val text = if (path != null) File(path).readText()
        else Golden::class.java.getResource("/golden.json")?.readText()
            ?: error("golden.json not found: pass -Dpocketbert.golden=PATH")
        Json.parse(text).asObj()
    }

    val preset: Map<String, Any?> get() = root.obj("preset")
    val unicode: Map<String, Any?> get() = root.obj("unicode")
    val real: Map<String, Any?>? get() = root["real"]?.asObj()

    val presetVocab: Vocab by lazy { Vocab(preset.list("vocab").map { it as String }) }

    /** The real vocab when given and matching the golden file's sha256, else null. */
    val realVocab: Vocab? by lazy {
        val r = real ?: return@lazy null
        val path = System.getProperty("pocketbert.vocab") ?: return@lazy null
        val f = File(path)
        if (!f.isFile) return@lazy null
        check(BundleManifest.sha256(f) == r.str("vocab_sha256")) { "$f is not the vocab the golden file was made with" }
        Vocab.parse(f.readText())
    }

    fun special(section: Map<String, Any?>): SpecialTokens {
        val sp = section.obj("special_tokens")
        return SpecialTokens(sp.int("cls_token_id"), sp.int("sep_token_id"), sp.int("pad_token_id"),
            sp.int("unk_token_id"), sp.int("mask_token_id"))
    }

    fun tokenizer(section: Map<String, Any?>, vocab: Vocab) =
        BertTokenizer(vocab, special(section).unk, lowercase = section.bool("do_lower_case"))

    fun ints(v: Any?): List<Int> = (v as List<*>).map { (it as Number).toInt() }
    fun floats(v: Any?): FloatArray = (v as List<*>).map { (it as Number).toFloat() }.toFloatArray()
    fun pairs(v: Any?): List<List<Int>> = (v as List<*>).map { ints(it) }
}
