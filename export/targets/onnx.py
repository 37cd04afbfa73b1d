"""ONNX Runtime's export target (its runtime: pocketbert/backends/onnx.py). Export: torch.onnx (dynamo exporter) with dynamic batch and sequence axes ->
transformer fusion (default) -> int8 via onnxruntime's per-channel quantization of every MatMul
weight and the embedding tables (Gather), dynamic (activations quantized per call) or static (QDQ:
activation scales calibrated on the export's calibration inputs; `--int8-mode`, see
export/int8_choice.py), or blockwise (`--int8-mode blockwise`: ORT's MatMulNBits, 8-bit weights in
blocks along K and int8 compute on activations quantized per row and block at run time; see
BLOCKWISE), or fp16 weights and compute via onnxruntime's float16 converter (inputs/outputs keep
their types).

Fusion: ONNX Runtime's own fusions (at session load, or `onnxruntime.transformers.optimize_model`)
do not recognise the attention of dynamo-exported graphs (its Reshape/Transpose/Shape chains differ
from the TorchScript exporter's), so they stay as ~20 small ops per layer. onnxscript's rewriter
(`optimize_for_ort`, written for dynamo graphs) fuses them into ORT's contrib ops: MultiHeadAttention,
SkipLayerNormalization and BiasGelu per layer (outputs equal the unfused graph within 1e-6 relative,
3-5% faster fp32). For dynamic int8, each MultiHeadAttention and its three Q/K/V projections are then
packed into one `Attention` (export/onnx_attention.py: one [D, 3D] weight, the 2-D padding mask),
which quantize_dynamic turns into `QAttention` (one integer GEMM for Q, K and V; outputs identical to
the three separate int8 projections), and SkipLayerNormalization / BiasGelu are split back into plain
ops whose ORT kernels are faster (export/onnx_unfuse.py). The output projection and FFN stay MatMuls that int8 quantizes like every other linear
(the ORT-optimizer path's packed Attention weights were left fp32 by quantize_dynamic: 138 MB
instead of 67 for DistilBERT).

The dynamo exporter is used on purpose: on this stack the legacy TorchScript exporter traces
the sequence length into constants and gives wrong outputs at other lengths.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from export import int8_guided as g
from export.onnx_attention import pack_attention
from export.onnx_unfuse import split_slow_fusions
from export.onnx_quant import (
    BLOCKWISE,
    INT8_OP_TYPES,
    fuse_without_attention,
    quantize_blockwise,
    quantize_int_attention,
    quantize_static,
)
from export.targets import ExportResult, ExportTarget, int8_mode, register
from export.task_eval import guided_targets, load_task_data
from pocketbert.backends import LoadRequest
from pocketbert.backends.onnx import load_onnx
from pocketbert.contracts import Delegation
from pocketbert.inputs import pad_inputs

MODEL_FILE = "model.onnx"
OPSET = 18


def export_onnx(loaded, precision: str, cfg, calibration: list[dict[str, np.ndarray]],
                bundle: Path, log=print) -> ExportResult:
    from pocketbert.wrapper import ExportWrapper

    work = bundle / ".work"
    work.mkdir()
    fp32_path = work / "fp32.onnx"
    wrapper = ExportWrapper(loaded.model, loaded.task, loaded.uses_token_type_ids, loaded.pooling).eval()
    log("torch.onnx.export (dynamo)")
    _export_fp32(wrapper, loaded, loaded.output_names, fp32_path)
    path = fp32_path
    fusions: dict[str, int] = {}
    int_attention = precision == "int8" and int8_mode(cfg) == "int-attention"
    if getattr(cfg, "onnx_fuse", True) and precision != "fp16" and int_attention:
        log("fusing SkipLayerNorm / BiasGelu, attention left unfused for integer matmuls")
        path, fusions = fuse_without_attention(path, work / "fused.onnx")
    elif getattr(cfg, "onnx_fuse", True) and precision != "fp16":  # fp16 converter: plain ops only
        log("fusing attention / SkipLayerNorm / BiasGelu (onnxscript optimize_for_ort)")
        path, fusions = fuse(path, work / "fused.onnx")
        if _packs_attention(precision, cfg):
            path, fusions["packed_attention"] = pack_attention(path, work / "packed.onnx")
            path, split = split_slow_fusions(path, work / "split.onnx")
            fusions.update({f"split_{k}": v for k, v in split.items()})
    ort_optimized = bool(cfg.onnx_optimize and loaded.family.ort_model_type)
    if cfg.onnx_optimize and not ort_optimized:
        log(f"--onnx-optimize skipped: ORT's transformer optimizer has no model type for {loaded.model_type}")
    if ort_optimized:
        log("ORT transformer optimizer (fused attention / LayerNorm / GELU)")
        path = _optimize(path, loaded, work / "optimized.onnx")
    guided_notes = None
    if precision == "int8" and getattr(cfg, "int8_guided", None):
        log("int8 guided: per-node sensitivity, then fp32 for the worst until the metric holds")
        path, guided_notes = _guided_int8(_quant_source(path, work), loaded, cfg, work, log)
    elif precision == "int8" and int8_mode(cfg) == "blockwise":
        log(f"int8: blockwise (MatMulNBits, {BLOCKWISE['bits']}-bit weights in blocks of "
            f"{BLOCKWISE['block_size']}, int8 compute on per-block activations)")
        path = quantize_blockwise(_quant_source(path, work), work / "int8-blockwise.onnx")
    elif precision == "int8" and int8_mode(cfg) == "static":
        log(f"int8: static QDQ per-channel quantization, calibrating on {len(calibration)} inputs")
        path = quantize_static(_quant_source(path, work), work / "int8-static.onnx", calibration)
    elif int_attention:
        log("int8: dynamic per-channel quantization, attention's matmuls integer too")
        path = quantize_int_attention(_quant_source(path, work), work / "int8-int-attention.onnx")
    elif precision == "int8" and int8_mode(cfg) == "per-tensor":
        log("int8: pre-process + dynamic per-tensor quantization")
        path = _quantize(_quant_source(path, work), work / "int8.onnx", per_channel=False)
    elif precision == "int8":
        log("int8: pre-process + dynamic per-channel quantization")
        path = _quantize(_quant_source(path, work), work / "int8.onnx")
    elif precision == "fp16":
        log("fp16: converting weights and compute")
        path = _to_fp16(path, work / "fp16.onnx")
    path.replace(bundle / MODEL_FILE)
    coverage = delegation(bundle / MODEL_FILE, work / "ort-optimized.onnx")
    for p in sorted(work.iterdir()):
        p.unlink()
    work.rmdir()
    int8 = {"int8_mode": int8_mode(cfg), "quantization": _int8_description(cfg, guided_notes),
            **({"int8_blockwise": dict(BLOCKWISE)} if int8_mode(cfg) == "blockwise" else {})}
    return ExportResult(model_file=MODEL_FILE, input_dtype="int64", seq_lens=[cfg.seq_len],
                        dynamic_seq=True, dynamic_batch=True, delegation=coverage,
                        notes={"opset": OPSET, "ort_optimized": ort_optimized,
                               "fusions": fusions,
                               **(int8 if precision == "int8" else
                                  {"quantization": "fp16 weights" if precision == "fp16" else "none"}),
                               **({"int8_guided": guided_notes} if guided_notes else {})})


FUSED_DOMAIN = "com.microsoft"  # ONNX Runtime's contrib ops: its fused transformer and quantized-GEMM kernels
FAST_PATH = "ONNX Runtime fused kernels (com.microsoft ops, after its CPU graph optimizations)"
MOBILE_CHECKS = {  # provider -> onnxruntime.tools.mobile_helpers.usability_checker's check, by op support
    "NNAPI": lambda uc, model: uc.check_nnapi_partitions(model, require_fixed_input_sizes=False),
    "CoreML": lambda uc, model: uc.check_coreml_partitions(model, require_fixed_input_sizes=False,
                                                           config_filename="coreml_supported_mlprogram_ops.md"),
}
NO_XNNPACK_ANALYSIS = ("not analysed: onnxruntime ships no offline partitioning check for the XNNPACK EP "
                       "(tools.mobile_helpers covers NNAPI and CoreML) and this build has no XNNPACK EP to ask")


def delegation(path: Path, optimized: Path) -> Delegation:
    """Fused vs plain nodes of the graph ONNX Runtime's CPU provider runs (the file after the session's
    own graph optimizations, saved to `optimized`: it fuses int8 MatMulInteger + scale Muls into
    contrib ops at load), and the share of the file's nodes each mobile provider would take."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as load_onnx runs it
    opts.optimized_model_filepath = str(optimized)
    opts.log_severity_level = 3  # its "optimized for this hardware only" warning: we only count nodes
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    fused: dict[str, int] = {}
    plain: dict[str, int] = {}
    for node in onnx.load(str(optimized), load_external_data=False).graph.node:
        counts = fused if node.domain == FUSED_DOMAIN else plain
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return Delegation.count(FAST_PATH, fused, plain,
                            providers=mobile_providers(onnx.load(str(path), load_external_data=False)))


