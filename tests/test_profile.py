"""`bench --profile`: each runtime's own profiler, its events grouped into the same classes for every
runtime (pocketbert/profile.py), carried by the record and drawn by the report."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from pocketbert.backends import LoadRequest, get_runtime
from pocketbert.common import UsageError
from pocketbert.contracts import Profile
from pocketbert.profile import CLASSES, build_profile, classify, profile_run



@pytest.mark.parametrize("op, cls", [
    ("MatMulInteger", "int8 GEMM"), ("DynamicQuantizeMatMul", "int8 GEMM"), ("MatMulIntegerToFloat", "int8 GEMM"),
    ("quantized::linear_dynamic", "int8 GEMM"), ("MatMul", "fp32 GEMM"), ("aten::addmm", "fp32 GEMM"),
    ("aten::bmm", "fp32 GEMM"), ("MultiHeadAttention", "attention"), ("QAttention", "attention"),
    ("aten::_scaled_dot_product_flash_attention_for_cpu", "attention"), ("aten::_softmax", "attention"),
    ("SkipLayerNormalization", "normalisation"), ("aten::native_layer_norm", "normalisation"),
    ("BiasGelu", "activation"), ("aten::gelu", "activation"), ("Gather", "embedding/gather"),
    ("EmbedLayerNormalization", "embedding/gather"), ("aten::embedding", "embedding/gather"),
    ("Reshape", "data movement"), ("aten::copy_", "data movement"), ("DynamicQuantizeLinear", "data movement"),
    ("native_call_permute_copy.out", "data movement"), ("Add", "other"), ("aten::add", "other"),
    # XNNPACK's own names, inside ExecuTorch's delegate (ETDump): the data types say int8 or fp32
    ("Fully Connected (NC, F32) GEMM", "fp32 GEMM"), ("Fully Connected (NC, QD8, F32, QC8W) GEMM", "int8 GEMM"),
    ("Batch Matrix Multiply (NC, F32)", "fp32 GEMM"), ("Batch Matrix Multiply (NC, QD8, F32, QC8W)", "int8 GEMM"),
    ("Convert (NC, F32, QD8)", "data movement"), ("Softmax (NC, F32)", "attention"),
    ("Transpose (ND, X32)", "data movement"), ("GELU (NC, F32)", "activation"), ("Add (ND, F32)", "other"),
    ("Mean (ND) Reduce2", "normalisation"), ("Mean Squared (ND) Reduce2", "normalisation"),
    ("Reciprocal Square Root (NC)", "normalisation")])
def test_every_runtimes_operators_fall_into_the_same_classes(op, cls):
    assert classify(op) == cls


def test_a_profile_is_its_events_grouped_and_the_contract_checks_it():
    p = build_profile("t", [("MatMul", 2.0), ("MatMul", 1.0), ("Add", 0.5), ("Gather", 0.5)], calls=2, wall_ms=5.0)
    assert list(p.classes_ms) == list(CLASSES) and p.events_ms == 4.0
    assert p.classes_ms["fp32 GEMM"] == 3.0 and p.classes_pct["fp32 GEMM"] == 75.0
    assert p.ops_ms == {"MatMul": 3.0, "Add": 0.5, "Gather": 0.5}
    assert Profile.from_dict(p.to_dict(), "r") == p
    for bad in ({"classes_pct": {"fp32 GEMM": 175.0}}, {"classes_ms": {"tensor cores": 1.0}},
                {"events_ms": 9.0}, {"status": "fine"}, {"wall_ms": -1.0}):
        with pytest.raises(UsageError) as e:
            Profile.from_dict({**p.to_dict(), **bad}, "r.json")
        assert "profile" in str(e.value) and "\n" not in str(e.value)


def _check(p, tool: str, calls: int) -> Profile:
    """A real profile: read back through the contract, classes summing to the events, the events some
    of the pass's wall time and never more (how much is a figure of the machine's load, which the
    bench reports as profile.events_ms / wall_ms; a share bound here failed under load)."""
    prof = Profile.from_dict(p.to_dict() if isinstance(p, Profile) else p, "record")
    assert prof.status == "ok" and prof.tool == tool and prof.calls == calls, p
    assert sum(prof.classes_ms.values()) == pytest.approx(prof.events_ms, abs=1e-3)  # each rounded to 0.1 us
    assert sum(prof.classes_pct.values()) == pytest.approx(100, abs=0.1)
    assert 0 < prof.events_ms <= prof.wall_ms, (prof.events_ms, prof.wall_ms)
    return prof


def _ids_onnx(path: Path) -> Path:
    """ids -> Gather (embedding) -> MatMul -> + skip, LayerNormalization: a model of int64 ids with a
    ~100 MFLOP call at 384 tokens (per-call overhead small beside it, as in a real model)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((64, 512)).astype(np.float32), "table"),
             numpy_helper.from_array(rng.standard_normal((512, 512)).astype(np.float32), "W"),
             numpy_helper.from_array(np.ones(512, np.float32), "gamma"),
             numpy_helper.from_array(np.zeros(512, np.float32), "beta")]
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["e"]), helper.make_node("MatMul", ["e", "W"], ["h"]),
             helper.make_node("Add", ["h", "e"], ["s"]),
             helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "seq"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", 512])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_onnx_runtime_profile_of_a_real_session(tmp_path):
    rt = get_runtime("onnx")
    req = LoadRequest(["input_ids"], 1, _ids_onnx(tmp_path / "m.onnx"))
    runner, _ = rt.load(req)
    calls = [{"input_ids": np.arange(n, dtype=np.int64)[None] % 64} for n in (128, 256, 384, 384)]
    prof = _check(profile_run(rt, req, runner, calls, tmp_path), "onnxruntime profiler", 4)
    assert prof.ops_ms.keys() == {"Gather", "MatMul", "SkipLayerNormalization"}  # ORT fused Add + LayerNorm
    assert prof.classes_ms["embedding/gather"] > 0 and prof.classes_ms["fp32 GEMM"] > 0
    assert prof.classes_ms["normalisation"] > 0 and prof.classes_ms["int8 GEMM"] == 0
    assert list(tmp_path.glob("ort-profile*.json"))  # the runtime's own trace, in the worker's folder


