"""The pre-training distillation loop: AdamW, warm-up + linear decay (the HF schedule), clipping,
gradient accumulation, AMP, DDP, atomic checkpoints, exact resume, and a stop on a non-finite loss.

Each micro-batch is a pure function of (seed, epoch, position): its sequences, its masking and its
dropout are re-seeded from those, so N processes with accum A give the same result as one process
with accum N*A, and a resumed run the same as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from pocketbert.common import CheckFailed, UsageError, note_kept, write_text_atomic


@dataclass(frozen=True)
class StepEnd:
    """What a step hook sees after each optimizer step (and its checkpoint, when one was due)."""

    step: int  # optimizer steps done
    total_steps: int
    metrics: dict[str, float]  # this step's losses (mean over micro-batches) and tok_s
    student: Any  # the student being trained (hooks may inspect it; tests may break it)
    checkpoint: Path | None  # written at this step (rank 0), else None


StepHook = Callable[[StepEnd], None]


def micro_batch_seed(seed: int, epoch: int, k: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + k) % (2**63 - 1)


def train(cfg, teacher, student, corpus, ctx, ckdir: Path, start_ckpt: Path | None, log: "Logger",
          fingerprint: dict[str, Any], notes: list[str], on_step: Sequence[StepHook] = ()) -> dict[str, Any]:
    """Train `student` towards `teacher` on `corpus` (a DistillConfig `cfg`, a RunContext `ctx`);
    returns the summary. Hooks in `on_step` run after every optimizer step on every rank."""
    import torch

    from distill.checkpoint import latest_checkpoint, save_checkpoint
    from distill.data import collate, length_grouped_batches
    from distill.masking import mask_tokens, token_probs
    from distill.objective import StudentForward, compute_losses, teacher_forward

    world, rank, device = ctx.world_size, ctx.rank, ctx.device
    tok = teacher.tokenizer
    use_mlm = teacher.has_mlm_head
    probs = token_probs(corpus.counts, cfg.mlm_smoothing, tok.all_special_ids)
    if len(probs) < student.config.vocab_size:
        probs = torch.cat([probs, torch.zeros(student.config.vocab_size - len(probs))])
    steps_per_epoch, total_steps = plan_steps(cfg, len(corpus), world)

    model = fwd = StudentForward(student).to(device)
    if ctx.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            fwd, device_ids=[device.index] if device.type == "cuda" else None)
    params = [p for p in student.parameters() if p.requires_grad]
    opt, sched = make_optimizer(cfg, student, total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=ctx.amp_dtype == torch.float16)
    step = 0
    if start_ckpt is not None:
        step = resume_state(start_ckpt, fingerprint, student, opt, sched, scaler)
        log.truncate(step)
        log.info(f"resumed from {start_ckpt} at step {step}")

    for note in notes:
        log.info(note)
    cap = f"--max-steps {cfg.max_steps}" if cfg.max_steps else f"--max-steps 0: all {cfg.epochs} epochs"
    log.info(f"{len(corpus)} sequences, {steps_per_epoch} steps/epoch, {total_steps} steps ({cap}), "
             f"effective batch {cfg.batch_size * cfg.grad_accum * world} sequences, world {world}")
    student.train()
    bar = log.bar(total=total_steps, initial=step)
    t0, tokens_seen, last = time.time(), 0, {}
    epoch_batches: dict[int, list] = {}
    while step < total_steps:
        epoch, s = divmod(step, steps_per_epoch)
        if epoch not in epoch_batches:
            epoch_batches = {epoch: length_grouped_batches(corpus.lengths, cfg.batch_size,
                                                           seed=cfg.seed * 1000 + epoch)}
        sums: dict[str, float] = {}
        for a in range(cfg.grad_accum):  # one optimizer step: grad_accum micro-batches per rank
            k = (s * cfg.grad_accum + a) * world + rank
            mb_seed = micro_batch_seed(cfg.seed, epoch, k)
            torch.manual_seed(mb_seed)  # dropout: a function of the micro-batch, not of history
            gen = torch.Generator().manual_seed(mb_seed)
            ids, att = collate(corpus, epoch_batches[epoch][k], tok.pad_token_id)  # (bs, seq) x2
            labels, select = None, None
            if use_mlm:
                ids, labels = mask_tokens(ids, att, probs, tok.mask_token_id,
                                          student.config.vocab_size, gen, cfg.mlm_prob)
                select = labels.to(device) != -100  # (bs, seq)
                labels = labels.to(device)[select]  # (n,)
            ids, att = ids.to(device), att.to(device)
            sync = a == cfg.grad_accum - 1 or world == 1
            with model.no_sync() if (ctx.distributed and not sync) else contextlib.nullcontext():
                with torch.autocast(device.type, dtype=ctx.amp_dtype or torch.float32,
                                    enabled=ctx.amp_dtype is not None):
                    t_hidden, t_logits = teacher_forward(teacher, ids, att, select)
                    s_hidden, s_logits = model(ids, att, select)
                    loss, terms = compute_losses(cfg, s_hidden, s_logits, t_hidden, t_logits, labels, att)
                scaler.scale(loss / cfg.grad_accum).backward()
            for key, v in dict(terms, loss=float(loss.detach())).items():
                sums[key] = sums.get(key, 0.0) + v / cfg.grad_accum
            tokens_seen += int(att.sum())
        scaler.unscale_(opt)
        gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        if not _all_finite(ctx, sums["loss"], None if scaler.is_enabled() else float(gnorm)):
            bar.close()
            shown = ", ".join(f"{k}={v:.3g}" for k, v in sums.items())
            raise CheckFailed(f"non-finite loss at step {step + 1} ({shown}): training stopped, nothing "
                              f"saved; the last good checkpoint {latest_checkpoint(ckdir) or '(none yet)'} "
                              "is kept (lower --lr or check --temperature, then --resume or start over)")
        scaler.step(opt)
        scaler.update()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        last = dict(sums, tok_s=tokens_seen * world / max(time.time() - t0, 1e-9))
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()})
        if step % cfg.log_every == 0 or step == total_steps:
            log.metrics(dict(step=step, epoch=epoch, lr=sched.get_last_lr()[0],
                             grad_norm=float(gnorm), **last))
        ckpt = None
        if step % cfg.save_every == 0 or step == total_steps:
            if ctx.is_main:
                from distill.runtime import rng_state

                ckpt = save_checkpoint(ckdir, step, {
                    "student": student.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                    "step": step, "rng": rng_state(), "fingerprint": fingerprint,
                    "config": dataclasses.asdict(cfg)}, keep=cfg.keep_checkpoints)
                note_kept(f"checkpoints in {ckdir} (continue with --resume)")
            ctx.barrier()
        for hook in on_step:
            hook(StepEnd(step, total_steps, last, student, ckpt))
    bar.close()
    student.eval()
    return {"steps": total_steps, "steps_per_epoch": steps_per_epoch, "world_size": world,
            "effective_batch": cfg.batch_size * cfg.grad_accum * world,
            "final": last, "seconds": time.time() - t0, "mode": "triple" if use_mlm else "hidden-only"}


def plan_steps(cfg, n_sequences: int, world: int) -> tuple[int, int]:
    """-> (optimizer steps per epoch, total steps): max_steps when set, else epochs full passes."""
    steps_per_epoch = math.ceil(n_sequences / cfg.batch_size) // (cfg.grad_accum * world)
    if steps_per_epoch == 0:
        raise UsageError(f"corpus has {n_sequences} sequences: fewer than one optimizer step "
                         f"(batch {cfg.batch_size} x accum {cfg.grad_accum} x {world} processes)")
    return steps_per_epoch, cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch


def make_optimizer(cfg, student, total_steps: int):
    """AdamW (no decay on biases and LayerNorms; the reference's betas) and the linear warm-up +
    linear decay schedule."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    named = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
              {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, eps=cfg.adam_eps, betas=(0.9, 0.98))
    return opt, get_linear_schedule_with_warmup(opt, int(cfg.warmup * total_steps), total_steps)


def resume_state(path: Path, fingerprint: dict[str, Any], student, opt, sched, scaler) -> int:
    """Load a checkpoint into the run's objects (and the RNGs); -> the step it was saved at."""
    from distill.checkpoint import check_fingerprint, load_checkpoint
    from distill.runtime import restore_rng

    state = load_checkpoint(path)
    check_fingerprint(state.get("fingerprint", {}), fingerprint, path)
    try:
        student.load_state_dict(state["student"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise UsageError(f"checkpoint {path} does not fit this student "
                         f"({str(e).splitlines()[0][:160]})") from None
    restore_rng(state["rng"])
    return int(state["step"])


def _all_finite(ctx, loss: float, grad_norm: float | None) -> bool:
    """This step's loss (and, without a GradScaler to skip them, its gradients) are finite on
    every rank: all ranks stop together, none waits forever in the next all-reduce."""
    ok = math.isfinite(loss) and (grad_norm is None or math.isfinite(grad_norm))
    if ctx.distributed:
        import torch

        flag = torch.tensor([0.0 if ok else 1.0], device=ctx.device)
        torch.distributed.all_reduce(flag)
        ok = float(flag) == 0.0
    return ok


class Logger:
    """metrics.jsonl (rank 0), info lines, and the tqdm bar."""

    def __init__(self, out: Path, active: bool, progress: bool):
        self.path, self.active, self.progress = Path(out) / "metrics.jsonl", active, progress

    def truncate(self, step: int) -> None:
        """On resume, drop lines a killed run logged after its last checkpoint."""
        if not (self.active and self.path.exists()):
            return
        keep = [ln for ln in self.path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= step]
        write_text_atomic(self.path, "".join(ln + "\n" for ln in keep))

    def metrics(self, row: dict[str, Any]) -> None:
        if self.active:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def info(self, msg: str) -> None:
        if self.active:
            from tqdm import tqdm

            tqdm.write(f"distill: {msg}")

    def bar(self, total: int, initial: int):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc="distilling", unit="step",
                    disable=not (self.active and self.progress))
