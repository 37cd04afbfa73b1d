package org.pocketbert.demo

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import org.pocketbert.qa.BundleException
import java.io.File

class BundleStoreTest {
    @TempDir lateinit var tmp: File

    private fun store(assets: File = File(tmp, "assets"), pushed: File = File(tmp, "pushed")) =
        BundleStore(FolderAssets(assets), File(tmp, "files"), pushed)

    private fun models(text: String): File = File(tmp, "assets").also { File(it, "bundles").mkdirs(); File(it, ModelList.FILE).writeText(text) }

    @Test
    fun noModelListMeansNothingPackaged() {
        assertEquals(ModelList(emptyList(), null), store().packaged())
        assertNull(store().packagedDir("anything"))
    }

    @Test
    fun malformedModelListIsOneLineNotACrash() { // the old Bundles.packaged threw JSONException out of onCreate
        for (text in listOf("{", "not json", "[]", "{\"format\": \"pocketbert-android-models/1\"}", "{\"bundles\": []}",
                "{\"format\": \"pocketbert-android-models/1\", \"bundles\": {\"name\": \"x\"}}")) {
            val listing = store(models(text)).packaged()
            assertEquals(emptyList<String>(), listing.names, text)
            val problem = listing.problem!!
            assertTrue(problem.startsWith(ModelList.FILE) && problem.endsWith("re-run pocketbert android bundle and reinstall the app"), problem)
            assertFalse('\n' in problem, problem)
        }
    }

    @Test
    fun badEntriesAreNamedAndTheGoodOnesKept() {
        Fixtures.assets(File(tmp, "assets"), "good")
        models("""{"format": "pocketbert-android-models/1", "bundles": [{"name": "good"}, {"name": "../../etc"},
            {"name": "good"}, {"nom": 1}, {"name": "gone"}, 7]}""")
        val listing = store().packaged()
        assertEquals(listOf("good"), listing.names)
        assertTrue("'../../etc' is not a folder name" in listing.problem!!, listing.problem)
        assertTrue("'good' is listed twice" in listing.problem!!, listing.problem)
        assertTrue("(and 2 more)" in listing.problem!!, listing.problem)
        assertThrows(IllegalArgumentException::class.java) { store().resolve("../../etc") }
    }

    @Test
    fun anOversizedModelListIsRefused() {
        models("{\"format\": \"pocketbert-android-models/1\", \"bundles\": [" + "{\"name\": \"x\"},".repeat(100_000) + "]}")
        assertTrue(store().packaged().problem!!.contains("larger than"))
    }

    @Test
    fun packagedBundleIsCopiedOutOnceWithItsHashesChecked() {
        Fixtures.assets(File(tmp, "assets"), "tiny-fp32", "tiny-int8")
        val s = store()
        assertEquals(listOf("tiny-fp32", "tiny-int8"), s.packaged().names)
        val dir = s.resolve("tiny-int8")
        assertEquals(File(tmp, "files/bundles/tiny-int8"), dir)
        assertEquals(setOf("manifest.json", "vocab.txt", "model.pte", ".installed"), dir.list()!!.toSet())
        val stamp = File(dir, ".installed").lastModified()
        File(dir, "extra").writeText("kept: not copied again")
        assertEquals(dir, s.packagedDir("tiny-int8"))
        assertTrue(File(dir, "extra").isFile && File(dir, ".installed").lastModified() == stamp)
        // a new APK with another manifest: copied out again
        Fixtures.bundle(File(tmp, "assets/bundles/tiny-int8"), extra = mapOf("precision" to "int8"))
        assertEquals(dir, s.packagedDir("tiny-int8"))
        assertFalse(File(dir, "extra").exists())
    }

    @Test
    fun aBundleWhoseHashDoesNotMatchIsRefusedAndLeavesNothing() {
        Fixtures.assets(File(tmp, "assets"), "tiny")
        File(tmp, "assets/bundles/tiny/model.pte").appendBytes(byteArrayOf(1, 2, 3))
        val e = assertThrows(BundleException::class.java) { store().resolve("tiny") }
        assertTrue("model.pte does not match its sha256" in e.message!!, e.message)
        assertEquals(emptyList<String>(), File(tmp, "files/bundles").list()!!.toList()) // no half-copied folder
    }

    @Test
    fun aPackagedBundleMissingAFileIsOneLine() {
        Fixtures.assets(File(tmp, "assets"), "tiny")
        File(tmp, "assets/bundles/tiny/vocab.txt").delete()
        val e = assertThrows(BundleException::class.java) { store().resolve("tiny") }
        assertEquals("packaged bundle tiny: cannot copy vocab.txt out of the APK (bundles/tiny/vocab.txt)", e.message)
        File(tmp, "assets/bundles/tiny/manifest.json").delete()
        assertTrue(assertThrows(BundleException::class.java) { store().resolve("tiny") }.message!!.startsWith("packaged bundle tiny has no readable manifest.json"))
    }

    @Test
    fun aModelFileOutsideTheBundleIsRefused() {
        Fixtures.assets(File(tmp, "assets"), "tiny")
        Fixtures.bundle(File(tmp, "assets/bundles/tiny"), modelFile = "../../escape.pte")
        val e = assertThrows(BundleException::class.java) { store().resolve("tiny") }
        assertTrue("model_file must be a file name in the bundle folder" in e.message!!, e.message)
        assertFalse(File(tmp, "escape.pte").exists() || File(tmp, "files/escape.pte").exists())
    }

    @Test
    fun pushedFoldersAreListedWhenReadable() {
        val pushed = File(tmp, "pushed")
        Fixtures.bundle(File(pushed, "b"))
        File(pushed, "not-a-bundle").mkdirs()
        assertEquals(listOf(File(pushed, "b").path), store(pushed = pushed).pushed())
        assertEquals(emptyList<String>(), store(pushed = File(tmp, "absent")).pushed())
    }
}
