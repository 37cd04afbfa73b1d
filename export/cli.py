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

from export.int8_choice import INT8_MODES
from export.pipeline import ExportConfig, run_export
from export.targets import all_targets
from export.targets.onnx import BLOCKWISE
from export.task_eval import check_eval_data
from pocketbert import argtypes as t
from pocketbert.claims import claim
from pocketbert.common import UsageError, append_log, native_output_captured, quiet_backends
from pocketbert.models import PRESETS
from pocketbert.tasks import task_names

eval_spec = t.data_spec(check_eval_data, "squad:PATH")  # squad:PATH or glue:PATH (task-metric data)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = t.config_defaults(ExportConfig)  # every default below is the config's own
    blocks = BLOCKWISE  # --int8-mode blockwise's settings, defined (with their reasons) by the ONNX target
    targets = all_targets()
    precisions = "; ".join(f"{n}: {' '.join(b.precisions)}" for n, b in targets.items())
    all_precisions = sorted({x for b in targets.values() for x in b.precisions})
    p.add_argument("--model", required=True, type=t.model,
                   help=f"preset ({', '.join(PRESETS)}), "
                        "a local Hugging Face folder, or a hub id (needs internet)")
    p.add_argument("--task", default=d.task, type=t.choice(task_names, "task"),
                   help=f"model head: {', '.join(task_names())} (default: {d.task})")
    p.add_argument("--target", nargs="+", default=d.targets, metavar="T",
                   type=t.choice(list(targets), "target"),
                   help=f"one or more of {', '.join(targets)} (default: {' '.join(d.targets)})")
    p.add_argument("--precision", nargs="+", default=d.precisions, metavar="P",
                   type=t.choice(all_precisions, "precision"),
                   help=f"one or more precisions ({precisions}); with several, each target builds "
                        "those it supports")
    p.add_argument("--seq-len", type=t.int_range(8, 4096), default=d.seq_len,
                   help=f"max tokens per input (default {d.seq_len}; at most the model's position limit)")
    p.add_argument("--coreml-seq-lens", type=t.int_range(8, 4096), nargs="+", metavar="N", default=d.coreml_seq_lens,
                   help="CoreML enumerated lengths (default: 128 256 384 up to --seq-len)")
    p.add_argument("--out", type=t.output_dir, required=True,
                   help="output folder (must be new or empty; --overwrite replaces one pocketbert wrote)")
    p.add_argument("--tokenizer", type=t.tokenizer, default=d.tokenizer, help="vocab.txt or tokenizer folder for presets "
                                                         "(default: a generated WordPiece vocab)")
    p.add_argument("--no-onnx-fuse", action="store_true",
                   help="ONNX: keep the exporter's plain ops (default: fused attention, "
                        "SkipLayerNorm, BiasGelu; same outputs, faster)")
    p.add_argument("--onnx-optimize", action="store_true",
                   help="run ONNX Runtime's transformer fusion before saving/quantizing")
    p.add_argument("--eval-data", metavar="KIND:PATH", type=eval_spec, default=d.eval_data,
                   help="gate trained exports against PyTorch fp32: squad:PATH (QA, SQuAD F1; e.g. "
                        "squad:../shared/data/squad/dev-v1.1-first12.json) or glue:PATH "
                        "(sequence-classification, accuracy on a GLUE-style TSV with labels) or "
                        "stsb:PATH (feature-extraction: STS-B Spearman of cosine and cosine to fp32, e.g. "
                        "stsb:../shared/data/stsb/dev.tsv) or text:PATH (token-classification: words labelled "
                        "as fp32 does, on a text file, TSV or SQuAD JSON's contexts)")
    p.add_argument("--eval-questions", type=t.positive_int, default=d.eval_questions,
                   help=f"questions (TSV rows) the gate scores (default {d.eval_questions})")
    p.add_argument("--max-f1-drop", type=t.nonneg_float, default=d.max_f1_drop,
                   help=f"F1 points an export may lose against fp32 (default {d.max_f1_drop})")
    p.add_argument("--max-accuracy-drop", type=t.nonneg_float, default=d.max_accuracy_drop,
                   help=f"glue: accuracy points an export may lose against fp32 (default {d.max_accuracy_drop})")
    p.add_argument("--max-spearman-drop", type=t.nonneg_float, default=d.max_spearman_drop,
                   help=f"stsb: STS-B Spearman points an embedding export may lose against fp32 (default {d.max_spearman_drop})")
    p.add_argument("--min-mean-cosine", type=t.fraction, default=d.min_mean_cosine, metavar="COSINE",
                   help="stsb: mean cosine of the export's sentence embeddings to fp32's it must keep "
                        f"(default {d.min_mean_cosine:g}: the int8 parity bound)")
    p.add_argument("--min-label-agreement", type=t.fraction, default=d.min_label_agreement, metavar="FRACTION",
                   help="text: share of words an export must label as fp32 does (token-classification; "
                        f"default {d.min_label_agreement:g})")
    p.add_argument("--min-identical-answers", type=t.fraction, default=d.min_identical_answers,
                   metavar="FRACTION",
                   help="with --eval-data: also fail when fewer answers than this (0..1) equal "
                        f"fp32's (default {d.min_identical_answers:g}: no bound)")
    p.add_argument("--int8-guided", metavar="KIND:PATH", type=eval_spec, default=d.int8_guided,
                   help="ONNX int8: measure each layer's int8 sensitivity and keep the most harmful "
                        "ones fp32 until --max-f1-drop (glue: --max-accuracy-drop) and "
                        "--min-identical-answers hold on this data (squad:PATH or glue:PATH, other "
                        "than --eval-data); the manifest records the per-layer choice")
    p.add_argument("--int8-guided-questions", type=t.positive_int, default=d.int8_guided_questions,
                   help=f"questions (TSV rows) of --int8-guided scored per search step (default {d.int8_guided_questions})")
    p.add_argument("--int8-guided-min-identical", type=t.fraction, default=d.int8_guided_min_identical,
                   metavar="FRACTION",
                   help="share of answers equal to fp32's that --int8-guided aims at on its data "
                        f"(default {d.int8_guided_min_identical:g}; --min-identical-answers if higher)")
    p.add_argument("--int8-guided-max-drop", type=t.nonneg_float, default=d.int8_guided_max_drop,
                   help="F1 (glue: accuracy) points --int8-guided may lose on its data "
                        f"(default {d.int8_guided_max_drop:g}; the gate's bound if lower)")
    p.add_argument("--int8-mode", default=d.int8_mode, type=t.choice(INT8_MODES, "int8 mode"),
                   help="ONNX and ExecuTorch int8 (other targets ignore it): dynamic (activations "
                        "quantized per call; ONNX: one scale per MatMul input, ExecuTorch: per token), "
                        "static (activation scales calibrated on "
                        "--calibration-samples inputs; ONNX QDQ, XNNPACK static), blockwise (ONNX only: "
                        f"onnxruntime's MatMulNBits, {blocks['bits']}-bit weights in blocks of "
                        f"{blocks['block_size']} and int8 compute on activations scaled per token and "
                        f"block of {blocks['block_size']}, so an outlier feature coarsens only its own "
                        "block), int-attention (ONNX only: dynamic, attention unfused with integer "
                        "Q.K and P.V matmuls), per-tensor (ONNX only: dynamic, one scale per weight "
                        "tensor), or auto (default "
                        f"{d.int8_mode}: "
                        "build each of the target's modes but blockwise, check parity (and --eval-data), "
                        "time them here, keep the fastest that passes if >= 5%% faster than dynamic; the "
                        "manifest records why)")
    p.add_argument("--calibration-samples", type=t.positive_int, default=d.calibration_samples,
                   help=f"inputs the int8 quantizer observes (default {d.calibration_samples})")
    p.add_argument("--parity-samples", type=t.positive_int, default=d.parity_samples,
                   help=f"inputs checked against PyTorch (default {d.parity_samples})")
    p.add_argument("--seed", type=t.nonneg_int, default=d.seed,
                   help=f"presets' random init and inputs (default {d.seed})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out that pocketbert wrote (it has a .pocketbert marker)")
    add_scopes(p)


