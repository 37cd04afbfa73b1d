"""The harness end to end: every runtime runs a tiny exported bundle in a worker subprocess,
records are written and rendered; bad bundles and Ctrl-C keep their promises."""

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.harness import BenchConfig, run_bench
from bench.records import load_records
from bench.report import render_report
from export.bundle import read_manifest
from pocketbert.backends import get_runtime
from pocketbert.common import UsageError

pytestmark = pytest.mark.heavy  # every runtime exported and timed through run_bench

SEQ = 32


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """distilbert-tiny over every runtime x fp32/int8, real length, 4 synthetic items."""
    root = tmp_path_factory.mktemp("bench")
    cfg = BenchConfig(models=["distilbert-tiny"], precisions=["fp32", "int8"], shapes=["dynamic"],
                      seq_len=SEQ, threads=1, warmup=1, limit=4, out=root, run_id="tiny", quiet=True,
                      overhead_check=True)
    out = run_bench(cfg, log=lambda *a: None)
    return root, out, cfg


def test_every_runtime_runs_a_tiny_bundle(tiny_run):
    root, out, _ = tiny_run
    records = {(r.runtime, r.precision): r.to_dict() for r in load_records([out])}
    for key in [("pytorch", "fp32"), ("pytorch", "int8"), ("onnx", "fp32"), ("onnx", "int8"),
                ("executorch", "fp32"), ("executorch", "int8")]:
        r = records[key]
        assert r["status"] == "ok", (key, r["reason"])
        assert len(r["latency_ms"]) == r["n_items"] == 4
        assert r["threads"] == 1 and r["threads_effective"] == 1  # ExecuTorch's pool included
        if key[0] == "executorch":  # its GEMM probe runs XNNPACK, the kernels its rows run on
            assert r["trust"]["gemm_library"] == "executorch" and r["trust"]["peak_kind"] == key[1]
        assert r["parameters"]["total"] > r["parameters"]["non_embedding"] > 0
        assert r["model_file_bytes"] > 0 and r["peak_rss_mb"] > r["baseline_rss_mb"] > 0
        # the runtime's imports are timed apart from the model's load (how far apart is a measurement:
        # scripts/bench_targets.py); every runtime names what it imports before the load clock
        assert r["load_ms"] > 0 and r["first_inference_ms"] > 0 and r["import_ms"] > 0
        assert get_runtime(key[0]).runtime_modules
        assert r["stats"]["latency_ms"]["p50"] > 0 and r["achieved_gflops"] > 0
        assert r["tokens"]["padding_waste"] == 0.0  # real length
        assert r["harness_overhead"]["bare_loop_s"] > 0 and r["harness_overhead"]["null_loop_s"] > 0
        assert r["harness_overhead"]["overhead_fraction"] > 0  # how small is a figure of the machine's load
        assert r["machine"]["physical_cores"] >= 1 and r["versions"]["torch"]
        if key in (("onnx", "int8"), ("executorch", "int8")):  # the bench exports one int8 build, no
            # auto choice (it would build and time both modes: +100 s of a main job's exports)
            notes = read_manifest(Path(r["bundle"])).notes
            assert notes["int8_mode"] == "dynamic" and "int8_choice" not in notes, notes
    coreml = records[("coreml", "fp32")]
    if coreml["status"] != "ok":
        assert coreml["status"] == "skipped" and "macOS" in coreml["reason"]
    # Same inputs and (seeded) weights everywhere: fp32 runtimes find the same answers.
    assert records[("onnx", "fp32")]["answers_sample"] == records[("executorch", "fp32")]["answers_sample"]
    assert records[("onnx", "fp32")]["answers_sample"] == records[("pytorch", "fp32")]["answers_sample"]
    for name in ("report.md", "results.csv", "latency_distribution.png", "size_vs_latency.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "distilbert-tiny-onnx-int8-synthetic-dynamic.json").is_file()


def test_fixed_shape_from_given_bundles_and_merged_report(tiny_run, tmp_path):
    root, out, cfg = tiny_run
    bundle = root / "bundles" / f"distilbert-tiny-question-answering-s{SEQ}" / "onnx-fp32"
    cfg2 = BenchConfig(bundles=[bundle], shapes=["fixed"], seq_len=SEQ, threads=1, warmup=0, limit=4,
                       out=tmp_path, run_id="other-machine", quiet=True, report=False)
    out2 = run_bench(cfg2, log=lambda *a: None)
    rec = load_records([out2])[0].to_dict()
    assert rec["runtime"] == "onnx" and rec["shape"] == "fixed" and rec["model"] == "distilbert-tiny"
    assert rec["tokens"]["fed"] == 4 * SEQ and rec["tokens"]["padding_waste"] >= 0
    # Records from two runs (say, two machines) merge into one report.
    written = render_report([out, out2], tmp_path / "merged")
    csv = (tmp_path / "merged" / "results.csv").read_text().splitlines()
    assert len(csv) == 1 + 6 + 1  # header + 6 measured runs + the fixed one
    assert any(p.name == "report.md" for p in written)
    rows = [[c.strip() for c in line.split("|")][1:6] for line in (tmp_path / "merged" / "report.md").read_text().splitlines()]
    assert ["distilbert-tiny", "onnx", "fp32", "synthetic", "fixed"] in rows


def test_tampered_bundle_is_a_one_line_error(tiny_run, tmp_path):
    root, _, _ = tiny_run
    src = root / "bundles" / f"distilbert-tiny-question-answering-s{SEQ}" / "onnx-int8"
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    with open(bad / "model.onnx", "ab") as f:
        f.write(b"\0")
    cfg = BenchConfig(bundles=[bad], out=tmp_path / "res", quiet=True)
    with pytest.raises(UsageError, match="does not match its sha256"):
        run_bench(cfg, log=lambda *a: None)
    assert not (tmp_path / "res").exists()  # refused before any folder or record was made


class InterruptingDevice:
    """A Device whose third worker is interrupted (Ctrl-C) mid-run."""

    name = "fake"

    def __init__(self):
        self.calls = 0

    def info(self):
        return {"device": "fake", "cpu_model": "test", "physical_cores": 1, "load_avg_1m": 0.0}

    def available(self, runtime):
        from pocketbert.backends import get_runtime

        return get_runtime(runtime).available()

    def close(self):
        pass

    def run_worker(self, spec, timeout_s=None):
        from pocketbert.contracts import WorkerResult

        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt
        n = 3
        return WorkerResult(load_ms=1.0, first_inference_ms=2.0, latency_ms=[1.0] * n, postprocess_ms=[0.1] * n,
                            loop_s=0.01, bare_loop_s=None, threads_effective=1, baseline_rss_mb=10.0,
                            peak_rss_mb=20.0, model_bytes=1000)


def test_ctrl_c_keeps_records_already_written(tmp_path):
    cfg = BenchConfig(models=["distilbert-tiny"], runtimes=["pytorch"], precisions=["fp32", "int8"],
                      shapes=["fixed", "dynamic"], seq_len=SEQ, threads=1, limit=3, out=tmp_path,
                      run_id="r", quiet=True)
    with pytest.raises(KeyboardInterrupt):
        run_bench(cfg, device=InterruptingDevice(), log=lambda *a: None)
    files = sorted(p.name for p in (tmp_path / "r").glob("*.json"))
    assert files == ["distilbert-tiny-pytorch-fp32-synthetic-dynamic.json",
                     "distilbert-tiny-pytorch-fp32-synthetic-fixed.json"]
    for f in files:
        json.loads((tmp_path / "r" / f).read_text())  # complete, valid JSON


def test_unavailable_runtime_is_a_skipped_record(tmp_path, monkeypatch):
    import dataclasses

    from pocketbert.backends import RUNTIMES, get_runtime

    monkeypatch.setitem(RUNTIMES, "onnx", dataclasses.replace(
        get_runtime("onnx"), available=lambda: (False, "not installed: onnxruntime")))
    cfg = BenchConfig(models=["distilbert-tiny"], runtimes=["onnx"], precisions=["fp32"], shapes=["fixed"],
                      seq_len=SEQ, threads=1, limit=2, out=tmp_path, run_id="r", quiet=True)
    out = run_bench(cfg, device=InterruptingDevice(), log=lambda *a: None)
    rec = load_records([out])[0].to_dict()
    assert rec["status"] == "skipped" and rec["reason"] == "onnx not installed: onnxruntime"
    assert "not installed" in (out / "report.md").read_text()


def test_worker_peak_rss_is_its_own_not_the_parents():
    import subprocess
    import sys

    ballast = bytearray(512 << 20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # touch every page: the parent's RSS is now > 512 MB
    out = subprocess.run([sys.executable, "-c", "from bench.worker import _peak_rss_mb; print(_peak_rss_mb())"],
                         capture_output=True, text=True, check=True)
    assert float(out.stdout) < 300  # ru_maxrss would report the parent's > 512 MB after fork+exec
    del ballast


# The tool's own console lines (and progress-bar fragments); anything else is library noise.
OWN_LINE = re.compile(r"^(machine: |library output |distilbert-tiny on |exporting |  exported |report: |export: |"
                      r"  (pytorch|onnx|executorch|coreml) +(fp32|int8) |  distilbert-tiny \S+ \S+: noisy|"
                      r"distilbert-tiny \S+-\S+ (fixed|dynamic): +\d+%\||\s*$)")


def test_console_shows_only_the_tools_lines(tiny_run, tmp_path):
    """`pocketbert bench` as a user runs it: library warnings and C++ logging of the exports (in the
    parent) and of every worker go to <run>/bench.log, not to the console."""
    import subprocess
    import sys

    root, _, _ = tiny_run
    cache = tmp_path / "cache"
    src = root / "bundles" / f"distilbert-tiny-question-answering-s{SEQ}"
    for name in ("executorch-fp32", "executorch-int8"):  # reuse the slow exports; ONNX exports here
        shutil.copytree(src / name, cache / src.name / name)
    shutil.copytree(root / "bundles" / "probes", cache / "probes")  # and ExecuTorch rows' GEMM probes
    proc = subprocess.run([sys.executable, "-m", "pocketbert.cli", "bench", "--model", "distilbert-tiny",
                           "--runtime", "pytorch", "onnx", "executorch", "--precision", "fp32", "int8",
                           "--shape", "dynamic", "--seq-len", str(SEQ), "--limit", "2", "--threads", "1",
                           "--warmup", "0", "--out", str(tmp_path / "res"), "--run-id", "r",
                           "--bundle-cache", str(cache)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = proc.stdout + proc.stderr
    noise = [line for line in re.split(r"[\r\n]", console) if not OWN_LINE.match(line)]
    assert not noise, noise
    assert re.search(rf"exporting 2 bundle\(s\), \d+ at a time \(cached under {re.escape(str(cache))} ", console)
    assert console.count("library output (warnings, C++ logging): ") == 1
    log = (tmp_path / "res" / "r" / "bench.log").read_text()
    assert "executorch-int8 dynamic (round worker, attempt 1)" in log  # each worker's output is kept there


def test_the_main_job_runs_its_pairs_and_flags_run_every_pair():
    """No --runtime/--precision: the main job's pairs (ExecuTorch fp32 and PyTorch int8 are not
    exported or timed: ~1 min of its ~5); either flag: every runtime x precision, the other flag's default."""
    from bench.bundles import export_jobs
    from bench.cli import config_from_args
    from bench.devices.local import LocalDevice
    from bench.planning import exports_needed, plan_runs
    from bench.workloads import parse_spec
    from pocketbert.backends import main_job, runtime_names
    from pocketbert.cli import build_parser

    def pairs(*flags):
        cfg = config_from_args(build_parser().parse_args(["bench", *flags]))
        [runs] = plan_runs(cfg, parse_spec("synthetic")[0], []).values()
        return cfg, runs, sorted({(r.runtime, r.precision) for r in runs})

    cfg, runs, main = pairs()
    assert main == sorted(main_job()) == sorted([("pytorch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"),
                                               ("executorch", "int8"), ("coreml", "int8")])
    assert {r.shape for r in runs} == {"fixed", "dynamic"}
    exports = [(j.get("target"), j.get("precision"), j.get("probe")) for j in
               export_jobs(exports_needed(runs, cfg, LocalDevice()))]
    assert exports == [("executorch", "int8", None), ("onnx", "int8", None), (None, None, ["int8"]),
                       ("onnx", "fp32", None)]  # coreml: macOS only; no ExecuTorch fp32, no fp32 probe
    assert pairs("--runtime", "onnx", "pytorch")[2] == sorted(
        [("onnx", "fp32"), ("onnx", "int8"), ("pytorch", "fp32"), ("pytorch", "int8")])
    assert pairs("--precision", "fp32")[2] == sorted((r, "fp32") for r in runtime_names())
    assert pairs("--runtime", "executorch", "--precision", "fp32", "int8")[2] == [
        ("executorch", "fp32"), ("executorch", "int8")]
