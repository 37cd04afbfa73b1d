package org.pocketbert.demo

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith

/**
 * The farm benchmark as an instrumentation test (AWS Device Farm "Instrumentation", FTL
 * `--type instrumentation`): `./gradlew connectedDebugAndroidTest` runs it on a plugged-in phone.
 * Fails when the benchmark did not produce an ok record, so the farm marks the run failed.
 */
@RunWith(AndroidJUnit4::class)
class FarmBenchmarkTest {
    @Test
    fun benchmarkThePackagedBundle() {
        val context = InstrumentationRegistry.getInstrumentation().targetContext
        val (record, file) = FarmRun.run(context, "instrumentation-${System.currentTimeMillis()}")
        assertTrue("record not written to $file", file.isFile)
        assertEquals("benchmark failed: ${record["reason"]}", "ok", record["status"])
    }
}
