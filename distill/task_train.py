"""The task-distillation training loop and the teacher's cached outputs.

Like pre-training's loop (`distill.loop`), each micro-batch is a pure function of (seed, epoch,
position): its windows (length-grouped batches of the epoch), its dropout, and so its gradient.
So a run resumed from a checkpoint continues bit for bit, and N processes under `torchrun` with
accumulation A match one process with accumulation N*A.

The teacher is frozen and runs in eval mode: when only its logits are needed (no intermediate-
layer terms), they are computed once for every training window and kept in the teacher cache
(a folder keyed by the teacher's weights and the tokenized data), so each step runs the student
alone and the students of a layer sweep share one teacher pass. Its scores on the eval file are
cached the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

from distill.checkpoint import save_checkpoint
from distill.loop import Logger, StepEnd, _all_finite, micro_batch_seed, plan_steps, resume_state
from distill.task_model import _as_feature, collate_task, evaluate_task, forward_task, task_losses
from pocketbert.common import CheckFailed, write_json

PAD_LOGIT = -1e4  # what padded positions of QA logits hold (as in forward_task)
LOG_EVERY = 10  # optimizer steps between metrics.jsonl lines


# ----------------------------------------------------------------------------- identities

def _feature_digest(feats: Sequence[dict[str, Any]], labels: bool) -> str:
    """sha256 of the tokenized windows (and, with `labels`, of the gold labels the loss reads)."""
    h = hashlib.sha256()
    for f in feats:
        row: list[Any] = [f["input_ids"], f.get("token_type_ids")]
        if labels:
            row += [bool(f.get("labelled", True))]
            if f.get("labelled", True):
                row += [f.get("start"), f.get("end"), f.get("label")]
        h.update(json.dumps(row).encode())
    return h.hexdigest()


def model_digest(model) -> str:
    """sha256 of a model's weights (names, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fingerprint(cfg, teacher, data, copied, layer_map, ctx) -> dict[str, Any]:
    """What a resumed run must share with its checkpoint to continue exactly."""
    keys = ("task", "student", "alpha_task", "alpha_kd", "alpha_hidden", "alpha_attn", "temperature",
            "max_len", "doc_stride", "batch_size", "epochs", "max_steps", "lr", "weight_decay",
            "warmup", "max_grad_norm", "seed")
    fp = {k: getattr(cfg, k) for k in keys}
    fp.update(teacher=model_digest(teacher)[:16], data=_feature_digest(data["features"], labels=True)[:16],
              layers=copied, layer_map=layer_map, micro_batches_per_step=cfg.grad_accum * ctx.world_size)
    return fp


def _cache_dir(cfg) -> Path:
    return Path(cfg.teacher_cache) if cfg.teacher_cache else Path(cfg.out) / "teacher-cache"


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the teacher, once

def teacher_logits(cfg, teacher, teacher_type: str, feats: Sequence[dict[str, Any]], ctx) -> list[Any]:
    """The frozen teacher's logits for every training window, real length (QA: a (2, n) tensor;
    classification/regression: (labels,)), from the cache or computed once (rank 0). A cache file
    that is unreadable, truncated or not this teacher's and data's is computed again, never trusted."""
    import torch
    from tqdm import tqdm

    key = hashlib.sha256(f"{cfg.task}|{model_digest(teacher)}|{_feature_digest(feats, labels=False)}"
                         .encode()).hexdigest()[:20]
    path = _cache_dir(cfg) / f"logits-{key}.pt"
    logits = read_logits_cache(path, key, feats, cfg.task) if ctx.is_main else None
    if ctx.is_main and logits is None:
        if path.exists():
            print(f"teacher cache {path} is unreadable or not this teacher's: computing it again", flush=True)
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
        out: list[Any] = [None] * len(feats)
        with torch.no_grad(), tqdm(total=len(feats), desc="teacher logits (once)", unit="window",
                                   disable=not cfg.progress) as bar:
            for s in range(0, len(order), 32):
                idx = order[s:s + 32]
                batch = collate_task([feats[i] for i in idx], 0, cfg.task)
                lg = forward_task(teacher, teacher_type, batch, cfg.task)
                for r, i in enumerate(idx):
                    n = len(feats[i]["input_ids"])
                    out[i] = torch.stack([x[r, :n] for x in lg]) if cfg.task == "question-answering" \
                        else lg[0][r].clone()
                bar.update(len(idx))
        _atomic_torch_save({"key": key, "logits": out}, path)
        logits = out
    ctx.barrier()
    if logits is None:  # another rank: the file rank 0 just wrote
        logits = read_logits_cache(path, key, feats, cfg.task)
        if logits is None:
            raise CheckFailed(f"teacher cache {path} is unreadable after rank 0 wrote it: is the folder shared?")
    return logits


