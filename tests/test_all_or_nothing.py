"""Issue 31: all-or-nothing on disk, files in use, bounded readers, exit codes that speak for this run.

Each test is one of the issue's probes (the crash-consistency sweep is tests/test_crash_consistency.py;
the class-wide reader and replace checks are in tests/test_hardening.py)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pocketbert.cli import main
from pocketbert.outputs import MARKER, atomic_output_dir

ROOT = Path(__file__).resolve().parent.parent


def _run_cli(argv, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return rc, err


def fake_bundle(folder: Path, target: str = "onnx", precision: str = "fp32", weights: str = "w") -> Path:
    """A bundle whose manifest and sha256s are right (the files themselves are not a model)."""
    from export.bundle import describe_files
    from pocketbert.contracts import Manifest

    folder.mkdir(parents=True)
    model_file = "model.pte" if target == "executorch" else "model.onnx"
    (folder / model_file).write_text(weights * 20)
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    m = Manifest(target=target, precision=precision, task="question-answering", model_type="bert",
                 source="preset:bert-tiny", model_file=model_file, seq_len=64, seq_lens=[64],
                 dynamic_seq=target == "onnx", inputs=[{"name": "input_ids", "dtype": "int64", "shape": [1, "seq"]}],
                 outputs=[{"name": "start_logits", "dtype": "float32", "shape": [1, "seq"]}],
                 files=describe_files(folder)).to_dict()
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ android bundle

@pytest.fixture
def app(tmp_path) -> Path:
    app = tmp_path / "app-project"
    (app / "app").mkdir(parents=True)
    (app / "settings.gradle.kts").write_text("")
    return app


def test_android_bundle_reads_and_checks_the_apps_assets_before_changing_anything(app, tmp_path, capsys):
    """Probe: a stray junk/manifest.json holding `{broken` in the app's assets ended in 'internal
    error (JSONDecodeError)' after the ExecuTorch bundle of that name had been swapped for ONNX files."""
    rc, err = _run_cli(["android", "bundle", fake_bundle(tmp_path / "et", "executorch"), "--name", "bert-tiny-fp32",
                        "--app", app], capsys)
    assert rc == 0, err
    assets = app / "app" / "src" / "main" / "assets" / "bundles"
    (assets / "junk").mkdir()
    (assets / "junk" / "manifest.json").write_text("{broken")
    before = _tree(assets)
    rc, err = _run_cli(["android", "bundle", fake_bundle(tmp_path / "onnx", "onnx"), "--name", "bert-tiny-fp32",
                        "--app", app], capsys)
    assert rc == 2 and len(err) == 1, err
    assert "junk/manifest.json" in err[0] and "internal error" not in err[0], err
    assert _tree(assets) == before  # the ExecuTorch bundle and models.json untouched
    assert sorted(p.name for p in assets.parent.iterdir()) == ["bundles"]  # nothing stray beside it


def test_android_bundle_swaps_the_assets_as_one_folder_and_keeps_the_others(app, tmp_path, capsys):
    assets = app / "app" / "src" / "main" / "assets" / "bundles"
    assert _run_cli(["android", "bundle", fake_bundle(tmp_path / "a", "executorch"), "--name", "keep",
                     "--app", app], capsys)[0] == 0
    assert _run_cli(["android", "bundle", fake_bundle(tmp_path / "b", "executorch"), "--name", "qa",
                     "--app", app], capsys)[0] == 0
    assert _run_cli(["android", "bundle", fake_bundle(tmp_path / "c", "onnx", weights="v2"), "--name", "qa",
                     "--app", app], capsys)[0] == 0
    models = json.loads((assets / "models.json").read_text())
    assert {b["name"]: b["model_file"] for b in models["bundles"]} == {"keep": "model.pte", "qa": "model.onnx"}
    assert sorted(p.name for p in (assets / "qa").iterdir()) == ["manifest.json", "model.onnx", "vocab.txt"]
    assert sorted(p.name for p in assets.parent.iterdir()) == ["bundles"]


# ------------------------------------------------------------------ --overwrite replaces only its own

def _export_out(tmp_path: Path) -> Path:
    out = tmp_path / "E"
    with atomic_output_dir(out) as tmp:
        fake_bundle(tmp / "onnx-fp32")
    return out


@pytest.mark.parametrize("foreign", ["NOTES.txt", "run1/"])
def test_overwrite_refuses_what_the_export_did_not_write_and_names_it(foreign, tmp_path, capsys):
    """Probe: a bench run written into an export folder (--out E) and a user's E/NOTES.txt were
    deleted by `export --out E --overwrite`, and nothing named them."""
    out = _export_out(tmp_path)
    if foreign.endswith("/"):
        (out / foreign).mkdir()
        (out / foreign / "bert-tiny-onnx-fp32-synthetic-fixed.json").write_text("{}")
    else:
        (out / foreign).write_text("my notes\n")
    before = _tree(out)
    rc, err = _run_cli(["export", "--model", "bert-tiny", "--target", "onnx", "--precision", "fp32",
                        "--seq-len", "64", "--out", out, "--overwrite"], capsys)
    assert rc == 2 and len(err) == 1 and foreign in err[0], err
    assert _tree(out) == before