def test_pytorch_profile_of_the_tiny_model():
    rt = get_runtime("pytorch")
    req = LoadRequest(["input_ids", "attention_mask", "token_type_ids"], 1, model="bert-tiny", precision="int8")
    runner, _ = rt.load(req)
    calls = [{n: np.ones((1, 32), dtype=np.int64) for n in req.input_names} for _ in range(3)]
    prof = _check(profile_run(rt, req, runner, calls, None), "torch.profiler", 3)
    assert prof.classes_ms["int8 GEMM"] > 0 and prof.classes_ms["fp32 GEMM"] == 0  # every linear is int8
    assert prof.classes_ms["attention"] > 0 and prof.classes_ms["normalisation"] > 0


def _event(name, raw, delegated=False):
    from types import SimpleNamespace

    return SimpleNamespace(name=name, perf_data=SimpleNamespace(raw=raw), is_delegated_op=delegated)


def test_an_etdumps_events_count_each_operators_time_once():
    """ExecuTorch 1.5's ETDump, as its Inspector reads it: OPERATOR_CALL wraps each kernel call (the
    kernel is its native_call event inside), DELEGATE_CALL wraps XNNPACK's own operator events, and the
    method's span wraps everything: only the operators count, the warm-up sample (the first) dropped."""
    pytest.importorskip("executorch")
    from pocketbert.backends.executorch import etdump_rows

    events = [_event("Method::init", [9.0]), _event("native_call_embedding.out", [5.0, 1.0, 1.0]),
              _event("OPERATOR_CALL", [6.0, 1.5, 1.5]), _event("Fully Connected (NC, F32) GEMM #1", [3.0, 2.0, 2.0], True),
              _event("Fully Connected (NC, F32) GEMM #2", [3.0, 1.0, 1.0], True), _event("DELEGATE_CALL", [7.0, 3.5, 3.5]),
              _event("Method::execute", [20.0, 6.0, 6.0]), _event("native_call_native_layer_norm.out", [1.0, 0.5, 0.5])]
    rows, inside = etdump_rows(events)
    assert inside and rows == [("native_call_embedding.out", 2.0), ("Fully Connected (NC, F32) GEMM", 4.0),
                               ("Fully Connected (NC, F32) GEMM", 2.0), ("native_call_native_layer_norm.out", 1.0)]
    p = build_profile("ETDump + Inspector", rows, 2, 20.0)
    assert p.events_ms == 9.0 and p.classes_ms["fp32 GEMM"] == 6.0 and p.ops_ms["Fully Connected (NC, F32) GEMM"] == 6.0
    rows, inside = etdump_rows([e for e in events if not e.is_delegated_op])  # a build without XNNPACK's events
    assert not inside and ("DELEGATE_CALL", 7.0) in rows  # the delegate's calls are then the time it took


