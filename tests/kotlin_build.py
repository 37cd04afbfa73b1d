"""The Android demo's Kotlin compiled as Gradle compiles it: one module at a time, each against
the jars of the modules it depends on, at the catalog's Kotlin language and API version
(android_demo/gradle/libs.versions.toml: kotlin 2.1.0 -> `-language-version 2.1 -api-version 2.1`)
and JVM target:

  android-35, onnxruntime-android, androidx-test-ext-junit  (javac: the Java API stubs, compile-only
      like android.jar and the AARs' classes; tests/android_stubs/<name>-<version>)
  executorch-android   (kotlinc: the AAR's Kotlin API stubs)
  qa-core              (kotlinc: plain Kotlin)        qa-core-test (its JUnit 5 tests + the fake phone's main)
  app                  (kotlinc: android_demo/app/src/main + debug, against qa-core and the stubs; then
                        javac: the BuildConfig AGP generates)
  app-test             (kotlinc: app/src/test, the JVM tests of the app's plain Kotlin, as Gradle's
                        testDebugUnitTest)     app-android-test (app/src/androidTest, compile only)
  fake-ort             (javac: the fake phone's ai.onnxruntime, tests/fake_ort; never in the app)
  fake-android         (javac: tests/fake_android, a runnable android.* with the stubs' signatures)
  app-activity-test    (kotlinc: tests/android_jvm, the Activities driven on the JVM over fake-android)

So an `internal` qa-core name used by the app fails here as in Gradle. Independent modules compile
two at a time; the jars are cached by the hash of every input (a cold build takes about a minute on
a busy 2-core machine); set POCKETBERT_KOTLIN_CACHE to move the cache."""

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
FAKE_ANDROID = ROOT / "tests" / "fake_android"  # a runnable android.* of the stubs' signatures, for the JVM tests of the Activities
ACTIVITY_TESTS = ROOT / "tests" / "android_jvm"  # those tests (Kotlin, JUnit 5): the Activities driven on the JVM
JAVA_DIR = Path("/usr/share/java")
JUNIT_API = ("junit-jupiter-api.jar", "apiguardian-api.jar", "opentest4j.jar", "junit-platform-commons.jar")
CONSOLE = "junit-platform-console-standalone.jar"
KOTLINC_FLAGS = ["-J-XX:TieredStopAtLevel=1", "-nowarn"]
JVM_RELEASE = tomllib.loads((DEMO / "gradle/libs.versions.toml").read_text())["versions"]["jvmTarget"]


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
    return [CORE / "src/main/kotlin", CORE / "src/test/kotlin", *sorted((APP / "src").glob("*/kotlin")),
            *pinned_stub_dirs().values()]


def _inputs() -> list[Path]:
    files = []
    for r in [*source_roots(), FAKE_ORT, FAKE_ANDROID, ACTIVITY_TESTS]:
        files += sorted(p for p in r.rglob("*") if p.suffix in (".kt", ".java"))
    return files


def pinned_flags(versions: dict | None = None) -> list[str]:
    """kotlinc flags of the catalog's Kotlin (language and API version) and JVM target, as the Gradle build sets them."""
    v = versions or tomllib.loads((DEMO / "gradle/libs.versions.toml").read_text())["versions"]
    lang = ".".join(v["kotlin"].split(".")[:2])
    return [*KOTLINC_FLAGS, "-language-version", lang, "-api-version", lang, "-jvm-target", v["jvmTarget"],
            "-Xsuppress-version-warnings"]


@dataclass
class Module:
    name: str
    tool: str  # kotlinc | javac
    sources: list[Path]
    deps: list[str]  # modules on its compile classpath
    libs: list[Path]  # other jars on it (JUnit)
    friend: str | None = None  # the module whose `internal` names it sees (a test source set's main, as in Gradle)


def modules() -> list[Module]:
    stubs = pinned_stub_dirs()
    junit = [JAVA_DIR / j for j in JUNIT_API]
    src = lambda *parts: [p for p in parts if p.is_dir()]  # noqa: E731
    return [
        Module("android", "javac", [stubs["android framework"]], [], []),
        Module("onnxruntime-android", "javac", [stubs["onnxruntime-android"]], [], []),
        Module("androidx-test-ext-junit", "javac", [stubs["androidx-test-ext-junit"]], ["android"], []),
        Module("executorch-android", "kotlinc", [stubs["executorch-android"]], [], []),
        Module("qa-core", "kotlinc", [CORE / "src/main/kotlin"], [], []),
        Module("qa-core-test", "kotlinc", [CORE / "src/test/kotlin"], ["qa-core"], junit, friend="qa-core"),
        Module("app", "kotlinc", src(APP / "src/main/kotlin", APP / "src/debug/kotlin"),
               ["qa-core", "android", "executorch-android", "onnxruntime-android"], []),
        Module("app-test", "kotlinc", src(APP / "src/test/kotlin"), ["app", "qa-core", "android"], junit, friend="app"),
        Module("app-android-test", "kotlinc", src(APP / "src/androidTest/kotlin"),
               ["app", "qa-core", "android", "androidx-test-ext-junit"], []),
        Module("fake-ort", "javac", [FAKE_ORT], ["qa-core"], []),
        # the abstract Context has no bodies: the stub's own declaration serves both
        Module("fake-android", "javac", [FAKE_ANDROID, stubs["android framework"] / "android/content/Context.java"], [], []),
        Module("app-activity-test", "kotlinc", [ACTIVITY_TESTS], ["app", "qa-core", "app-test", "fake-android"], junit),
    ]


