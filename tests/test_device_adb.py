"""adb devices end to end: Debian's real `adb` client against a fake phone (tests/fake_adb.py) that
speaks the adb transport protocol over TCP, shell protocol v2 by default (`phone` with param
"shell" for the old one). The demo app on the fake phone is the app's own Kotlin benchmark code
(qa-core on the JVM, compiled once per session by the `kotlin_build` fixture) with the model
call in ExecuTorch's Python runtime, or for ONNX bundles the app's own ONNX Runtime engine with
its sessions in onnxruntime's Python package (tests/fake_ort). The adb server runs on a private port for this module."""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bench.devices import minibench
from bench.devices.adb import AdbDevice, AdbError, AdbOptions, parse_url
from bench.devices.phone_runs import parse_runner_output
from bench.devices.remote import throttle_warnings
from pocketbert.common import UsageError
from pocketbert.contracts import WorkerSpec
from tests.fake_adb import APP_EXTERNAL, APP_PKG, MINIBENCH_PKG, FakeAdbDevice, run_demo_benchmark

SEQ = 32
needs_adb = pytest.mark.skipif(shutil.which("adb") is None, reason="adb client not installed "
                               "(apt install adb; scripts/install_system_tools.sh)")


# ------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def adb_server():
    """A private adb server (ANDROID_ADB_SERVER_PORT) killed at teardown."""
    if shutil.which("adb") is None:
        pytest.skip("adb client not installed (apt install adb; scripts/install_system_tools.sh)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    old = os.environ.get("ANDROID_ADB_SERVER_PORT")
    os.environ["ANDROID_ADB_SERVER_PORT"] = str(port)
    subprocess.run(["adb", "start-server"], check=True, capture_output=True, timeout=30)
    yield port
    subprocess.run(["adb", "kill-server"], capture_output=True, timeout=30)
    if old is None:
        os.environ.pop("ANDROID_ADB_SERVER_PORT", None)
    else:
        os.environ["ANDROID_ADB_SERVER_PORT"] = old


@pytest.fixture
def phone(adb_server, tmp_path, request):
    """A fake phone connected to the private adb server: shell protocol v2 unless the test's param
    is "shell"; its demo app runs qa-core on the JVM when the Kotlin build is available."""
    try:
        classpath = request.getfixturevalue("kotlin_build").classpath()
    except pytest.skip.Exception:
        classpath = None  # no kotlinc/java here: tests that start the app ask for kotlin_build and skip
    fake = FakeAdbDevice(tmp_path, shell_v2=getattr(request, "param", "shell_v2") == "shell_v2",
                         app_classpath=classpath)
    out = subprocess.run(["adb", "connect", fake.serial], capture_output=True, text=True, timeout=30)
    assert "connected" in out.stdout, out
    subprocess.run(["adb", "-s", fake.serial, "wait-for-device"], check=True, timeout=30)
    yield fake
    subprocess.run(["adb", "disconnect", fake.serial], capture_output=True, timeout=30)
    fake.close()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny real ExecuTorch bundle: bert-tiny, fp32, seq 32 (pocketbert export)."""
    from export.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("bundle")
    made = run_export(ExportConfig(model="bert-tiny", out=out / "b", seq_len=SEQ, parity_samples=1,
                                   overwrite=True), log=lambda m: None)
    return Path(made[0])


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory):
    """The same tiny model as an ONNX bundle (pocketbert export --target onnx): the app's second engine."""
    from export.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("onnx-bundle")
    made = run_export(ExportConfig(model="bert-tiny", out=out / "b", targets=["onnx"], seq_len=SEQ, parity_samples=1,
                                   overwrite=True), log=lambda m: None)
    return Path(made[0])


@pytest.fixture(scope="module")
def items(bundle, tmp_path_factory):
    """Three synthetic QA items, as the worker spec carries them."""
    from bench.workloads import load_workload
    from pocketbert.models import load_tokenizer

    return load_workload("synthetic", load_tokenizer(bundle), SEQ, 3).items


def spec(bundle: Path, items: list, shape: str = "dynamic", **kw) -> WorkerSpec:
    return WorkerSpec(**{"runtime": "executorch", "precision": "fp32", "model": "bert-tiny",
                         "task": "question-answering", "items": items, "model_path": str(bundle / "model.pte"),
                         "input_names": ["input_ids", "attention_mask", "token_type_ids"], "shape": shape,
                         "seq_len": SEQ, "threads": 1, "warmup": 1, "label": "test", **kw})


# ------------------------------------------------------------------------------- transport

@needs_adb
@pytest.mark.parametrize("phone", ["shell"], indirect=True)
def test_exit_marker_recovers_the_status_adb_loses(phone):
    plain = subprocess.run(["adb", "-s", phone.serial, "shell", "false"], capture_output=True, timeout=30)
    assert plain.returncode == 0  # the old shell protocol: adb itself cannot tell
    dev = AdbDevice(phone.serial)
    assert dev.shell("false", check=False)[0] == 1
    assert dev.shell("true")[0] == 0
    with pytest.raises(AdbError, match="exited 1.*No such file"):
        dev.shell("cat /nonexistent/file")
    # every path in a command line is quoted: a name with a space and a ';' is one argument
    phone.path("/data/local/tmp/a b;c").write_text("ok")
    assert dev.shell("cat " + __import__("shlex").quote("/data/local/tmp/a b;c"))[1] == "ok"


@needs_adb
def test_shell_v2_carries_exit_codes_and_stderr(phone):
    """What every Android 7+ phone negotiates: the real client opens `shell,v2,...` and exits with
    the command's status, stderr apart; the exit marker agrees with it."""
    plain = subprocess.run(["adb", "-s", phone.serial, "shell", "false"], capture_output=True, timeout=30)
    assert plain.returncode == 1
    both = subprocess.run(["adb", "-s", phone.serial, "shell", "echo hi; cat /nonexistent"], capture_output=True,
                          text=True, timeout=30)
    assert both.returncode == 1 and both.stdout == "hi\n" and "No such file" in both.stderr
    assert any(s.startswith("shell,v2,") for s in phone.services), phone.services
    dev = AdbDevice(phone.serial)
    assert dev.shell("false", check=False)[0] == 1 and dev.shell("true")[0] == 0
    with pytest.raises(AdbError, match="exited 1.*No such file"):
        dev.shell("cat /nonexistent/file")


@needs_adb
def test_identity_of_the_phone(phone):
    info = AdbDevice(phone.serial).info()
    assert info["device"] == f"adb://{phone.serial}"
    assert info["model"] == "Fake Pixel" and info["soc"] == "Fakecomm FK8550"
    assert info["os"] == "Android 14 (API 34)" and info["arch"] == "arm64-v8a"
    assert info["physical_cores"] == 8 and info["default_threads"] == 4  # 3 big + 1 prime core
    assert {c["max_mhz"] for c in info["cores"]} == {1800, 2800, 3200}
    assert "Cortex-X3" in info["cpu_model"] and "asimddp" in info["isa_flags"]
    assert info["governors"] == ["schedutil"]
    assert info["temperature_c"] == 40.0 and info["battery"]["level_pct"] == 87


# ------------------------------------------------------------------------------- the demo app (a)

def host_answers(bundle: Path, items: list) -> list[str]:
    """Each item's answer as the host decodes it (pocketbert.squad.best_span) from the same model
    file's logits (its runtime in Python: ExecuTorch for a .pte, onnxruntime for model.onnx) on the
    host's own windows: what the app's Kotlin must find too."""
    import numpy as np
    import torch

    from bench.workloads import postprocess

    manifest = json.loads((bundle / "manifest.json").read_text())
    names = [i["name"] for i in manifest["inputs"]]
    if manifest["target"] == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(bundle / manifest["model_file"]), providers=["CPUExecutionProvider"])
        forward = lambda f: session.run(None, {n: np.asarray(f[n], dtype=np.int64).reshape(1, -1)  # noqa: E731
                                               for n in names})
    else:
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(bundle / manifest["model_file"]).load_method("forward")
        forward = lambda f: [o.numpy() for o in method.execute(  # noqa: E731
            [torch.tensor(np.asarray(f[n]).reshape(1, -1), dtype=torch.long) for n in names])]
    return [postprocess("question-answering", [forward(f) for f in it.features], it.post) for it in items]


