"""Put exported bundles into the Android demo app and install it on a phone.

  bundle   copy question-answering bundles (from `pocketbert export --target executorch` or
           `--target onnx`: the app runs each with its own engine, ExecuTorch or ONNX Runtime) into
           the app's assets and rewrite the model list the app offers; sha256-checked, all or nothing
  install  build the debug app with Gradle and install it with adb (needs the Android SDK and a
           device; otherwise says, one line each, what is missing and how to get it)

examples:
  pocketbert export --model ./minilm-squad --target executorch onnx --precision fp32 int8 \\
      --seq-len 384 --out bundles/minilm
  pocketbert android bundle bundles/minilm      # its ExecuTorch and ONNX QA bundles
  pocketbert android install --serial R58M123ABC
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from export.bundle import find_bundles, read_manifest
from pocketbert import argtypes as t
from pocketbert import replace
from pocketbert.backends import all_runtimes
from pocketbert.claims import claim
from pocketbert.common import UsageError, sha256_file, write_text_atomic
from pocketbert.contracts import Manifest
from pocketbert.knobs import add_knob, knob

DEFAULT_APP = Path(__file__).resolve().parent  # android_demo/, the Gradle project
PACKAGE = "org.pocketbert.demo"
MAIN_ACTIVITY = f"{PACKAGE}/.MainActivity"
ASSETS = Path("app/src/main/assets/bundles")  # under the app project
MODELS_FILE = "models.json"
MODELS_FORMAT = "pocketbert-android-models/1"
APP_FILES = ("manifest.json", "vocab.txt")  # plus the manifest's model_file: all the app reads


@dataclass
class AppSettings:
    """`pocketbert android`'s settings: each flag is generated from its field (pocketbert.knobs)."""
    app: Path = knob(DEFAULT_APP, rule=t.existing_dir)  # the Android project this package holds
    name: str | None = knob(None, rule=t.safe_name, none="MODEL-PRECISION")  # the name the app shows a bundle by
    serial: str | None = knob(None, rule=t.text, none="the only device")  # which device `adb devices` lists
    launch: bool = True  # open the app once it is installed


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="android_command", metavar="ACTION", required=True)
    b = sub.add_parser("bundle", help="copy ExecuTorch / ONNX QA bundles into the app's assets")
    b.add_argument("bundles", nargs="+", type=t.existing_path, metavar="BUNDLE",
                   help="bundle folders from `pocketbert export --target executorch|onnx` (or an export "
                        "--out folder holding several)")
    add_knob(b, AppSettings, "app", "the Android project")
    add_knob(b, AppSettings, "name", "name shown in the app (one bundle only)")
    i = sub.add_parser("install", help="build the app with Gradle and install it with adb")
    add_knob(i, AppSettings, "app", "the Android project")
    add_knob(i, AppSettings, "serial", "device serial from `adb devices`")
    add_knob(i, AppSettings, "launch", "install only, do not open the app")


def run(args: argparse.Namespace) -> int:
    if args.android_command == "bundle":
        names = bundle_into_app(args.bundles, args.app, args.name)
        print(f"app {args.app} now offers: {', '.join(names)}")
        print(f"next: pocketbert android install   (or open {args.app} in Android Studio)")
        return 0
    return install(args.app, args.serial, launch=args.launch)


# ------------------------------------------------------------------ bundle

def _app_assets(app: Path) -> Path:
    app = Path(app).expanduser()
    if not (app / "settings.gradle.kts").is_file() or not (app / "app").is_dir():
        raise UsageError(f"{app} is not the Android demo project (no settings.gradle.kts and app/): "
                         "pass --app android_demo")
    return app / ASSETS


FIRST_ENGINE = "executorch"  # the app's first engine: its bundles keep the names they always had


def app_targets() -> tuple[str, ...]:
    """The bundle targets the app has an engine for (app/.../AppEngines.kt): the runtimes that run
    on phones via the app (Runtime.on_phones)."""
    return tuple(sorted(r.bundle_target for r in all_runtimes().values() if "app" in r.on_phones and r.bundle_target))


def _check_bundle(path: Path) -> tuple[Path, Manifest]:
    """A verified QA bundle of a runtime the app runs, or a one-line UsageError saying why not."""
    m = read_manifest(path, verify=True)  # format and every file's sha256
    targets = app_targets()
    if m.target not in targets:
        raise UsageError(f"{path} is a '{m.target}' bundle; the app runs {', '.join(targets)} bundles: "
                         f"export with --target {' or '.join(targets)}")
    if m.task != "question-answering":
        raise UsageError(f"{path} is a '{m.task}' model; the app answers questions: "
                         "export a question-answering model (--task question-answering)")
    for name in (*APP_FILES, m.model_file):
        if not (path / name).is_file():
            raise UsageError(f"{path} lacks {name}: re-export the bundle")
    return path, m


def _is_app_bundle(path: Path) -> bool:
    m = read_manifest(path, verify=False)
    return m.target in app_targets() and m.task == "question-answering"


def model_name(m: Manifest) -> str:
    return m.source.removeprefix("preset:").rstrip("/").split("/")[-1]


