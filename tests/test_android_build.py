"""The Android demo's Gradle setup against what the pinned ExecuTorch and ONNX Runtime AARs require.

No Android SDK or Maven here, so Gradle cannot run: this reads the committed build files
(android_demo/gradle/libs.versions.toml, gradle.properties, */build.gradle.kts, the wrapper) and
checks them against android_demo/gradle/requirements.toml, the AAR's requirements read from
ExecuTorch's own sources at the pinned tag. It is the check that would have caught
`android.useAndroidX=false` (AGP 8 stops at :app:checkDebugAarMetadata)."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "android_demo"
# AGP release -> (the Gradle it needs at least, the highest compileSdk it supports), from the
# Android Gradle Plugin release notes' compatibility tables.
AGP_COMPAT = {"8.7": ((8, 9), 35), "8.8": ((8, 10, 2), 35), "8.9": ((8, 11, 1), 35)}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text))


def catalog() -> dict:
    return tomllib.loads((DEMO / "gradle/libs.versions.toml").read_text())


def requirements() -> dict:
    return tomllib.loads((DEMO / "gradle/requirements.toml").read_text())


def gradle_properties(path: Path = DEMO / "gradle.properties") -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def build_problems(cat: dict, req: dict, props: dict[str, str], app_gradle: str, wrapper: str,
                   pyproject: str) -> list[str]:
    """Every way the Gradle setup falls short of the AAR's requirements (empty: it meets them)."""
    v = cat["versions"]
    r = req["requires"]
    problems = []
    et = cat["libraries"]["executorch-android"]
    if et["module"] != req["artifact"] or v[et["version"]["ref"]] != req["version"]:
        problems.append(f"requirements.toml describes {req['artifact']}:{req['version']}, the catalog pins "
                        f"{et['module']}:{v[et['version']['ref']]}: re-read the AAR's sources and update it")
    py = re.search(r'"executorch==([^"]+)"', pyproject)
    if not py or py.group(1) != v["executorch"]:
        problems.append(f"the app's executorch {v['executorch']} is not pyproject's executorch=={py and py.group(1)} "
                        "(the .pte files and the runtime must come from the same release)")
    if r["use_androidx"] and props.get("android.useAndroidX") != "true":
        problems.append("gradle.properties: android.useAndroidX must be true (the AAR depends on "
                        "androidx.core:core-ktx; AGP fails :app:checkDebugAarMetadata)")
    if int(v["compileSdk"]) < r["min_compile_sdk"]:
        problems.append(f"compileSdk {v['compileSdk']} < {r['min_compile_sdk']} (androidx.core's AAR metadata)")
    if int(v["minSdk"]) < r["min_sdk"]:
        problems.append(f"minSdk {v['minSdk']} < the AAR's minSdk {r['min_sdk']}")
    if int(v["jvmTarget"]) < r["min_jvm_target"]:
        problems.append(f"jvmTarget {v['jvmTarget']} < {r['min_jvm_target']}")
    if version(v["kotlin"]) < version(r["min_kotlin"]):
        problems.append(f"Kotlin {v['kotlin']} cannot read classes made by Kotlin {r['min_kotlin']}")
    agp = ".".join(v["agp"].split(".")[:2])
    if agp not in AGP_COMPAT:
        problems.append(f"AGP {v['agp']}: not in this test's compatibility table {sorted(AGP_COMPAT)}")
    else:
        gradle_min, max_sdk = AGP_COMPAT[agp]
        wrapped = re.search(r"gradle-([\d.]+)-(?:bin|all)\.zip", wrapper)
        if not wrapped or version(wrapped.group(1)) < gradle_min:
            problems.append(f"AGP {v['agp']} needs Gradle {'.'.join(map(str, gradle_min))}+, the wrapper has "
                            f"{wrapped and wrapped.group(1)}")
        if int(v["compileSdk"]) > max_sdk:
            problems.append(f"AGP {v['agp']} supports compileSdk up to {max_sdk}, not {v['compileSdk']}")
    # the app takes its dependencies and versions from the catalog only (one place for a bump)
    inline = re.findall(r'(?:implementation|api|runtimeOnly)\("([^"]+:[^"]+)"\)', app_gradle)
    if inline:
        problems.append(f"app/build.gradle.kts declares {inline} inline: use the catalog (libs.*)")
    if "implementation(libs.executorch.android)" not in app_gradle:
        problems.append("app/build.gradle.kts does not depend on libs.executorch.android")
    abis = re.search(r"abiFilters \+= listOf\(([^)]*)\)", app_gradle)
    wanted = re.findall(r'"([^"]+)"', abis.group(1)) if abis else []
    if not wanted or not set(wanted) <= set(req["requires"]["abis"]):
        problems.append(f"abiFilters {wanted} must be among the ABIs the AAR ships {req['requires']['abis']}")
    problems += onnxruntime_problems(cat, req["onnxruntime"], app_gradle, pyproject, wanted)
    for key in ("compileSdk", "minSdk", "targetSdk"):
        if f"{key} = libs.versions.{key}.get().toInt()" not in app_gradle:
            problems.append(f"app/build.gradle.kts: {key} does not come from the catalog")
    return problems