@needs_adb
@pytest.mark.parametrize("phone", ["shell_v2", "shell"], indirect=True)
def test_app_path_end_to_end(phone, kotlin_build, bundle, items):
    """The app's own Kotlin (tokenizer, windows, span search, record writer) over both shell protocols."""
    dev = AdbDevice(phone.serial, AdbOptions(via="app"))
    assert dev.available("executorch") == (True, "")
    assert not dev.available("pytorch")[0]
    result = dev.run_worker(spec(bundle, items), timeout_s=120)
    assert not result.error, result
    rec = result.record
    assert rec["schema"] == "pocketbert-bench/1" and rec["status"] == "ok"
    assert len(rec["latency_ms"]) == len(rec["tokenize_ms"]) == 3  # one per item, tokenized on the phone
    assert rec["item_ids"] == ["synthetic-0", "synthetic-1", "synthetic-2"]
    # the phone tokenized the same text the host did: same token counts (question decoded from the ids)
    assert rec["tokens"]["real"] == sum(len(f["input_ids"]) for it in items for f in it.features)
    # ... and found the answers the host decodes from the same model (a broken Kotlin span search,
    # window or tokenizer changes them)
    assert rec["answers_sample"] == [a[:80] for a in host_answers(bundle, items)]
    assert rec["versions"]["app"] == "qa-core on the JVM (fake phone)"  # the Kotlin ran, not a Python stand-in
    assert rec["threads"] == 1 and rec["threads_effective"] == 1
    assert any(s.startswith("shell,v2," if phone.shell_v2 else "shell:") for s in phone.services)
    state = result.device_state
    assert state["before"]["battery"]["level_pct"] == 87 and state["warnings"] == []
    launch = next(c for c in phone.log if c.startswith("am start"))
    assert f"-n {APP_PKG}/.BenchmarkActivity" in launch and "--ei warmup 1" in launch
    dev.close()
    assert any(c.startswith(f"am force-stop {APP_PKG}") for c in phone.log)
    assert not phone.path("/data/local/tmp/pocketbert").exists()  # pushed files removed


