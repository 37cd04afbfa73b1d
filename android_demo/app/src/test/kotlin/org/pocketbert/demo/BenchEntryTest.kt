package org.pocketbert.demo

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import org.pocketbert.qa.Json
import java.io.File

class BenchEntryTest {
    @TempDir lateinit var tmp: File

    private val facts = Facts({ mapOf("device" to "adb", "model" to "JVM") }, { mapOf("app" to "test") }, { 8 })

    private fun store() = BundleStore(FolderAssets(Fixtures.assets(File(tmp, "assets"), "tiny")), File(tmp, "files"), File(tmp, "pushed"))

    private fun run(extras: Map<String, Any?>, f: Facts = facts): Map<String, Any?> {
        val (record, file) = BenchEntry.runIntent(extras, File(tmp, "files"), store(), f, listOf(PieceEngine("executorch"))) {}
        assertEquals(record["status"], (Json.parse(file.readText()) as Map<*, *>)["status"], "the record on disk is the one returned")
        return record
    }

    private fun reason(extras: Map<String, Any?>): String {
        val r = run(extras)
        assertEquals("failed", r["status"], r.toString())
        val reason = r["reason"] as String
        assertTrue('\n' !in reason && reason.length <= 300, reason)
        return reason
    }

    @Test
    fun aPackagedBundleRunsOnTheBuiltinWorkload() {
        val r = run(mapOf("bundle" to "tiny", "iterations" to 2, "warmup" to 0, "run_id" to "r1"))
        assertEquals("ok", r["status"], r["reason"].toString())
        assertEquals("executorch", r["runtime"])
        assertEquals(4, r["threads_effective"]) // ExecuTorch's default: 8 processors / 2
        assertEquals((r["item_ids"] as List<*>).size, r["n_items"])
        assertTrue(File(tmp, "files/bench/record.json").isFile)
    }

    @Test
    fun extrasOutOfRangeAreAFailedRecord() { // the old code had no upper bound: 2e9 iterations ran "forever"
        assertEquals("iterations must be in 1..10000, got 2000000000", reason(mapOf("bundle" to "tiny", "iterations" to 2_000_000_000)))
        assertEquals("warmup must be in 0..10000, got -1", reason(mapOf("bundle" to "tiny", "warmup" to -1)))
        assertEquals("threads must be in 0..256 (0 = the runtime's default), got 100000", reason(mapOf("bundle" to "tiny", "threads" to 100_000)))
        assertEquals("seq_len must be in 4..8192 (and at most the bundle's seq_len), got 1000000", reason(mapOf("bundle" to "tiny", "seq_len" to 1_000_000)))
        assertEquals("limit must be in 1..1000000, got 0", reason(mapOf("bundle" to "tiny", "limit" to 0)))
        assertTrue(reason(mapOf("bundle" to "tiny", "seq_len" to 128)).startsWith("window length 128 must be in 4..64"))
    }

    @Test
    fun extrasOfTheWrongTypeAreAFailedRecord() {
        // --el 4294967297: the old code wrapped it to 1 iteration and ran
        assertEquals("extra 'iterations' is out of range: 4294967297", reason(mapOf("bundle" to "tiny", "iterations" to 4294967297L)))
        assertEquals("extra 'threads' must be an int (am start --ei threads N), got Float '1.5'", reason(mapOf("bundle" to "tiny", "threads" to 1.5f)))
        assertEquals("extra 'warmup' must be an int (am start --ei warmup N), got String '3'", reason(mapOf("bundle" to "tiny", "warmup" to "3")))
        assertEquals("extra 'bundle' must be a string (am start --es bundle VALUE), got Boolean 'true'", reason(mapOf("bundle" to true)))
        assertEquals("extra 'limit' must be an int (am start --ei limit N), got UnreadableExtra '<unreadable: BadParcelableException: no class>'",
            reason(BenchEntry.extras(setOf("bundle", "limit")) { if (it == "limit") throw BadParcelableException("no class") else "tiny" }))
    }

    @Test
    fun anUnknownEngineIsAFailedRecord() {
        val s = BundleStore(FolderAssets(Fixtures.assets(File(tmp, "assets2"), "lite", target = "tflite")), File(tmp, "files"), File(tmp, "p"))
        val (r, _) = BenchEntry.runIntent(mapOf("bundle" to "lite"), File(tmp, "files"), s, facts, AppEnginesForTest.all) {}
        assertEquals("failed", r["status"])
        assertTrue((r["reason"] as String).endsWith("is a 'tflite' bundle; the app runs executorch, onnx bundles (pocketbert export --target executorch|onnx)"), r["reason"].toString())
    }

    @Test
    fun factsThatCannotBeReadAreNotesNotACrash() {
        val broken = Facts({ throw SecurityException("no /proc") }, { throw IllegalStateException("NameNotFoundException") }, { error("no sysfs") })
        val (r, file) = BenchEntry.runIntent(mapOf("bundle" to "tiny", "warmup" to 0), File(tmp, "files"), store(), broken,
            listOf(PieceEngine("executorch"))) {}
        assertEquals("ok", r["status"], r["reason"].toString())
        val machine = r["machine"] as Map<*, *>
        assertEquals(listOf("cannot read the device facts: SecurityException: no /proc",
            "cannot read the app's versions: IllegalStateException: NameNotFoundException",
            "cannot read the processor count: IllegalStateException: no sysfs"), machine["notes"])
        assertTrue(file.isFile)
    }

    @Test
    fun theFarmRunWritesItsRecordWithOrWithoutSharedStorage() {
        val ext = File(tmp, "sdcard/files")
        val (ok, file) = BenchEntry.runFarm("farm-1", File(tmp, "files"), ext.path, store(), facts, listOf(PieceEngine("executorch"))) {}
        assertEquals("ok", ok["status"], ok["reason"].toString())
        assertEquals(File(ext, "pocketbert/record.json"), file)
        // no shared storage mounted: the old FarmRun threw; now the record goes to the app's own files
        val (rec, inFiles) = BenchEntry.runFarm("farm-2", File(tmp, "files"), null, store(), facts, listOf(PieceEngine("executorch"))) {}
        assertEquals("ok", rec["status"])
        assertEquals(File(tmp, "files/pocketbert/record.json"), inFiles)
        // nothing packaged: a failed record naming the fix
        val empty = BundleStore(FolderAssets(File(tmp, "nothing")), File(tmp, "files"), File(tmp, "p"))
        val (none, _) = BenchEntry.runFarm("farm-3", File(tmp, "files"), ext.path, empty, facts, listOf(PieceEngine("executorch"))) {}
        assertEquals("failed", none["status"])
        assertTrue("none: run pocketbert android bundle" in none["reason"] as String, none["reason"].toString())
    }
}

/** Stands for android.os.BadParcelableException (what Bundle.get throws for a Parcelable of an unknown class). */
class BadParcelableException(message: String) : RuntimeException(message)

/** The app's engine list with fakes in place of the native runtimes. */
object AppEnginesForTest {
    val all = listOf(PieceEngine("executorch"), PieceEngine("onnx"))
}
