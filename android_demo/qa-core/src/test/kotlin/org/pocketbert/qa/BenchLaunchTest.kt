package org.pocketbert.qa

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Assertions.assertThrows
import java.io.File
import java.nio.file.Files

class BenchLaunchTest {
    private val files = "/data/data/org.pocketbert.demo/files"
    private val paths = DevicePaths(files)

    @Test
    fun `paths inside the app's files and the pushed folder are allowed`() {
        assertEquals(File("$files/in/bundles/x"), paths.resolve("in/bundles/x", "bundle"))
        assertEquals(File("/data/local/tmp/pocketbert/bundles/ab"), paths.resolve("/data/local/tmp/pocketbert/bundles/ab", "bundle"))
        assertEquals(File("$files/w.json"), paths.resolve("./w.json", "workload"))
    }

    @Test
    fun `paths elsewhere are refused, naming the allowed folders`() {
        for (bad in listOf("/sdcard/x.json", "/data/local/tmp/other", "/data/local/tmp/pocketbertX/a",
                "../../com.other.app/files/secret", "/data/local/tmp/pocketbert/../../../system/x", "")) {
            val e = assertThrows(IllegalArgumentException::class.java, { paths.resolve(bad, "workload") }, bad)
            assertTrue(e.message!!.contains("workload"), e.message)
        }
        val e = assertThrows(IllegalArgumentException::class.java) { paths.resolve("/etc/passwd", "workload") }
        assertTrue(e.message!!.contains("/data/local/tmp/pocketbert"), e.message)
    }

    @Test
    fun `the thread count is what ExecuTorch 1_4_1 applies`() {
        assertEquals(3, ExecuTorchThreads.effective(3, 8))
        assertEquals(4, ExecuTorchThreads.effective(0, 8)) // processors / 2, little cores counted too
        assertEquals(1, ExecuTorchThreads.effective(0, 3))
        assertEquals(1, ExecuTorchThreads.effective(0, 1)) // 1/2 = 0: the pool keeps its own size
        assertEquals(8, ExecuTorchThreads.processors("0-7\n"))
        assertEquals(6, ExecuTorchThreads.processors("0-3,6-7"))
        assertEquals(Runtime.getRuntime().availableProcessors(), ExecuTorchThreads.processors(null))
    }

    @Test
    fun `extras of the wrong type are an error record, not a default`() {
        val e = assertThrows(IllegalArgumentException::class.java) { BenchLaunch.config(mapOf("threads" to "4")) }
        assertTrue(e.message!!.contains("--ei threads"), e.message)
        assertEquals(4, BenchLaunch.config(mapOf("threads" to 4, "bundle" to "b")).threads)
    }

    @Test
    fun `a refused path is a failed record in files-bench`() {
        val root = Files.createTempDirectory("fakefs").toFile()
        val fs: (String) -> File = { File(root, it.removePrefix("/")) }
        val (rec, out) = BenchLaunch.run(mapOf("bundle" to "/sdcard/b", "result" to "r.json"), DevicePaths(files, fs),
            emptyMap(), emptyMap(), 8, engines = emptyList())
        assertEquals("failed", rec["status"])
        assertTrue((rec["reason"] as String).contains("outside the folders"), rec["reason"].toString())
        assertEquals(fs("$files/bench/r.json"), out)
        assertTrue(out.readText().contains("outside the folders"))
        root.deleteRecursively()
    }
}