def test_the_marker_lists_what_the_command_wrote(tmp_path):
    out = _export_out(tmp_path)
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == ["onnx-fp32"]


def test_an_existing_folder_keeps_its_mode(tmp_path):
    """Probe: an existing empty --out folder with mode 555 was replaced by a new 755 folder."""
    out = tmp_path / "ro"
    out.mkdir()
    os.chmod(out, 0o555)
    try:
        with atomic_output_dir(out) as tmp:
            (tmp / "model.onnx").write_text("x")
        assert stat.S_IMODE(out.stat().st_mode) == 0o555
        assert (out / "model.onnx").read_text() == "x"
    finally:
        os.chmod(out, 0o755)


# ------------------------------------------------------------------ files in use

def _hold(folder: Path, who: str) -> subprocess.Popen:
    """Another process holding `folder` in use, as a bench run does (until killed)."""
    code = ("import sys, time; from pocketbert.claims import in_use\n"
            f"with in_use({str(folder)!r}, {who!r}):\n    print('held', flush=True); time.sleep(120)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline().strip() == "held"
    return p


def test_an_export_that_would_replace_a_bundle_in_use_is_refused_naming_the_run(tmp_path, capsys):
    """Probe: `export ... --out live --overwrite` exited 0 while a bench was timing live's bundle."""
    out = _export_out(tmp_path)
    before = _tree(out)
    holder = _hold(out / "onnx-fp32", "bench run r12")
    try:
        rc, err = _run_cli(["export", "--model", "bert-tiny", "--target", "onnx", "--precision", "fp32",
                            "--seq-len", "64", "--out", out, "--overwrite"], capsys)
        assert rc == 2 and len(err) == 1 and "bench run r12" in err[0], err
        with pytest.raises(Exception, match="bench run r12"), atomic_output_dir(out, overwrite=True) as tmp:
            (tmp / "x").write_text("new")
        assert _tree(out) == before
    finally:
        holder.kill()
        holder.wait()
    with atomic_output_dir(out, overwrite=True) as tmp:  # the holder is gone: the replace goes ahead
        (tmp / "x").write_text("new")
    assert (out / "x").read_text() == "new"


def test_a_record_of_a_file_that_changed_while_timed_fails_naming_it(tmp_path):
    """Probe: a bench finished with `ok` records although model.onnx's sha256 changed in the middle."""
    from bench.harness import file_changed
    from bench.prepare import Prepared
    from pocketbert.common import sha256_file
    from pocketbert.contracts import Record, WorkerSpec

    model = tmp_path / "model.onnx"
    model.write_bytes(b"first model")
    rec = Record(run_id="r", model="m", runtime="onnx", precision="fp32", workload="synthetic", shape="fixed",
                 model_file_sha256=sha256_file(model))
    prepared = Prepared(rec, WorkerSpec(runtime="onnx", precision="fp32", model="m", model_path=str(model)))
    assert file_changed(prepared) == ""
    model.write_bytes(b"another model")
    why = file_changed(prepared)
    assert "changed while it was timed" in why and str(model) in why


# ------------------------------------------------------------------ flags that narrow a bundle run

def test_runtime_and_precision_narrow_a_bundle_run_or_it_is_refused(tmp_path, capsys):
    """Probe: `bench --bundle b1 --runtime executorch --precision int8` timed ExecuTorch fp32 and
    ONNX fp32 and exited 0."""
    from bench.config import BenchConfig
    from bench.planning import narrowed
    from export.bundle import read_manifest

    b1 = tmp_path / "b1"
    et, ox = fake_bundle(b1 / "executorch-fp32", "executorch"), fake_bundle(b1 / "onnx-fp32", "onnx")
    given = [(et, read_manifest(et)), (ox, read_manifest(ox))]
    assert [b for b, _ in narrowed(given, BenchConfig(runtimes=["onnx"]))] == [ox]
    assert [b for b, _ in narrowed(given, BenchConfig(precisions=["fp32"]))] == [et, ox]
    rc, err = _run_cli(["bench", "--bundle", b1, "--runtime", "executorch", "--precision", "int8",
                        "--out", tmp_path / "res", "--quiet"], capsys)
    assert rc == 2 and len(err) == 1 and "executorch fp32" in err[0] and "--precision int8" in err[0], err
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").rglob("*.json"))


# ------------------------------------------------------------------ exit codes for this invocation

def test_exit_code_speaks_for_this_invocations_runs_only(tmp_path, capsys):
    """Probe: `bench --bundle random.pte --run-id r --overwrite` exited 0 when its only run failed,
    because an earlier run's record was in the folder."""
    from tests.test_hardening import _valid_record

    run = tmp_path / "res" / "r"
    run.mkdir(parents=True)
    (run / "bert-tiny-onnx-fp32-synthetic-dynamic.json").write_text(json.dumps(_valid_record()))
    garbage = tmp_path / "random.pte"
    garbage.write_bytes(os.urandom(4096))
    rc, err = _run_cli(["bench", "--bundle", garbage, "--run-id", "r", "--overwrite", "--out", tmp_path / "res",
                        "--quiet", "--no-report"], capsys)
    assert rc == 1, err
    assert err and "every run failed (1 run(s) of this invocation)" in err[-1], err


def test_nothing_measured_counts_skips_and_empty_runs_too(capsys):
    from bench.cli import nothing_measured

    assert not nothing_measured(Path("."), [("ok", ""), ("failed", "x")])
    assert nothing_measured(Path("."), [("skipped", "executorch is not installed")])
    err = capsys.readouterr().err
    assert "none of this invocation's 1 run(s) measured anything" in err and "executorch is not installed" in err
    assert nothing_measured(Path("."), [])
    assert "nothing could be measured here" in capsys.readouterr().err


class _Interrupting:
    """A device whose first worker is interrupted (Ctrl-C / SIGTERM as the worker starts)."""

    name = "local"

    def __init__(self, exc: BaseException):
        from bench.devices.local import LocalDevice

        self.local, self.exc = LocalDevice(), exc

    def info(self):
        return self.local.info()

    def available(self, runtime):
        return self.local.available(runtime)

    def run_worker(self, spec, timeout_s=None):
        raise self.exc

    def close(self):
        pass


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), MemoryError("out of memory")], ids=["interrupt", "oom"])
def test_an_interrupted_or_failed_start_leaves_the_run_id_free(exc, tmp_path):
    """Probe: a SIGTERM during the first worker left an empty bench.log, and the same --run-id was
    then refused; the same after an out-of-memory 'internal error'."""
    from bench.config import BenchConfig
    from bench.harness import run_bench

    cfg = BenchConfig(models=["bert-tiny"], runtimes=["pytorch"], precisions=["fp32"], shapes=["dynamic"],
                      out=tmp_path / "res", run_id="r", quiet=True, limit=2, seq_len=32)
    for _ in range(2):  # the second start is not refused: the run id stayed free
        with pytest.raises(type(exc)):
            run_bench(cfg, device=_Interrupting(exc), log=lambda m: None)
        assert not (tmp_path / "res" / "r").exists()


