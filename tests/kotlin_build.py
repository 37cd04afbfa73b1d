"""One kotlinc call per test session for all of the Android demo's Kotlin: qa-core (main + JUnit
tests + the fake phone's JVM main), the app layer (android_demo/app, every .kt file), and the API
stubs it compiles against (tests/android_stubs/<name>-<version>, the versions taken from
android_demo/gradle/libs.versions.toml, so a version bump without matching stubs fails loudly).

Java stubs (the Android framework: android-<compileSdk>; ONNX Runtime's Java API:
onnxruntime-android-<version>) are given to kotlinc as sources: it resolves against them (so the
app is type-checked against them) without compiling them, and the jar holds no android.* or
ai.onnxruntime.* classes. The fake phone's ai.onnxruntime (tests/fake_ort: the same signatures,
sessions run by onnxruntime's Python package over the fake adbd's model bridge) is compiled by
javac after kotlinc into a jar of its own, on the fake phone's classpath only. The jar is cached by the hash of every input (kotlinc takes ~40 s
on a busy 2-core machine); set POCKETBERT_KOTLIN_CACHE to move the cache.

What this cannot see: qa-core and the app compile as one Kotlin module here (two in Gradle), so an
`internal` qa-core name used by the app would pass here and fail in Gradle."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "android_demo"
CORE = DEMO / "qa-core"
APP = DEMO / "app"
STUBS = ROOT / "tests" / "android_stubs"
FAKE_ORT = ROOT / "tests" / "fake_ort"  # the fake phone's ai.onnxruntime (javac, after kotlinc; never in the app)
JAVA_DIR = Path("/usr/share/java")
JUNIT_API = ("junit-jupiter-api.jar", "apiguardian-api.jar", "opentest4j.jar", "junit-platform-commons.jar")
CONSOLE = "junit-platform-console-standalone.jar"
KOTLINC_FLAGS = ["-J-XX:TieredStopAtLevel=1", "-nowarn"]


def find_kotlinc() -> Path | None:
    """kotlinc from $KOTLINC, PATH, or the npm package (which puts only kotlinc-js on PATH)."""
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


def missing_tools() -> str | None:
    if not shutil.which("java"):
        return "no java (apt install default-jdk-headless)"
    if find_kotlinc() is None:
        return "no kotlinc (npm install -g kotlin-compiler)"
    lacking = [j for j in (*JUNIT_API, CONSOLE) if not (JAVA_DIR / j).is_file()]
    if lacking:
        return f"no JUnit 5 jars ({', '.join(lacking)}) under {JAVA_DIR} (apt install junit5)"
    return None


def pinned_stub_dirs(versions: dict | None = None) -> dict[str, Path]:
    """The stub folders the catalog's pins name: {what: folder}; a missing one is an error."""
    v = versions or tomllib.loads((DEMO / "gradle/libs.versions.toml").read_text())["versions"]
    dirs = {"android framework": STUBS / f"android-{v['compileSdk']}",
            "executorch-android": STUBS / f"executorch-android-{v['executorch']}",
            "onnxruntime-android": STUBS / f"onnxruntime-android-{v['onnxruntime']}",
            "androidx-test-ext-junit": STUBS / f"androidx-test-ext-junit-{v['androidx-test-ext-junit']}"}
    for what, d in dirs.items():
        if not d.is_dir():
            raise FileNotFoundError(f"no API stubs for the pinned {what}: {d.relative_to(ROOT)} is missing "
                                    "(write them from that version's real API when bumping libs.versions.toml)")
    return dirs


def build_config_source() -> str:
    """org.pocketbert.demo.BuildConfig as AGP generates it for a debug build (app/build.gradle.kts's fields)."""
    v = tomllib.loads((DEMO / "gradle/libs.versions.toml").read_text())["versions"]
    return ("package org.pocketbert.demo;\n\n/** What AGP generates for a debug build (tests/kotlin_build.py). */\n"
            "public final class BuildConfig {\n  public static final boolean DEBUG = true;\n"
            "  public static final String APPLICATION_ID = \"org.pocketbert.demo\";\n"
            "  public static final String BUILD_TYPE = \"debug\";\n"
            f"  public static final String EXECUTORCH_VERSION = \"{v['executorch']}\";\n"
            f"  public static final String ONNXRUNTIME_VERSION = \"{v['onnxruntime']}\";\n}}\n")


