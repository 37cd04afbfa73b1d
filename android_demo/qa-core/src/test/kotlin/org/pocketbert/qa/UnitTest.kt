package org.pocketbert.qa

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.security.MessageDigest

class JsonTest {
    @Test
    fun roundTrip() {
        val text = """{"a": [1, -2.5e3, true, null, "x\"y\u00e9\n"], "b": {"c": 9007199254740993}, "e": []}"""
        val v = Json.parse(text).asObj()
        assertEquals(listOf(1L, -2500.0, true, null, "x\"yé\n"), v["a"])
        assertEquals(9007199254740993L, v.obj("b")["c"])
        assertEquals(v, Json.parse(Json.write(v)))
        assertEquals(v, Json.parse(Json.write(v, indent = 2)))
        assertEquals("""{"n":null}""", Json.write(mapOf("n" to Double.NaN)))
        assertEquals("\"\\u0001\"", Json.write("\u0001"))
    }

    @Test
    fun refusesBadJson() {
        for (bad in listOf("", "{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "1 2", "{\"a\":1,}", "-")) {
            assertThrows(Json.ParseException::class.java, { Json.parse(bad) }, bad)
        }
    }
}

/** A bundle folder with the preset vocab and a fake model file, as `pocketbert export` lays it out. */
internal fun writeBundle(dir: File, target: String = "executorch", task: String = "question-answering",
                         seqLen: Int = 64, dynamic: Boolean = true, corrupt: Boolean = false): File {
    dir.mkdirs()
    val vocab = Golden.preset.list("vocab").joinToString("") { "$it\n" }
    File(dir, "vocab.txt").writeText(vocab)
    File(dir, "model.pte").writeBytes(ByteArray(1000) { it.toByte() })
    fun sha(f: File) = MessageDigest.getInstance("SHA-256").digest(f.readBytes()).joinToString("") { "%02x".format(it) }
    val files = listOf("model.pte", "vocab.txt").associateWith { mapOf("bytes" to File(dir, it).length(), "sha256" to sha(File(dir, it))) }
    val sp = Golden.preset.obj("special_tokens")
    val manifest = mapOf(
        "format" to "pocketbert-bundle/1", "target" to target, "precision" to "fp32", "task" to task,
        "model_type" to "bert", "source" to "preset:bert-tiny", "model_file" to "model.pte", "seq_len" to seqLen,
        "seq_lens" to listOf(seqLen), "dynamic_seq" to dynamic,
        "inputs" to listOf("input_ids", "attention_mask", "token_type_ids").map { mapOf("name" to it, "dtype" to "int64", "shape" to listOf(1, "seq")) },
        "outputs" to listOf("start_logits", "end_logits").map { mapOf("name" to it, "dtype" to "float32", "shape" to listOf(1, "seq")) },
        "special_tokens" to sp, "do_lower_case" to true, "parameters" to mapOf("total" to 165634, "non_embedding" to 67074),
        "git_revision" to "abc123", "files" to files,
    )
    File(dir, "manifest.json").writeText(Json.write(manifest, 1))
    if (corrupt) File(dir, "model.pte").appendBytes(byteArrayOf(1))
    return dir
}

/** Logits that make the answer the first occurrence of [answerPiece] in the context. */
internal class PieceModel(private val answerId: Int) : QaModel {
    var calls = 0
    var lengths = ArrayList<Int>()
    override fun run(inputs: Map<String, LongArray>, length: Int): Pair<FloatArray, FloatArray> {
        calls++
        lengths.add(length)
        val ids = inputs.getValue("input_ids")
        val s = FloatArray(length) { if (ids[it].toInt() == answerId) 5f else 0f }
        return s to s.copyOf()
    }
}

class ManifestTest {
    @TempDir
    lateinit var tmp: File