def test_a_worker_is_started_in_its_own_session_and_stopped_without_a_traceback(tmp_path):
    """Probe: a Ctrl-C as the next bench worker starts printed a 10-line worker traceback (2 of 3
    tries). Here the terminal's Ctrl-C (SIGINT to the whole process group) lands while the worker
    imports its runtime."""
    code = """
import sys
from bench.devices.local import LocalDevice
from pocketbert.contracts import WorkerSpec
spec = WorkerSpec(runtime="onnx", precision="fp32", model="bert-tiny")
print("start", flush=True)
try:
    LocalDevice().run_worker(spec)
except KeyboardInterrupt:
    print("stopped", flush=True)
    sys.exit(130)
"""
    for delay in (0.2, 0.6, 1.2):
        p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert p.stdout.readline().strip() == "start"
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        out, err = p.communicate(timeout=60)
        assert "Traceback" not in err, f"after {delay} s:\n{err}"


# ------------------------------------------------------------------ bounded readers, one line each

def _report_folder(tmp_path: Path) -> Path:
    from tests.test_hardening import _valid_record

    run = tmp_path / "run"
    run.mkdir()
    (run / "good.json").write_text(json.dumps(_valid_record()))
    return run


def _deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize("case", ["folder", "fifo", "huge", "deep", "no-status", "no-machine", "no-tokens",
                                  "tokens-not-object"])