def read_logits_cache(path: Path, key: str, feats: Sequence[dict[str, Any]], task: str) -> list[Any] | None:
    """The cached logits when the file holds exactly what this teacher and data make: one finite
    tensor per window, of the window's length (QA); else None. Loaded without running any code."""
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - missing, truncated, not a torch file, or a pickle with code in it
        return None
    logits = saved.get("logits") if isinstance(saved, dict) and saved.get("key") == key else None
    if not isinstance(logits, list) or len(logits) != len(feats):
        return None
    for x, f in zip(logits, feats):
        if not torch.is_tensor(x) or not x.dtype.is_floating_point or not bool(torch.isfinite(x).all()):
            return None
        if task == "question-answering" and tuple(x.shape) != (2, len(f["input_ids"])):
            return None
    return logits


def cached_teacher_scores(cfg, teacher, teacher_type: str, ev: dict[str, Any]) -> dict[str, Any]:
    """The teacher's scores on the eval data, from the cache or computed once (a cache file that does
    not read back as this key's finite scores is computed again)."""
    feats = [_as_feature(f) for f in ev["features"]]
    key = hashlib.sha256(f"{cfg.task}|{model_digest(teacher)}|{_feature_digest(feats, labels=False)}|"
                         f"{cfg.eval_file}".encode()).hexdigest()[:20]
    path = _cache_dir(cfg) / f"scores-{key}.json"
    scores = _read_scores_cache(path, key)
    if scores is not None:
        return scores
    scores = evaluate_task(cfg, teacher, teacher_type, ev, desc="scoring teacher (once)")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"key": key, "scores": scores})
    return scores


PERCENT_SCORES = ("exact_match", "f1", "accuracy")  # what a cached score must lie in 0..100 for


def _read_scores_cache(path: Path, key: str) -> dict[str, Any] | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    scores = saved.get("scores") if isinstance(saved, dict) and saved.get("key") == key else None
    ok = isinstance(scores, dict) and scores and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        and (k not in PERCENT_SCORES or 0 <= v <= 100) for k, v in scores.items())
    return scores if ok else None



# ----------------------------------------------------------------------------- losses

def hidden_mse(s_hidden, t_hidden, layer_map: list[int], mask):
    """Mean over mapped layers of the MSE of hidden states on real tokens: student layer m
    (1-based; hidden_states[m]) against teacher layer layer_map[m-1]."""
    import torch.nn.functional as F

    keep = mask.bool()  # (bs, seq)
    terms = [F.mse_loss(s_hidden[m][keep], t_hidden[t][keep]) for m, t in enumerate(layer_map, start=1)]
    return sum(terms) / len(terms)


def attention_kl(s_att, t_att, layer_map: list[int], mask):
    """Mean over mapped layers of KL(teacher ‖ student) of each head's attention distribution,
    averaged over heads and real query tokens (MiniLM's attention transfer)."""
    import torch

    keep = mask.bool()  # (bs, seq)
    terms = []
    for m, t in enumerate(layer_map, start=1):
        s, tt = s_att[m - 1].float(), t_att[t - 1].float()  # (bs, heads, q, k)
        kl = (torch.xlogy(tt, tt) - tt * torch.log(s.clamp_min(1e-12))).sum(-1)  # (bs, heads, q)
        terms.append(kl.mean(1)[keep].mean())
    return sum(terms) / len(terms)


def _teacher_batch(cached, idx, width: int, task: str):
    """Cached teacher logits for a batch, padded like forward_task's."""
    import torch

    if task != "question-answering":
        return (torch.stack([cached[i] for i in idx]),)
    out = torch.full((2, len(idx), width), PAD_LOGIT)
    for r, i in enumerate(idx):
        out[:, r, :cached[i].shape[1]] = cached[i]
    return out[0], out[1]


def step_losses(cfg, model, teacher, teacher_type: str, batch, idx, cached, layer_map):
    """(weighted loss, its terms) of one micro-batch."""
    import torch

    from distill.losses import _zero

    internals = layer_map is not None
    s_out = forward_task(model, "distilbert", batch, cfg.task, internals=internals)
    s_logits, (s_hid, s_att) = s_out if internals else (s_out, (None, None))
    t_logits = t_hid = t_att = None
    if cached is not None:
        t_logits = _teacher_batch(cached, idx, batch["input_ids"].shape[1], cfg.task)
    elif internals or cfg.alpha_kd:
        with torch.no_grad():
            t_out = forward_task(teacher, teacher_type, batch, cfg.task, internals=internals)
        t_logits, (t_hid, t_att) = t_out if internals else (t_out, (None, None))
    task_loss, kd = task_losses(cfg.task, s_logits, t_logits or s_logits, batch, cfg.temperature)
    zero = _zero(s_logits[0])
    hid = hidden_mse(s_hid, t_hid, layer_map, batch["attention_mask"]) if cfg.alpha_hidden else zero
    att = attention_kl(s_att, t_att, layer_map, batch["attention_mask"]) if cfg.alpha_attn else zero
    loss = cfg.alpha_task * task_loss + cfg.alpha_kd * kd + cfg.alpha_hidden * hid + cfg.alpha_attn * att
    terms = {"task": float(task_loss.detach()), "kd": float(kd.detach())}
    if cfg.alpha_hidden:
        terms["hidden"] = float(hid.detach())
    if cfg.alpha_attn:
        terms["attn"] = float(att.detach())
    return loss, terms


# ----------------------------------------------------------------------------- the loop