    @Test
    fun readsWhatTheAppNeedsFromTheManifest() {
        val dir = writeBundle(File(tmp, "b"))
        val m = BundleManifest.parse(File(dir, "manifest.json").readText())
        assertEquals(listOf("input_ids", "attention_mask", "token_type_ids"), m.inputNames)
        assertEquals(64, m.seqLen)
        assertTrue(m.dynamicSeq)
        assertEquals("bert-tiny", m.model)
        assertEquals(Golden.special(Golden.preset), m.special.copy())
        m.verify(dir)
    }

    @Test
    fun picksTheEngineTheManifestNames() {
        val engines = listOf("executorch", "onnx").map { name ->
            object : Engine {
                override val runtime = name
                override val threadsRule = "test"
                override fun threadsEffective(requested: Int, processors: Int) = requested
                override fun load(dir: File, manifest: BundleManifest, threads: Int): QaModel = error("not loaded")
            }
        }
        for (target in listOf("executorch", "onnx")) {
            val m = BundleManifest.parse(File(writeBundle(File(tmp, target), target = target), "manifest.json").readText())
            assertEquals(target, Engines.pick(engines, m).runtime)
            assertEquals(listOf("int64", "int64", "int64"), m.inputDtypes)
        }
        val coreml = BundleManifest.parse(File(writeBundle(File(tmp, "coreml"), target = "coreml"), "manifest.json").readText())
        val e = assertThrows(BundleException::class.java) { Engines.pick(engines, coreml, "b/coreml") }
        assertEquals("b/coreml is a 'coreml' bundle; the app runs executorch, onnx bundles (pocketbert export --target executorch|onnx)", e.message)
    }

    @Test
    fun threadRulesAreTheRuntimes() {
        assertEquals(3, OrtThreads.effective(3, 8))
        assertEquals(8, OrtThreads.effective(0, 8)) // ONNX Runtime's default: one per core, little ones too
        assertEquals(1, OrtThreads.effective(0, 0))
    }

    @Test
    fun refusesWhatTheAppCannotRun() {
        val cls = writeBundle(File(tmp, "cls"), task = "sequence-classification")
        val e2 = assertThrows(BundleException::class.java) { BundleManifest.parse(File(cls, "manifest.json").readText()) }
        assertTrue("question-answering" in e2.message!!, e2.message)
        assertThrows(BundleException::class.java) { BundleManifest.parse("{\"format\": \"other\"}") }
        assertThrows(BundleException::class.java) { BundleManifest.parse("not json") }
        val bad = writeBundle(File(tmp, "bad"), corrupt = true)
        val e3 = assertThrows(BundleException::class.java) { QaEngine.open(bad) }
        assertTrue("sha256" in e3.message!!, e3.message)
        assertThrows(BundleException::class.java) { QaEngine.open(File(tmp, "nothing")) }
    }
}

class QaEngineTest {
    @TempDir
    lateinit var tmp: File

    @Test
    fun answersAcrossWindowsWithRealLengthsAndTimings() {
        val engine = QaEngine.open(writeBundle(File(tmp, "b"), seqLen = 32))
        val context = "the cat sat on the mat and then the dog ran far away from the big red house to find food in time"
        val answerId = engine.tokenizer.vocab["time"] ?: error("preset vocab lacks 'time'")
        val model = PieceModel(answerId)
        val a = engine.answer(model, "where did the dog run?", context)
        assertEquals("time", a.text)
        assertTrue(a.windows > 1, "a 32-token window cannot hold the passage: ${a.windows} window(s)")
        assertEquals(a.windows, model.calls)
        assertTrue(model.lengths.all { it <= 32 } && model.lengths.toSet().size > 1, "real lengths: ${model.lengths}")
        assertEquals(a.tokens, a.tokensFed)
        assertTrue(a.tokenizeMs >= 0 && a.modelMs >= 0 && a.postprocessMs >= 0)
    }