def add_scopes(p: argparse.ArgumentParser) -> None:
    """Flags only some exports read: given to one that would ignore them, the parse refuses them."""
    coreml, onnx = (lambda a: "coreml" in a.target), (lambda a: "onnx" in a.target)
    int8 = lambda a: "int8" in a.precision and bool({"onnx", "executorch"} & set(a.target))  # noqa: E731
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
    t.only_with(p, "--int8-guided", "--target onnx --precision int8", lambda a: onnx(a) and "int8" in a.precision,
                ("--target", "executorch", "--precision", "int8"), to_onnx_int8, example=("{squad}",))
    for flag, example in (("--int8-guided-questions", "10"), ("--int8-guided-min-identical", "0.5"),
                          ("--int8-guided-max-drop", "1")):
        t.only_with(p, flag, "--int8-guided", guided, (), (*to_onnx_int8, "--int8-guided", "{squad}"),
                    example=(example,))


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    return ExportConfig(model=args.model, out=args.out, task=args.task, targets=args.target,
                        precisions=args.precision, seq_len=args.seq_len,
                        coreml_seq_lens=args.coreml_seq_lens, tokenizer=args.tokenizer,
                        calibration_samples=args.calibration_samples,
                        parity_samples=args.parity_samples, onnx_optimize=args.onnx_optimize,
                        onnx_fuse=not args.no_onnx_fuse,
                        eval_data=args.eval_data, eval_questions=args.eval_questions,
                        max_f1_drop=args.max_f1_drop,
                        max_accuracy_drop=args.max_accuracy_drop,
                        min_identical_answers=args.min_identical_answers,
                        max_spearman_drop=args.max_spearman_drop, min_mean_cosine=args.min_mean_cosine,
                        min_label_agreement=args.min_label_agreement,
                        int8_guided=args.int8_guided,
                        int8_guided_questions=args.int8_guided_questions,
                        int8_guided_min_identical=args.int8_guided_min_identical,
                        int8_guided_max_drop=args.int8_guided_max_drop, int8_mode=args.int8_mode,
                        seed=args.seed, overwrite=args.overwrite)


def run(args: argparse.Namespace) -> int:
    if args.coreml_seq_lens and max(args.coreml_seq_lens) > args.seq_len:
        raise UsageError(f"--coreml-seq-lens {max(args.coreml_seq_lens)} exceeds --seq-len {args.seq_len}: "
                         f"the model file accepts at most --seq-len tokens")

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
