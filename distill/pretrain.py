"""Pre-training distillation, the paper's method: check the config -> build teacher and student ->
tokenize the corpus -> train -> save the student (-> evaluate on held-out text).

Single process: `pocketbert distill --teacher T --data a.txt --out runs/x`.
Multi-GPU / multi-node: the same command under `torchrun --nproc_per_node N -m pocketbert.cli
distill ...` (DistributedDataParallel; gloo on CPU, nccl on GPU). The effective batch is
batch_size x grad_accum x world_size. Modules: `config` (the knobs), `runtime` (rank, device,
AMP, RNG), `loop` (the training loop), `objective` (forwards and the triple loss), `mlm_head`
(fitting a head for a teacher without one), `evaluate` (held-out scores).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

from distill.checkpoint import prepare_run_dir, resume_path
from distill.config import DistillConfig, save_run_config
from pocketbert.common import UsageError, git_revision, write_json
from pocketbert.outputs import check_output_dir

__all__ = ["DistillConfig", "build_models", "distill", "load_corpus", "save_run_config", "save_student"]


def distill(cfg: DistillConfig, resume: str | None = None, overwrite: bool = False,
            on_step: Sequence[Any] = ()) -> dict[str, Any]:
    """The pre-training distillation pipeline. Returns the run summary (also in OUT/summary.json).
    `on_step`: callables given a `distill.loop.StepEnd` after every optimizer step."""
    from distill.data import check_text_file
    from distill.loop import Logger, train
    from distill.runtime import setup_run_context

    cfg.validate()
    ctx = setup_run_context(cfg.device, cfg.amp)
    out = Path(cfg.out)
    ckdir = out / "checkpoints"
    created = not resume and not out.exists()  # a run that fails before its first checkpoint removes it
    if not resume and ctx.is_main:
        check_output_dir(out, overwrite, replaces=False)
    for path in cfg.data:
        check_text_file(Path(path))
    try:
        start_ckpt = prepare_run_dir(out, ckdir, resume, overwrite) if ctx.is_main else None
        ctx.barrier()
        if not ctx.is_main and resume:
            start_ckpt = resume_path(out, ckdir, resume)
        # 1. teacher and student
        teacher, student, layers, notes = build_models(cfg, ctx)
        if ctx.is_main and not resume:  # on resume the saved config stays authoritative
            save_run_config(cfg, out, {"student_layers": layers, "notes": notes,
                                       "world_size": ctx.world_size})
        # 2. data
        corpus = load_corpus(cfg, teacher.tokenizer, ctx)
        # 3. train
        summary = train(cfg, teacher, student, corpus, ctx, ckdir, start_ckpt,
                        Logger(out, ctx.is_main, cfg.progress),
                        fingerprint=_fingerprint(cfg, layers, corpus, ctx), notes=notes, on_step=on_step)
    except BaseException:
        if created and ctx.is_main and out.exists() and not any(ckdir.glob("ckpt-*")):
            shutil.rmtree(out, ignore_errors=True)  # nothing half-written from a failed start
        raise
    # 4. save the student as a standard Hugging Face folder (rank 0), then score it
    if ctx.is_main:
        save_student(student, teacher, out / "student", dict(summary, layers=layers, notes=notes))
        if cfg.eval_data:
            from distill.evaluate import evaluate_mlm

            summary["eval"] = evaluate_mlm(teacher, student, cfg.eval_data, cfg)
        write_json(out / "summary.json", summary)
    ctx.barrier()
    ctx.close()
    return summary


def build_models(cfg: DistillConfig, ctx) -> tuple[Any, Any, list[int], list[str]]:
    """Teacher (frozen, eval) and student (copied layers), both on the run's device (a
    `distill.runtime.RunContext`). -> (teacher, student, copied layers, notes for the log)."""
    from distill.student import build_student, load_teacher, parse_layers

    teacher = load_teacher(cfg.teacher, cfg.tokenizer, seed=cfg.seed)
    layers = parse_layers(cfg.student_layers, teacher.num_layers)
    teacher.family.check_layer_copy(layers)  # a layer map the family cannot take: one line, before training
    notes = []
    if not teacher.has_mlm_head:
        if cfg.fit_mlm_head_steps > 0:
            from distill.mlm_head import fit_mlm_head

            if cfg.data_cache is None and not cfg.data:
                raise UsageError("fitting an MLM head needs --data")
            teacher, head_loss = fit_mlm_head(teacher, load_corpus(cfg, teacher.tokenizer, ctx), cfg, ctx)
            notes.append(f"teacher has no MLM head: fitted one on the frozen teacher "
                         f"({cfg.fit_mlm_head_steps} steps, final train MLM loss {head_loss:.3f}), "
                         "then the full triple loss")
        else:
            used = [n for n, a in (("cosine", cfg.alpha_cos), ("hidden MSE", cfg.alpha_hidden_mse),
                                   ("pooled cosine", cfg.alpha_pool_cos),
                                   ("similarity", cfg.alpha_sim)) if a]
            if not used:
                raise UsageError("teacher has no MLM head and every hidden-state/embedding weight "
                                 "is 0: nothing to distil (set --alpha-cos, --alpha-hidden-mse, "
                                 "--alpha-pool-cos or --alpha-sim, or --fit-mlm-head)")
            notes.append("teacher has no MLM head: distilling with the hidden-state/embedding "
                         f"terms only ({' + '.join(used)}), unmasked input")
    student = build_student(teacher, layers, dropout=cfg.dropout, copy=cfg.init == "copy",
                            seed=cfg.seed)
    teacher.model.to(ctx.device)
    student.to(ctx.device)
    return teacher, student, layers, notes


def load_corpus(cfg: DistillConfig, tokenizer, ctx):
    """Tokenize once (rank 0) into memmaps, then open them everywhere."""
    from distill.data import Corpus, build_corpus, corpus_key

    cache = Path(cfg.data_cache) if cfg.data_cache else Path(cfg.out) / "data"
    paths = [Path(p) for p in cfg.data]
    if ctx.is_main:
        folder = build_corpus(paths, tokenizer, cache, cfg.max_len, cfg.min_len, progress=cfg.progress)
    ctx.barrier()
    if not ctx.is_main:
        folder = cache / corpus_key(paths, tokenizer, cfg.max_len, cfg.min_len)
    corpus = Corpus(folder)
    corpus.key = folder.name
    return corpus


def save_student(student, teacher, folder: Path, info: dict[str, Any]) -> None:
    """The student as a standard Hugging Face folder (config, safetensors, tokenizer) that
    `pocketbert export` takes as it is, written atomically."""
    from pocketbert.outputs import atomic_output_dir

    with atomic_output_dir(folder, overwrite=True) as tmp:
        student.save_pretrained(tmp)
        teacher.tokenizer.save_pretrained(tmp)
        write_json(Path(tmp) / "distill_info.json", dict(info, teacher=teacher.source,
                                                           git_revision=git_revision()))


def _fingerprint(cfg: DistillConfig, layers, corpus, ctx) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint to continue exactly."""
    keys = ("teacher", "init", "alpha_ce", "alpha_mlm", "alpha_cos", "alpha_mse", "alpha_hidden_mse",
            "alpha_pool_cos", "alpha_sim",
            "temperature", "mlm_prob", "mlm_smoothing", "max_len", "min_len", "batch_size",
            "epochs", "max_steps", "lr", "warmup", "seed", "fit_mlm_head_steps", "fit_mlm_head_lr")
    fp = {k: getattr(cfg, k) for k in keys}
    fp.update(layers=list(layers), corpus=corpus.key,
              micro_batches_per_step=cfg.grad_accum * ctx.world_size)
    return fp
