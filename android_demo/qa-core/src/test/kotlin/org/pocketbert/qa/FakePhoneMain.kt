package org.pocketbert.qa

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.io.Writer

/**
 * The app's benchmark intent run on the JVM for the fake phone of tests/fake_adb.py: the same
 * BenchLaunch code BenchmarkActivity runs (extras, allowed paths, WordPiece, windows, span search,
 * record writer), with the device's `/` under ROOT and only the model call handed to another
 * process (tests/et_bridge.py: ExecuTorch's Python runtime on the .pte).
 *
 *   java -cp qa-core.jar:kotlin-stdlib.jar org.pocketbert.qa.FakePhoneMainKt \
 *       ROOT FILES_DIR EXTRAS_JSON MACHINE_JSON BRIDGE_COMMAND...
 *
 * The bridge gets the model's host path as its last argument, prints `ready` once loaded, then
 * answers each line {"inputs": [[ids of input 0], ...], "length": n} with {"start": [...], "end": [...]}.
 * The process exits 0 once the record is written (whatever its status).
 */
fun main(args: Array<String>) {
    require(args.size >= 5) { "usage: ROOT FILES_DIR EXTRAS_JSON MACHINE_JSON BRIDGE_COMMAND..." }
    val root = File(args[0])
    val fs: (String) -> File = { File(root, it.removePrefix("/")) }
    val extras = Json.parse(args[2]).asObj()
    val machine = Json.parse(args[3]).asObj()
    val bridge = args.drop(4)
    val present = fs("/sys/devices/system/cpu/present").takeIf { it.isFile }?.readText()
    BenchLaunch.run(
        extras, DevicePaths(args[1], fs), machine, mapOf("executorch-android" to "fake-phone (ExecuTorch Python runtime)",
            "app" to "qa-core on the JVM"), ExecuTorchThreads.processors(present), progress = { System.err.println(it) },
    ) { dir, manifest, _ -> BridgeModel(bridge + File(dir, manifest.modelFile).path, manifest.inputNames) }
}

/** A QaModel whose forward pass runs in a child process, one JSON line each way. */
class BridgeModel(command: List<String>, private val inputNames: List<String>) : QaModel {
    private val proc = ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start()
    private val out: Writer = proc.outputStream.bufferedWriter()
    private val input: BufferedReader = BufferedReader(InputStreamReader(proc.inputStream))

    init {
        val first = input.readLine()
        check(first == "ready") { "model bridge did not start: ${first ?: "exited ${proc.waitFor()}"}" }
    }

    override fun run(inputs: Map<String, LongArray>, length: Int): Pair<FloatArray, FloatArray> {
        val req = mapOf("inputs" to inputNames.map { n -> inputs.getValue(n).toList() }, "length" to length)
        out.write(Json.write(req) + "\n")
        out.flush()
        val reply = Json.parse(input.readLine() ?: error("model bridge exited ${proc.waitFor()}")).asObj()
        fun floats(key: String) = (reply[key] as List<*>).map { (it as Number).toFloat() }.toFloatArray()
        return floats("start") to floats("end")
    }

    override fun close() {
        out.close()
        proc.waitFor()
    }
}
