"""The bench's exports run side by side in their own processes before any timing; an interrupted run
leaves no export process behind and no bundle that looks complete."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.bundles import bundle_dir, export_jobs, export_missing
from export.bundle import MANIFEST, read_manifest

ROOT = Path(__file__).resolve().parents[1]


def _wanted(precisions):
    return [{"model": "bert-tiny", "task": "question-answering", "target": "onnx", "precision": p,
             "seq_len": 32, "tokenizer": None, "onnx_optimize": False} for p in precisions]


def _exporters(tag: str) -> list[int]:
    """pids of live `python -m bench.bundles` processes whose arguments mention `tag`."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "bench.bundles" in cmd and tag in cmd:
                pids.append(int(d.name))
    return pids


@pytest.mark.heavy
def test_missing_bundles_are_exported_side_by_side_and_cached(tmp_path):
    lines = []
    export_missing(tmp_path, _wanted(["fp32", "int8"]), jobs=2, log_path=tmp_path / "bench.log",
                   log=lines.append, progress=False)
    assert lines == [f"exporting 2 bundle(s), 2 at a time (cached under {tmp_path} for later runs)"]
    for p in ("fp32", "int8"):
        m = read_manifest(bundle_dir(tmp_path, "bert-tiny", "question-answering", "onnx", p, 32), verify=True)
        assert m.precision == p and m.parity["status"] == "passed"
    lines.clear()
    export_missing(tmp_path, _wanted(["fp32", "int8"]), jobs=2, log=lines.append, progress=False)
    assert lines == []  # cached: nothing to do


@pytest.mark.heavy
def test_meanwhile_runs_once_while_the_exports_run(tmp_path):
    """The caller's own work (tokenizing the workload) overlaps the exports instead of following them."""
    seen = []

    def meanwhile():  # a just-forked exporter shows its cmdline once it has exec'd: give it a moment
        t0 = time.monotonic()
        while not _exporters(str(tmp_path)) and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        seen.append(_exporters(str(tmp_path)))

    export_missing(tmp_path, _wanted(["fp32"]), jobs=2, log=lambda *a: None, progress=False, meanwhile=meanwhile)
    assert len(seen) == 1 and seen[0], "meanwhile ran with no export process alive"
    assert (bundle_dir(tmp_path, "bert-tiny", "question-answering", "onnx", "fp32", 32) / MANIFEST).is_file()
    export_missing(tmp_path, _wanted(["fp32"]), jobs=2, log=lambda *a: None, progress=False,
                   meanwhile=lambda: seen.append("cached"))
    assert seen[1:] == ["cached"]  # nothing to export: it simply runs


def test_the_longest_export_starts_first_and_the_probes_share_a_process():
    # the main job's wanted list, in the plan's order (bench.planning.exports_needed)
    et = [{**w, "target": "executorch"} for w in _wanted(["fp32", "int8"])]
    wanted = [{"probe": "fp32", "runtime": "executorch"}, et[0], {"probe": "int8", "runtime": "executorch"}, et[1],
              *_wanted(["fp32", "int8"])]
    jobs = export_jobs(wanted)
    assert [(j.get("target"), j.get("precision")) for j in jobs] == [
        ("executorch", "int8"), ("executorch", "fp32"), ("onnx", "int8"), (None, None), ("onnx", "fp32")]
    assert jobs[3] == {"probe": ["fp32", "int8"], "runtime": "executorch"}  # both probe programs in one process


def test_an_interrupted_bench_leaves_no_export_running(tmp_path):
    out = tmp_path / "res"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pocketbert.cli", "bench", "--model", "bert-tiny", "--runtime",
                             "onnx", "--seq-len", "32", "--limit", "2", "--quiet", "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not _exporters(str(out)) and time.monotonic() - t0 < 120:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        assert _exporters(str(out)), "no export process started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    deadline = time.monotonic() + 10  # the stopped exporters' exit is not instant on a loaded machine
    while _exporters(str(out)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _exporters(str(out)) == []
    assert not list((out / "bundles").glob(f"*/*/{MANIFEST}"))  # no bundle that looks complete