def app_sources() -> list[Path]:
    """Every Kotlin file of the app layer (all source sets)."""
    return sorted((APP / "src").rglob("*.kt"))


def source_roots() -> list[Path]:
    return [CORE / "src/main/kotlin", CORE / "src/test/kotlin", *[d for d in (APP / "src").glob("*/kotlin")],
            *pinned_stub_dirs().values()]


def _inputs() -> list[Path]:
    files = []
    for r in [*source_roots(), FAKE_ORT]:
        files += sorted(p for p in r.rglob("*") if p.suffix in (".kt", ".java"))
    return files


@dataclass
class KotlinBuild:
    jar: Path  # qa-core (main + test), the app layer, the Kotlin stubs
    stdlib: Path
    kotlinc: Path
    app_files: list[Path]
    stub_dirs: dict[str, Path]
    fake_ort: Path  # the fake phone's ai.onnxruntime classes (tests/fake_ort), for FakePhoneMain

    def classpath(self) -> str:
        return os.pathsep.join([str(self.jar), str(self.stdlib), str(self.fake_ort)])


def compile_all(cache: Path | None = None) -> KotlinBuild:
    """The session's one kotlinc call (or the cached jar of the same inputs)."""
    kotlinc = find_kotlinc()
    stub_dirs = pinned_stub_dirs()
    bc = build_config_source()
    h = hashlib.sha256(str(kotlinc).encode() + bc.encode())
    for p in _inputs():
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    cache = cache or Path(os.environ.get("POCKETBERT_KOTLIN_CACHE", Path.home() / ".cache" / "pocketbert" / "kotlin"))
    jar = cache / f"android-demo-{h.hexdigest()[:16]}.jar"
    stdlib = kotlinc.parent.parent / "lib" / "kotlin-stdlib.jar"
    fake_ort = cache / f"fake-ort-{h.hexdigest()[:16]}.jar"
    build = KotlinBuild(jar, stdlib, kotlinc, app_sources(), stub_dirs, fake_ort)
    if jar.is_file() and fake_ort.is_file():
        return build
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        gen = Path(tmp) / "generated/org/pocketbert/demo"
        gen.mkdir(parents=True)
        (gen / "BuildConfig.java").write_text(bc)
        out = Path(tmp) / "out.jar"
        cp = os.pathsep.join(str(JAVA_DIR / j) for j in JUNIT_API)
        proc = subprocess.run([str(kotlinc), *KOTLINC_FLAGS, "-cp", cp, "-d", str(out),
                               *map(str, source_roots()), str(Path(tmp) / "generated")],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise CompileError(proc.stdout + proc.stderr)
        # the fake phone's ai.onnxruntime, against the app's jar (its bridge speaks qa-core's Json)
        classes = Path(tmp) / "fake-ort"
        proc = subprocess.run(["javac", "-nowarn", "--release", "17", "-cp", os.pathsep.join([str(out), str(stdlib)]),
                               "-d", str(classes), *map(str, sorted(FAKE_ORT.rglob("*.java")))],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise CompileError(proc.stdout + proc.stderr)
        ort_jar = Path(tmp) / "fake-ort.jar"
        with zipfile.ZipFile(ort_jar, "w") as z:
            for c in sorted(classes.rglob("*.class")):
                z.write(c, c.relative_to(classes).as_posix())
        os.replace(out, jar)
        os.replace(ort_jar, fake_ort)
    for old in [*cache.glob("android-demo-*.jar"), *cache.glob("fake-ort-*.jar")]:  # builds of older sources
        if old not in (jar, fake_ort):
            old.unlink(missing_ok=True)
    return build


class CompileError(Exception):
    """kotlinc refused the sources (the message is its output)."""


def compile_against(build: KotlinBuild, sources: list[Path], out: Path) -> subprocess.CompletedProcess:
    """kotlinc on `sources` against the session jar and the Java stubs (for negative checks)."""
    return subprocess.run([str(build.kotlinc), *KOTLINC_FLAGS, "-cp", str(build.jar), "-d", str(out),
                           *map(str, sources), str(build.stub_dirs["android framework"]),
                           str(build.stub_dirs["androidx-test-ext-junit"]), str(build.stub_dirs["onnxruntime-android"])],
                          capture_output=True, text=True, timeout=600)
