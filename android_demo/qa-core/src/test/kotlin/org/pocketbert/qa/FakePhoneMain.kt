package org.pocketbert.qa

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.io.Writer
import java.net.Socket

/**
 * The app's benchmark intent run on the JVM for the fake phone of tests/fake_adb.py: the same
 * BenchLaunch code BenchmarkActivity runs (extras, allowed paths, WordPiece, windows, span search,
 * record writer), with the device's `/` under ROOT and only the model call handed over a socket
 * to the fake phone (tests/fake_adb.py), which runs it with ExecuTorch's Python runtime.
 *
 *   java -cp android-demo.jar:kotlin-stdlib.jar org.pocketbert.qa.FakePhoneMainKt \
 *       ROOT FILES_DIR EXTRAS_JSON MACHINE_JSON VERSIONS_JSON HOST:PORT
 *
 * The model bridge protocol, one JSON line each way: {"model": HOST_PATH} -> {"ready": true} (or
 * {"error": ...}), then {"inputs": [[ids of input 0], ...]} -> {"start": [...], "end": [...]}.
 * The process exits 0 once the record is written (whatever its status).
 */
fun main(args: Array<String>) {
    require(args.size == 6) { "usage: ROOT FILES_DIR EXTRAS_JSON MACHINE_JSON VERSIONS_JSON HOST:PORT" }
    val root = File(args[0])
    // POCKETBERT_FAKE_DENY: device folders the app may not read (SELinux on some phones keeps apps
    // out of /data/local/tmp): they look empty, as they do to the app on such a phone.
    val denied = (System.getenv("POCKETBERT_FAKE_DENY") ?: "").split(':').filter { it.isNotBlank() }
    val fs: (String) -> File = { p ->
        if (denied.any { p == it || p.startsWith("$it/") }) File(root, "denied-by-selinux/" + p.removePrefix("/"))
        else File(root, p.removePrefix("/"))
    }
    val extras = Json.parse(args[2]).asObj()
    val machine = Json.parse(args[3]).asObj()
    val versions = Json.parse(args[4]).asObj()
    val (host, port) = args[5].split(':').let { it[0] to it[1].toInt() }
    val present = fs("/sys/devices/system/cpu/present").takeIf { it.isFile }?.readText()
    BenchLaunch.run(
        extras, DevicePaths(args[1], fs), machine, versions, ExecuTorchThreads.processors(present),
        progress = { System.err.println(it) },
    ) { dir, manifest, _ -> BridgeModel(host, port, File(dir, manifest.modelFile).path, manifest.inputNames) }
}

/** A QaModel whose forward pass runs at the other end of a socket, one JSON line each way. */
class BridgeModel(host: String, port: Int, modelPath: String, private val inputNames: List<String>) : QaModel {
    private val socket = Socket(host, port)
    private val out: Writer = socket.getOutputStream().bufferedWriter()
    private val input: BufferedReader = BufferedReader(InputStreamReader(socket.getInputStream()))

    init {
        val reply = call(mapOf("model" to modelPath))
        check(reply["ready"] == true) { "the model bridge cannot load $modelPath: ${reply["error"]}" }
    }

    private fun call(request: Map<String, Any?>): Map<String, Any?> {
        out.write(Json.write(request) + "\n")
        out.flush()
        return Json.parse(input.readLine() ?: error("the model bridge closed the connection")).asObj()
    }

    override fun run(inputs: Map<String, LongArray>, length: Int): Pair<FloatArray, FloatArray> {
        val reply = call(mapOf("inputs" to inputNames.map { n -> inputs.getValue(n).toList() }))
        reply["error"]?.let { error("model call failed: $it") }
        fun floats(key: String) = (reply[key] as List<*>).map { (it as Number).toFloat() }.toFloatArray()
        return floats("start") to floats("end")
    }

    override fun close() = socket.close()
}