@needs_adb
def test_app_runs_an_onnx_bundle_with_its_onnx_runtime_engine(phone, kotlin_build, onnx_bundle, items):
    """The app's second engine: the ONNX bundle's manifest picks OnnxRuntimeEngine, whose own Kotlin
    (named int64 inputs, SessionOptions threads, the outputs by name) runs on the JVM over the fake
    phone's ai.onnxruntime (tests/fake_ort), the session in onnxruntime's Python package. A wrong
    input mapping in that Kotlin fails here when ONNX Runtime refuses the feed (token ids fed as
    token_type_ids: seen failing) or the answers change; bert-tiny's random weights give the same
    answers with attention_mask and token_type_ids swapped (seen passing), a blind spot only a
    trained model closes (android_demo/README.md, checks on a real phone)."""
    dev = AdbDevice(phone.serial, AdbOptions(via="app"))
    assert dev.available("onnx") == (True, "")
    result = dev.run_worker(spec(onnx_bundle, items, runtime="onnx", model_path=str(onnx_bundle / "model.onnx")),
                            timeout_s=120)
    assert not result.error, result
    rec = result.record
    assert rec["status"] == "ok" and rec["runtime"] == "onnx" and len(rec["latency_ms"]) == 3, rec
    assert rec["answers_sample"] == [a[:80] for a in host_answers(onnx_bundle, items)]
    assert rec["versions"]["onnxruntime-python"] == "1.32.0"  # the Python package standing in: the pinned release
    assert "onnxruntime-android" not in rec["versions"] and "not the Android AAR" in rec["versions"]["model_runtime"]
    assert rec["threads_effective"] == 1 and "ONNX Runtime" in rec["notes"]["threads_effective"]
    assert rec["model_file_bytes"] == (onnx_bundle / "model.onnx").stat().st_size  # model.onnx was pushed and read
    dev.close()
    assert not phone.path("/data/local/tmp/pocketbert").exists()
    # ExecuTorch's own tools run .pte files only: the runtime record says which ways ONNX Runtime runs
    ok, why = AdbDevice(phone.serial, AdbOptions(via="minibench")).available("onnx")
    assert not ok and why == "does not run with via=minibench (it runs with via=app)"


