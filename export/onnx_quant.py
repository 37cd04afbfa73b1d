"""ONNX int8 builds beyond the plain dynamic one (export/targets/onnx.py's `_quantize`): static QDQ,
blockwise MatMulNBits, and integer attention. Each is an --int8-mode; `auto` measures the ones in
export/int8_choice.py's candidates on the exporting CPU and keeps the fastest that passes its checks.

Integer attention (`--int8-mode int-attention`): the default graph fuses each layer's attention into
ONNX Runtime's fp32 MultiHeadAttention (onnxscript's fusion), so int8 leaves Q·Kᵀ and P·V fp32
(ONNX Runtime has no int8 attention kernel on CPU). optimum's graphs leave attention unfused and let
quantize_dynamic turn those two batched matmuls into MatMulInteger too (both operands quantized per
call). This mode does the same on our graph: SkipLayerNormalization and BiasGelu fused as usual,
attention left as MatMul/Softmax, every MatMul int8 (weights per channel, activations per tensor).
Which is faster depends on the CPU's int8 dot product (VNNI, Arm dot product) against its fp32
attention kernel, so auto measures it. Measured on the 2-core AMD EPYC (AVX-512 VNNI) VM, trained
MiniLM-L6 SQuAD, 1 thread CPU time per call, 12 interleaved rounds: 0.95x the fused graph's speed at
seq 384, 0.96-1.0x at 160 tokens: integer attention does not pay there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Every op type that holds a large weight in our graphs (fused or not); quantize_dynamic skips
# the ones a graph does not have.
INT8_OP_TYPES = ["MatMul", "Gemm", "Gather", "Attention", "EmbedLayerNormalization"]


def fuse_without_attention(path: Path, out: Path) -> tuple[Path, dict[str, int]]:
    """onnxscript's optimizer and its ORT fusions that do not touch attention (erf-GELU,
    SkipLayerNormalization, GELU, BiasGelu): attention stays MatMul/Softmax, so int8 can make its
    batched matmuls integer. Same pre-optimization as onnxscript's optimize_for_ort."""
    import onnx_ir as ir
    import onnxscript
    from onnxscript.rewriter.ort_fusions import _core as ort_fusions

    model = onnxscript.optimizer.optimize(ir.load(str(path)))
    onnxscript.rewriter.rewrite(model, [ort_fusions._gemm_to_matmul_add.gemm_to_matmul_add_rule])
    model = ort_fusions._pre_optimize(model)
    steps = {"erf_gelu": ort_fusions.fuse_erfgelu, "skip_layer_normalization": ort_fusions.fuse_skip_layer_normalization,
             "gelu": ort_fusions.fuse_gelu, "bias_gelu": ort_fusions.fuse_bias_gelu}
    counts = {name: int(fuse(model)) for name, fuse in steps.items()}
    onnxscript.optimizer.optimize(model)
    ir.save(model, str(out))
    return out, {k: v for k, v in counts.items() if v}