@dataclass
class KotlinBuild:
    jars: dict[str, Path]  # module -> its jar
    stdlib: Path
    kotlinc: Path
    app_files: list[Path]
    stub_dirs: dict[str, Path]

    @property
    def fake_ort(self) -> Path:  # the fake phone's ai.onnxruntime classes (tests/fake_ort), for FakePhoneMain
        return self.jars["fake-ort"]

    RUNTIME = ("qa-core", "qa-core-test", "app", "app-test", "app-activity-test", "fake-android")

    def classpath(self, *extra: Path) -> str:
        """What the JVM tests and the fake phone run: qa-core, the app, their tests, the fake ai.onnxruntime."""
        return os.pathsep.join([*map(str, extra), *(str(self.jars[m]) for m in self.RUNTIME), str(self.stdlib),
                                str(self.fake_ort)])


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise CompileError(proc.stdout + proc.stderr)


def _compile_module(m: Module, jars: dict[str, Path], kotlinc: Path, stdlib: Path, work: Path, flags: list[str]) -> Path:
    out = work / f"{m.name}.jar"
    cp = [*(str(jars[d]) for d in m.deps), *map(str, m.libs)]
    files = sorted(str(p) for d in m.sources for p in ([d] if d.is_file() else d.rglob("*")) if p.suffix in (".kt", ".java"))
    if not files:  # a source set with nothing in it yet: an empty jar, as Gradle makes
        with zipfile.ZipFile(out, "w"):
            pass
        return out
    if m.tool == "kotlinc":
        gen = [str(p) for p in (work / "generated" / m.name).rglob("*.java")]
        friend = [f"-Xfriend-paths={jars[m.friend]}"] if m.friend else []
        _run([str(kotlinc), *flags, *friend, "-module-name", m.name, *(["-cp", os.pathsep.join(cp)] if cp else []),
              "-d", str(out), *files, *gen])
        if gen:  # Java after Kotlin, against its classes (what Gradle does with a module's Java sources)
            classes = work / f"{m.name}-java"
            _run(["javac", "-nowarn", "--release", JVM_RELEASE, "-cp", os.pathsep.join([str(out), *cp]), "-d", str(classes), *gen])
            with zipfile.ZipFile(out, "a") as z:
                for c in sorted(classes.rglob("*.class")):
                    z.write(c, c.relative_to(classes).as_posix())
    else:
        classes = work / f"{m.name}-classes"
        _run(["javac", "-nowarn", "--release", JVM_RELEASE, *(["-cp", os.pathsep.join([*cp, str(stdlib)])] if cp else []),
              "-d", str(classes), *files])
        with zipfile.ZipFile(out, "w") as z:
            for c in sorted(classes.rglob("*.class")):
                z.write(c, c.relative_to(classes).as_posix())
    return out


def compile_all(cache: Path | None = None) -> KotlinBuild:
    """Every module in dependency order, two at a time (or the cached jars of the same inputs)."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    kotlinc = find_kotlinc()
    stub_dirs = pinned_stub_dirs()
    bc = build_config_source()
    flags = pinned_flags()
    mods = modules()
    h = hashlib.sha256(str(kotlinc).encode() + bc.encode() + " ".join(flags).encode())
    for p in _inputs():
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    cache = cache or Path(os.environ.get("POCKETBERT_KOTLIN_CACHE", Path.home() / ".cache" / "pocketbert" / "kotlin"))
    folder = cache / f"android-demo-{h.hexdigest()[:16]}"
    stdlib = kotlinc.parent.parent / "lib" / "kotlin-stdlib.jar"
    build = KotlinBuild({m.name: folder / f"{m.name}.jar" for m in mods}, stdlib, kotlinc, app_sources(), stub_dirs)
    if (folder / "done").is_file():
        return build
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        gen = work / "generated/app/org/pocketbert/demo"
        gen.mkdir(parents=True)
        (gen / "BuildConfig.java").write_text(bc)
        jars: dict[str, Path] = {}
        pending = {m.name: m for m in mods}
        with ThreadPoolExecutor(max_workers=2) as pool:
            running: dict = {}
            while pending or running:
                for name, m in list(pending.items()):
                    if all(d in jars for d in m.deps):
                        running[pool.submit(_compile_module, m, dict(jars), kotlinc, stdlib, work, flags)] = name
                        del pending[name]
                if not running:
                    raise CompileError(f"modules with unmet dependencies: {sorted(pending)}")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    name = running.pop(f)
                    try:
                        jars[name] = f.result()
                    except CompileError as e:
                        raise CompileError(f"module {name}:\n{e}") from None
        staged = work / "out"
        staged.mkdir()
        for name, jar in jars.items():
            os.replace(jar, staged / jar.name)
        (staged / "done").write_text("\n".join(flags) + "\n")
        os.replace(staged, folder)
    for old in [*cache.glob("android-demo-*"), *cache.glob("fake-ort-*.jar")]:  # builds of older sources
        if old != folder:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return build


class CompileError(Exception):
    """kotlinc refused the sources (the message is its output)."""


def compile_against(build: KotlinBuild, sources: list[Path], out: Path,
                    deps: tuple[str, ...] = ("qa-core", "android", "executorch-android", "onnxruntime-android")) -> subprocess.CompletedProcess:
    """kotlinc on `sources` as the app module, against the built modules [deps] (for negative checks)."""
    return subprocess.run([str(build.kotlinc), *pinned_flags(), "-module-name", "app", "-cp",
                           os.pathsep.join(str(build.jars[d]) for d in deps), "-d", str(out), *map(str, sources)],
                          capture_output=True, text=True, timeout=600)
