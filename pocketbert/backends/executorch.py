"""ExecuTorch with the XNNPACK delegate. Export: torch.export -> (int8: PT2E quantize) -> XNNPACK partitioner -> .pte.

fp32: every linear/matmul delegated to XNNPACK. (fp16 is not offered: XNNPACK's fp16 path gave
non-finite outputs for DistilBERT-size models on x86 here, and an export we can't validate is
not shipped; CoreML is the fp16 target.) int8: XNNPACK quantizer, dynamic per-channel
int8 linears (weights int8, activations quantized per call), calibrated on real-looking inputs,
plus the word-embedding table as int8 rows. 8da4w: torchao's int8 dynamic activations with 4-bit
weights in groups of 32 (scale per group) on every linear, and 4-bit grouped embedding tables
(ExecuTorch's quantized embedding_4bit kernel); the scheme of optimum-executorch's `8da4w`.
The sequence axis is dynamic up to `seq_len`, so the
app may feed real lengths (faster) or pad to seq_len.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pocketbert.backends import Backend, ExportResult, LoadRequest, Runner, installed, register

MODEL_FILE = "model.pte"


def _example_args(loaded, seq_len: int):
    import torch

    ids = torch.full((1, seq_len), 1, dtype=torch.long)  # (1, seq)
    args = [ids, torch.ones_like(ids)]
    if loaded.uses_token_type_ids:
        args.append(torch.zeros_like(ids))
    return tuple(args)


def _dynamic_shapes(loaded, seq_len: int):
    from torch.export import Dim

    seq = Dim("seq", min=2, max=seq_len)
    return {name: {1: seq} for name in loaded.input_names}


def export_executorch(loaded, precision: str, cfg, calibration: list[dict[str, np.ndarray]],
                      bundle: Path, log=print) -> ExportResult:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower
    from torch.export import export

    from export.wrapper import ExportWrapper

    import copy

    model = loaded.model
    if precision == "8da4w":
        model = _quantize_8da4w(model)  # a copy
    elif precision == "int8":
        from export.quant import with_int8_word_embeddings

        model = with_int8_word_embeddings(model)  # a copy
    else:
        model = copy.deepcopy(model)
    # Eager attention, not SDPA: SDPA decomposes into eq/logical_not/any/where ops on
    # (1, heads, seq, seq) tensors that XNNPACK does not take, so they ran single-threaded on
    # ExecuTorch's portable kernels (+40% fp32, +140% int8 latency at seq 384, measured here).
    model.set_attn_implementation("eager")
    wrapper = ExportWrapper(model, loaded.task, loaded.uses_token_type_ids).eval()
    args = _example_args(loaded, cfg.seq_len)
    shapes = _dynamic_shapes(loaded, cfg.seq_len)

    log("torch.export")
    with torch.no_grad():
        program = export(wrapper, args, dynamic_shapes=shapes, strict=False)
        if precision == "int8":
            log(f"calibrating on {len(calibration)} inputs")
            program = quantize_int8(program, [tuple(torch.from_numpy(ex[n]) for n in loaded.input_names)
                                              for ex in calibration], args, shapes)
        log("lowering to XNNPACK")
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        # quant fusion turns torchao's dequantize + embedding into quantized embedding kernels
        et_program = lowered.to_executorch(
            ExecutorchBackendConfig(do_quant_fusion_and_const_prop=precision == "8da4w"))
    (bundle / MODEL_FILE).write_bytes(et_program.buffer)
    return ExportResult(model_file=MODEL_FILE, input_dtype="int64", seq_lens=[cfg.seq_len],
                        dynamic_seq=True,
                        notes={"backend": "XNNPACK",
                               "quantization": ("PT2E XNNPACKQuantizer: dynamic per-channel int8 "
                                                "linears; int8 word embeddings (per-row scale)")
                               if precision == "int8" else
                               f"torchao 8da4w: int8 dynamic activations, int4 weights in groups of "
                               f"{GROUP_4BIT} on linears; int4 grouped embeddings"
                               if precision == "8da4w" else "none"})


GROUP_4BIT = 32  # values per 4-bit scale: the usual 8da4w group; 128 is smaller but loses more


def _quantize_8da4w(model):
    """A copy with 4-bit grouped weights: linears as int8-dynamic-activation x int4 weight,
    embeddings as int4 weight-only. Layers whose input width is not a multiple of the group keep
    fp32 (none in BERT-family models)."""
    import copy

    import torch
    from torchao.quantization.granularity import PerGroup
    from torchao.quantization.quant_api import (
        Int8DynamicActivationIntxWeightConfig,
        IntxWeightOnlyConfig,
        quantize_,
    )

    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            # inference ignores padding_idx, and ExecuTorch's quant fusion only matches
            # embedding(weight, indices) without it
            module.padding_idx = None
    group = PerGroup(GROUP_4BIT)
    quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=group),
              lambda m, _: isinstance(m, torch.nn.Embedding) and m.embedding_dim % GROUP_4BIT == 0)
    quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                           weight_granularity=group),
              lambda m, _: isinstance(m, torch.nn.Linear) and m.in_features % GROUP_4BIT == 0)
    return model


def quantize_int8(program, calibration_args, args, shapes=None):
    """Our ExecuTorch int8 recipe on an exported program (also the bench's XNNPACK int8 GEMM probe):
    PT2E, annotate with the XNNPACK quantizer (dynamic per-channel), calibrate, convert, re-export."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torch.export import export
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    for call_args in calibration_args:
        prepared(*call_args)
    converted = convert_pt2e(prepared)
    return export(converted, args, dynamic_shapes=shapes, strict=False)


def load_executorch(req: LoadRequest) -> tuple[Runner, dict]:
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    import executorch.kernels.quantized  # noqa: F401 - registers embedding_4bit/_byte for 8da4w files

    if req.threads:
        # XNNPACK runs on ExecuTorch's own threadpool, which ignores torch.set_num_threads:
        # left alone it uses every core it detects, so set it to the same count as the others.
        portable_lib._unsafe_reset_threadpool(int(req.threads))
    program = Runtime.get().load_program(Path(req.model_path))
    method = program.load_method("forward")
    names = req.input_names

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n], dtype=np.int64)) for n in names]
        return [o.detach().numpy() for o in method.execute(args)]

    # the pool's size, read back: what XNNPACK really runs on
    return run, {"threads_effective": int(portable_lib._threadpool_get_thread_count())}


register(Backend(name="executorch", precisions=("fp32", "int8", "8da4w"), export=export_executorch,
                 load=load_executorch, available=installed("executorch"), dynamic_shapes=True,
                 label="ExecuTorch XNNPACK", requires=("numpy", "executorch"),
                 install_hint=("ExecuTorch's Python pybindings must be built and installed there (build ExecuTorch "
                               "with EXECUTORCH_BUILD_PYBIND=ON, or pip install executorch where a wheel exists)"),
                 description="ExecuTorch + XNNPACK (model.pte; dynamic sequence length)"))
