"""An export target is one file: this test file defines a complete extra export target — plain
(unfused) ONNX graphs, under its own name, run by the built-in `onnx` runtime — and runs export ->
parity -> bench on bert-tiny through the normal CLI. It registers no runtime: parity and the bench
load its files in the runtime its record names. No other file of the project knows `onnx-plain`."""

from __future__ import annotations

import pytest
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from export.targets import ExportTarget, register

pytestmark = pytest.mark.heavy  # export, parity and bench through the CLI

NAME = "onnx-plain"


def export_plain(loaded, precision, cfg, calibration, bundle, log=print):
    from export.targets.onnx import export_onnx

    return export_onnx(loaded, precision, dataclasses.replace(cfg, onnx_fuse=False), calibration, bundle, log=log)


TARGET = ExportTarget(name=NAME, precisions=("fp32",), export=export_plain, runtime="onnx",
                      description="ONNX, the exporter's plain ops (test)")
if __name__.startswith("pocketbert_plugin_"):  # loaded as a plugin (the CLI runs below), not by pytest's
    register(TARGET)                             # collection: other tests see only the built-in records


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "POCKETBERT_PLUGINS": str(Path(__file__).resolve()),
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pocketbert.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_an_export_target_defined_in_one_file_runs_export_parity_bench(tmp_path):
    from export.targets.onnx import _has_contrib_ops

    proc = _cli("export", "--model", "bert-tiny", "--target", NAME, "--precision", "fp32", "--seq-len", "32",
                "--parity-samples", "3", "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    bundle = tmp_path / "b" / f"{NAME}-fp32"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["target"] == NAME and manifest["parity"]["status"] == "passed"  # run in the onnx runtime
    assert manifest["parity"]["max_abs_diff"] < 1e-4
    assert not _has_contrib_ops(bundle / manifest["model_file"])  # its own build: no fused ops
    proc = _cli("bench", "--bundle", str(tmp_path / "b"), "--shape", "dynamic", "--limit", "3", "--threads", "1",
                "--warmup", "0", "--out", str(tmp_path / "r"), "--run-id", "given", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "r" / "given").glob("*.json")]
    assert record["status"] == "ok" and record["runtime"] == "onnx" and len(record["latency_ms"]) == 3
    # a target is not a runtime: the bench refuses it, listing the runtimes
    proc = _cli("bench", "--runtime", NAME, "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert proc.returncode == 2 and "onnx" in proc.stderr and "Traceback" not in proc.stderr