def onnxruntime_problems(cat: dict, req: dict, app_gradle: str, pyproject: str, abis: list[str]) -> list[str]:
    """The second engine's AAR (ONNX bundles): pinned in the catalog at the release requirements.toml
    was read for, the same release as the desktop's onnxruntime pin, and its needs met."""
    v = cat["versions"]
    problems = []
    lib = cat["libraries"].get("onnxruntime-android")
    if not lib:
        return ["the catalog has no onnxruntime-android library (the app's ONNX Runtime engine)"]
    pinned = v[lib["version"]["ref"]]
    if lib["module"] != req["artifact"] or pinned != req["version"]:
        problems.append(f"requirements.toml describes {req['artifact']}:{req['version']}, the catalog pins "
                        f"{lib['module']}:{pinned}: re-read ONNX Runtime's Java API and AAR settings at that tag "
                        "and update it and the stubs")
    py = re.search(rf'"{req["python_pin"]}==([^"]+)"', pyproject)
    if not py or py.group(1) != pinned:
        problems.append(f"the app's onnxruntime-android {pinned} is not pyproject's {req['python_pin']}=="
                        f"{py and py.group(1)} (a phone must run the ONNX Runtime the desktop is compared on)")
    if int(v["minSdk"]) < req["requires"]["min_sdk"]:
        problems.append(f"minSdk {v['minSdk']} < onnxruntime-android's minSdk {req['requires']['min_sdk']}")
    if not set(abis) <= set(req["requires"]["abis"]):
        problems.append(f"abiFilters {abis} must be among the ABIs onnxruntime-android ships {req['requires']['abis']}")
    if "implementation(libs.onnxruntime.android)" not in app_gradle:
        problems.append("app/build.gradle.kts does not depend on libs.onnxruntime.android")
    return problems


def _inputs() -> dict:
    return dict(cat=catalog(), req=requirements(), props=gradle_properties(),
                app_gradle=(DEMO / "app/build.gradle.kts").read_text(),
                wrapper=(DEMO / "gradle/wrapper/gradle-wrapper.properties").read_text(),
                pyproject=(ROOT / "pyproject.toml").read_text())


def test_gradle_setup_meets_the_executorch_aar_requirements():
    assert build_problems(**_inputs()) == []


def test_requirements_name_their_sources_and_the_transitive_set():
    req = requirements()
    assert req["read_from"] and all(f"/v{req['version']}/" in u for u in req["read_from"])
    ort = req["onnxruntime"]
    assert ort["read_from"] and all(f"/v{ort['version']}/" in u for u in ort["read_from"])
    assert ort["requires"]["transitive"] == []  # the ONNX Runtime AAR brings everything it needs
    assert {"com.facebook.fbjni:fbjni:0.7.0", "com.facebook.soloader:nativeloader:0.10.5",
            "androidx.core:core-ktx:1.13.1"} == set(req["requires"]["transitive"])
    settings = (DEMO / "settings.gradle.kts").read_text()
    for repo in req["requires"]["repositories"]:  # where the transitive set is resolved from
        assert repo in settings.split("dependencyResolutionManagement", 1)[1], repo