def test_executorch_profile_from_its_etdump_or_why_not(tmp_path):
    """ExecuTorch's own profile: 1.5's PyPI wheels record an ETDump with XNNPACK's operators inside the
    delegate; up to 1.4 the wheels' runtime is built without the event tracer, and the profile says so
    (naming the release) instead of inventing numbers."""
    pytest.importorskip("executorch")
    import torch
    from packaging.version import Version
    from torch.export import export

    from export.targets.executorch import lower_to_xnnpack
    from pocketbert.backends.executorch import executorch_version

    model = torch.nn.Sequential(torch.nn.Embedding(64, 256), torch.nn.Linear(256, 256)).eval()
    with torch.no_grad():
        program = export(model, (torch.ones((1, 64), dtype=torch.long),), strict=False)
        (tmp_path / "m.pte").write_bytes(lower_to_xnnpack(program).to_executorch().buffer)
    rt = get_runtime("executorch")
    req = LoadRequest(["input_ids"], 1, tmp_path / "m.pte")
    runner, _ = rt.load(req)
    calls = [{"input_ids": np.arange(64, dtype=np.int64)[None]}] * 2
    p = Profile.from_dict(profile_run(rt, req, runner, calls, tmp_path).to_dict(), "r")
    release = executorch_version()
    if Version(release).release >= (1, 5):
        assert p.status == "ok", p
    if p.status == "ok":  # a build with the event tracer
        assert p.tool == "ETDump + Inspector" and p.level == "operator" and p.calls == 2, p
        assert 0 < p.events_ms <= p.wall_ms
        assert p.classes_ms["fp32 GEMM"] > 0 and p.classes_ms["embedding/gather"] > 0, p.ops_ms
        assert p.ops_ms.keys() == {"Fully Connected (NC, F32) GEMM", "native_call_embedding.out"}, p.ops_ms
    else:
        assert p.tool == "ETDump + Inspector" and "EXECUTORCH_ENABLE_EVENT_TRACER" in p.why, p
        assert f"executorch {release}'s runtime" in p.why, p
    assert runner(calls[0])[0].shape == (1, 64, 256)  # the plain program still runs beside it


def test_the_report_draws_one_stacked_bar_per_profiled_record(tmp_path):
    from bench import profile_report

    from pocketbert.contracts import Record

    base = {"run_id": "r", "status": "ok", "model": "m", "workload": "synthetic", "shape": "fixed"}
    records = [Record(**base, runtime="onnx", precision="int8",
                      profile=build_profile("onnxruntime profiler", [("MatMulInteger", 6.0),
                                                                     ("MultiHeadAttention", 2.0)], 2, 9.0)),
               Record(**base, runtime="executorch", precision="int8",
                      profile=Profile(tool="ETDump + Inspector", status="unavailable", why="no tracer")),
               Record(**base, runtime="pytorch", precision="fp32", profile=None)]
    lines = re.sub(" +", " ", "\n".join(profile_report.markdown_lines(records)))  # cells padded to their width
    assert "| m | onnx | int8 | fixed | onnxruntime profiler | 2 | 4.50 | 3.00 (75%) |" in lines
    assert "| m | executorch | int8 | fixed | ETDump + Inspector | – |" in lines and "no tracer" in lines
    assert "pytorch" not in lines
    [png] = profile_report.plot(records, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == [png.name]
    assert profile_report.plot([records[2]], tmp_path / "none") == [] and profile_report.markdown_lines([]) == []


# heavy (tests/conftest.py): through the bench

@pytest.mark.heavy
def test_bench_profile_for_every_local_runtime_and_none_without_it(tmp_path):
    from bench.harness import BenchConfig, run_bench
    from bench.records import load_records

    common = dict(models=["bert-tiny"], workloads=["synthetic"], shapes=["fixed"], seq_len=32, threads=1,
                  warmup=1, limit=3, out=tmp_path / "results", bundle_cache=tmp_path / "cache", quiet=True)
    out = run_bench(BenchConfig(runtimes=["pytorch", "onnx", "executorch"], precisions=["fp32", "int8"],
                                run_id="prof", profile=True, **common), log=lambda *a: None)
    records = {(r.runtime, r.precision): r for r in load_records([out])}
    assert set(records) == {(rt, p) for rt in ("pytorch", "onnx", "executorch") for p in ("fp32", "int8")}
    for (rt, precision), r in records.items():
        assert r.status == "ok", r.reason
        p = r.profile
        if rt == "executorch" and p.status != "ok":
            assert "EXECUTORCH_ENABLE_EVENT_TRACER" in p.why
            continue
        prof = _check(p.to_dict(), {"pytorch": "torch.profiler", "onnx": "onnxruntime profiler",
                                    "executorch": "ETDump + Inspector"}[rt], r.n_model_calls)
        gemm = "int8 GEMM" if precision == "int8" else "fp32 GEMM"
        assert prof.classes_ms[gemm] > 0, (rt, precision, prof.ops_ms)
        if precision == "fp32":
            assert prof.classes_ms["int8 GEMM"] == 0, (rt, prof.ops_ms)
    report = (out / "report.md").read_text()
    assert "## Where the time goes" in report and (out / "profile_classes.png").is_file()
    cells = {c.strip() for line in report.splitlines() for c in line.split("|")}
    assert "delegated" in cells and any(c.endswith("partitions)") for c in cells) \
        and any(c.endswith("% fused") for c in cells)  # manifests' coverage
    plain = run_bench(BenchConfig(runtimes=["onnx"], precisions=["fp32"], run_id="plain", **common), log=lambda *a: None)
    [r] = load_records([plain])
    assert r.status == "ok" and r.profile is None
    assert "Where the time goes" not in (plain / "report.md").read_text() and not (plain / "profile_classes.png").exists()
