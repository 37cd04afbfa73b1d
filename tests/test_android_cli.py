"""`pocketbert android bundle` with a real (tiny) ExecuTorch export (and an ONNX bundle's layout), its refusals, and
`pocketbert android install` saying what is missing (with the real adb client, no device)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from pocketbert.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def et_bundle(tmp_path_factory) -> Path:
    pytest.importorskip("executorch")
    out = tmp_path_factory.mktemp("export") / "tiny"
    rc = main(["export", "--model", "bert-tiny", "--target", "executorch", "--precision", "fp32",
               "--seq-len", "32", "--parity-samples", "1", "--out", str(out)])
    assert rc == 0
    return out / "executorch-fp32"


@pytest.fixture
def app(tmp_path) -> Path:
    """A copy of the Android project's skeleton (what `--app` must point at)."""
    dst = tmp_path / "android_demo"
    (dst / "app" / "src" / "main").mkdir(parents=True)
    shutil.copy(ROOT / "android_demo" / "settings.gradle.kts", dst)
    shutil.copy(ROOT / "android_demo" / "app" / "src" / "main" / "AndroidManifest.xml", dst / "app/src/main")
    return dst


def _assets(app: Path) -> Path:
    return app / "app/src/main/assets/bundles"


def _tree(p: Path) -> dict[str, str]:
    if not p.exists():
        return {}
    return {str(f.relative_to(p)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(p.rglob("*")) if f.is_file()}


def _variant(src: Path, dst: Path, **changes) -> Path:
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    m.update(changes)
    from pocketbert.contracts import manifest_digest

    m["manifest_sha256"] = manifest_digest(m)  # an export with these facts, not an edited manifest
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def test_bundle_copies_verified_files_and_writes_the_model_list(et_bundle, app, capsys):
    assert main(["android", "bundle", str(et_bundle), "--app", str(app)]) == 0
    assets = _assets(app)
    installed = assets / "bert-tiny-fp32"
    manifest = json.loads((et_bundle / "manifest.json").read_text())
    assert sorted(p.name for p in installed.iterdir()) == ["manifest.json", "model.pte", "vocab.txt"]
    for f in ("model.pte", "vocab.txt"):
        assert hashlib.sha256((installed / f).read_bytes()).hexdigest() == manifest["files"][f]["sha256"]
    models = json.loads((assets / "models.json").read_text())
    assert models["format"] == "pocketbert-android-models/1"
    [entry] = models["bundles"]
    assert entry["name"] == "bert-tiny-fp32" and entry["precision"] == "fp32" and entry["seq_len"] == 32
    assert entry["model_file_bytes"] == manifest["files"]["model.pte"]["bytes"]
    assert not [p for p in assets.iterdir() if p.name.startswith(".")], "staging left behind"
    assert "bert-tiny-fp32" in capsys.readouterr().out

    # again (replaces in place) and under a second name: the app lists both, once each
    assert main(["android", "bundle", str(et_bundle), "--app", str(app)]) == 0
    assert main(["android", "bundle", str(et_bundle.parent), "--app", str(app), "--name", "tiny-copy"]) == 0
    names = [b["name"] for b in json.loads((assets / "models.json").read_text())["bundles"]]
    assert names == ["bert-tiny-fp32", "tiny-copy"]


def _onnx_variant(src: Path, dst: Path) -> Path:
    """An ONNX bundle's layout (model.onnx, target onnx) with the tiny export's bytes: the command
    copies and checks files, it does not run them (tests/test_device_adb.py runs a real ONNX export)."""
    shutil.copytree(src, dst)
    (dst / "model.pte").rename(dst / "model.onnx")
    m = json.loads((dst / "manifest.json").read_text())
    m["files"]["model.onnx"] = m["files"].pop("model.pte")
    m.update(target="onnx", model_file="model.onnx")
    from pocketbert.contracts import manifest_digest

    m["manifest_sha256"] = manifest_digest(m)
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def test_an_export_folder_gives_its_executorch_and_onnx_qa_bundles(et_bundle, app, tmp_path, capsys):
    out = tmp_path / "export-out"
    shutil.copytree(et_bundle, out / "executorch-fp32")
    _onnx_variant(et_bundle, out / "onnx-fp32")
    _variant(et_bundle, out / "coreml-fp32", target="coreml")
    assert main(["android", "bundle", str(out), "--app", str(app)]) == 0
    assert "skipping coreml-fp32 (not executorch/onnx question-answering)" in capsys.readouterr().out
    listed = json.loads((_assets(app) / "models.json").read_text())["bundles"]
    assert [(b["name"], b["runtime"], b["model_file"]) for b in listed] == [
        ("bert-tiny-fp32", "executorch", "model.pte"), ("bert-tiny-onnx-fp32", "onnx", "model.onnx")]
    assert sorted(p.name for p in (_assets(app) / "bert-tiny-onnx-fp32").iterdir()) == ["manifest.json", "model.onnx", "vocab.txt"]
    only_coreml = tmp_path / "only-coreml"
    _variant(et_bundle, only_coreml / "coreml-fp32", target="coreml")
    assert main(["android", "bundle", str(only_coreml), "--app", str(app)]) == 2
    assert "holds no executorch/onnx question-answering bundle" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["coreml", "classifier", "corrupt", "not-a-bundle", "not-the-app", "two-names"])