def default_name(m: Manifest) -> str:
    """MODEL-PRECISION for the app's first engine's bundles (the names the app always had), else
    MODEL-RUNTIME-PRECISION, so an ExecuTorch and an ONNX bundle of one model sit side by side."""
    middle = "" if m.target == FIRST_ENGINE else f"{m.target}-"
    return f"{model_name(m)}-{middle}{m.precision}"


def bundle_into_app(bundles: list[Path], app: Path, name: str | None = None) -> list[str]:
    """Copy bundles into the app's assets (staged, sha256-checked, then renamed in) and rewrite
    models.json; returns the names the app now offers. Nothing changes on any error."""
    assets = _app_assets(app)
    checked: list[tuple[Path, Manifest]] = []
    for b in bundles:
        b = Path(b).expanduser()
        if not b.exists():
            raise UsageError(f"bundle {b} not found")
        hits = find_bundles(b)
        if not hits:
            raise UsageError(f"no bundle (manifest.json) at {b} or in its subfolders: create one with "
                             f"`pocketbert export --target {'|'.join(app_targets())}`")
        if hits == [b]:  # a bundle named on the command line: it must be one the app runs
            checked.append(_check_bundle(b))
            continue
        # an export's --out folder: take its QA bundles the app runs, say what else is there
        usable = [h for h in hits if _is_app_bundle(h)]
        runs = "/".join(app_targets())
        if not usable:
            raise UsageError(f"{b} holds no {runs} question-answering bundle ({', '.join(h.name for h in hits)}): "
                             f"export with --target {' or '.join(app_targets())}")
        skipped = [h.name for h in hits if h not in usable]
        if skipped:
            print(f"{b}: skipping {', '.join(skipped)} (not {runs} question-answering)")
        checked += [_check_bundle(h) for h in usable]
    if name and len(checked) > 1:
        raise UsageError(f"--name names one bundle, got {len(checked)}")
    named = [(name or default_name(m), b, m) for b, m in checked]
    seen: dict[str, Path] = {}
    for n, b, _ in named:
        if not n or "/" in n or n.startswith("."):
            raise UsageError(f"bad bundle name '{n}': use letters, digits, '-', '_'")
        if n in seen:
            raise UsageError(f"{seen[n]} and {b} would both be '{n}': install one at a time with --name")
        seen[n] = b

    with claim(assets, "--app"):  # a second bundle run into this app at once: refused, naming this one's pid
        replace.recover(assets)  # a run killed mid-swap: its swap finished or undone first
        kept = _existing_bundles(assets, skip={n for n, _, _ in named})  # all read and checked before any change
        replace.replace_folder_from(assets, lambda tmp: _build_assets(tmp, assets, kept, named))
        return [e["name"] for e in _model_entries(assets)]


def _existing_bundles(assets: Path, skip: set[str]) -> list[str]:
    """The entries of the app's assets that stay (all but the bundles being replaced and the model
    list, which is rebuilt), each bundle's manifest read and checked: a broken one is named in one
    line before anything changes."""
    if not assets.is_dir():
        return []
    kept = []
    for p in sorted(assets.iterdir()):
        if p.name.startswith(".") or p.name == MODELS_FILE or p.name in skip:
            continue
        if p.is_symlink() or not (p.is_dir() or p.is_file()):
            raise UsageError(f"{p} in the app's assets is not a plain file or folder: remove it")
        if p.is_dir() and (p / "manifest.json").exists():
            m = read_manifest(p, verify=False)  # one line naming the file when it is malformed
            if not (p / m.model_file).is_file():
                raise UsageError(f"{p} in the app's assets lacks its model file {m.model_file}: "
                                 "remove that folder or bundle it again")
        kept.append(p.name)
    return kept


def _build_assets(tmp: Path, assets: Path, kept: list[str], named: list[tuple[str, Path, Manifest]]) -> None:
    """The app's new assets folder, complete: the kept entries (hard links: nothing is copied
    twice), the new bundles (copied, sha256-checked) and the model list."""
    for name in kept:
        src = assets / name
        if src.is_dir():
            shutil.copytree(src, tmp / name, copy_function=_link_or_copy)
        else:
            _link_or_copy(src, tmp / name)
    for n, b, m in named:
        dst = tmp / n
        dst.mkdir()
        for f in (*APP_FILES, m.model_file):
            replace.step("copy")
            shutil.copyfile(b / f, dst / f)
            meta = m.files.get(f)
            if meta and sha256_file(dst / f) != meta.sha256:
                raise UsageError(f"copy of {b / f} does not match its sha256: disk full or the bundle "
                                 "changed while copying; nothing was installed")
    write_model_list(tmp)