def _teacher_use(cfg, cached) -> str:
    if cached is not None:
        return "cached logits"
    return "every step" if (cfg.matches_layers or cfg.alpha_kd) else "not used (--alpha-kd 0)"


def make_optimizer(cfg, student, total_steps: int):
    """AdamW (no decay on biases and LayerNorms) with linear warm-up, then linear decay to 0."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    named = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    plain = [p for n, p in named if n.endswith("bias") or "layer_norm" in n.lower() or "LayerNorm" in n]
    plain_ids = {id(p) for p in plain}
    groups = [{"params": [p for _, p in named if id(p) not in plain_ids], "weight_decay": cfg.weight_decay},
              {"params": plain, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    return opt, get_linear_schedule_with_warmup(opt, int(cfg.warmup * total_steps), total_steps)


def train_task(cfg, teacher, teacher_type: str, student, data, cached, layer_map, ctx, ckdir: Path,
               start_ckpt: Path | None, fp: dict[str, Any], on_step: Sequence[Any] = ()) -> dict[str, Any]:
    """Train `student`; checkpoints in `ckdir`; resumes exactly from `start_ckpt`. -> summary."""
    import numpy as np
    import torch

    from distill.data import length_grouped_batches
    from distill.runtime import rng_state

    feats = data["features"]
    world, rank, device = ctx.world_size, ctx.rank, ctx.device
    lengths = np.array([len(f["input_ids"]) for f in feats])
    steps_per_epoch, total = plan_steps(cfg, len(feats), world)
    student.to(device)
    teacher.to(device)
    model = student
    if ctx.distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            student, device_ids=[device.index] if device.type == "cuda" else None)
    opt, sched = make_optimizer(cfg, student, total)
    scaler = torch.amp.GradScaler(device.type, enabled=False)  # fp32 (kept for the checkpoint format)
    log = Logger(Path(cfg.out), ctx.is_main, cfg.progress)
    step = 0
    if start_ckpt is not None:
        step = resume_state(start_ckpt, fp, student, opt, sched, scaler)
        log.truncate(step)
        log.info(f"resumed from {start_ckpt} at step {step}")
    log.info(f"{data['n_labelled']} labelled + {data['n_transfer']} transfer windows, {steps_per_epoch} "
             f"steps/epoch, {total} steps, effective batch {cfg.batch_size * cfg.grad_accum * world}, "
             f"world {world}, teacher: {_teacher_use(cfg, cached)}"
             + (f", layer map {layer_map}" if layer_map else ""))
    student.train()
    bar = log.bar(total=total, initial=step)
    t0, last, batches = time.time(), {}, {}
    while step < total:
        epoch, s = divmod(step, steps_per_epoch)
        if epoch not in batches:
            batches = {epoch: length_grouped_batches(lengths, cfg.batch_size, seed=cfg.seed * 1000 + epoch)}
        sums: dict[str, float] = {}
        for a in range(cfg.grad_accum):
            k = (s * cfg.grad_accum + a) * world + rank
            torch.manual_seed(micro_batch_seed(cfg.seed, epoch, k))  # dropout: a function of the micro-batch
            idx = [int(i) for i in batches[epoch][k]]
            batch = {n: v.to(device) for n, v in collate_task([feats[i] for i in idx], 0, cfg.task).items()}
            sync = a == cfg.grad_accum - 1 or world == 1
            with model.no_sync() if (ctx.distributed and not sync) else contextlib.nullcontext():
                loss, terms = step_losses(cfg, model, teacher, teacher_type, batch, idx, cached, layer_map)
                (loss / cfg.grad_accum).backward()
            for key, v in dict(terms, loss=float(loss.detach())).items():
                sums[key] = sums.get(key, 0.0) + v / cfg.grad_accum
        gnorm = float(torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.max_grad_norm))
        if not _all_finite(ctx, sums["loss"], gnorm):
            bar.close()
            shown = ", ".join(f"{k}={v:.3g}" for k, v in sums.items())
            raise CheckFailed(f"non-finite loss at step {step + 1} ({shown}, grad norm={gnorm:.3g}): "
                              "training stopped, no student saved (lower --lr or check --temperature)")
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        last = sums
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()})
        if step % LOG_EVERY == 0 or step == total:
            log.metrics(dict(step=step, epoch=epoch, lr=sched.get_last_lr()[0], grad_norm=gnorm, **last))
        ckpt = None
        if step % cfg.save_every == 0 or step == total:
            if ctx.is_main:
                ckpt = save_checkpoint(ckdir, step, {
                    "student": student.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "scaler": scaler.state_dict(), "step": step,
                    "rng": rng_state(), "fingerprint": fp, "config": dataclasses.asdict(cfg)},
                    keep=cfg.keep_checkpoints)
            ctx.barrier()
        for hook in on_step:
            hook(StepEnd(step, total, last, student, ckpt))
    bar.close()
    student.eval()
    return {"steps": total, "steps_per_epoch": steps_per_epoch, "world_size": world,
            "effective_batch": cfg.batch_size * cfg.grad_accum * world, "final": last,
            "seconds": time.time() - t0}