def mobile_providers(model) -> dict[str, dict]:
    """The share of nodes (and partitions) NNAPI and CoreML (ML Program) would take, by operator
    support alone, as if the dynamic axes were fixed (an app pads to seq_len; onnxruntime's
    usability_checker, the one ORT Mobile's docs use); XNNPACK: why there is no figure."""
    from onnxruntime.tools.mobile_helpers import usability_checker as uc

    out: dict[str, dict] = {}
    for ep, check in MOBILE_CHECKS.items():
        info = check(uc, model)
        out[ep] = {"nodes_pct": round(100 * info.num_supported_nodes / max(info.num_nodes, 1), 2),
                   "partitions": int(info.num_partitions), "unsupported_ops": sorted(info.unsupported_ops)}
    out["XNNPACK"] = {"nodes_pct": None, "why": NO_XNNPACK_ANALYSIS}
    return out


def _int8_description(cfg, guided_notes) -> str:
    ops = "/".join(INT8_OP_TYPES)
    if int8_mode(cfg) == "blockwise":
        b = BLOCKWISE
        return (f"onnxruntime MatMulNBits: {b['bits']}-bit symmetric weights of every MatMul in "
                f"blocks of {b['block_size']} along K, accuracy_level {b['accuracy_level']} (int8 "
                f"compute; activations quantized per row and block of {b['block_size']} at run "
                "time); quantize_dynamic: QInt8 per-channel weights of every Gather/Gemm")
    if int8_mode(cfg) == "static":
        return (f"onnxruntime quantize_static (QDQ): QInt8 per-channel weights of every {ops}, "
                f"QUInt8 activations with scales calibrated (MinMax) on {cfg.calibration_samples} inputs")
    if int8_mode(cfg) == "int-attention":
        return (f"onnxruntime quantize_dynamic: QInt8 per-channel weights of every {ops}; attention "
                "unfused, its Q.K and P.V matmuls MatMulInteger on per-call uint8 activations")
    if int8_mode(cfg) == "per-tensor":
        return f"onnxruntime quantize_dynamic: QInt8 per-tensor weights of every {ops}"
    return (f"onnxruntime quantize_dynamic: QInt8 per-channel weights of every {ops}"
            + (" except int8_guided.fp32_nodes" if guided_notes else ""))


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
    model = optimize_model(str(path), model_type=loaded.family.ort_model_type,
                           num_heads=config.num_attention_heads, hidden_size=config.hidden_size,
                           opt_level=1, use_gpu=False)
    model.save_model_to_file(str(out))
    return out


