"""Export a BERT-family model for mobile runtimes: ExecuTorch (.pte, XNNPACK), CoreML
(.mlpackage) and ONNX, one parity-checked bundle per target and precision.

examples:
  pocketbert export --model distilbert-base --target executorch onnx coreml \\
      --precision fp32 int8 --seq-len 384 --out bundles/distilbert
  pocketbert export --model ./my-finetuned-bert --task sequence-classification \\
      --target onnx --precision int8 --out bundles/sst2
"""

from __future__ import annotations

import argparse
import warnings

from export.config import ExportConfig
from export.pipeline import run_export
from export.targets import all_targets
from export.targets.onnx import BLOCKWISE
from pocketbert import argtypes as t
from pocketbert.claims import claim
from pocketbert.common import append_log, native_output_captured, quiet_backends
from pocketbert.knobs import add_knob, add_knobs
from pocketbert.knobs import config_from_args as knob_config
from pocketbert.models import PRESETS
from pocketbert.tasks import task_names

def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag is generated from its ExportConfig field (default, choices, range)."""
    blocks = BLOCKWISE  # --int8-mode blockwise's settings, defined (with their reasons) by the ONNX target
    targets = all_targets()
    precisions = "; ".join(f"{n}: {' '.join(b.precisions)}" for n, b in targets.items())
    add_knob(p, ExportConfig, "model", f"preset ({', '.join(PRESETS)}), a local Hugging Face folder, or a hub id "
             "(needs internet)", required=True)
    add_knob(p, ExportConfig, "task", f"model head: {', '.join(task_names())}")
    add_knob(p, ExportConfig, "targets", f"one or more of {', '.join(targets)}", nargs="+", metavar="T")
    add_knob(p, ExportConfig, "precisions", f"one or more precisions ({precisions}); with several, each target "
             "builds those it supports", nargs="+", metavar="P")
    add_knob(p, ExportConfig, "seq_len", "max tokens per input (at most the model's position limit)")
    add_knob(p, ExportConfig, "coreml_seq_lens", "CoreML enumerated lengths", nargs="+", metavar="N")
    add_knob(p, ExportConfig, "out", "output folder (must be new or empty; --overwrite replaces one pocketbert wrote)",
             required=True)
    add_knobs(p, ExportConfig, {
        "tokenizer": "vocab.txt or tokenizer folder for presets",
        "onnx_fuse": "ONNX: keep the exporter's plain ops instead of fused attention, SkipLayerNorm, BiasGelu "
                     "(same outputs; fused is faster)",
        "onnx_optimize": "run ONNX Runtime's transformer fusion before saving/quantizing",
    })
    add_knob(p, ExportConfig, "eval_data", "gate trained exports against PyTorch fp32: squad:PATH (QA, SQuAD F1; e.g. "
             "squad:../shared/data/squad/dev-v1.1-first12.json) or glue:PATH (sequence-classification, accuracy on a "
             "GLUE-style TSV with labels) or stsb:PATH (feature-extraction: STS-B Spearman of cosine and cosine to "
             "fp32, e.g. stsb:../shared/data/stsb/dev.tsv) or text:PATH (token-classification: words labelled as fp32 "
             "does, on a text file, TSV or SQuAD JSON's contexts)", metavar="KIND:PATH")
    add_knobs(p, ExportConfig, {
        "eval_questions": "questions (TSV rows) the gate scores",
        "max_f1_drop": "F1 points an export may lose against fp32",
        "max_accuracy_drop": "glue: accuracy points an export may lose against fp32",
        "max_spearman_drop": "stsb: STS-B Spearman points an embedding export may lose against fp32",
    })
    add_knob(p, ExportConfig, "min_mean_cosine", "stsb: mean cosine of the export's sentence embeddings to fp32's "
             "it must keep", metavar="COSINE")
    add_knob(p, ExportConfig, "min_label_agreement", "text: share of words an export must label as fp32 does "
             "(token-classification)", metavar="FRACTION")
    add_knob(p, ExportConfig, "min_identical_answers", "with --eval-data: also fail when fewer answers than this "
             "(0..1) equal fp32's", metavar="FRACTION")
    add_knob(p, ExportConfig, "int8_guided", "ONNX int8: measure each layer's int8 sensitivity and keep the most "
             "harmful ones fp32 until --max-f1-drop (glue: --max-accuracy-drop) and --min-identical-answers hold on "
             "this data (squad:PATH or glue:PATH, other than --eval-data); the manifest records the per-layer choice",
             metavar="KIND:PATH")
    add_knob(p, ExportConfig, "int8_guided_questions", "questions (TSV rows) of --int8-guided scored per search step")
    add_knob(p, ExportConfig, "int8_guided_min_identical", "share of answers equal to fp32's that --int8-guided aims "
             "at on its data (--min-identical-answers if higher)", metavar="FRACTION")
    add_knob(p, ExportConfig, "int8_guided_max_drop", "F1 (glue: accuracy) points --int8-guided may lose on its data "
             "(the gate's bound if lower)")
    add_knob(p, ExportConfig, "int8_mode", "ONNX and ExecuTorch int8 (other targets ignore it): dynamic (activations "
             "quantized per call; ONNX: one scale per MatMul input, ExecuTorch: per token), static (activation scales "
             "calibrated on --calibration-samples inputs; ONNX QDQ, XNNPACK static), blockwise (ONNX only: "
             f"onnxruntime's MatMulNBits, {blocks['bits']}-bit weights in blocks of {blocks['block_size']} and int8 "
             f"compute on activations scaled per token and block of {blocks['block_size']}, so an outlier feature "
             "coarsens only its own block), int-attention (ONNX only: dynamic, attention unfused with integer Q.K and "
             "P.V matmuls), per-tensor (ONNX only: dynamic, one scale per weight tensor), or auto (build each of the "
             "target's modes but blockwise, check parity (and --eval-data), time them here, keep the fastest that "
             "passes if >= 5% faster than dynamic; the manifest records why)")
    add_knobs(p, ExportConfig, {
        "calibration_samples": "inputs the int8 quantizer observes",
        "parity_samples": "inputs checked against PyTorch",
        "seed": "presets' random init and inputs",
        "overwrite": "replace a non-empty --out that pocketbert wrote (it has a .pocketbert marker)",
    })
    add_scopes(p)


def add_scopes(p: argparse.ArgumentParser) -> None:
    """Flags only some exports read: given to one that would ignore them, the parse refuses them."""
    coreml, onnx = (lambda a: "coreml" in a.targets), (lambda a: "onnx" in a.targets)
    int8 = lambda a: "int8" in a.precisions and bool({"onnx", "executorch"} & set(a.targets))  # noqa: E731
    gated = lambda a: bool(a.eval_data or a.int8_guided)  # noqa: E731 - the bounds of the gate or the search
    guided = lambda a: bool(a.int8_guided)  # noqa: E731
    to_onnx, to_onnx_int8 = ("--target", "onnx"), ("--target", "onnx", "--precision", "int8")
    t.only_with(p, "--coreml-seq-lens", "--target coreml", coreml, ("--target", "onnx"), ("--target", "coreml"),
                example=("128",))
    for flag in ("--no-onnx-fuse", "--onnx-optimize"):
        t.only_with(p, flag, "--target onnx", onnx, ("--target", "executorch"), to_onnx)
    t.only_with(p, "--int8-mode", "--precision int8 (ONNX or ExecuTorch)", int8, ("--precision", "fp32"),
                to_onnx_int8, example=("dynamic",))
    t.only_with(p, "--calibration-samples", "--precision int8 and --int8-mode static or auto",
                lambda a: int8(a) and a.int8_mode in ("static", "auto"), ("--precision", "fp32"), to_onnx_int8,
                example=("8",))
    t.only_with(p, "--eval-questions", "--eval-data", lambda a: bool(a.eval_data), (), ("--eval-data", "{squad}"),
                example=("10",))
    for flag, example in (("--max-f1-drop", "1"), ("--max-accuracy-drop", "2"), ("--min-identical-answers", "0.9"),
                          ("--max-spearman-drop", "1"), ("--min-mean-cosine", "0.99"), ("--min-label-agreement", "0.9")):
        t.only_with(p, flag, "--eval-data or --int8-guided", gated, (), ("--eval-data", "{squad}"), example=(example,))
    t.only_with(p, "--int8-guided", "--target onnx --precision int8", lambda a: onnx(a) and "int8" in a.precisions,
                ("--target", "executorch", "--precision", "int8"), to_onnx_int8, example=("{squad}",))
    for flag, example in (("--int8-guided-questions", "10"), ("--int8-guided-min-identical", "0.5"),
                          ("--int8-guided-max-drop", "1")):
        t.only_with(p, flag, "--int8-guided", guided, (), (*to_onnx_int8, "--int8-guided", "{squad}"),
                    example=(example,))


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    return knob_config(ExportConfig, args)


def run(args: argparse.Namespace) -> int:
    config_from_args(args).validate()  # the rules between flags, before anything touches --out
    with claim(args.out):  # a second export to this --out is refused now, naming this one's pid
        return _export(args)


def _export(args: argparse.Namespace) -> int:
    quiet_backends()
    warnings.filterwarnings("ignore")  # backend conversion warnings; parity judges the result
    native: list[str] = []
    try:
        with native_output_captured() as native:  # the runtimes' C++ lines go to OUT/export.log
            run_export(config_from_args(args))  # prints the summary table (also when a check fails)
    finally:
        if args.out.is_dir():
            append_log(args.out / "export.log", "pocketbert export: runtime output", "".join(native))
    return 0
