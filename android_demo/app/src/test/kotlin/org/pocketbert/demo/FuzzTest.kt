package org.pocketbert.demo

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import org.pocketbert.qa.Json
import java.io.File
import kotlin.random.Random

/**
 * Seeded fuzz of the app's two ways in: the APK's models.json (and the manifests it leads to) as
 * the screen and the farm run read them, and the benchmark intent's extras. Whatever comes in, the
 * app answers with one line (the screen's message, the record's reason), never an exception.
 */
class FuzzTest {
    @TempDir lateinit var tmp: File

    private val rnd = Random(34)
    private val engines = listOf(PieceEngine("executorch"), PieceEngine("onnx"))
    private val crashes = ArrayList<String>()

    private fun <T> noCrash(case: String, block: () -> T): T? = try { block() } catch (e: Throwable) {
        crashes.add("$case: ${e.javaClass.name}: ${e.message?.lineSequence()?.first()}")
        null
    }

    private fun oneLine(s: String?) = s == null || ('\n' !in s && s.length <= 400)

    private fun anyValue(depth: Int = 0): Any? = when (rnd.nextInt(if (depth > 2) 6 else 8)) {
        0 -> null
        1 -> rnd.nextBoolean()
        2 -> listOf(0, -1, 1, 64, Int.MAX_VALUE, Int.MIN_VALUE, 3).random(rnd)
        3 -> rnd.nextDouble() * 1e12
        4 -> listOf("", "tiny", "../x", "a/b", "ö∆😀", ".hidden", "x".repeat(300), "executorch", "wordpiece", "bpe").random(rnd)
        5 -> rnd.nextLong()
        6 -> List(rnd.nextInt(4)) { anyValue(depth + 1) }
        else -> mapOf("name" to anyValue(depth + 1), "x" to anyValue(depth + 1))
    }

    private fun mutate(text: String): String = when (rnd.nextInt(5)) {
        0 -> text.substring(0, rnd.nextInt(text.length + 1)) // truncated
        1 -> text.toCharArray().also { c -> repeat(1 + rnd.nextInt(4)) { c[rnd.nextInt(c.size)] = "{}[]\",:0a\u0000é".random(rnd) } }.concatToString()
        2 -> String(ByteArray(rnd.nextInt(64)) { rnd.nextInt(256).toByte() }, Charsets.ISO_8859_1) // noise
        else -> text
    }

    @Test
    fun modelListsAndManifestsNeverCrashTheScreenOrTheFarmRun() {
        val facts = Facts({ mapOf("device" to "adb") }, { emptyMap() }, { 4 })
        var cases = 0
        repeat(120) { i ->
            val root = File(tmp, "m$i")
            Fixtures.assets(root, "tiny", "tiny-b")
            val doc = linkedMapOf<String, Any?>("format" to if (rnd.nextInt(6) == 0) anyValue() else ModelList.FORMAT,
                "bundles" to if (rnd.nextInt(6) == 0) anyValue() else List(rnd.nextInt(5)) {
                    if (rnd.nextInt(3) == 0) anyValue() else mapOf("name" to listOf("tiny", "tiny-b", anyValue()).random(rnd))
                })
            File(root, ModelList.FILE).writeText(mutate(Json.write(doc)))
            if (rnd.nextInt(3) == 0) { // a manifest with one field of the wrong type or missing
                val mf = File(root, "bundles/tiny/manifest.json")
                val m = (Json.parse(mf.readText()) as Map<*, *>).toMutableMap()
                val key = m.keys.random(rnd)
                if (rnd.nextBoolean()) m[key] = anyValue() else m.remove(key)
                mf.writeText(mutate(Json.write(m)))
            }
            val store = BundleStore(FolderAssets(root), File(root, "files"), File(root, "pushed"))
            val screen = QaScreen(store, engines)
            val choices = noCrash("models.json #$i: choices") { screen.choices() } ?: return@repeat
            assertTrue(oneLine(choices.message), choices.message)
            for (name in choices.names) {
                val line = noCrash("models.json #$i: load $name") { screen.load(name) }
                assertTrue(oneLine(line), line)
                if (screen.ready) noCrash("models.json #$i: answer") { screen.answer("where?", "the cat sat in paris") }
            }
            val rec = noCrash("models.json #$i: farm run") { BenchEntry.runFarm("f$i", File(root, "files"), null, store, facts, engines) {}.first }
            assertTrue(rec == null || (rec["status"] in setOf("ok", "failed") && oneLine(rec["reason"] as String?)), rec.toString())
            cases++
        }
        assertEquals(emptyList<String>(), crashes)
        assertTrue(cases >= 100, "$cases")
        println("fuzz models.json/manifest: $cases cases, ${crashes.size} crashes")
    }

    @Test
    fun intentExtrasNeverCrashTheBenchmark() {
        val root = Fixtures.assets(File(tmp, "assets"), "tiny")
        val store = BundleStore(FolderAssets(root), File(tmp, "files"), File(tmp, "pushed"))
        val facts = Facts({ mapOf("device" to "adb") }, { emptyMap() }, { 8 })
        Fixtures.bundle(File(tmp, "files/in/b"))
        File(tmp, "files/in/w.json").writeText(Json.write(mapOf("format" to "pocketbert-android-workload/1",
            "items" to listOf(mapOf("id" to "1", "question" to "where?", "context" to "the cat sat in paris")))))
        val keys = listOf("bundle", "iterations", "warmup", "threads", "shape", "seq_len", "doc_stride", "limit", "run_id",
            "result", "workload", "unknown_extra")
        val good = mapOf<String, List<Any?>>("bundle" to listOf("tiny", "in/b", "/data/local/tmp/pocketbert/bundles/none", "/etc", "in/../../x"),
            "iterations" to listOf(1, 2), "warmup" to listOf(0, 1), "threads" to listOf(0, 2), "shape" to listOf("dynamic", "fixed", "x"),
            "seq_len" to listOf(16, 64, 3), "doc_stride" to listOf(0, 5, 63), "limit" to listOf(1, 2), "run_id" to listOf("r", ""),
            "result" to listOf("out.json", "../out.json", ".x", "a/b"), "workload" to listOf("in/w.json", "in/none.json", "/proc/self/environ"))
        var cases = 0
        var ok = 0
        repeat(200) { i ->
            val extras = keys.filter { rnd.nextInt(3) != 0 }.associateWith { k ->
                when {
                    rnd.nextInt(4) == 0 -> anyValue()
                    rnd.nextInt(12) == 0 -> UnreadableExtra("fuzz")
                    else -> good[k]?.random(rnd) ?: anyValue()
                }
            }
            val rec = noCrash("extras #$i $extras") {
                BenchEntry.runIntent(extras, File(tmp, "files"), store, facts, engines) {}.first
            } ?: return@repeat
            assertTrue(rec["status"] in setOf("ok", "failed") && oneLine(rec["reason"] as String?), "$extras -> $rec")
            if (rec["status"] == "ok") ok++
            cases++
        }
        assertEquals(emptyList<String>(), crashes)
        assertEquals(200, cases)
        assertTrue(ok > 0, "some random extras must make a valid run")
        println("fuzz intent extras: $cases cases ($ok ran), ${crashes.size} crashes")
    }
}
