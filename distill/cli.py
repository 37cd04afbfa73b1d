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
from pocketbert.knobs import add_knob, add_knobs
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


# A flag whose None default means "not given": required unless --resume, which takes the saved value
NOT_GIVEN = {"default": None}


def _run_flags(g, cls, out_help: str) -> None:
    """Flags both modes share, spelt once (their defaults come from each mode's config)."""
    from pocketbert import argtypes as at

    add_knob(g, cls, "out", f"{out_help} (required)", **NOT_GIVEN)
    g.add_argument("--overwrite", action="store_true", help="replace a non-empty --out that pocketbert wrote")
    g.add_argument("--resume", nargs="?", const="latest", metavar="CKPT", type=at.checkpoint,
                   help="continue from OUT's latest checkpoint (or the given ckpt-*.pt), exactly")
    add_knob(g, cls, "progress", "no progress bars")


def add_pretrain_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag but --overwrite/--resume is generated from its DistillConfig field."""
    from distill.config import DistillConfig as C

    g = p.add_argument_group("models")
    add_knob(g, C, "teacher", "BERT-family teacher: preset, Hugging Face folder or hub id (required unless "
             "--resume)", **NOT_GIVEN)
    add_knob(g, C, "tokenizer", "tokenizer folder or vocab.txt")
    add_knob(g, C, "student_layers", "teacher layers to copy, e.g. 0,2,4; 'reference' (the paper's 12-layer map "
             "0,2,4,7,9,11) or 'every-other'")
    add_knob(g, C, "init", "copy teacher weights (the paper) or random init (ablation)")
    add_knob(g, C, "fit_mlm_head_steps", "teacher without MLM head: fit one on the frozen teacher first",
             metavar="STEPS")
    add_knob(g, C, "fit_mlm_head_lr", "learning rate of that head fit", metavar="LR")
    g = p.add_argument_group("data and loss")
    add_knob(g, C, "data", "plain-text files, one text per line (required unless --resume)", nargs="+",
             metavar="FILE")
    add_knob(g, C, "data_cache", "folder for the tokenized memmaps")
    add_knob(g, C, "eval_data", "held-out text: MLM accuracy teacher vs student at the end")
    add_knobs(g, C, {"alpha_ce": "weight of the KL on softened MLM logits", "alpha_mlm": "weight of the masked-LM loss",
                     "alpha_cos": "weight of the cosine of last hidden states",
                     "alpha_mse": "weight of the MSE on MLM logits",
                     "alpha_hidden_mse": "weight of the MSE of last hidden states",
                     "alpha_pool_cos": "weight of the cosine of mean-pooled sentence embeddings",
                     "alpha_sim": "weight of the MSE of in-batch sentence similarity matrices",
                     "temperature": "softmax temperature of the distillation loss",
                     "dropout": "student dropout",
                     "mlm_prob": "fraction of tokens masked",
                     "max_len": "sequence length",
                     "min_len": "drop shorter fragments"})
    g = p.add_argument_group("optimisation")
    _optimisation_flags(g, C)
    add_knob(g, C, "amp", "mixed precision (auto: on GPU only)")
    _run_flags(p.add_argument_group("run"), C, "output folder: checkpoints, metrics, student/")


def _optimisation_flags(g, cls) -> None:
    add_knobs(g, cls, {"batch_size": "per micro-batch and process",
                       "grad_accum": "micro-batches per optimizer step",
                       "epochs": "passes over the data",
                       "max_steps": "stop after this many optimizer steps",
                       "lr": "peak learning rate",
                       "warmup": "warm-up fraction of steps",
                       "seed": "init, batch order, masking and dropout",
                       "save_every": "steps between checkpoints",
                       "keep_checkpoints": "checkpoints kept (0: all)",
                       "device": "where to train (auto: cuda when there is one)"})


def add_task_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag but --overwrite/--resume is generated from its TaskConfig field."""
    from distill.task import TaskConfig as C

    g = p.add_argument_group("models")
    add_knob(g, C, "task", "question-answering (SQuAD v1.1 JSON), sequence-classification or regression "
             "(GLUE-style TSV); required unless --resume", **NOT_GIVEN)
    add_knob(g, C, "teacher", "a teacher fine-tuned on the task: Hugging Face folder, hub id or preset (required unless "
             "--resume)", **NOT_GIVEN)
    add_knob(g, C, "tokenizer", "tokenizer folder or vocab.txt")
    add_knob(g, C, "student_layers", "teacher layers the student copies, e.g. 0,2,4")
    add_knob(g, C, "student", "start from this distilled student folder instead (e.g. `distill pretrain`'s)")
    g = p.add_argument_group("data")
    add_knob(g, C, "train_file", "SQuAD v1.1 JSON or GLUE-style TSV (its gold labels are used; required unless "
             "--resume)", **NOT_GIVEN)
    add_knob(g, C, "transfer_file", "unlabelled transfer data, same format: only the teacher's soft labels are "
             "used, its gold answers/labels are never read")
    add_knob(g, C, "eval_file", "scored for teacher and student after training")
    add_knobs(g, C, {"max_len": "SQuAD window / pair length", "doc_stride": "SQuAD window overlap in tokens"})
    add_knob(g, C, "teacher_cache", "folder for the frozen teacher's logits and scores, shared by runs with the "
             "same teacher and data", metavar="DIR")
    g = p.add_argument_group("loss")
    add_knobs(g, C, {"alpha_task": "weight of the task loss on gold labels",
                     "alpha_kd": "weight of the KL to the teacher's softened logits",
                     "temperature": "softmax temperature of that KL, scaled by T^2",
                     "alpha_hidden": "intermediate-layer matching: weight of the MSE of mapped hidden states",
                     "alpha_attn": "intermediate-layer matching: weight of the KL of mapped attention distributions"})
    add_knob(g, C, "layer_map", "teacher layer (1-based) matched by each student layer; recorded in config.json",
             metavar="T1,T2,...")
    g = p.add_argument_group("optimisation")
    _optimisation_flags(g, C)
    _run_flags(p.add_argument_group("run"), C, "output folder: checkpoints, metrics.json, student/")


def _given(args, cls) -> dict:
    """Arguments that map onto fields of `cls`, leaving the dataclass defaults where unset."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


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
