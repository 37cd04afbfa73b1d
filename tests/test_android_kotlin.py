"""The Android demo's plain-Kotlin module (android_demo/qa-core: WordPiece, windows, span search,
manifest, benchmark record) compiled with kotlinc and run under JUnit 5 on the JVM, against the
golden vectors. Skipped, with the reason, where kotlinc (npm kotlin-compiler) or JUnit 5's console
launcher (Debian junit5) is missing: `bash scripts/install_system_tools.sh` installs both.

The compiled jar is cached by the hash of the sources (kotlinc takes about a minute to start and
compile); set POCKETBERT_KOTLIN_CACHE to move the cache, or delete it to force a rebuild."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "android_demo" / "qa-core"
GOLDEN = CORE / "src/test/resources/golden.json"
REAL_VOCAB = Path(os.environ.get("POCKETBERT_ANDROID_VOCAB", ROOT.parent / "shared" / "data" / "vocab" / "vocab.txt"))
JAVA_DIR = Path("/usr/share/java")
JUNIT_API = ("junit-jupiter-api.jar", "apiguardian-api.jar", "opentest4j.jar", "junit-platform-commons.jar")
CONSOLE = "junit-platform-console-standalone.jar"
# golden cases are one JUnit test each; fewer means cases went missing (the real-vocab ones need ../shared)
MIN_TESTS = {True: 150, False: 95}


def find_kotlinc() -> Path | None:
    """kotlinc from PATH, $KOTLINC, or the npm package (which puts only kotlinc-js on PATH)."""
    for cand in (os.environ.get("KOTLINC"), shutil.which("kotlinc")):
        if cand and Path(cand).is_file():
            return Path(cand).resolve()
    roots = [Path("/usr/lib/node_modules"), Path("/usr/local/lib/node_modules")]
    if shutil.which("npm"):
        try:
            roots.insert(0, Path(subprocess.run(["npm", "root", "-g"], capture_output=True, text=True,
                                                timeout=30).stdout.strip()))
        except (OSError, subprocess.TimeoutExpired):
            pass
    for r in roots:
        p = r / "kotlin-compiler" / "bin" / "kotlinc"
        if p.is_file():
            return p.resolve()
    return None


def _missing() -> str | None:
    if not shutil.which("java"):
        return "no java (apt install default-jdk-headless)"
    if find_kotlinc() is None:
        return "no kotlinc (npm install -g kotlin-compiler)"
    lacking = [j for j in (*JUNIT_API, CONSOLE) if not (JAVA_DIR / j).is_file()]
    if lacking:
        return f"no JUnit 5 jars ({', '.join(lacking)}) under {JAVA_DIR} (apt install junit5)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _sources() -> list[Path]:
    return sorted(p for p in (CORE / "src").rglob("*.kt"))


def _compiled_jar(kotlinc: Path) -> Path:
    """main + test sources compiled once per source hash (kotlinc is slow to start)."""
    h = hashlib.sha256(str(kotlinc).encode())
    for p in _sources():
        h.update(str(p.relative_to(CORE)).encode() + b"\0" + p.read_bytes())
    cache = Path(os.environ.get("POCKETBERT_KOTLIN_CACHE", Path.home() / ".cache" / "pocketbert" / "kotlin"))
    jar = cache / f"qa-core-{h.hexdigest()[:16]}.jar"
    if jar.is_file():
        return jar
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        out = Path(tmp) / "qa-core.jar"
        cp = os.pathsep.join(str(JAVA_DIR / j) for j in JUNIT_API)
        proc = subprocess.run([str(kotlinc), "-J-XX:TieredStopAtLevel=1", "-nowarn", "-cp", cp, "-d", str(out),
                               str(CORE / "src/main/kotlin"), str(CORE / "src/test/kotlin")],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"kotlinc failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        os.replace(out, jar)
    for old in cache.glob("qa-core-*.jar"):  # builds of older sources
        if old != jar:
            old.unlink(missing_ok=True)
    return jar


def run_junit(extra_props: dict[str, str] | None = None, select: list[str] | None = None) -> tuple[int, str, dict[str, int]]:
    kotlinc = find_kotlinc()
    jar = _compiled_jar(kotlinc)
    stdlib = kotlinc.parent.parent / "lib" / "kotlin-stdlib.jar"
    props = {"pocketbert.golden": str(GOLDEN), **(extra_props or {})}
    if REAL_VOCAB.is_file():
        props.setdefault("pocketbert.vocab", str(REAL_VOCAB))
    cmd = ["java", *[f"-D{k}={v}" for k, v in props.items()], "-jar", str(JAVA_DIR / CONSOLE),
           "-cp", os.pathsep.join([str(jar), str(stdlib)]),
           *([f"--select-class=org.pocketbert.qa.{c}" for c in select] if select else ["--scan-classpath"]),
           "--disable-banner",
           "--disable-ansi-colors", "--details=tree"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    counts = {k: int(v) for v, k in re.findall(r"\[\s*(\d+) tests (found|successful|failed|skipped|aborted)", out)}
    return proc.returncode, out, counts


def test_qa_core_passes_its_junit_tests_against_the_golden_vectors(tmp_path):
    rec_ok, rec_failed = tmp_path / "ok.json", tmp_path / "failed.json"
    rc, out, counts = run_junit({"pocketbert.record_out": str(rec_ok), "pocketbert.failed_record_out": str(rec_failed)})
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


def test_junit_fails_on_a_wrong_golden_file(tmp_path):
    """The JUnit side can fail: a golden file with one token id changed must not pass."""
    import json

    g = json.loads(GOLDEN.read_text(encoding="utf-8"))
    g["preset"]["tokenize"][2]["ids"][0] += 1  # "Hello, world!"
    g["preset"]["windows"][20]["windows"][0]["offsets"][3][1] += 1
    bad = tmp_path / "golden.json"
    bad.write_text(json.dumps(g, ensure_ascii=False), encoding="utf-8")
    rc, out, counts = run_junit({"pocketbert.golden": str(bad)}, select=["GoldenTest"])
    assert rc != 0 and counts.get("failed", 0) >= 2, counts
    assert "preset tokenize #2" in out and "preset windows #20" in out


@pytest.mark.slow
def test_app_layer_type_checks_against_api_stubs(tmp_path):
    """android_demo/app compiles against qa-core and stand-ins of the Android/ExecuTorch classes it
    calls (tests/android_stubs): catches qa-core API changes that would break the app. Not a
    substitute for a Gradle build (no Android SDK here)."""
    if not shutil.which("javac"):
        pytest.skip("no javac (apt install default-jdk-headless)")
    kotlinc = find_kotlinc()
    stubs = ROOT / "tests" / "android_stubs"
    classes = tmp_path / "stubs"
    proc = subprocess.run(["javac", "-d", str(classes), *map(str, stubs.rglob("*.java"))],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jar = _compiled_jar(kotlinc)
    proc = subprocess.run([str(kotlinc), "-J-XX:TieredStopAtLevel=1", "-nowarn", "-cp",
                           os.pathsep.join([str(classes), str(jar)]), "-d", str(tmp_path / "app.jar"),
                           str(ROOT / "android_demo/app/src/main/kotlin")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"the app layer does not compile:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