def test_report_on_a_bad_record_file_is_one_line_naming_it(case, tmp_path, capsys):
    """Probe: some files named *.json in a report folder made `report` block or read without
    limit; a record missing status/machine/tokens, a folder named *.json or deeply nested JSON
    ended in 'internal error'."""
    from tests.test_hardening import _valid_record

    run = _report_folder(tmp_path)
    bad = run / "bad.json"
    rec = _valid_record()
    if case == "folder":
        bad.mkdir()
        (bad / "x").write_text("")
    elif case == "fifo":
        os.mkfifo(bad)
    elif case == "huge":
        with open(bad, "wb") as f:
            f.truncate(200 << 20)  # sparse: no disk used
    elif case == "deep":
        bad.write_text(_deep(100000))
    elif case.startswith("no-"):
        rec.pop(case[3:], None)
        bad.write_text(json.dumps(rec))
    elif case == "tokens-not-object":
        bad.write_text(json.dumps({**rec, "tokens": [1, 2]}))
    rc, err = _run_cli(["report", run, "--out", tmp_path / "rep"], capsys)
    assert len(err) <= 1 and not any("internal error" in e for e in err), err
    if case in ("folder", "no-status", "no-machine", "no-tokens"):  # not a record / optional: defaults filled in
        assert rc == 0, err
    else:
        assert rc == 2 and "bad.json" in err[0], err
        if "tokens" in case:
            assert "tokens" in err[0], err
    assert not list((tmp_path / "rep").glob(".*.tmp")) if (tmp_path / "rep").exists() else True


@pytest.mark.parametrize("content,field", [("{broken", "not valid JSON"), ("[]", "expected a JSON object"),
                                           ('{"other": 1}', "'config'"), ('{"config": 5}', "'config'"),
                                           ('{"config": {"lr": "fast"}}', "'lr'"),
                                           ('{"config": {"no_such_knob": 1}}', "'no_such_knob'"),
                                           (_deep(5000), "nests deeper")])
def test_distill_resume_with_a_malformed_config_json_is_one_line(content, field, tmp_path, capsys):
    """Probe: a malformed config.json on `distill --resume` ended in 'internal error'."""
    out = tmp_path / "d"
    out.mkdir()
    (out / "config.json").write_text(content)
    rc, err = _run_cli(["distill", "--out", out, "--resume", "--no-progress"], capsys)
    assert rc == 2 and len(err) == 1 and "config.json" in err[0] and field in err[0], err


# ------------------------------------------------------------------ through the real CLI (heavy: exports and benches)

def _env(tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}


def _pocketbert(*args) -> list[str]:
    return [sys.executable, "-m", "pocketbert.cli", *map(str, args)]


EXPORT = ("export", "--model", "bert-tiny", "--target", "onnx", "--precision", "fp32", "--seq-len", "64")


@pytest.mark.heavy
def test_a_running_bench_holds_its_bundle_against_an_export_overwrite(tmp_path):
    """Probe: `bench --bundle live --rounds 12` running; 2 s later `export ... --out live
    --overwrite` exited 0 and the bench failed every run (or recorded `ok` for a changed file)."""
    from pocketbert.claims import users_of

    live = tmp_path / "live"
    subprocess.run(_pocketbert(*EXPORT, "--out", live), check=True, env=_env(tmp_path), capture_output=True)
    before = _tree(live)
    bench = subprocess.Popen(_pocketbert("bench", "--bundle", live, "--rounds", "12", "--out", tmp_path / "res",
                                         "--run-id", "r12", "--quiet", "--no-report", "--limit", "4", "--seq-len", "64"),
                             env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not users_of(live):
            assert bench.poll() is None, bench.communicate()
            assert time.monotonic() - t0 < 240
            time.sleep(0.1)
        export = subprocess.run(_pocketbert(*EXPORT, "--out", live, "--overwrite"), env=_env(tmp_path),
                                capture_output=True, text=True)
        err = [line for line in export.stderr.splitlines() if line.strip()]
        assert export.returncode == 2 and len(err) == 1 and "bench run r12" in err[0], export.stderr
        out, err = bench.communicate(timeout=600)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert bench.returncode == 0, err
    assert _tree(live) == before
    records = [json.loads(p.read_text()) for p in (tmp_path / "res" / "r12").glob("*.json")]
    assert records and all(r["status"] == "ok" for r in records)
    sha = json.loads((live / "onnx-fp32" / "manifest.json").read_text())["files"]["model.onnx"]["sha256"]
    assert {r["model_file_sha256"] for r in records} == {sha}


@pytest.mark.heavy
def test_two_benches_sharing_a_bundle_cache_export_once_and_leave_nothing_behind(tmp_path):
    """Probe: two benches sharing --bundle-cache left an `.export-PID` folder."""
    cache = tmp_path / "cache"
    procs = [subprocess.Popen(_pocketbert("bench", "--model", "bert-tiny", "--runtime", "onnx", "--precision", "fp32",
                                          "--shape", "fixed", "--seq-len", "64", "--limit", "2", "--bundle-cache", cache,
                                          "--out", tmp_path / f"res{i}", "--quiet", "--no-report"),
                              env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    left = [str(p.relative_to(cache)) for p in cache.rglob(".*") if not p.name.endswith(".pocketbert-lock")]
    assert left == []
    assert len(list(cache.rglob("manifest.json"))) == 1
