"""A runtime is one file: this test file defines a complete extra runtime — ONNX Runtime with every
graph optimization off, under its own name, loading the files of the `onnx` export target — and
runs bench -> report on bert-tiny through the normal CLI. It registers no export target: the bench
exports the onnx bundle it loads. No other file of the project knows the name `ort-noopt`: the CLI
finds it through POCKETBERT_PLUGINS, in this process and in every benchmark worker."""

from __future__ import annotations

import pytest
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pocketbert.backends import LoadRequest, Runtime, installed, register

pytestmark = pytest.mark.heavy  # bench and report through the CLI

NAME = "ort-noopt"


def load_noopt(req: LoadRequest):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if req.threads:
        opts.intra_op_num_threads = req.threads
    session = ort.InferenceSession(str(req.model_path), opts, providers=["CPUExecutionProvider"])

    def run(feeds):
        return session.run(None, {n: np.asarray(feeds[n], dtype=np.int64) for n in req.input_names})

    return run, {"threads_effective": req.threads}


RUNTIME = Runtime(name=NAME, precisions=("fp32", "int8"), load=load_noopt, target="onnx",
                  available=installed("onnxruntime"), description="ORT, graph optimizations off (test)")
if __name__.startswith("pocketbert_plugin_"):  # loaded as a plugin (the CLI runs below), not by pytest's
    register(RUNTIME)                            # collection: other tests see only the built-in records


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "POCKETBERT_PLUGINS": str(Path(__file__).resolve()),
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pocketbert.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_runtime_defined_in_one_file_runs_bench_and_report(tmp_path):
    proc = _cli("bench", "--model", "bert-tiny", "--runtime", NAME, "onnx", "--precision", "fp32", "--shape",
                "dynamic", "--seq-len", "32", "--limit", "3", "--threads", "1", "--warmup", "0",
                "--out", str(tmp_path / "r"), "--run-id", "made", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = {p.name: json.loads(p.read_text()) for p in (tmp_path / "r" / "made").glob("*.json")}
    mine = records[f"bert-tiny-{NAME}-fp32-synthetic-dynamic.json"]
    onnx = records["bert-tiny-onnx-fp32-synthetic-dynamic.json"]
    assert mine["status"] == "ok" and len(mine["latency_ms"]) == 3
    assert mine["bundle"] == onnx["bundle"] and Path(mine["bundle"]).name == "onnx-fp32"  # one export, both load it
    assert mine["answers_sample"] == onnx["answers_sample"]  # same file, same answers
    proc = _cli("report", str(tmp_path / "r" / "made"), "--out", str(tmp_path / "rep"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = re.sub(" +", " ", (tmp_path / "rep" / "report.md").read_text())  # cells padded to their width
    assert f"| bert-tiny | {NAME} | fp32 | synthetic | dynamic |" in report
    # a runtime is not an export target: export refuses it, listing the targets
    proc = _cli("export", "--model", "bert-tiny", "--target", NAME, "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert proc.returncode == 2 and "onnx" in proc.stderr and "Traceback" not in proc.stderr
    # and an unknown runtime still fails listing the valid ones, the plugin's among them
    proc = _cli("bench", "--runtime", "nope", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert proc.returncode == 2 and NAME in proc.stderr and "Traceback" not in proc.stderr