def _packs_attention(precision: str, cfg) -> bool:
    """Whether the fused graph's attention is packed into ORT's Attention (export/onnx_attention.py; int8
    makes it QAttention, outputs identical to the three separate int8 projections) and its
    SkipLayerNormalization / BiasGelu split into faster plain ops (export/onnx_unfuse.py): the dynamic
    int8 builds only. Measured side by side (interleaved, 2 threads, AMD EPYC AVX-512 VNNI, same
    weights): DistilBERT-base int8 1.12x wall / 1.17x CPU at 384 tokens and 1.18x / 1.17x at 187 over
    the MultiHeadAttention graph; fp32 0.99x / 1.03x (no gain: fp32 keeps MultiHeadAttention). Not
    static QDQ nor guided int8 (their node choices are made on the MultiHeadAttention graph)."""
    return precision == "int8" and not getattr(cfg, "int8_guided", None) and int8_mode(cfg) in ("dynamic", "per-tensor")


def fuse(path: Path, out: Path) -> tuple[Path, dict[str, int]]:
    """onnxscript's generic optimizer (constant folding, shape simplification) then its ORT
    transformer fusions; returns the fused file and the count of each fusion applied."""
    import onnx_ir as ir
    import onnxscript
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    model = onnxscript.optimizer.optimize(ir.load(str(path)))
    model, counts = optimize_for_ort(model)
    ir.save(model, str(out))
    return out, {k: int(v) for k, v in counts.items() if v}