@pytest.mark.heavy
@needs_adb
def test_bench_device_adb_times_executorch_and_onnx_like_the_desktop(phone, kotlin_build, bundle, onnx_bundle, tmp_path):
    """One `pocketbert bench --device adb://` run over an ExecuTorch and an ONNX bundle of the same
    model: a record for each runtime, each with the answers `pocketbert bench` finds on this
    computer with the same runtime (the phone's Kotlin decoding and engine, the desktop's Python)."""
    from bench.records import load_records
    from pocketbert.cli import main

    base = ["bench", "--bundle", str(bundle), str(onnx_bundle), "--runtime", "executorch", "onnx",
            "--precision", "fp32", "--shape", "dynamic", "--seq-len", str(SEQ), "--threads", "1", "--warmup", "1",
            "--limit", "4", "--out", str(tmp_path), "--quiet"]
    assert main([*base, "--device", f"adb://{phone.serial}", "--run-id", "phone"]) == 0
    assert main([*base, "--run-id", "desk"]) == 0
    phone_recs = {r.runtime: r.to_dict() for r in load_records([tmp_path / "phone"])}
    desk = {r.runtime: r.to_dict() for r in load_records([tmp_path / "desk"])}
    assert set(phone_recs) == set(desk) == {"executorch", "onnx"}
    for runtime, rec in phone_recs.items():
        assert rec["status"] == "ok" and rec["machine"]["model"] == "Fake Pixel", rec.get("reason")
        assert rec["versions"]["app"] == "qa-core on the JVM (fake phone)"  # the app's Kotlin ran
        assert len(rec["latency_ms"]) == 4 and rec["stats"]["latency_ms"]["count"] == 4
        assert rec["answers_sample"] == desk[runtime]["answers_sample"], runtime
    assert "## adb://" in (tmp_path / "phone" / "report.md").read_text()
    assert not phone.path("/data/local/tmp/pocketbert").exists()