def _link_or_copy(src, dst) -> None:
    replace.step("copy")
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _model_entries(assets: Path) -> list[dict]:
    entries = []
    for d in sorted(p for p in assets.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (d / "manifest.json").is_file():
            continue
        m = read_manifest(d, verify=False)
        entries.append({"name": d.name, "model": model_name(m), "runtime": m.target, "precision": m.precision,
                        "seq_len": m.seq_len, "dynamic_seq": m.dynamic_seq, "model_file": m.model_file,
                        "model_file_bytes": (d / m.model_file).stat().st_size,
                        "files": sorted(p.name for p in d.iterdir() if p.is_file())})
    return entries


def write_model_list(assets: Path) -> list[str]:
    """models.json from the bundles in the assets folder (what the app lists), atomically."""
    import json

    entries = _model_entries(assets)
    write_text_atomic(assets / MODELS_FILE, json.dumps({"format": MODELS_FORMAT, "bundles": entries}, indent=2) + "\n")
    return [e["name"] for e in entries]


# ------------------------------------------------------------------ install

def _adb_path() -> str | None:
    sdk = _sdk_dir()
    if sdk and (sdk / "platform-tools" / "adb").is_file():
        return str(sdk / "platform-tools" / "adb")
    return shutil.which("adb")


def _sdk_dir() -> Path | None:
    for var in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        v = os.environ.get(var)
        if v and Path(v).expanduser().is_dir():
            return Path(v).expanduser()
    return None


def _devices(adb: str) -> list[tuple[str, str]]:
    """(serial, state) from `adb devices` (starts the adb server, as any adb command does)."""
    try:
        out = subprocess.run([adb, "devices"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = [line.split("\t") for line in out.splitlines()[1:] if "\t" in line]
    return [(r[0], r[1]) for r in rows]


def missing_for_install(app: Path, serial: str | None) -> tuple[list[str], dict]:
    """One line per thing `install` lacks (and how to get it); plus what it found."""
    missing: list[str] = []
    found: dict = {}
    sdk = _sdk_dir()
    if not sdk:
        missing.append("Android SDK: install Android Studio (https://developer.android.com/studio) or the "
                       "command-line tools, then set ANDROID_HOME to the SDK folder (e.g. ~/Android/Sdk) and "
                       "run `sdkmanager \"platforms;android-35\" \"build-tools;35.0.0\" platform-tools`")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        missing.append("a JDK 17+: `apt install openjdk-17-jdk-headless`, or set JAVA_HOME to Android "
                       "Studio's bundled JDK (jbr/)")
    gradlew = Path(app) / "gradlew"
    if gradlew.is_file():
        found["gradle"] = [str(gradlew.resolve())]
    elif shutil.which("gradle"):
        found["gradle"] = [shutil.which("gradle"), "-p", str(Path(app).resolve())]
    else:
        missing.append(f"Gradle: run `gradle wrapper --gradle-version 8.11.1` once in {app} (any Gradle "
                       "8.x from https://gradle.org/install), or open the project in Android Studio")
    models = Path(app) / ASSETS / MODELS_FILE
    if not models.is_file() or '"name"' not in models.read_text():
        missing.append("a model in the app: `pocketbert export --target executorch --out B ...` (or onnx) then "
                       "`pocketbert android bundle B/executorch-fp32`")
    adb = _adb_path()
    if not adb:
        missing.append("adb: `sdkmanager platform-tools` (then it is $ANDROID_HOME/platform-tools/adb) or "
                       "`apt install adb`")
        missing.append("a device: cannot look for one without adb")
    else:
        found["adb"] = adb
        devices = _devices(adb)
        ready = [s for s, state in devices if state == "device"]
        if serial:
            state = dict(devices).get(serial)
            if state != "device":
                missing.append(f"device {serial}: " + ("not listed by `adb devices` (connected? USB debugging on?)"
                                                       if state is None else f"is '{state}': unlock the phone and "
                                                       "accept the USB debugging prompt"))
            else:
                found["serial"] = serial
        elif not ready:
            unauthorized = [s for s, state in devices if state == "unauthorized"]
            missing.append("a device: " + (f"{unauthorized[0]} is unauthorized: unlock it and accept the USB "
                                           "debugging prompt" if unauthorized else
                                           "connect a phone with USB debugging on (Settings > About phone > "
                                           "tap Build number 7 times; Developer options > USB debugging); "
                                           "`adb devices` must list it as 'device'"))
        elif len(ready) > 1:
            missing.append(f"one device: {len(ready)} are connected ({', '.join(ready)}): pass --serial")
        else:
            found["serial"] = ready[0]
    return missing, found


def install(app: Path, serial: str | None, launch: bool = True) -> int:
    app = Path(app).expanduser()
    _app_assets(app)
    missing, found = missing_for_install(app, serial)
    if missing:
        for line in missing:
            print(f"pocketbert android install: missing {line}", file=sys.stderr)
        return 2
    env = {**os.environ, "ANDROID_SERIAL": found["serial"]}  # installDebug installs on this device only
    print(f"building and installing on {found['serial']} ...")
    rc = subprocess.run([*found["gradle"], ":app:installDebug"], cwd=app, env=env).returncode
    if rc != 0:
        print(f"pocketbert android install: gradle failed (exit {rc}); see its output above", file=sys.stderr)
        return rc
    if launch:
        subprocess.run([found["adb"], "-s", found["serial"], "shell", "am", "start", "-n", MAIN_ACTIVITY],
                       check=False)
    print(f"installed {PACKAGE} on {found['serial']}")
    return 0