def _to_fp16(path: Path, out: Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    onnx.save(model, str(out))
    return out


def _quant_source(path: Path, work: Path) -> Path:
    """The graph quantize_dynamic reads."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if _has_contrib_ops(path):
        return path  # already folded by onnxscript; ONNX shape inference does not know contrib ops
    # Unfused graphs: ORT's pre-processing (ONNX shape inference + graph optimizations; its
    # symbolic shape inference can't resolve the dynamo graph's shapes).
    source = work / "preprocessed.onnx"
    quant_pre_process(str(path), str(source), skip_symbolic_shape=True)
    return source


def _quantize(source: Path, out: Path, only: list[str] | None = None,
              exclude: list[str] | None = None, per_channel: bool = True) -> Path:
    """int8 weights of every INT8_OP_TYPES node (or only `only`), except `exclude` (kept fp32);
    one scale per output channel, or per weight tensor (`per_channel=False`, --int8-mode per-tensor)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" warning: done above, or not needed
    try:
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                         op_types_to_quantize=INT8_OP_TYPES, nodes_to_quantize=_gemm_names(only),
                         nodes_to_exclude=_gemm_names(exclude),
                         extra_options={"MatMulConstBOnly": True})  # weights only, not act x act
    finally:
        root.setLevel(level)
    return out


def _gemm_names(names: list[str] | None) -> list[str] | None:
    """WORKAROUND: quantize_dynamic first rewrites every Gemm `G` into a MatMul named `G_MatMul`
    (+ Add) and matches node lists against the new name, so an excluded Gemm (a classifier's
    pooler and head) was quantized anyway. List both names."""
    return [m for n in names for m in (n, f"{n}_MatMul")] if names else None


def _guided_int8(source: Path, loaded, cfg, work: Path, log) -> tuple[Path, dict]:
    """int8 with the layers that cost the task metric most kept fp32 (export/int8_guided.py)."""
    data = load_task_data(cfg.int8_guided, loaded.task, loaded.tokenizer, cfg.seq_len,
                          cfg.int8_guided_questions, getattr(loaded.model.config, "label2id", None),
                          flag="--int8-guided")
    nodes = g.node_modules(source, INT8_OP_TYPES)

    def load(path: Path, threads: int | None = None):
        return load_onnx(LoadRequest(loaded.input_names, threads, path, task=loaded.task,
                                     precision="int8"))[0]

    log(f"int8 guided: {len(nodes)} quantizable nodes, choosing on {data.size} items of "
        f"{data.path.name}")
    exclude, notes = g.choose_exclusions(source, nodes, _quantize, load, loaded.input_names, data,
                                         *guided_targets(cfg, data.kind), work, loaded.task, log=log)
    plain, guided = _quantize(source, work / "int8.onnx"), work / "guided.onnx"
    _quantize(source, guided, exclude=exclude)
    feeds = pad_inputs(data.probe_feeds(loaded.input_names, 1)[0], cfg.seq_len)
    notes["latency_ms_median"] = g.latency_ms(lambda p: load(p, g.LATENCY_THREADS),
                                              {"int8": plain, "guided": guided}, feeds)
    notes["latency_setup"] = (f"1 x {cfg.seq_len} tokens, {g.LATENCY_THREADS} threads, "
                              "interleaved at export time (rough; bench/ gives real figures)")
    notes["bytes"] = {"int8": plain.stat().st_size, "guided": guided.stat().st_size}
    return guided, notes


def _has_contrib_ops(path: Path) -> bool:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(n.domain == "com.microsoft" for n in graph.node)


def float_weights(path: Path, min_elements: int = 65536) -> dict[str, int]:
    """Float initializers with at least `min_elements` values: name -> element count. An int8
    file that quantized every large weight has none (biases and LayerNorm scales are small)."""
    import onnx

    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    return {t.name: int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer
            if t.data_type in floats and int(np.prod(t.dims)) >= min_elements}


register(ExportTarget(name="onnx", precisions=("fp32", "fp16", "int8"), export=export_onnx,
                      int8_modes=("dynamic", "int-attention", "per-tensor", "static", "blockwise"), int8_guided=True, label="ONNX",
                      export_seconds={"int8": 25, "fp16": 12, "fp32": 10}, cache_tags={"onnx_optimize": "ortopt"},
                      description="ONNX Runtime CPU (model.onnx; dynamic batch and sequence)"))
