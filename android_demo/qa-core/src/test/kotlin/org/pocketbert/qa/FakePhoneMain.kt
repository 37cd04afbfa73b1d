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
 * to the fake phone (tests/fake_adb.py), which runs it with ExecuTorch's Python runtime (ExecuTorch
 * bundles) or onnxruntime's (ONNX bundles: the app's own OnnxRuntimeEngine runs here, over the
 * fake phone's ai.onnxruntime classes, tests/fake_ort, on the classpath after the app's jar).
 *
 *   java -cp android-demo.jar:kotlin-stdlib.jar:fake-ort.jar org.pocketbert.qa.FakePhoneMainKt \
 *       intent|gameloop ROOT FILES_DIR EXTERNAL_FILES_DIR EXTRAS_JSON MACHINE_JSON VERSIONS_JSON HOST:PORT
 *
 * `intent` is BenchmarkActivity's path (the extras); `gameloop` is FarmRun's (GameLoopActivity and
 * the instrumentation test): FarmLaunch's extras, the record in EXTERNAL_FILES_DIR/pocketbert.
 *
 * The model bridge protocol, one JSON line each way: {"model": HOST_PATH} -> {"ready": true} (or
 * {"error": ...}), then {"inputs": [[ids of input 0], ...]} -> {"start": [...], "end": [...]};
 * for ONNX bundles (tests/fake_ort's OrtSession) {"onnx": HOST_PATH, "intra_op_num_threads": N} ->
 * {"inputs": [names], "outputs": [names]}, then {"feeds": [{name, dtype, shape, data}]} ->
 * {"outputs": [{name, shape, data}]}.
 * The process exits 0 once the record is written (whatever its status).
 */
fun main(args: Array<String>) {
    require(args.size == 8 && args[0] in setOf("intent", "gameloop")) {
        "usage: intent|gameloop ROOT FILES_DIR EXTERNAL_FILES_DIR EXTRAS_JSON MACHINE_JSON VERSIONS_JSON HOST:PORT"
    }
    val (mode, rootArg, files, external) = args.take(4)
    val root = File(rootArg)
    // POCKETBERT_FAKE_DENY: device folders the app may not read (SELinux on some phones keeps apps
    // out of /data/local/tmp): they look empty, as they do to the app on such a phone.
    val denied = (System.getenv("POCKETBERT_FAKE_DENY") ?: "").split(':').filter { it.isNotBlank() }
    val fs: (String) -> File = { p ->
        if (denied.any { p == it || p.startsWith("$it/") }) File(root, "denied-by-selinux/" + p.removePrefix("/"))
        else File(root, p.removePrefix("/"))
    }
    val machine = Json.parse(args[5]).asObj()
    val versions = Json.parse(args[6]).asObj()
    val (host, port) = args[7].split(':').let { it[0] to it[1].toInt() }
    val present = fs("/sys/devices/system/cpu/present").takeIf { it.isFile }?.readText()
    // "packaged" bundles: those already copied out of the APK (Bundles.extract's files/bundles/NAME)
    val extracted = fs("$files/bundles")
    val known = { extracted.listFiles()?.filter { File(it, BundleManifest.FILE).isFile }?.map { it.name }?.sorted() ?: emptyList() }
    val packaged = { name: String -> File(extracted, name).takeIf { name in known() } }
    System.setProperty("pocketbert.model_bridge", args[7]) // the fake ai.onnxruntime's sessions (tests/fake_ort)
    val engines = listOf(BridgeExecuTorchEngine(host, port), appEngine("org.pocketbert.demo.OnnxRuntimeEngine"))
    val log = { line: String -> System.err.println(line) }
    if (mode == "gameloop") { // FarmLaunch as FarmRun calls it (GameLoopActivity, FarmBenchmarkTest)
        BenchLaunch.run(FarmLaunch.extras(known(), "gameloop-fake"), DevicePaths(files, fs, listOf(external)), machine,
            versions, ExecuTorchThreads.processors(present), packaged, known, log, FarmLaunch.resultDir(external), engines)
    } else {
        BenchLaunch.run(Json.parse(args[4]).asObj(), DevicePaths(files, fs), machine, versions,
            ExecuTorchThreads.processors(present), packaged, known, log, engines = engines)
    }
}

/**
 * An engine of the app layer (app/src/main), loaded by name: in Gradle qa-core's tests cannot
 * import the app module; tests/kotlin_build.py compiles both into one jar. The ONNX Runtime engine
 * runs as the app's own code, its ai.onnxruntime calls answered by the fake phone's ONNX Runtime
 * (tests/fake_ort: the session runs in onnxruntime's Python package).
 */
fun appEngine(className: String): Engine = Class.forName(className).getField("INSTANCE").get(null) as Engine

/** ExecuTorch bundles on the fake phone: the app's engine facts, the model call in ExecuTorch's Python runtime. */
class BridgeExecuTorchEngine(private val host: String, private val port: Int) : Engine {
    override val runtime = "executorch"
    override val threadsRule = ExecuTorchThreads.RULE
    override fun threadsEffective(requested: Int, processors: Int) = ExecuTorchThreads.effective(requested, processors)
    override fun load(dir: File, manifest: BundleManifest, threads: Int): QaModel =
        BridgeModel(host, port, File(dir, manifest.modelFile).path, manifest.inputNames)
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