def test_every_module_takes_plugins_and_versions_from_the_catalog():
    for f in ("build.gradle.kts", "app/build.gradle.kts", "qa-core/build.gradle.kts"):
        text = (DEMO / f).read_text()
        assert not re.search(r'id\("[^"]+"\)\s*version', text), f"{f}: a plugin version outside the catalog"
        assert not re.search(r"JavaVersion\.VERSION_\d+|JvmTarget\.JVM_\d+", text), f"{f}: a JVM target outside the catalog"


@pytest.mark.parametrize("breakage, expected", [
    (lambda i: i["props"].update({"android.useAndroidX": "false"}), "android.useAndroidX must be true"),
    (lambda i: i["cat"]["versions"].update(compileSdk="33"), "compileSdk 33 < 34"),
    (lambda i: i["cat"]["versions"].update(executorch="1.5.0"), "re-read the AAR's sources"),
    (lambda i: i["cat"]["versions"].update(minSdk="21"), "minSdk 21 < the AAR's minSdk 23"),
    (lambda i: i.update(wrapper="distributionUrl=https\\://services.gradle.org/distributions/gradle-8.4-bin.zip"),
     "needs Gradle 8.9+"),
    (lambda i: i.update(app_gradle=i["app_gradle"].replace(
        "implementation(libs.executorch.android)", 'implementation("org.pytorch:executorch-android:1.4.1")')),
     "declares ['org.pytorch:executorch-android:1.4.1'] inline"),
    (lambda i: i["cat"]["versions"].update(onnxruntime="1.33.0"), "re-read ONNX Runtime's Java API"),
    (lambda i: i.update(pyproject=i["pyproject"].replace('"onnxruntime==1.32.0"', '"onnxruntime==1.31.0"')),
     "is not pyproject's onnxruntime==1.31.0"),
    (lambda i: i.update(app_gradle=i["app_gradle"].replace("implementation(libs.onnxruntime.android)\n", "")),
     "does not depend on libs.onnxruntime.android"),
    (lambda i: i["cat"]["libraries"].pop("onnxruntime-android"), "no onnxruntime-android library"),
])
def test_a_broken_setup_is_caught(breakage, expected):
    """The check can fail: each of the setups the issue found (or could find) is named."""
    inputs = _inputs()
    breakage(inputs)
    problems = build_problems(**inputs)
    assert any(expected in p for p in problems), problems


def test_benchmark_entry_point_is_declared_in_debug_builds_only():
    main = (DEMO / "app/src/main/AndroidManifest.xml").read_text()
    debug = (DEMO / "app/src/debug/AndroidManifest.xml").read_text()
    assert "BenchmarkActivity" not in main, "a release build must not export the benchmark activity"
    assert re.search(r'android:name="\.BenchmarkActivity"\s+android:exported="true"', debug)


# ---- the app's XML, parsed and merged as AGP would (tests/android_manifest.py) --------------------

NAMESPACE = "org.pocketbert.demo"
# the debug manifest as it was: `--` inside a comment, which XML forbids and the JDK's parser refuses
OLD_DEBUG_COMMENT = ("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\">\n"
                     "    <application>\n        <!-- Started by `pocketbert bench --device adb://...` -->\n"
                     "    </application>\n</manifest>\n")


def _placeholders() -> dict[str, str]:
    text = (DEMO / "app/build.gradle.kts").read_text()
    return dict(re.findall(r'manifestPlaceholders\["(\w+)"\]\s*=\s*"([^"]*)"', text))


