"""ONNX Runtime: runs a bundle's model.onnx (or a plain .onnx file) on its CPU execution provider.
How the file is made (dynamo export, fusion, int8/fp16) is its export target, export/targets/onnx.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pocketbert.backends import LibraryGemm, LoadRequest, PlainFile, Runner, Runtime, installed, register
from pocketbert.common import UsageError
from pocketbert.inputs import FEATURES
from pocketbert.profile import build_profile, timed_calls


def load_onnx(req: LoadRequest) -> tuple[Runner, dict]:
    """An ORT CPU session: intra-op threads = the bench count (inter-op 1), all graph optimizations."""
    run, _ = _session(req)
    # ORT reports no thread count back: intra_op_num_threads is what the session was created with
    return run, {"threads_effective": req.threads}


def _session(req: LoadRequest, profile_prefix: Path | None = None):
    """(runner, session) of the bundle's file, profiling into `profile_prefix`*.json when given."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if req.threads:
        opts.intra_op_num_threads = int(req.threads)
        opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    session = ort.InferenceSession(str(req.model_path), opts, providers=["CPUExecutionProvider"])
    dtypes = {i.name: (np.int32 if "int32" in i.type else np.int64) for i in session.get_inputs()}
    names = req.input_names

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return session.run(None, {n: np.asarray(feeds[n], dtype=dtypes[n]) for n in names})

    return run, session


def profile_onnx(req: LoadRequest, runner: Runner, calls: list, work: Path):
    """ONNX Runtime's own profiler (SessionOptions.enable_profiling: a JSON trace with one event per
    node run) on a second session of the file, over one warm-up call and then `calls`: each node's
    kernel time by its op type, the warm-up's events left out."""
    import json

    run, session = _session(req, Path(work) / "ort-profile")
    run(calls[0])  # warm-up: its events are dropped below
    n, wall_ms = timed_calls(run, calls)
    trace = json.loads(Path(session.end_profiling()).read_text())
    starts = sorted(e["ts"] for e in trace if e.get("name") == "model_run")
    first_timed = starts[1] if len(starts) > 1 else 0
    events = [(e["args"].get("op_name", e["name"]), e["dur"] / 1e3) for e in trace
              if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= first_timed]
    return build_profile("onnxruntime profiler", events, n, wall_ms)


# ONNX ops that only an integer-quantized graph has (dynamic, static QDQ and contrib forms).
INT8_ONNX_OPS = {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
                 "QAttention", "QLinearMatMul", "QGemm", "QuantizeLinear", "QEmbedLayerNormalization"}


def onnx_file_facts(path: Path, seq_len: int) -> dict:
    """A plain .onnx file's inputs, outputs and precision, read from the graph (no session)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    types = {onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32"}

    def shape(v) -> list:
        return [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?")
                for d in v.type.tensor_type.shape.dim]

    inputs = [v for v in graph.input if v.name not in inits]
    bad = [v.name for v in inputs if v.type.tensor_type.elem_type not in types]
    if bad:
        raise UsageError(f"{path}: input(s) {', '.join(bad)} are not integer token inputs: expected int64 "
                         f"or int32 inputs named like {', '.join(FEATURES)}")
    shapes = [shape(v) for v in inputs]
    fixed = [s[1] for s in shapes if len(s) > 1 and isinstance(s[1], int)]
    ops = {n.op_type for n in graph.node}
    fp16 = any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
    precision = "int8" if ops & INT8_ONNX_OPS else "fp16" if fp16 else "fp32"
    return {"input_names": [v.name for v in inputs], "dtypes": [types[v.type.tensor_type.elem_type] for v in inputs],
            "shapes": shapes, "seq_len": min(fixed) if fixed else None,
            "outputs": [{"name": v.name, "shape": shape(v)} for v in graph.output],
            "precision": precision, "precision_from": "graph ops",
            "parameters": _onnx_parameters(graph)}


def _onnx_parameters(graph) -> dict[str, int]:
    """Weights in the graph (quantization scales and zero points left out); embedding tables are
    the ones a Gather reads."""
    gathered = {n.input[0] for n in graph.node if n.op_type == "Gather"}
    total = embedding = 0
    for t in graph.initializer:
        if t.name.endswith(("_scale", "_zero_point")) or len(t.dims) == 0:
            continue
        n = math.prod(t.dims)
        total += n
        embedding += n if t.name in gathered else 0
    return {"total": total, "non_embedding": total - embedding}


def ort_gemm(kind: str, n: int, threads: int | None):
    """The ONNX Runtime GEMM of the bench's probe (LibraryGemm): a one-node MatMul graph for fp32, and for
    int8 the MatMulInteger that dynamic quantization runs (uint8 activations, int8 weights)."""
    import onnxruntime as ort

    try:
        from onnx import TensorProto, helper
    except ImportError:  # a board with the runtime but not the onnx package: no model to build
        return None
    ta, tb, tc, op = ((TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT, "MatMul") if kind == "fp32" else
                      (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, "MatMulInteger"))
    graph = helper.make_graph([helper.make_node(op, ["A", "B"], ["C"])], "probe",
                              [helper.make_tensor_value_info("A", ta, [n, n]),
                               helper.make_tensor_value_info("B", tb, [n, n])],
                              [helper.make_tensor_value_info("C", tc, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    if kind == "fp32":
        feeds = {"A": rng.standard_normal((n, n), dtype=np.float32), "B": rng.standard_normal((n, n), dtype=np.float32)}
    else:  # what onnxruntime's dynamic quantization feeds MatMulInteger: uint8 activations, int8 weights
        feeds = {"A": rng.integers(0, 255, (n, n), dtype=np.uint8), "B": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    return lambda: sess.run(None, feeds)


register(Runtime(name="onnx", precisions=("fp32", "fp16", "int8"), load=load_onnx,
                 available=installed("onnxruntime"), dynamic_shapes=True,
                 label="ONNX Runtime", requires=("numpy", "onnxruntime"), runtime_modules=("onnxruntime",),
                 install_hint="{python} -m pip install onnxruntime==1.32.0 numpy",
                 plain_file=PlainFile(".onnx", "an ONNX model", onnx_file_facts),
                 main_job=("fp32", "int8"), rank=10, on_phones=("app",),  # the demo app's ONNX Runtime engine
                 profile=profile_onnx, gemm=LibraryGemm("onnxruntime", ort_gemm),
                 description="ONNX Runtime CPU (model.onnx; dynamic batch and sequence)"))