    @Test
    fun fixedShapePadsWithThePadIdFromTheManifest() {
        val engine = QaEngine.open(writeBundle(File(tmp, "f"), seqLen = 48, dynamic = false))
        assertTrue(engine.fixedShape)
        val w = engine.windows("a?", "short passage")
        val feeds = engine.feedsOf(w[0])
        assertEquals(48, feeds.getValue("input_ids").size)
        assertEquals(w[0].length, feeds.getValue("attention_mask").sum().toInt())
        assertEquals(engine.manifest.special.pad.toLong(), feeds.getValue("input_ids")[47])
        val model = PieceModel(-1)
        val a = engine.answer(model, "a?", "short passage")
        assertEquals(listOf(48), model.lengths)
        assertEquals(48, a.tokensFed)
        // shorter windows on a fixed-shape model still feed the model its own length
        val shorter = QaEngine.open(File(tmp, "f"), seqLen = 32)
        assertEquals(48, shorter.feedsOf(shorter.windows("a?", "short passage")[0]).getValue("input_ids").size)
        // a dynamic model asked for fixed shapes pads to the window length in use
        val dyn = QaEngine.open(writeBundle(File(tmp, "d"), seqLen = 48), seqLen = 40, fixedShape = true)
        assertEquals(40, dyn.feedsOf(dyn.windows("a?", "short passage")[0]).getValue("token_type_ids").size)
    }

    @Test
    fun noContextMeansNoAnswer() {
        val engine = QaEngine.open(writeBundle(File(tmp, "e")))
        val a = engine.answer(PieceModel(-1), "anything?", "")
        assertEquals("", a.text)
        assertNull(a.span)
    }

    @Test
    fun builtinPassagesFitAndHaveQuestions() {
        val w = Workload.builtin()
        assertTrue(w.items.size >= 8)
        assertTrue(SamplePassages.all.all { it.text.length > 200 && it.questions.isNotEmpty() })
    }
}

class BenchmarkTest {
    @TempDir
    lateinit var tmp: File

    private val machine = mapOf("device" to "test", "hostname" to "jvm")

    @Test
    fun writesARecordInTheBenchSchema() {
        val dir = writeBundle(File(tmp, "b"), seqLen = 40)
        val workloadFile = File(tmp, "w.json")
        workloadFile.writeText(Json.write(mapOf("format" to Workload.FORMAT, "name" to "synthetic", "source" to "test",
            "items" to listOf(
                mapOf("id" to "a", "question" to "where?", "context" to "the cat sat on the mat in the barn"),
                mapOf("id" to "b", "question" to "who?", "context" to "the dog ran far away from the big red barn to find food " .repeat(3)),
                mapOf("id" to "c", "question" to "what?", "context" to "one two three four five six seven eight", "max_tokens" to 12),
            ))))
        val workload = Workload.parse(workloadFile.readText(), workloadFile.path)
        var loads = 0
        val rec = Benchmark().run(BenchConfig(bundle = dir.path, iterations = 2, warmup = 2, runId = "r1"), dir, workload,
            machine, mapOf("executorch-android" to "1.4.1")) { _, m, threads ->
            loads++
            assertEquals(0, threads)
            PieceModel(m.special.sep)
        }
        assertEquals("ok", rec["status"], rec["reason"].toString())
        assertEquals(1, loads)
        for (key in listOf("schema", "run_id", "status", "reason", "model", "model_type", "task", "runtime", "precision",
            "workload", "workload_source", "shape", "seq_len", "threads", "warmup", "batch_size", "parameters",
            "model_file_bytes", "load_ms", "first_inference_ms", "n_items", "n_model_calls", "item_ids", "latency_ms",
            "tokenize_ms", "postprocess_ms", "tokens", "peak_rss_mb", "baseline_rss_mb", "runtime_rss_mb",
            "answers_sample", "machine", "versions", "created_utc")) {
            assertTrue(key in rec, "record lacks $key")
        }
        assertEquals("pocketbert-bench/1", rec["schema"])
        assertEquals("bert-tiny", rec["model"])
        assertEquals("executorch", rec["runtime"])
        assertEquals(6, rec["n_items"])
        assertEquals(listOf("a", "b", "c", "a", "b", "c"), rec["item_ids"])
        assertEquals(6, (rec["latency_ms"] as List<*>).size)
        assertEquals(6, (rec["tokenize_ms"] as List<*>).size)
        val calls = rec["n_model_calls"] as Int
        assertTrue(calls > 6, "item b needs several windows at 40 tokens: $calls calls")
        val tokens = rec["tokens"] as Map<*, *>
        assertEquals(tokens["real"], tokens["fed"]) // dynamic shape: no padding
        val out = File(tmp, "bench/rec.json")
        Benchmark.writeRecord(rec, out)
        // for tests/test_android_kotlin.py: the Python side reads these with pocketbert.contracts.Record
        System.getProperty("pocketbert.record_out")?.let { Benchmark.writeRecord(rec, File(it)) }
        val back = Json.parse(out.readText()).asObj()
        assertEquals(rec["item_ids"], back["item_ids"])
        assertFalse(File(out.path + ".tmp").exists())
    }