def _variant(build_type: str, app: Path | None = None):
    import tests.android_manifest as am

    app = app or am.APP
    overlays = [p for p in [app / f"src/{build_type}/AndroidManifest.xml"] if p.is_file()]
    merged = am.merge(app / "src/main/AndroidManifest.xml", overlays, NAMESPACE, _placeholders())
    return merged, am.problems(merged, NAMESPACE, int(catalog()["versions"]["targetSdk"]), app)


def test_every_xml_file_of_the_app_is_well_formed_for_the_jdk_parser(tmp_path):
    import tests.android_manifest as am

    try:
        verdicts = am.strict_parse(am.app_xml_files())
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert len(verdicts) >= 4 and not {str(f): v for f, v in verdicts.items() if v}, verdicts
    bad = tmp_path / "AndroidManifest.xml"  # the check can fail: the comment the debug manifest had
    bad.write_text(OLD_DEBUG_COMMENT)
    (why,) = am.strict_parse([bad]).values()
    assert why == '4:45: The string "--" is not permitted within comments.', why


@pytest.mark.parametrize("build_type", ["debug", "release"])
def test_manifests_merge_as_agp_would(build_type):
    import tests.android_manifest as am

    merged, found = _variant(build_type)
    assert found == []
    names = {c.get(f"{am.A}name") for c in merged.components()}
    entry_points = {".BenchmarkActivity", ".GameLoopActivity"}
    assert names == ({".MainActivity"} | (entry_points if build_type == "debug" else set()))
    for c in merged.components():
        if c.get(f"{am.A}name") in entry_points:
            assert c.get(f"{am.A}permission") == "android.permission.DUMP"


def _broken(tmp_path: Path, edit) -> Path:
    import tests.android_manifest as am

    app = tmp_path / "app"
    shutil.copytree(am.APP / "src", app / "src", ignore=shutil.ignore_patterns("kotlin"))
    for kt in am.APP.glob("src/*/kotlin/**/*Activity.kt"):  # the classes the names must resolve to
        (app / kt.relative_to(am.APP)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(kt, app / kt.relative_to(am.APP))
    edit(app / "src/main/AndroidManifest.xml", app / "src/debug/AndroidManifest.xml")
    return app


def _sub(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("edit, expected", [
    (lambda m, d: _sub(d, '            android:permission="android.permission.DUMP"\n', ""),
     "activity#org.pocketbert.demo.BenchmarkActivity is exported without a permission"),
    (lambda m, d: _sub(m, 'android:allowBackup="false"', 'android:allowBackup="true"'), "allowBackup must be"),
    (lambda m, d: _sub(m, '            android:exported="true"\n', ""), "android:exported needs to be explicitly specified"),
    (lambda m, d: _sub(d, "    </application>", '        <activity android:name=".GameLoopActivity" android:exported="false" />\n'
                       "    </application>"), "element activity#org.pocketbert.demo.GameLoopActivity is duplicated"),
    (lambda m, d: _sub(d, "<application>", "<application>\n<activity android:name=\".MainActivity\" android:exported=\"false\" />"),
     "Attribute activity#org.pocketbert.demo.MainActivity@android:exported value=(false)"),
    (lambda m, d: _sub(m, 'android:label="@string/app_name"', 'android:label="${appLabel}"'), "needs placeholder 'appLabel'"),
    (lambda m, d: _sub(m, "@string/app_name", "@string/no_such_name"), "@string/no_such_name is not defined"),
    (lambda m, d: _sub(d, '".GameLoopActivity"', '".GameLoop"'), "GameLoop: no such class"),
    (lambda m, d: _sub(m, "<application", '<uses-permission android:name="android.permission.INTERNET" />\n<application'),
     "asks for permissions it does not need"),
])
def test_a_broken_manifest_is_caught(tmp_path, edit, expected):
    """The merge check can fail: each of these manifests is refused, naming the problem."""
    _merged, found = _variant("debug", _broken(tmp_path, edit))
    assert any(expected in p for p in found), found
