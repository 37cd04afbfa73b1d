"""ONNX Runtime. Export: torch.onnx (dynamo exporter) with dynamic batch and sequence axes -> optional ORT
transformer fusion -> int8 via onnxruntime's dynamic per-channel quantization (after its
pre-processing; Gather is quantized too, so the embedding table shrinks with the linears), or
fp16 weights and compute via onnxruntime's float16 converter (inputs/outputs keep their types).

The dynamo exporter is used on purpose: on this stack the legacy TorchScript exporter traces
the sequence length into constants and gives wrong outputs at other lengths.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from pocketbert.backends import Backend, ExportResult, LoadRequest, Runner, installed, register

MODEL_FILE = "model.onnx"
OPSET = 18


def export_onnx(loaded, precision: str, cfg, calibration: list[dict[str, np.ndarray]],
                bundle: Path, log=print) -> ExportResult:
    from export.wrapper import OUTPUT_NAMES, ExportWrapper

    work = bundle / ".work"
    work.mkdir()
    fp32_path = work / "fp32.onnx"
    wrapper = ExportWrapper(loaded.model, loaded.task, loaded.uses_token_type_ids).eval()
    log("torch.onnx.export (dynamo)")
    _export_fp32(wrapper, loaded, OUTPUT_NAMES[loaded.task], fp32_path)
    path = fp32_path
    if cfg.onnx_optimize:
        log("ORT transformer optimizer (fused attention / LayerNorm / GELU)")
        path = _optimize(path, loaded, work / "optimized.onnx")
    if precision == "int8":
        log("int8: pre-process + dynamic per-channel quantization")
        path = _quantize(path, work)
    elif precision == "fp16":
        log("fp16: converting weights and compute")
        path = _to_fp16(path, work / "fp16.onnx")
    path.replace(bundle / MODEL_FILE)
    for p in sorted(work.iterdir()):
        p.unlink()
    work.rmdir()
    return ExportResult(model_file=MODEL_FILE, input_dtype="int64", seq_lens=[cfg.seq_len],
                        dynamic_seq=True, dynamic_batch=True,
                        notes={"opset": OPSET, "ort_optimized": bool(cfg.onnx_optimize),
                               "quantization": ("onnxruntime quantize_dynamic: QInt8 per-channel "
                                                "MatMul/Gemm/Gather/Attention")
                               if precision == "int8" else "fp16 weights" if precision == "fp16" else "none"})


def _export_fp32(wrapper, loaded, output_names: list[str], path: Path) -> None:
    import torch
    from torch.export import Dim

    example = torch.ones((2, 16), dtype=torch.long)  # (bs, seq); bs 2 so batch stays symbolic
    args = tuple(example.clone() for _ in loaded.input_names)
    batch, seq = Dim("batch", min=1, max=1024), Dim("seq", min=2, max=loaded.max_positions)
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(wrapper, args, str(path), input_names=loaded.input_names,
                          output_names=output_names, opset_version=OPSET, dynamo=True,
                          dynamic_shapes={n: {0: batch, 1: seq} for n in loaded.input_names},
                          external_data=False)


def _optimize(path: Path, loaded, out: Path) -> Path:
    from onnxruntime.transformers.optimizer import optimize_model

    config = loaded.model.config
    heads = getattr(config, "num_attention_heads", None) or config.n_heads
    hidden = getattr(config, "hidden_size", None) or config.dim
    model = optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden,
                           opt_level=1, use_gpu=False)
    model.save_model_to_file(str(out))
    return out


def _to_fp16(path: Path, out: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    onnx.save(model, str(out))
    return out


def _quantize(path: Path, work: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = work / "preprocessed.onnx"
    # Symbolic shape inference can't resolve the dynamo graph's shapes; ONNX shape inference and
    # the graph optimizations of pre-processing still run.
    quant_pre_process(str(path), str(pre), skip_symbolic_shape=True)
    out = work / "int8.onnx"
    quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm", "Gather", "Attention"])
    return out


def load_onnx(req: LoadRequest) -> tuple[Runner, dict]:
    """An ORT CPU session: intra-op threads = the bench count (inter-op 1), all graph optimizations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if req.threads:
        opts.intra_op_num_threads = int(req.threads)
        opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(req.model_path), opts, providers=["CPUExecutionProvider"])
    dtypes = {i.name: (np.int32 if "int32" in i.type else np.int64) for i in session.get_inputs()}
    names = req.input_names

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return session.run(None, {n: np.asarray(feeds[n], dtype=dtypes[n]) for n in names})

    # ORT reports no thread count back: intra_op_num_threads is what the session was created with
    return run, {"threads_effective": req.threads}


register(Backend(name="onnx", precisions=("fp32", "fp16", "int8"), export=export_onnx, load=load_onnx,
                 available=installed("onnxruntime"), dynamic_shapes=True,
                 description="ONNX Runtime CPU (model.onnx; dynamic batch and sequence)"))