def quantize_int_attention(source: Path, out: Path) -> Path:
    """quantize_dynamic of every MatMul, activation x activation ones included (attention's Q·Kᵀ and
    P·V become MatMulInteger on per-call uint8 scales); weights int8 per channel as the dynamic mode."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" warning: see _quant_source
    try:
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=INT8_OP_TYPES, extra_options={"MatMulConstBOnly": False})
    finally:
        root.setLevel(level)
    return out


def quantize_static(source: Path, out: Path, calibration: list[dict[str, np.ndarray]]) -> Path:
    """Static int8 in QDQ form: int8 per-channel weights of every INT8_OP_TYPES node (as the
    dynamic path) and uint8 activations whose scale and zero point come from the min/max seen on
    `calibration` (fixed in the file, no per-call DynamicQuantizeLinear).

    uint8 activations x int8 weights: ONNX Runtime's CPU kernels' native pairing (the one the
    dynamic path runs too); full-range weights (no reduce_range) as the dynamic path. A linear's
    output stays fp32 (OpTypesToExcludeOutputQuantization): its consumers (bias Add,
    SkipLayerNormalization, MultiHeadAttention, BiasGelu) are fp32 ops, so a Q/DQ pair there only
    added noise; quantized, the QA head's logits alone cost 15 dB (distilbert-tiny: 19.5 -> 31 dB
    logit SNR, dynamic 35). So the two modes differ only in how a linear's input is scaled.
    Gather keeps its output Q/DQ: the gathered rows are the int8 table's own values (lossless),
    and it lets ONNX Runtime gather int8 rows instead of dequantizing the whole table."""
    import logging

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    names = [i.name for i in onnx.load(str(source), load_external_data=False).graph.input]

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self.rest = iter([{n: np.asarray(ex[n], dtype=np.int64) for n in names}
                              for ex in calibration])

        def get_next(self):
            return next(self.rest, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" warning: see _quant_source
    try:
        quantize_static(str(source), str(out), Feeds(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=INT8_OP_TYPES, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"MatMulConstBOnly": True,  # weights x activations only
                                       "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"]})
    finally:
        root.setLevel(level)
    return out


# --int8-mode blockwise, the one source of its settings (recorded in the manifest's
# notes.int8_blockwise; the CLI's help reads them). Why: plain dynamic int8 gives each MatMul input ONE
# scale per call (per tensor: every token x every feature); a trained model's few outlier features
# (the distilled 3-layer student: residual feature 99 at 12-43x the activations' std, FFN-output
# inputs at up to 80x) set that scale and the other features keep a handful of levels. MatMulNBits
# with accuracy_level 4 (CompInt8) quantizes the activation per row and per block of `block_size`
# features at run time instead, so an outlier coarsens only its own block of its own token.
# Measured on the choosing data (SQuAD dev articles 1-12, the student's fp32 activations, per-MatMul
# output SNR): per-tensor activations 24-28 dB on five of the six FFN linears (weights alone:
# 36-46 dB), per-token 35-43 dB, per-block-of-32 42-48 dB on every linear; so block 32.
# bits 8 and symmetric (no zero points): int8 weights like the dynamic mode's, on the kernels' int8
# fast path (onnxruntime's CPU provider has 8-bit CompInt8 kernels for x86 AVX2/AVX-VNNI/AVX512 and
# Arm NEON).
# Measured (SQuAD dev articles 13-24, 1000 questions): identical answers vs fp32 94.6% on the student
# and 95.0% on the teacher, plain dynamic int8 82.7% and 79.2%. Cost: on the 2-vCPU AVX2 Zen 3 VM (no
# VNNI) the student took 79 ms/question against plain int8's 41 and fp32's 57 (one side-by-side bench,
# other load present): an opt-in mode, not the default int8.
BLOCKWISE = {"bits": 8, "block_size": 32, "accuracy_level": 4, "symmetric": True}


def quantize_blockwise(source: Path, out: Path, block_size: int | None = None) -> Path:
    """int8 MatMulNBits of every MatMul with a constant weight (BLOCKWISE), then the embedding
    tables (Gather) and any Gemm (a classifier's pooler/head on [CLS] rows; MatMulNBits takes
    MatMul only) int8 per channel with quantize_dynamic, as the dynamic mode does."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    b = {**BLOCKWISE, **({"block_size": block_size} if block_size else {})}
    config = DefaultWeightOnlyQuantConfig(block_size=b["block_size"], is_symmetric=b["symmetric"],
                                          accuracy_level=b["accuracy_level"], bits=b["bits"],
                                          op_types_to_quantize=("MatMul",))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its per-node INFO lines; quantize_dynamic's pre-processing hint
    try:
        quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), algo_config=config)
        quantizer.process()
        blocked = out.with_name(out.stem + "-matmulnbits.onnx")
        quantizer.model.save_model_to_file(str(blocked), use_external_data_format=False)
        quantize_dynamic(str(blocked), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["Gather", "Gemm"],
                         extra_options={"MatMulConstBOnly": True})
    finally:
        root.setLevel(level)
    blocked.unlink()
    return out


