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
from pathlib import Path

TARGET_NAMES = ("executorch", "coreml", "onnx")
PRECISION_NAMES = ("fp32", "fp16", "int8", "palette4")
TASK_NAMES = ("question-answering", "sequence-classification", "fill-mask")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="preset (bert-base, distilbert-base, bert-tiny, distilbert-tiny), "
                        "a local Hugging Face folder, or a hub id (needs internet)")
    p.add_argument("--task", default="question-answering",
                   help=f"model head: {', '.join(TASK_NAMES)} (default: question-answering)")
    p.add_argument("--target", nargs="+", default=["executorch"], metavar="T",
                   help=f"one or more of {', '.join(TARGET_NAMES)} (default: executorch)")
    p.add_argument("--precision", nargs="+", default=["fp32"], metavar="P",
                   help="one or more of fp32, fp16 (coreml), int8, palette4 (coreml 4-bit "
                        "palettized); with several, each target builds those it supports")
    p.add_argument("--seq-len", type=int, default=384, help="max tokens per input (default 384)")
    p.add_argument("--coreml-seq-lens", type=int, nargs="+", metavar="N",
                   help="CoreML enumerated lengths (default: 128 256 384 up to --seq-len)")
    p.add_argument("--out", type=Path, required=True, help="output folder (must be new or empty)")
    p.add_argument("--tokenizer", help="vocab.txt or tokenizer folder for presets "
                                       "(default: a generated WordPiece vocab)")
    p.add_argument("--onnx-optimize", action="store_true",
                   help="run ONNX Runtime's transformer fusion before saving/quantizing")
    p.add_argument("--calibration-samples", type=int, default=32)
    p.add_argument("--parity-samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    import logging
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    logging.getLogger("torch").setLevel(logging.ERROR)

    from export.pipeline import ExportConfig, run_export

    cfg = ExportConfig(model=args.model, out=args.out, task=args.task, targets=args.target,
                       precisions=args.precision, seq_len=args.seq_len,
                       coreml_seq_lens=args.coreml_seq_lens, tokenizer=args.tokenizer,
                       calibration_samples=args.calibration_samples,
                       parity_samples=args.parity_samples, onnx_optimize=args.onnx_optimize,
                       seed=args.seed, overwrite=args.overwrite)
    bundles = run_export(cfg)
    print(render_summary(bundles))
    return 0


def render_summary(bundles: list[Path]) -> str:
    """A Markdown table of the bundles just written: size, parity figures, export time."""
    from export.bundle import read_manifest

    lines = ["| bundle | size MB | parity | max abs diff | min SNR dB | agreement | export s |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for b in bundles:
        m = read_manifest(b, verify=False)
        p = m["parity"]
        size = m["files"][m["model_file"]]["bytes"] / 1e6
        fmt = lambda k, f: format(p[k], f) if k in p else "-"  # noqa: E731
        lines.append(f"| {b} | {size:.1f} | {p['status']} | {fmt('max_abs_diff', '.2e')} | "
                     f"{fmt('min_snr_db', '.1f')} | {fmt('decision_agreement', '.1%')} | "
                     f"{m['export_seconds']:.0f} |")
    return "\n".join(lines)
