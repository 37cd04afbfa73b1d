"""The Android demo's Kotlin, compiled once per test session (tests/kotlin_build.py, the
`kotlin_build` fixture in tests/conftest.py): qa-core (WordPiece, windows, span search, manifest,
benchmark record, the benchmark launcher) run under JUnit 5 against the golden vectors, and EVERY
Kotlin file of the app layer (android_demo/app) type-checked against API stubs written to match
the pinned versions (tests/android_stubs/android-<compileSdk>, executorch-android-<version>).
Skipped, with the reason, where kotlinc (npm kotlin-compiler), java or JUnit 5's console launcher
(Debian junit5) is missing: `bash scripts/install_system_tools.sh` installs them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests import kotlin_build as kb

ROOT = kb.ROOT
CORE = kb.CORE
GOLDEN = CORE / "src/test/resources/golden.json"
REAL_VOCAB = Path(os.environ.get("POCKETBERT_ANDROID_VOCAB", ROOT.parent / "shared" / "data" / "vocab" / "vocab.txt"))
JAVA_DIR = kb.JAVA_DIR
CONSOLE = kb.CONSOLE
# golden cases are one JUnit test each; fewer means cases went missing (the real-vocab ones need ../shared)
MIN_TESTS = {True: 150, False: 95}


def run_junit(build: kb.KotlinBuild, extra_props: dict[str, str] | None = None,
              select: list[str] | None = None) -> tuple[int, str, dict[str, int]]:
    props = {"pocketbert.golden": str(GOLDEN), **(extra_props or {})}
    if REAL_VOCAB.is_file():
        props.setdefault("pocketbert.vocab", str(REAL_VOCAB))
    cmd = ["java", *[f"-D{k}={v}" for k, v in props.items()], "-jar", str(JAVA_DIR / CONSOLE),
           "-cp", build.classpath(),
           *([f"--select-class=org.pocketbert.qa.{c}" for c in select] if select else ["--scan-classpath", "--include-engine=junit-jupiter"]),
           "--disable-banner",
           "--disable-ansi-colors", "--details=tree"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    counts = {k: int(v) for v, k in re.findall(r"\[\s*(\d+) tests (found|successful|failed|skipped|aborted)", out)}
    return proc.returncode, out, counts


def test_qa_core_passes_its_junit_tests_against_the_golden_vectors(kotlin_build, tmp_path):
    rec_ok, rec_failed = tmp_path / "ok.json", tmp_path / "failed.json"
    rc, out, counts = run_junit(kotlin_build, {"pocketbert.record_out": str(rec_ok), "pocketbert.failed_record_out": str(rec_failed)})
    failures = [line for line in out.splitlines() if "✘" in line][:20]
    assert rc == 0 and counts.get("failed", 0) == 0, "JUnit failures:\n" + "\n".join(failures) + "\n" + out[-3000:]
    assert counts.get("successful", 0) >= MIN_TESTS[REAL_VOCAB.is_file()], counts
    # the records the Kotlin benchmark writes are records pocketbert reads and derives statistics from
    from bench.records import derive
    from pocketbert.contracts import Record

    ok = Record.read(rec_ok)
    assert ok.status == "ok" and ok.runtime == "executorch" and ok.model == "bert-tiny"
    assert len(ok.latency_ms) == len(ok.tokenize_ms) == len(ok.item_ids) == ok.n_items == 6
    stats = derive(ok.to_dict())["stats"]
    assert stats["end_to_end_ms"]["mean"] > 0
    failed = Record.read(rec_failed)
    assert failed.status == "failed" and "workload" in failed.reason
    print(f"\nqa-core JUnit: {counts.get('successful')} passed, {counts.get('skipped', 0)} skipped, "
          f"{counts.get('aborted', 0)} aborted (real vocab {'given' if REAL_VOCAB.is_file() else 'absent'})")


def test_junit_fails_on_a_wrong_golden_file(kotlin_build, tmp_path):
    """The JUnit side can fail: a golden file with one token id changed must not pass."""
    import json

    g = json.loads(GOLDEN.read_text(encoding="utf-8"))
    g["preset"]["tokenize"][2]["ids"][0] += 1  # "Hello, world!"
    g["preset"]["windows"][20]["windows"][0]["offsets"][3][1] += 1
    bad = tmp_path / "golden.json"
    bad.write_text(json.dumps(g, ensure_ascii=False), encoding="utf-8")
    rc, out, counts = run_junit(kotlin_build, {"pocketbert.golden": str(bad)}, select=["GoldenTest"])
    assert rc != 0 and counts.get("failed", 0) >= 2, counts
    assert "preset tokenize #2" in out and "preset windows #20" in out


def _declared_classes(kt: Path) -> list[str]:
    """JVM class names a Kotlin file must produce: its top-level classes/objects, else FileNameKt."""
    text = kt.read_text()
    pkg = re.search(r"^package ([\w.]+)", text, flags=re.M).group(1).replace(".", "/")
    names = re.findall(r"^(?:[a-z]+ )*(?:class|object|interface) (\w+)", text, flags=re.M)
    return [f"{pkg}/{n}.class" for n in names] or [f"{pkg}/{kt.stem}Kt.class"]


def test_every_app_kotlin_file_compiles_against_the_pinned_api_stubs(kotlin_build):
    """The whole app layer (Activities, ExecuTorchModel, Bundles, DeviceInfo, ...) went through kotlinc
    against the stubs of the pinned Android API level and ExecuTorch release: its classes are in the jar."""
    files = kotlin_build.app_files
    assert len(files) >= 10 and {f.name for f in files} >= {"MainActivity.kt", "BenchmarkActivity.kt", "ExecuTorchModel.kt",
                                                             "OnnxRuntimeModel.kt", "AppEngines.kt", "GameLoopActivity.kt",
                                                             "FarmRun.kt", "FarmBenchmarkTest.kt"}
    with zipfile.ZipFile(kotlin_build.jar) as z:
        names = set(z.namelist())
    missing = [c for f in files for c in _declared_classes(f) if c not in names]
    assert not missing, f"app classes not compiled: {missing}"
    assert not [n for n in names if n.startswith(("android/", "ai/onnxruntime/"))], "the Java stubs must stay out of the jar"
    with zipfile.ZipFile(kotlin_build.fake_ort) as z:  # the fake phone's ai.onnxruntime, a jar of its own
        assert {"ai/onnxruntime/OrtSession.class", "ai/onnxruntime/OnnxTensor.class"} <= set(z.namelist())
    print(f"\napp layer: {len(files)} Kotlin files compiled against "
          + ", ".join(p.name for p in kotlin_build.stub_dirs.values()))


def test_the_app_calling_an_api_the_stubs_do_not_declare_does_not_compile(kotlin_build, tmp_path):
    """The check can fail: the app's files with the old Java-shaped ExecuTorch calls (the issue's
    `getDataAsFloatArray()`, `loadMethod` returning an Int), an Activity call the stubs lack and an
    ONNX Runtime tensor factory that does not exist."""
    app = tmp_path / "app"
    shutil.copytree(kb.APP / "src/main/kotlin", app)
    model = next(app.rglob("ExecuTorchModel.kt"))
    text = model.read_text()
    assert ".dataAsFloatArray" in text and 'module.loadMethod("forward")' in text
    model.write_text(text.replace(".dataAsFloatArray", ".getDataAsFloatArray()")
                     .replace('module.loadMethod("forward")', 'check(module.loadMethod("forward") == 0)'))
    main = next(app.rglob("MainActivity.kt"))
    main.write_text(main.read_text().replace("setContentView(ScrollView", "requestPermissions(arrayOf(\"x\"), 1)\n        setContentView(ScrollView"))
    # ONNX Runtime has no createTensor(env, long[], shape): ids go in as a LongBuffer
    ort = next(app.rglob("OnnxRuntimeModel.kt"))
    text = ort.read_text()
    assert "LongBuffer.wrap(inputs.getValue(name))" in text
    ort.write_text(text.replace("LongBuffer.wrap(inputs.getValue(name))", "inputs.getValue(name)"))
    gen = tmp_path / "gen/org/pocketbert/demo"
    gen.mkdir(parents=True)
    (gen / "BuildConfig.java").write_text(kb.build_config_source())
    proc = kb.compile_against(kotlin_build, [app, tmp_path / "gen"], tmp_path / "out.jar")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "unresolved reference 'getDataAsFloatArray'" in out
    assert "unresolved reference 'requestPermissions'" in out
    assert re.search(r"OnnxRuntimeModel.kt:\d+:\d+: error: argument type mismatch: actual type is 'LongArray', "
                     r"but 'LongBuffer!' was expected", out), out
    assert re.search(r"ExecuTorchModel.kt.*\n.*loadMethod|operator '==' cannot be applied to 'Unit' and 'Int'", out), out


def test_stubs_follow_the_catalog_pins():
    """A version bump in libs.versions.toml without stubs written for the new version fails loudly."""
    dirs = kb.pinned_stub_dirs()
    assert {d.name for d in dirs.values()} == {"android-35", "executorch-android-1.4.1", "androidx-test-ext-junit-1.2.1",
                                               "onnxruntime-android-1.32.0"}
    pins = {"compileSdk": "35", "executorch": "1.4.1", "androidx-test-ext-junit": "1.2.1", "onnxruntime": "1.32.0"}
    with pytest.raises(FileNotFoundError, match="executorch-android-1.5.0 is missing"):
        kb.pinned_stub_dirs({**pins, "executorch": "1.5.0"})
    with pytest.raises(FileNotFoundError, match="onnxruntime-android-1.33.0 is missing"):
        kb.pinned_stub_dirs({**pins, "onnxruntime": "1.33.0"})


def test_qa_core_is_plain_kotlin():
    """qa-core runs on the JVM (JUnit, the fake phone): no Android or ExecuTorch import."""
    bad = [f"{p.name}: {m}" for p in (CORE / "src").rglob("*.kt")
           for m in re.findall(r"^import ((?:android|androidx|org\.pytorch|org\.json|ai\.onnxruntime)\.[\w.]+)", p.read_text(), flags=re.M)]
    assert not bad, bad
