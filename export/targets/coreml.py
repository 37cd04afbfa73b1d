"""CoreML's export target (its runtime: pocketbert/backends/coreml.py). Export: trace -> coremltools ML Program (.mlpackage) with enumerated sequence lengths.

fp32 and fp16 set the compute precision. int8 and palette4 compress the weights of an fp16
program with coremltools.optimize (linear symmetric per-channel int8; 4-bit k-means palettes);
activations stay fp16, as the Neural Engine runs them. Several sequence lengths live in one
package (EnumeratedShapes); more than one enumerated input needs iOS 18 / macOS 15.
Conversion works on Linux; prediction needs macOS.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from export.targets import ExportResult, ExportTarget, register
from pocketbert.common import CheckFailed

MODEL_FILE = "model.mlpackage"
ENUMERATED_LENS = (128, 256, 384)  # the lengths apps pad to most (384: SQuAD's window), below --seq-len


def coreml_seq_lens(seq_len: int, requested: list[int] | None) -> list[int]:
    """The enumerated lengths: the requested ones, or ENUMERATED_LENS below seq_len, plus seq_len.

    Always at least two: with one fixed shape coremltools 9 constant-folds a size computation
    into a 1-element array and then fails to int() it; enumerated shapes keep it symbolic.
    """
    lens = set(requested or [n for n in ENUMERATED_LENS if n < seq_len]) | {seq_len}
    if len(lens) == 1:
        lens.add(max(8, seq_len // 2))
    return sorted(lens)


def export_coreml(loaded, precision: str, cfg, calibration: list[dict[str, np.ndarray]],
                  bundle: Path, log=print) -> ExportResult:
    import coremltools as ct
    import torch

    from pocketbert.wrapper import ExportWrapper  # torch

    logging.getLogger("coremltools").setLevel(logging.ERROR)
    lens = coreml_seq_lens(cfg.seq_len, cfg.coreml_seq_lens)
    model = loaded.model
    if precision == "int8":
        from export.quant import without_zero_embedding_rows  # torch

        model = without_zero_embedding_rows(model)
    wrapper = ExportWrapper(model, loaded.task, loaded.uses_token_type_ids, loaded.pooling).eval()
    example = tuple(torch.ones((1, lens[0]), dtype=torch.int32) for _ in loaded.input_names)
    log("tracing")
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, example)
    shapes = ct.EnumeratedShapes(shapes=[[1, n] for n in lens], default=[1, lens[-1]])
    inputs = [ct.TensorType(name=n, shape=shapes, dtype=np.int32) for n in loaded.input_names]
    outputs = [ct.TensorType(name=n) for n in loaded.output_names]
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    log(f"converting to ML Program ({compute.name.lower()} compute, lengths {lens})")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        mlmodel = ct.convert(traced, inputs=inputs, outputs=outputs, convert_to="mlprogram",
                             compute_precision=compute,
                             minimum_deployment_target=ct.target.iOS18)
        if precision in ("int8", "palette4"):
            log(f"compressing weights ({precision})")
            with np.errstate(invalid="raise", divide="raise"):  # a NaN weight must not pass
                mlmodel = _compress(mlmodel, precision)
    mlmodel.short_description = f"pocketbert {loaded.task} ({precision})"
    mlmodel.save(str(bundle / MODEL_FILE))
    return ExportResult(model_file=MODEL_FILE, input_dtype="int32", seq_lens=lens,
                        dynamic_seq=False,
                        notes={"compute_precision": compute.name.lower(),
                               "minimum_deployment_target": "iOS18/macOS15",
                               "weights": {"fp32": "fp32", "fp16": "fp16",
                                           "int8": "int8 linear symmetric per-channel",
                                           "palette4": "4-bit k-means palettes"}[precision]})


def _compress(mlmodel, precision: str):
    from coremltools.optimize.coreml import (
        OpLinearQuantizerConfig,
        OpPalettizerConfig,
        OptimizationConfig,
        linear_quantize_weights,
        palettize_weights,
    )

    if precision == "int8":
        op = OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                     granularity="per_channel", weight_threshold=2048)
        return linear_quantize_weights(mlmodel, OptimizationConfig(global_config=op))
    op = OpPalettizerConfig(nbits=4, mode="kmeans", granularity="per_tensor", weight_threshold=2048)
    return palettize_weights(mlmodel, OptimizationConfig(global_config=op))


def check_package(path: Path, input_names: list[str], output_names: list[str]) -> None:
    """Load the package's spec (works off macOS) and check its interface is the one we meant."""
    import coremltools as ct

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    got_in = [i.name for i in spec.description.input]
    got_out = [o.name for o in spec.description.output]
    if got_in != input_names or got_out != output_names:
        raise CheckFailed(f"CoreML package interface {got_in} -> {got_out} != "
                          f"{input_names} -> {output_names}")


register(ExportTarget(name="coreml", precisions=("fp32", "fp16", "int8", "palette4"), export=export_coreml,
                      check_bundle=check_package,
                      export_seconds={"palette4": 35, "int8": 20, "fp16": 15, "fp32": 11},
                      description="CoreML ML Program (model.mlpackage; enumerated lengths; predicts on macOS)"))
