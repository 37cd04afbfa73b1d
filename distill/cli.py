"""Distil a DistilBERT student from a BERT-family teacher (Sanh et al. 2019). Two modes, each
with its own flags (`pocketbert distill MODE --help`):

pretrain (the default): the triple loss (KL on T-softened MLM logits + masked-LM + cosine of hidden
states) on plain-text files; resumable; multi-GPU with torchrun:
  pocketbert distill pretrain --teacher bert-base-uncased-folder --data wiki.txt --out runs/student
  torchrun --nproc_per_node 8 -m pocketbert.cli distill pretrain --teacher ... --data ... --out ...
  pocketbert distill --out runs/student --resume           # continue after a crash (either mode)
A teacher without MLM head (e.g. all-MiniLM-L6-v2) is distilled with the hidden-state/embedding
terms only, or give --fit-mlm-head STEPS to fit a head on the frozen teacher first.
task (the paper's DistilBERT (D)): task loss + KL to a fine-tuned teacher's softened logits,
optionally on unlabelled transfer data and with intermediate-layer matching; resumable, torchrun:
  pocketbert distill task --task question-answering --teacher squad-teacher/ --train-file train.json \\
      --transfer-file unlabelled.json --eval-file dev.json --out runs/qa-student
`pocketbert distill --task ...` (no mode) is task mode, anything else without a mode is pretrain.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
from pathlib import Path

from pocketbert.claims import claim
from pocketbert.common import UsageError
from pocketbert.readers import field, read_json_bounded

MODES = {"pretrain": "pre-training distillation on plain text (the triple loss)",
         "task": "task distillation (SQuAD / GLUE): task loss + KL to a fine-tuned teacher"}


def normalize_argv(argv: list[str]) -> list[str]:
    """The mode is the first argument; without one: `task` when --task is given or OUT holds a
    task run being resumed, else `pretrain` (`--help` alone lists the modes)."""
    if not argv or argv[0] in MODES or argv[0] in ("-h", "--help"):
        return argv
    if "--task" in argv or any(a.startswith("--task=") for a in argv):
        return ["task", *argv]
    if "--resume" in argv and "--out" in argv[:-1] and _saved_mode(argv[argv.index("--out") + 1]) == "task":
        return ["task", *argv]
    return ["pretrain", *argv]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="distill_mode", metavar="MODE", parser_class=type(p))
    for name, help_text in MODES.items():
        mode = sub.add_parser(name, help=help_text, description=help_text)
        (add_pretrain_arguments if name == "pretrain" else add_task_arguments)(mode)


def _run_flags(g, out_help: str) -> None:
    """Flags both modes share, spelt once (their defaults come from each mode's config)."""
    from pocketbert import argtypes as at

    g.add_argument("--out", type=at.as_text(at.output_dir), help=out_help)
    g.add_argument("--overwrite", action="store_true", help="replace a non-empty --out that pocketbert wrote")
    g.add_argument("--resume", nargs="?", const="latest", metavar="CKPT", type=at.checkpoint,
                   help="continue from OUT's latest checkpoint (or the given ckpt-*.pt), exactly")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_pretrain_arguments(p: argparse.ArgumentParser) -> None:
    from distill.pretrain import DistillConfig
    from pocketbert import argtypes as at

    d = DistillConfig()
    g = p.add_argument_group("models")
    g.add_argument("--teacher", type=at.model, help="BERT-family teacher: preset, Hugging Face folder or hub id")
    g.add_argument("--tokenizer", type=at.tokenizer, help="tokenizer folder or vocab.txt (default: the teacher's)")
    g.add_argument("--student-layers", type=at.layer_map, help="teacher layers to copy, e.g. 0,2,4; 'reference' (the "
                   "paper's 12-layer map 0,2,4,7,9,11, the default for 12 layers) or 'every-other'")
    g.add_argument("--init", choices=["copy", "random"], default=d.init,
                   help="copy teacher weights (the paper) or random init (ablation)")
    g.add_argument("--fit-mlm-head", type=at.nonneg_int, default=0, metavar="STEPS",
                   help="teacher without MLM head: fit one on the frozen teacher first "
                   "(default 0: distil with the hidden-state/embedding terms only)")
    g.add_argument("--fit-mlm-head-lr", type=at.positive_float, default=d.fit_mlm_head_lr, metavar="LR",
                   help=f"learning rate of that head fit (default {d.fit_mlm_head_lr})")
    g = p.add_argument_group("data and loss")
    g.add_argument("--data", nargs="+", default=[], metavar="FILE", type=at.as_text(at.text_file),
                   help="plain-text files, one text per line")
    g.add_argument("--data-cache", type=at.as_text(at.output_root), help="folder for the tokenized memmaps (default OUT/data)")
    g.add_argument("--eval-data", type=at.as_text(at.text_file), help="held-out text: MLM accuracy teacher vs student at the end")
    for name, help_text in [("alpha_ce", "KL on softened MLM logits"), ("alpha_mlm", "masked-LM loss"),
                            ("alpha_cos", "cosine of last hidden states"),
                            ("alpha_mse", "MSE on MLM logits"),
                            ("alpha_hidden_mse", "MSE of last hidden states"),
                            ("alpha_pool_cos", "cosine of mean-pooled sentence embeddings"),
                            ("alpha_sim", "MSE of in-batch sentence similarity matrices")]:
        g.add_argument("--" + name.replace("_", "-"), type=at.nonneg_float, default=getattr(d, name),
                       help=f"weight of the {help_text} (default {getattr(d, name)})")
    g.add_argument("--temperature", type=at.positive_float, default=d.temperature,
                   help=f"softmax temperature of the distillation loss (default {d.temperature})")
    g.add_argument("--dropout", type=at.float_range(0.0, 1.0, hi_open=True), default=d.dropout,
                   help=f"student dropout (default {d.dropout}, the paper's; 0 matched an embedding "
                   "teacher better)")
    g.add_argument("--mlm-prob", type=at.float_range(0.0, 1.0, lo_open=True, hi_open=True), default=d.mlm_prob,
                   help=f"fraction of tokens masked, in (0, 1) (default {d.mlm_prob})")
    g.add_argument("--max-len", type=at.int_range(8, 4096), default=d.max_len,
                   help=f"sequence length (default {d.max_len})")
    g.add_argument("--min-len", type=at.nonneg_int, default=d.min_len, help="drop shorter fragments")
    g = p.add_argument_group("optimisation")
    _optimisation_flags(g, d)
    g.add_argument("--amp", default=d.amp, choices=["auto", "off", "bf16", "fp16"],
                   help="mixed precision (auto: on GPU only)")
    _run_flags(p.add_argument_group("run"), "output folder: checkpoints, metrics, student/")


def _optimisation_flags(g, c) -> None:
    from pocketbert import argtypes as at

    g.add_argument("--batch-size", type=at.positive_int, default=c.batch_size,
                   help=f"per micro-batch and process (default {c.batch_size})")
    g.add_argument("--grad-accum", type=at.positive_int, default=c.grad_accum,
                   help=f"micro-batches per optimizer step (default {c.grad_accum})")
    g.add_argument("--epochs", type=at.positive_int, default=c.epochs, help=f"default {c.epochs}")
    g.add_argument("--max-steps", type=at.positive_int, default=None,
                   help="stop after this many optimizer steps (default: run --epochs)")
    g.add_argument("--lr", type=at.positive_float, default=c.lr, help=f"peak learning rate (default {c.lr})")
    g.add_argument("--warmup", type=at.float_range(0.0, 1.0, hi_open=True), default=c.warmup,
                   help=f"warm-up fraction of steps, in [0, 1) (default {c.warmup})")
    g.add_argument("--seed", type=at.nonneg_int, default=c.seed, help=f"default {c.seed}")
    g.add_argument("--save-every", type=at.positive_int, default=c.save_every,
                   help=f"steps between checkpoints (default {c.save_every})")
    g.add_argument("--keep-checkpoints", type=at.positive_int, default=c.keep_checkpoints,
                   help=f"checkpoints kept (default {c.keep_checkpoints})")
    g.add_argument("--device", default=c.device, choices=["auto", "cpu", "cuda"])


def add_task_arguments(p: argparse.ArgumentParser) -> None:
    from distill.task import TASKS, TaskConfig
    from pocketbert import argtypes as at

    t = TaskConfig()
    g = p.add_argument_group("models")
    g.add_argument("--task", choices=list(TASKS), help="question-answering (SQuAD v1.1 JSON), "
                   "sequence-classification or regression (GLUE-style TSV)")
    g.add_argument("--teacher", type=at.model, help="a teacher fine-tuned on the task: Hugging Face folder, "
                   "hub id or preset")
    g.add_argument("--tokenizer", type=at.tokenizer, help="tokenizer folder or vocab.txt (default: the teacher's)")
    g.add_argument("--student-layers", type=at.layer_map, help="teacher layers the student copies, e.g. 0,2,4 "
                   "(default: one of two)")
    g.add_argument("--student", type=at.as_text(at.existing_dir),
                   help="start from this distilled student folder instead (e.g. `distill pretrain`'s)")
    g = p.add_argument_group("data")
    g.add_argument("--train-file", type=at.as_text(at.existing_file), help="SQuAD v1.1 JSON or GLUE-style TSV "
                   "(its gold labels are used)")
    g.add_argument("--transfer-file", type=at.as_text(at.existing_file),
                   help="unlabelled transfer data, same format: only the teacher's soft labels are used, "
                   "its gold answers/labels are never read")
    g.add_argument("--eval-file", type=at.as_text(at.existing_file), help="scored for teacher and student after training")
    g.add_argument("--max-len", type=at.int_range(8, 4096), default=t.max_len,
                   help=f"SQuAD window / pair length (default {t.max_len})")
    g.add_argument("--doc-stride", type=at.positive_int, default=t.doc_stride,
                   help=f"SQuAD window overlap in tokens (default {t.doc_stride})")
    g.add_argument("--teacher-cache", type=at.as_text(at.output_root), metavar="DIR",
                   help="folder for the frozen teacher's logits and scores, shared by runs with the same "
                   "teacher and data (default OUT/teacher-cache)")
    g = p.add_argument_group("loss")
    g.add_argument("--alpha-task", type=at.nonneg_float, default=t.alpha_task,
                   help=f"weight of the task loss on gold labels (default {t.alpha_task})")
    g.add_argument("--alpha-kd", type=at.nonneg_float, default=t.alpha_kd,
                   help=f"weight of the KL to the teacher's softened logits (default {t.alpha_kd})")
    g.add_argument("--temperature", type=at.positive_float, default=t.temperature,
                   help=f"softmax temperature of that KL, scaled by T^2 (default {t.temperature})")
    g.add_argument("--alpha-hidden", type=at.nonneg_float, default=t.alpha_hidden,
                   help=f"intermediate-layer matching: weight of the MSE of mapped hidden states (default "
                   f"{t.alpha_hidden}: off; the teacher then runs every step)")
    g.add_argument("--alpha-attn", type=at.nonneg_float, default=t.alpha_attn,
                   help=f"intermediate-layer matching: weight of the KL of mapped attention distributions "
                   f"(default {t.alpha_attn}: off)")
    g.add_argument("--layer-map", type=at.layer_map, metavar="T1,T2,...",
                   help="teacher layer (1-based) matched by each student layer (default: uniform, last to "
                   "last, e.g. 2,4,6 for 3 of 6); recorded in config.json")
    g = p.add_argument_group("optimisation")
    _optimisation_flags(g, t)
    _run_flags(p.add_argument_group("run"), "output folder: checkpoints, metrics.json, student/")


def _given(args, cls) -> dict:
    """Arguments that map onto fields of `cls`, leaving the dataclass defaults where unset."""
    names = {f.name for f in dataclasses.fields(cls)}
    out = {k: v for k, v in vars(args).items() if k in names and v is not None}
    out["progress"] = not args.no_progress
    return out


def run(args) -> int:
    if not getattr(args, "distill_mode", None):
        raise UsageError("give a mode: pocketbert distill pretrain|task ... (see pocketbert distill MODE --help)")
    if not args.out:
        raise UsageError("--out is required: the folder for the student, checkpoints and metrics")
    # a second distill (or --resume) on this --out while this one runs is refused, naming this one's pid
    # (their checkpoints would interleave); under torchrun the ranks of one run share it: rank 0 holds it
    with claim(Path(args.out)) if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext():
        return _run_mode(args)


def _run_mode(args) -> int:
    from pocketbert.common import quiet_backends

    quiet_backends()  # torchao / torch._pytree / save_pretrained chatter stays off the console
    if args.distill_mode == "task":
        from distill.task import TaskConfig, distill_task

        if args.resume and _saved_mode(args.out) == "pretrain":
            raise UsageError(f"{args.out} holds a pre-training run: resume it with `pocketbert distill "
                             "pretrain --resume`")
        if not args.resume and not (args.teacher and args.task):
            raise UsageError("--task and --teacher are required: the task and a teacher fine-tuned on it "
                             "(or --resume to continue a run)")
        kw = _given(args, TaskConfig)
        if args.resume:
            kw = _resume_config(args, kw)
        cfg = TaskConfig(**kw)
        metrics = distill_task(cfg, resume=args.resume, overwrite=args.overwrite)
        if os.environ.get("RANK", "0") != "0":
            return 0  # under torchrun only rank 0 reports
        print(json.dumps({k: v for k, v in metrics.items()
                          if k in ("teacher", "student", "task", "f1_retention_pct")}))
        print(f"student: {cfg.out}/student")
        return 0

    from distill.pretrain import DistillConfig, distill

    kw = _given(args, DistillConfig)
    kw["fit_mlm_head_steps"] = args.fit_mlm_head
    kw["fit_mlm_head_lr"] = args.fit_mlm_head_lr
    if args.resume:
        kw = _resume_config(args, kw)
    elif not args.teacher or not args.data:
        raise UsageError("--teacher and --data are required (or --resume to continue a run)")
    cfg = DistillConfig(**kw)
    summary = distill(cfg, resume=args.resume, overwrite=args.overwrite)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports
    print(f"distill: {summary['mode']} distillation, {summary['steps']} steps; student: "
          f"{cfg.out}/student")
    if "eval" in summary:
        print("distill: held-out " + json.dumps(summary["eval"]))
    return 0


def _resume_config(args, given: dict) -> dict:
    """On --resume the saved config is the base; flags given again must agree (checked later)."""
    from pathlib import Path

    path = Path(args.out) / "config.json"
    if not path.exists():
        raise UsageError(f"nothing to resume in {args.out}: no config.json")
    saved = field(read_json_bounded(path, what="saved run config"), "config", str(path), dict)
    kept = ("out", "progress", "device", "amp", "teacher", "data")
    from distill.pretrain import DistillConfig  # a flag set away from its default that resume would ignore: refused
    from distill.task import TaskConfig

    cls = TaskConfig if isinstance(saved, dict) and "train_file" in saved else DistillConfig
    defaults = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(cls)}
    for k, v in saved.items():  # a hand-edited or damaged file: one line naming the field
        if k not in defaults:
            raise UsageError(f"{path}: config has an unknown field {k!r}: not a config this pocketbert saved")
        d = defaults[k]
        if d is not None and d is not dataclasses.MISSING and v is not None and not _same_kind(v, d):
            raise UsageError(f"{path}: config field {k!r} has the wrong type ({type(v).__name__}, "
                             f"expected {type(d).__name__})")
    ignored = [k for k, v in given.items() if k not in kept and k in saved and v != saved[k] and v != defaults.get(k)]
    if ignored:
        raise UsageError(f"--resume continues with the saved settings: {', '.join('--' + k.replace('_', '-') for k in ignored)} "
                         "would be ignored (start a new --out to change it)")
    return {**saved, **{k: v for k, v in given.items() if k in kept and v not in (None, [], "")}}


def _same_kind(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default)) or isinstance(default, (str, os.PathLike)) and isinstance(value, str)


def _saved_mode(out: str) -> str | None:
    """"task" or "pretrain": the mode of the run saved in OUT (None when there is none)."""
    try:
        saved = read_json_bounded(Path(out) / "config.json", what="saved run config")["config"]
    except (UsageError, KeyError, TypeError):  # _resume_config names what is wrong with it
        return None
    return "task" if isinstance(saved, dict) and "train_file" in saved else "pretrain"