def test_bundle_refuses_in_one_line_and_changes_nothing(et_bundle, app, tmp_path, capsys, kind):
    assert main(["android", "bundle", str(et_bundle), "--app", str(app), "--name", "before"]) == 0
    before = _tree(_assets(app))
    capsys.readouterr()
    if kind == "coreml":
        bad, why = _variant(et_bundle, tmp_path / "b", target="coreml"), "the app runs executorch, onnx bundles"
    elif kind == "classifier":
        bad, why = _variant(et_bundle, tmp_path / "b", task="sequence-classification"), "answers questions"
    elif kind == "corrupt":
        bad = _variant(et_bundle, tmp_path / "b")
        with open(bad / "model.pte", "ab") as f:
            f.write(b"\0")
        why = "sha256"
    elif kind == "not-a-bundle":
        (tmp_path / "b").mkdir()
        bad, why = tmp_path / "b", "no bundle"
    elif kind == "not-the-app":
        bad, why = et_bundle, "not the Android demo project"
    else:
        bad, why = _variant(et_bundle, tmp_path / "b", precision="int8"), "--name names one bundle"
    args = ["android", "bundle", str(et_bundle), str(bad), "--app", str(tmp_path if kind == "not-the-app" else app)]
    if kind == "two-names":
        args += ["--name", "x"]
    assert main(args) == 2  # the good bundle first: still nothing may be installed
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pocketbert android: error:") and why in err, err
    assert _tree(_assets(app)) == before


def test_install_says_what_is_missing(app, tmp_path, capsys, monkeypatch):
    for var in ("ANDROID_HOME", "ANDROID_SDK_ROOT", "JAVA_HOME"):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["android", "install", "--app", str(app)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    text = "\n".join(lines)
    assert all(line.startswith("pocketbert android install: missing ") for line in lines), text
    for needle in ("Android SDK", "JDK", "Gradle", "a model in the app", "adb:", "a device"):
        assert needle in text, f"{needle!r} not reported:\n{text}"


@pytest.mark.skipif(not shutil.which("adb"), reason="no adb client (apt install adb)")
def test_install_finds_no_device_with_the_real_adb(app, tmp_path, capsys, monkeypatch):
    """The real adb client, on a private server port so no other adb server is touched."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    monkeypatch.setenv("ANDROID_HOME", str(sdk))
    try:
        assert main(["android", "install", "--app", str(app), "--serial", "emulator-5554"]) == 2
    finally:
        subprocess.run(["adb", "kill-server"], env={**os.environ, "ANDROID_ADB_SERVER_PORT": str(port)},
                       capture_output=True, timeout=30)
    text = capsys.readouterr().err
    assert "missing device emulator-5554: not listed by `adb devices`" in text, text
    assert "Android SDK" not in text and "adb:" not in text


def test_a_second_bundle_run_into_one_app_at_once_is_refused_naming_the_first(et_bundle, app, capsys):
    """Two runs swapping bundles into one app and each rewriting models.json from what it saw could
    leave a bundle on disk that the app does not list: the second is refused, nothing changes."""
    import sys

    assert main(["android", "bundle", str(et_bundle), "--app", str(app)]) == 0
    before = _tree(_assets(app))
    code = ("import sys, time, pathlib\nfrom pocketbert.claims import claim\n"
            "with claim(pathlib.Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(_assets(app))], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        rc = main(["android", "bundle", str(et_bundle), "--app", str(app), "--name", "second"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and f"(pid {holder.pid})" in err[0] and "--app" in err[0], err
        assert _tree(_assets(app)) == before
    finally:
        holder.kill()
        holder.wait()