@needs_adb
def test_farm_game_loop_record_is_ingested_by_report(phone, kotlin_build, bundle, tmp_path):
    """Firebase Test Lab's game loop on the fake phone runs the app's farm path (FarmLaunch, as
    GameLoopActivity and the instrumentation test call it); the record it writes where FTL pulls
    from (--directories-to-pull), laid out as FTL's results, is what `pocketbert report` ingests."""
    shutil.copytree(bundle, phone.path(f"/data/data/{APP_PKG}/files/bundles/bert-tiny"))  # as Bundles.extract leaves it
    subprocess.run(["adb", "-s", phone.serial, "shell", "am", "start", "-W", "-a", "com.google.intent.action.TEST_LOOP",
                    "-n", f"{APP_PKG}/.GameLoopActivity"], check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 120
    while APP_PKG in phone.running and time.monotonic() < deadline:
        time.sleep(0.2)
    remote = f"{APP_EXTERNAL}/pocketbert/record.json"
    pulled = tmp_path / "firebase" / "2026-12-03_11-00-00.000_abcd" / "fakephone-34-en-portrait" / "artifacts" / remote[1:]
    pulled.parent.mkdir(parents=True)
    subprocess.run(["adb", "-s", phone.serial, "pull", remote, str(pulled)], check=True, capture_output=True, timeout=60)
    rec = json.loads(pulled.read_text())
    assert rec["status"] == "ok", rec.get("reason")
    assert rec["model"] == "bert-tiny" and rec["bundle"] == "bert-tiny" and rec["workload"] == "builtin"
    assert rec["versions"]["app"] == "qa-core on the JVM (fake phone)" and rec["threads_effective"] == 4  # 8 cpus / 2
    from pocketbert.cli import main

    assert main(["report", "--farm", str(tmp_path / "firebase"), "--out", str(tmp_path / "merged")]) == 0
    report = (tmp_path / "merged" / "report.md").read_text()
    assert "## firebase:fakephone" in report


@needs_adb
def test_throttling_during_a_run_is_a_warning(phone, kotlin_build, bundle, items):
    def hot_app(dev, extras):
        dev.set_max_freq(7, 2000000)
        dev.set_temperature(78.0)
        run_demo_benchmark(dev, extras)

    phone.demo_app = hot_app
    result = AdbDevice(phone.serial).run_worker(spec(bundle, items), timeout_s=120)
    warnings = result.device_state["warnings"]
    assert any("cpu7 max frequency fell from 3200 to 2000 MHz" in w for w in warnings)
    assert any("hot: SoC at 80" in w for w in warnings)
    assert "throttled" in result.record["reason"]


@needs_adb
def test_timeout_stops_the_app(phone, bundle, items):
    phone.demo_app = lambda dev, extras: time.sleep(30)  # never writes a result
    result = AdbDevice(phone.serial).run_worker(spec(bundle, items), timeout_s=2)
    assert "timed out after 2 s" in result.error
    assert phone.log[-1].startswith(f"am force-stop {APP_PKG}") or any(
        c.startswith(f"am force-stop {APP_PKG}") for c in phone.log[-4:])


@needs_adb
def test_disconnect_mid_run_is_a_clear_error(phone, kotlin_build, bundle, items):
    dev = AdbDevice(phone.serial)
    first = dev.run_worker(spec(bundle, items), timeout_s=120)
    assert not first.error  # taken before the phone went away, and kept by the caller
    phone.drop_on = "run-as org.pocketbert.demo cat"  # the cable is pulled while the app runs
    second = dev.run_worker(spec(bundle, items, shape="fixed"), timeout_s=120)
    assert "disconnected" in second.error and "\n" not in second.error
    asked = len(phone.log)
    third = dev.run_worker(spec(bundle, items), timeout_s=120)  # later runs fail at once, same reason
    assert "disconnected" in third.error
    assert len(phone.log) == asked  # without asking the gone device anything (no wait on a timeout)
    dev.close()  # no hang on a gone device


@needs_adb
def test_apps_kept_out_of_data_local_tmp_get_a_copy_in_their_files(phone, kotlin_build, bundle, items):
    phone.app_reads_tmp = False  # SELinux on some phones: the app finds no bundle there
    dev = AdbDevice(phone.serial)
    for shape in ("dynamic", "fixed"):  # the second run goes to the copy directly
        result = dev.run_worker(spec(bundle, items, shape=shape), timeout_s=120)
        assert not result.error, result
    launches = [c for c in phone.log if c.startswith("am start")]
    assert len(launches) == 3 and "--es bundle in/bundles/" in launches[1] and "in/bundles/" in launches[2]
    assert phone.path(f"/data/data/{APP_PKG}/files/in/bundles").is_dir()
    dev.close()
    assert not phone.path(f"/data/data/{APP_PKG}/files/in").exists()


@needs_adb
def test_a_release_build_of_the_app_is_a_clear_error(phone, bundle, items):
    phone.debuggable.discard(APP_PKG)  # run-as refuses: the results cannot be read
    result = AdbDevice(phone.serial).run_worker(spec(bundle, items), timeout_s=60)
    assert "package not debuggable" in result.error and "debug build" in result.error


@needs_adb
def test_full_disk_is_caught_before_pushing(phone, bundle, items):
    phone.free_kb = 64  # df says 64 KiB
    result = AdbDevice(phone.serial).run_worker(spec(bundle, items), timeout_s=60)
    assert "not enough space on the device" in result.error
    assert not list(phone.path("/data/local/tmp").rglob("*.pte"))


@needs_adb
def test_push_failing_on_a_full_disk_leaves_nothing(phone, bundle, items, monkeypatch):
    phone.free_kb = 200  # the .pte (~700 KB) does not fit; df is not trusted here
    monkeypatch.setattr(AdbDevice, "free_bytes", lambda self, path: None)
    result = AdbDevice(phone.serial).run_worker(spec(bundle, items), timeout_s=60)
    assert "device disk full" in result.error and "No space left on device" in result.error
    assert not [p for p in phone.path("/data/local/tmp/pocketbert").rglob("*") if p.is_file()]


# ------------------------------------------------------------------------------- minibench (b)

@needs_adb
def test_minibench_path_end_to_end(phone, bundle, items):
    dev = AdbDevice(phone.serial, AdbOptions(via="minibench", launches=2))
    assert "fixed" in dev.run_worker(spec(bundle, items), timeout_s=60).error  # dynamic: not possible
    result = dev.run_worker(spec(bundle, items, shape="fixed"), timeout_s=120)
    assert not result.error, result
    rec = result.record
    assert rec["workload"] == "minibench-ones" and rec["shape"] == "fixed"
    assert len(rec["latency_ms"]) == 2 and rec["n_model_calls"] == 2 * 3  # 2 launches x num_iter 3
    assert rec["notes"]["minibench_model"] == {"name": "bert_tiny", "backend": "xnnpack", "quantization": "fp32"}
    assert "tokenize_ms" in rec["notes"]["not_measured"]
    launch = next(c for c in phone.log if c.startswith("am start"))
    assert f"-n {MINIBENCH_PKG}/.BenchmarkActivity --es model_dir /data/local/tmp/pocketbert/" in launch
    assert "--ei num_iter 3 --ei num_warm_up_iter 1" in launch
    dev.close()


@needs_adb
def test_missing_app_says_how_to_install(phone, bundle, items):
    phone.apps.discard(MINIBENCH_PKG)
    dev = AdbDevice(phone.serial, AdbOptions(via="minibench"))
    ok, why = dev.available("executorch")
    assert not ok and "extension/benchmark/android" in why


MINIBENCH_JSON = json.dumps([  # BenchmarkMetric as Gson writes it (executorch minibench ModelRunner)
    {"benchmarkModel": {"name": "distilbert", "backend": "xnnpack", "quantization": "int8"},
     "metric": m, "actualValue": v, "targetValue": 0.0,
     "deviceInfo": {"device": "google", "arch": "Pixel 8", "os": "Android 14", "totalMem": 0, "availMem": 0}}
    for m, v in [("avg_inference_latency(ms)", 21.5), ("trimmean_inference_latency(ms)", 20.9),
                 ("model_load_time(ms)", 143.0), ("load_status", 0.0), ("ram_pss_usage(mb)", 61.2)]])


def test_minibench_results_file_to_record():
    parsed = minibench.parse_results(MINIBENCH_JSON)
    assert parsed["metrics"]["trimmean_inference_latency_ms"] == 20.9
    rec = minibench.launches_to_record([parsed], num_iter=50, warmup=10)
    assert rec["status"] == "ok" and rec["latency_ms"] == [21.5] and rec["load_ms"] == 143.0
    assert rec["runtime_rss_mb"] == 61.2 and rec["n_model_calls"] == 50
    assert rec["notes"]["launches"][0]["trimmean_inference_latency_ms"] == 20.9
    assert {"latency_ms", "tokenize_ms", "first_inference_ms", "peak_rss_mb"} <= set(rec["notes"]["not_measured"])
    failed = json.loads(MINIBENCH_JSON)
    failed[3]["actualValue"] = 34.0  # load_status: ExecuTorch error 0x22
    assert minibench.launches_to_record([minibench.parse_results(json.dumps(failed))], 50, 10)["status"] == "failed"
    with pytest.raises(ValueError, match="not a list"):
        minibench.parse_results('{"metric": 1}')


# ------------------------------------------------------------------------------- a runner binary (c)

RUNNER = '''import sys
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
open(args["model_path"], "rb").read()
print("I 00:00:00.001 executorch:executor_runner.cpp:624] Model loaded in 12.500000 ms.")
n = int(args["num_executions"])
for i in range(n):
    print(f"I 00:00:00.002 executorch:executor_runner.cpp:779] Iteration {i + 1} of {n}: {2.0 + i:f} ms")
print(f"I 00:00:00.003 executorch:executor_runner.cpp:789] Model executed successfully {n} time(s) in 99.0 ms.")
print("threads", args.get("cpu_threads"))
'''


@needs_adb
def test_runner_binary_path(phone, bundle, items, tmp_path):
    runner = tmp_path / "my runner;x"  # a name a shell would split
    runner.write_text(RUNNER)
    dev = AdbDevice(phone.serial, AdbOptions(via="runner", runner=str(runner)))
    result = dev.run_worker(spec(bundle, items, shape="fixed", warmup=1), timeout_s=60)
    assert not result.error, result
    rec = result.record
    # 3 items + 1 warm-up + the first inference = 5 executions; the first 2 are not samples
    assert rec["latency_ms"] == [4.0, 5.0, 6.0] and rec["first_inference_ms"] == 2.0 and rec["load_ms"] == 12.5
    assert any("'/data/local/tmp/pocketbert/bundles/" in c and "my runner;x' --model_path=" in c for c in phone.log)
    assert rec["notes"]["runner_output"] == "stdout" and not any(c.startswith("logcat") for c in phone.log)
    dev.close()


LOGCAT_RUNNER = RUNNER.replace("import sys", "import os, sys\n"
                               "print = lambda *a: open(os.environ['FAKE_LOGCAT'], 'a').write(' '.join(map(str, a)) + '\\n')")


@needs_adb
def test_runner_that_logs_only_to_logcat(phone, bundle, items, tmp_path):
    """A runner built with ExecuTorch's android preset prints nothing: its timings are in logcat."""
    runner = tmp_path / "executor_runner"
    runner.write_text(LOGCAT_RUNNER)
    phone.logcat.append((0.0, "I", "ExecuTorch", "Iteration 1 of 1: 99.000000 ms"))  # an older run: not read
    dev = AdbDevice(phone.serial, AdbOptions(via="runner", runner=str(runner)))
    result = dev.run_worker(spec(bundle, items, shape="fixed", warmup=1), timeout_s=60)
    assert not result.error, result
    rec = result.record
    assert rec["latency_ms"] == [4.0, 5.0, 6.0] and rec["load_ms"] == 12.5
    assert rec["notes"]["runner_output"] == "logcat (tag ExecuTorch)"
    assert any(c.startswith("logcat -d -v raw -s ExecuTorch -T ") for c in phone.log)
    dev.close()


def test_runner_output_with_only_a_total():
    rec = parse_runner_output("Model executed successfully 10 time(s) in 50.0 ms.", warmup=1, seq_len=32)
    assert rec["latency_ms"] == [5.0] and "only its total" in rec["notes"]["not_measured"]["latency_ms"]
    with pytest.raises(AdbError, match="no timing lines"):
        parse_runner_output("Segmentation fault", warmup=1, seq_len=32)


# ------------------------------------------------------------------------------- options, state

def test_device_url_options(tmp_path):
    assert parse_url("adb://R5CT1234") == ("R5CT1234", AdbOptions())
    serial, opts = parse_url("adb://192.168.1.7:5555?via=minibench&launches=3")
    assert serial == "192.168.1.7:5555" and opts.via == "minibench" and opts.launches == 3
    runner = tmp_path / "executor_runner"
    runner.write_text("")
    assert parse_url(f"adb://X?via=runner&runner={runner}")[1].runner == str(runner)
    for bad, msg in [("adb://", "expected adb://SERIAL"), ("adb://X?via=usb", "via='usb'"),
                     ("adb://X?via=runner", "needs runner=PATH"), ("adb://X?launches=0", "at least 1"),
                     ("adb://X?colour=red", "unknown option"), (f"adb://X?runner={tmp_path}/nope", "not found")]:
        with pytest.raises(UsageError, match=msg):
            parse_url(bad)


def test_throttle_warnings():
    cool = {"cores": {"4": {"cap_mhz": 2800}}, "soc_temperature_c": 35.0}
    assert throttle_warnings(cool, cool) == []
    capped = {"cores": {"4": {"cap_mhz": 1900}}, "soc_temperature_c": 52.0}
    assert throttle_warnings(cool, capped) == [
        "throttled: cpu4 max frequency fell from 2800 to 1900 MHz during the run",
        "warming: SoC temperature rose 17 °C during the run (35 -> 52 °C)"]


# ------------------------------------------------------------------------------- through the harness

@pytest.mark.heavy
@needs_adb
def test_bench_on_a_phone_keeps_records_on_disconnect_and_merges(phone, kotlin_build, bundle, tmp_path):
    from bench.devices import open_device
    from bench.harness import BenchConfig, run_bench
    from bench.records import load_records, record_name
    from bench.report import render_report

    cfg = BenchConfig(bundles=[bundle], runtimes=["executorch"], shapes=["dynamic", "fixed"], seq_len=SEQ,
                      threads=1, warmup=1, limit=3, out=tmp_path, run_id="desk", quiet=True, report=False)
    dev = open_device(f"adb://{phone.serial}")
    phone.drop_on, phone.drop_skip = "am start", 1  # the cable comes out at the phone's second run
    try:
        out = run_bench(cfg, device=dev, log=lambda *a: None)
    finally:
        dev.close()
    recs = {r.shape: r for r in load_records([out])}
    ok, lost = recs["dynamic"], recs["fixed"]
    assert ok.status == "ok" and len(ok.latency_ms) == 3 and ok.stats.latency_ms.count == 3
    assert ok.machine.device == dev.name and ok.machine.model_extra["model"] == "Fake Pixel" and ok.threads == 1
    assert ok.notes["device_state"]["before"]["battery"]["level_pct"] == 87
    assert ok.versions["executorch-python"] == "1.4.1" and ok.flops_total > 0
    assert lost.status == "failed" and "disconnected" in lost.reason
    # a laptop record of the same run lands next to the phone's (file names carry the device) and
    # the report shows both machines
    laptop = ok.replace(machine=ok.machine.model_copy(update={"device": "local", "hostname": "laptop"}))
    assert record_name(laptop) != record_name(ok)
    (out / record_name(laptop)).write_text(laptop.to_json())
    render_report([out], out)
    report = (out / "report.md").read_text()
    assert f"## {dev.name}:fakephone" in report and "## local:laptop" in report


@pytest.mark.heavy
@needs_adb
def test_pocketbert_bench_device_adb(phone, bundle, tmp_path, capsys):
    from pocketbert.cli import main

    base = ["bench", "--bundle", str(bundle), "--runtime", "executorch", "--precision", "fp32", "--seq-len",
            str(SEQ), "--threads", "1", "--warmup", "1", "--limit", "2", "--out", str(tmp_path), "--quiet"]
    assert main([*base, "--device", f"adb://{phone.serial}?via=minibench", "--shape", "fixed",
                 "--run-id", "mb"]) == 0
    rec = json.loads(next((tmp_path / "mb").glob("*minibench-ones-fixed@127.0.0.1_*.json")).read_text())
    assert rec["status"] == "ok" and rec["machine"]["soc"] == "Fakecomm FK8550"
    assert "## adb://" in (tmp_path / "mb" / "report.md").read_text()
    assert not phone.path("/data/local/tmp/pocketbert").exists()  # closed: pushed files removed
    assert main([*base, "--device", "adb://X?via=usb"]) == 2
    assert "via='usb' is not one of app, minibench, runner" in capsys.readouterr().err
    assert main([*base, "--device", "adb://NOSUCHPHONE"]) == 2  # one line, no traceback
    err = capsys.readouterr().err
    assert "adb://NOSUCHPHONE is not reachable" in err and "adb devices" in err and len(err.splitlines()) == 1


def test_an_app_result_that_is_no_record_is_one_line_naming_the_phone(monkeypatch):
    """The app's result file is read through the Record model (no hand-written schema check): a
    record with a bad field is one line naming the phone and the field."""
    from types import SimpleNamespace

    from bench.devices import phone_runs

    monkeypatch.setattr(phone_runs, "am_start", lambda *a: None)
    record = {"schema": "pocketbert-bench/1", "run_id": "r", "model": "m", "runtime": "executorch",
              "precision": "int8", "workload": "squad", "shape": "dynamic", "status": "ok", "latency_ms": ["fast"]}
    monkeypatch.setattr(phone_runs, "wait_file", lambda *a: json.dumps(record))
    dev = SimpleNamespace(name="phone-1", gone=True, stop_quietly=lambda: None, shell=lambda *a, **k: (0, ""))
    spec = SimpleNamespace(warmup=0, threads=1, shape="dynamic", seq_len=64, label="t")
    with pytest.raises(phone_runs.AdbError) as e:
        phone_runs.launch_app(dev, "/b", "/w.json", spec, deadline=0.0, timeout_s=1.0)
    assert "phone-1" in str(e.value) and "latency_ms" in str(e.value) and "\n" not in str(e.value)