    @Test
    fun failuresAreRecordsToo() {
        val bad = writeBundle(File(tmp, "bad"), corrupt = true)
        val r1 = Benchmark().run(BenchConfig(bundle = bad.path), bad, null, machine, emptyMap()) { _, _, _ -> error("not loaded") }
        assertEquals("failed", r1["status"])
        assertTrue("sha256" in r1["reason"].toString())
        val good = writeBundle(File(tmp, "good"), seqLen = 16)
        val r2 = Benchmark().run(BenchConfig(bundle = good.path, iterations = 0), good, null, machine, emptyMap()) { _, _, _ -> error("x") }
        assertEquals("failed", r2["status"])
        assertTrue("iterations" in r2["reason"].toString())
        // a question too long for a 16-token window is cut to 16 - 3 - 16/4 = 9 tokens (as squad.question_windows)
        val longQ = "a very long question with many many words in it ok"
        val cut = QaEngine.open(good).windows(longQ, "context")
        assertEquals(listOf(9), cut.map { w -> w.sequenceIds.count { it == 0 } })
        assertTrue(cut.all { w -> w.sequenceIds.count { it == 1 } >= 1 })
        // a window with no room for question + context fails before any timing
        val long = Workload("w", "t", listOf(WorkloadItem("x", longQ, "context")))
        val r3 = Benchmark().run(BenchConfig(bundle = good.path, seqLen = 4), good, long, machine, emptyMap()) { _, _, _ -> error("not loaded") }
        assertEquals("failed", r3["status"])
        assertTrue("too short for question + context" in r3["reason"].toString(), r3["reason"].toString())
        System.getProperty("pocketbert.failed_record_out")?.let {
            Benchmark.writeRecord(Benchmark.failure("cannot read workload x.json", "r0", machine, emptyMap()), File(it))
        }
        val fixed = writeBundle(File(tmp, "fixed"), dynamic = false)
        val r4 = Benchmark().run(BenchConfig(bundle = fixed.path, shape = "dynamic"), fixed, null, machine, emptyMap()) { _, _, _ -> error("x") }
        assertTrue("fixed" in r4["reason"].toString())
    }

    @Test
    fun readsSquadFilesAsWorkloads() {
        val squad = """{"data": [{"title": "t", "paragraphs": [{"context": "Paris is in France.",
            "qas": [{"id": "q1", "question": " Where is Paris? ", "answers": []}]}]}]}"""
        val w = Workload.parse(squad, "dev.json")
        assertEquals("squad", w.name)
        assertEquals(listOf(WorkloadItem("q1", "Where is Paris?", "Paris is in France.")), w.items)
        assertThrows(IllegalArgumentException::class.java) { Workload.parse("{\"x\": 1}", "x.json") }
    }
}
