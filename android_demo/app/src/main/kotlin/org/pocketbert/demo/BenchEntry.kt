package org.pocketbert.demo

import org.pocketbert.qa.BenchLaunch
import org.pocketbert.qa.DevicePaths
import org.pocketbert.qa.Engine
import org.pocketbert.qa.FarmLaunch
import java.io.File

/** An intent extra that could not be read (e.g. a Parcelable of a class this app does not have). */
class UnreadableExtra(private val why: String) {
    override fun toString() = "<unreadable: $why>"
}

/** The device facts a record carries, each read lazily and guarded (DeviceInfo on a phone). */
class Facts(val machine: () -> Map<String, Any?>, val versions: () -> Map<String, Any?>, val processors: () -> Int)

/**
 * The debug entry points' work without their Activity: BenchmarkActivity's intent (extras -> the
 * record in files/bench) and the device farms' run (GameLoopActivity, FarmBenchmarkTest -> the
 * record in external files/pocketbert). Always writes a record: a fact that cannot be read is a
 * note in it, a bad extra is a failed record (qa-core's BenchLaunch).
 */
object BenchEntry {
    /** The intent's extras as a map; [get] reads one (Bundle.get); one that throws is kept as UnreadableExtra. */
    fun extras(keys: Set<String>?, get: (String) -> Any?): Map<String, Any?> =
        (keys ?: emptySet()).associateWith { key ->
            try { get(key) } catch (e: Exception) { UnreadableExtra("${e.javaClass.simpleName}: ${e.message}".take(120)) }
        }

    fun runIntent(extras: Map<String, Any?>, filesDir: File, store: BundleStore, facts: Facts, engines: List<Engine>,
                  log: (String) -> Unit): Pair<Map<String, Any?>, File> =
        launch(extras, DevicePaths(filesDir.path), store, facts, engines, log, BenchLaunch.RESULT_DIR)

    /** The farm run: the first packaged bundle on the built-in workload; with no shared storage ([externalDir] null) the record goes to files/pocketbert. */
    fun runFarm(runId: String, filesDir: File, externalDir: String?, store: BundleStore, facts: Facts, engines: List<Engine>,
                log: (String) -> Unit): Pair<Map<String, Any?>, File> {
        val names = try { store.packaged().names } catch (e: Exception) { emptyList() }
        val paths = DevicePaths(filesDir.path, extraRoots = listOfNotNull(externalDir))
        return launch(FarmLaunch.extras(names, runId), paths, store, facts, engines, log,
            FarmLaunch.resultDir(externalDir ?: filesDir.path))
    }

    private fun launch(extras: Map<String, Any?>, paths: DevicePaths, store: BundleStore, facts: Facts, engines: List<Engine>,
                       log: (String) -> Unit, resultDir: String): Pair<Map<String, Any?>, File> {
        val notes = ArrayList<String>()
        val machine = DeviceFacts.orNote("the device facts", facts.machine) { notes.add(it); mapOf("device" to "adb") }
        val versions = DeviceFacts.orNote("the app's versions", facts.versions) { notes.add(it); emptyMap() }
        val processors = DeviceFacts.orNote("the processor count", facts.processors) { notes.add(it); Runtime.getRuntime().availableProcessors() }
        return BenchLaunch.run(extras, paths, if (notes.isEmpty()) machine else machine + ("notes" to notes.toList()),
            versions, processors, packaged = store::packagedDir, known = { store.packaged().names }, progress = log,
            resultDir = resultDir, engines = engines)
    }
}
