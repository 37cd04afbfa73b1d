"""Pre-training distillation, the paper's method: build student -> load data -> train -> save.

Single process: `pocketbert distill --teacher T --data a.txt --out runs/x`.
Multi-GPU / multi-node: the same command under `torchrun --nproc_per_node N -m pocketbert.cli
distill ...` (DistributedDataParallel; gloo on CPU, nccl on GPU). The effective batch is
batch_size x grad_accum x world_size; the micro-batch each process sees is a pure function of
(seed, epoch, position), and dropout/masking are re-seeded from it, so N processes with accum A
give the same result as one process with accum N*A, and a resumed run the same as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketbert.common import (UsageError, check_output_dir, git_revision, library_versions, write_json,
                               write_text_atomic)


@dataclass
class DistillConfig:
    # -- models
    teacher: str = "bert-tiny"  # preset, HF folder or hub id: a BERT-family encoder
    tokenizer: str | None = None  # tokenizer folder / vocab.txt; default: the teacher's own
    student_layers: str | None = None  # teacher layers to copy ("0,2,4"); default one of two (12 -> 0,2,4,7,9,11)
    init: str = "copy"  # "copy" teacher weights (the paper) or "random" (ablation)
    fit_mlm_head_steps: int = 0  # teacher without MLM head: fit one on the frozen teacher first (0: hidden-state/embedding terms only)
    fit_mlm_head_lr: float = 1e-3  # AdamW lr for that head (only the transform and bias train)
    # -- loss (the released DistilBERT recipe)
    alpha_ce: float = 5.0  # KL(student || teacher) on T-softened MLM logits, x T^2
    alpha_mlm: float = 2.0  # masked-LM cross-entropy on the true tokens
    alpha_cos: float = 1.0  # 1 - cosine(student, teacher) of last hidden states: aligns directions
    alpha_mse: float = 0.0  # MSE between MLM logits (the reference's optional term)
    alpha_hidden_mse: float = 0.0  # MSE between last hidden states (useful without MLM head)
    alpha_pool_cos: float = 0.0  # 1 - cosine of mean-pooled sentence embeddings (embedding teachers)
    alpha_sim: float = 0.0  # MSE between in-batch sentence cosine-similarity matrices (embedding teachers)
    temperature: float = 2.0  # softens both distributions so the teacher's dark knowledge shows
    mlm_prob: float = 0.15  # fraction of real tokens to predict (BERT)
    mlm_smoothing: float = 0.7  # masking weight ∝ count^-0.7: rare tokens masked more (reference)
    # -- data
    data: list[str] = field(default_factory=list)  # plain-text files, one text per line
    data_cache: str | None = None  # where tokenized memmaps go (default OUT/data); reused when inputs match
    max_len: int = 512  # longer texts are cut into several sequences (BERT's position limit)
    min_len: int = 3  # drop fragments shorter than this (in word pieces)
    batch_size: int = 8  # sequences per micro-batch per process (length-grouped)
    grad_accum: int = 1  # micro-batches per optimizer step: the paper used ~4K sequences a step
    # -- optimisation
    epochs: int = 3  # passes over the corpus (the reference: 3)
    max_steps: int = 0  # stop after this many optimizer steps; 0: run `epochs`
    lr: float = 5e-4  # AdamW peak learning rate (reference: 5e-4)
    weight_decay: float = 0.0  # reference: 0
    adam_eps: float = 1e-6  # reference: 1e-6
    warmup: float = 0.05  # fraction of steps of linear warm-up, then linear decay to 0
    max_grad_norm: float = 5.0  # gradient clipping (reference: 5)
    dropout: float = 0.1  # student dropout (teacher runs in eval mode)
    # -- run
    out: str = "runs/distill"  # checkpoints, metrics.jsonl, config.json, student/ (HF folder)
    seed: int = 56  # seeds init, batch order, masking, dropout (reference: 56)
    save_every: int = 200  # optimizer steps between checkpoints (and one at the end)
    keep_checkpoints: int = 2  # older ones are pruned once a newer one is complete
    log_every: int = 10  # optimizer steps between metrics.jsonl lines
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16/fp16 on GPU, off on CPU) | off | bf16 | fp16
    eval_data: str | None = None  # held-out text: MLM accuracy / hidden cosine after training
    progress: bool = True  # tqdm bars


# ----------------------------------------------------------------------------- pipeline

def distill(cfg: DistillConfig, resume: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """The pre-training distillation pipeline. Returns the run summary (also in OUT/summary.json)."""
    import torch

    env = _setup_distributed(cfg)
    out = Path(cfg.out)
    ckdir = out / "checkpoints"
    created = not resume and not out.exists()  # a failed start removes what it created
    if not resume and env["rank"] == 0:
        check_output_dir(out, overwrite)
    from distill.data import check_text_file

    for path in cfg.data:
        check_text_file(Path(path))
    try:
        start_ckpt = _prepare_out(out, ckdir, resume, overwrite) if env["rank"] == 0 else None
        _barrier(env)
        if env["rank"] != 0 and resume:
            from distill.checkpoint import latest_checkpoint

            start_ckpt = Path(resume) if resume != "latest" else latest_checkpoint(ckdir)

        # 1. teacher and student
        teacher, student, layers, notes = build_models(cfg, env)
        if env["rank"] == 0 and not resume:  # on resume the saved config stays authoritative
            save_run_config(cfg, out, {"student_layers": layers, "notes": notes,
                                       "world_size": env["world_size"]})
        # 2. data
        corpus = load_corpus(cfg, teacher.tokenizer, env)
    except BaseException:
        if created and env["rank"] == 0 and out.exists() and not any(ckdir.glob("ckpt-*")):
            import shutil

            shutil.rmtree(out, ignore_errors=True)  # nothing half-written from a failed start
        raise
    # 3. train
    log = _Logger(out, env["rank"] == 0, cfg.progress)
    summary = train(cfg, teacher, student, corpus, env, ckdir, start_ckpt, log,
                    fingerprint=_fingerprint(cfg, teacher, layers, corpus, env), notes=notes)
    # 4. save the student as a standard Hugging Face folder (rank 0)
    if env["rank"] == 0:
        save_student(student, teacher, out / "student", dict(summary, layers=layers, notes=notes))
        if cfg.eval_data:
            summary["eval"] = evaluate_mlm(teacher, student, cfg.eval_data, cfg)
        write_json(out / "summary.json", summary)
        log.close()
    _barrier(env)
    if env["world_size"] > 1:
        torch.distributed.destroy_process_group()
    return summary


def build_models(cfg: DistillConfig, env: dict[str, Any]):
    """Teacher (frozen, eval) and student (copied layers), both on the run's device."""
    from distill.student import build_student, load_teacher, parse_layers

    if cfg.init not in ("copy", "random"):
        raise UsageError(f"--init must be 'copy' or 'random', got '{cfg.init}'")
    teacher = load_teacher(cfg.teacher, cfg.tokenizer, seed=cfg.seed)
    layers = parse_layers(cfg.student_layers, teacher.num_layers)
    notes = []
    if not teacher.has_mlm_head:
        if cfg.fit_mlm_head_steps > 0:
            if cfg.data_cache is None and not cfg.data:
                raise UsageError("fitting an MLM head needs --data")
            corpus = load_corpus(cfg, teacher.tokenizer, env)
            teacher, head_loss = fit_mlm_head(teacher, corpus, cfg, env)
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
                                 "--alpha-pool-cos or --alpha-sim, or --fit-mlm-head-steps)")
            notes.append("teacher has no MLM head: distilling with the hidden-state/embedding "
                         f"terms only ({' + '.join(used)}), unmasked input")
    student = build_student(teacher, layers, dropout=cfg.dropout, copy=cfg.init == "copy",
                            seed=cfg.seed)
    teacher.model.to(env["device"])
    student.to(env["device"])
    return teacher, student, layers, notes


def load_corpus(cfg: DistillConfig, tokenizer, env: dict[str, Any]):
    """Tokenize once (rank 0) into memmaps, then open them everywhere."""
    from distill.data import Corpus, build_corpus, corpus_key

    cache = Path(cfg.data_cache) if cfg.data_cache else Path(cfg.out) / "data"
    if env["rank"] == 0:
        folder = build_corpus([Path(p) for p in cfg.data], tokenizer, cache, cfg.max_len,
                              cfg.min_len, progress=cfg.progress)
    _barrier(env)
    if env["rank"] != 0:
        folder = cache / corpus_key([Path(p) for p in cfg.data], tokenizer, cfg.max_len, cfg.min_len)
    corpus = Corpus(folder)
    corpus.key = folder.name
    return corpus


# ----------------------------------------------------------------------------- training

def student_forward_module(student):
    """The nn.Module DDP wraps: student encoder + MLM head applied only where predictions count
    (30K-way logits for every token would dominate the cost). forward(ids, att, select) ->
    hidden (bs, seq, dim), logits (n_selected, vocab) or None."""
    import torch

    from distill.student import mlm_head_logits, student_encoder

    class StudentForward(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, select=None):
            hidden = student_encoder(self.m)(input_ids=input_ids,
                                             attention_mask=attention_mask).last_hidden_state
            logits = None
            if select is not None:
                logits = mlm_head_logits(self.m, "distilbert", hidden[select])  # (n, vocab)
            return hidden, logits  # (bs, seq, dim), (n, vocab)

    return StudentForward(student)


def teacher_forward(teacher, input_ids, attention_mask, select=None):
    """Frozen teacher: last hidden states (bs, seq, dim) and MLM logits at `select` (n, vocab)."""
    import torch

    from distill.student import mlm_head_logits

    with torch.no_grad():
        hidden = teacher.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = None
        if select is not None and teacher.has_mlm_head:
            logits = mlm_head_logits(teacher.model, teacher.model_type, hidden[select])
    return hidden, logits


def compute_losses(cfg: DistillConfig, s_hidden, s_logits, t_hidden, t_logits, labels, attention_mask):
    """The weighted triple loss and each term (floats, for logging)."""
    from distill import losses

    terms = {}
    if s_logits is not None:
        terms["ce"] = (cfg.alpha_ce, losses.kd_kl_loss(s_logits, t_logits, cfg.temperature))
        terms["mlm"] = (cfg.alpha_mlm, losses.mlm_loss(s_logits, labels))
        if cfg.alpha_mse:
            terms["mse"] = (cfg.alpha_mse, losses.mse_loss(s_logits, t_logits))
    terms["cos"] = (cfg.alpha_cos, losses.cosine_loss(s_hidden, t_hidden, attention_mask))
    if cfg.alpha_hidden_mse:
        terms["hmse"] = (cfg.alpha_hidden_mse,
                         losses.hidden_mse_loss(s_hidden, t_hidden, attention_mask))
    if cfg.alpha_pool_cos:
        terms["pcos"] = (cfg.alpha_pool_cos,
                         losses.pooled_cosine_loss(s_hidden, t_hidden, attention_mask))
    if cfg.alpha_sim:
        terms["sim"] = (cfg.alpha_sim, losses.similarity_loss(s_hidden, t_hidden, attention_mask))
    total = sum(a * v for a, v in terms.values())
    return total, {k: float(v.detach()) for k, (_, v) in terms.items()}


def micro_batch_seed(seed: int, epoch: int, k: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + k) % (2**63 - 1)


def train(cfg: DistillConfig, teacher, student, corpus, env, ckdir: Path, start_ckpt: Path | None,
          log: "_Logger", fingerprint: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """The loop: AdamW, warm-up + linear decay, clipping, accumulation, AMP, checkpoints."""
    import torch

    from distill.checkpoint import check_fingerprint, load_checkpoint, save_checkpoint
    from distill.data import collate, length_grouped_batches
    from distill.masking import mask_tokens, token_probs

    device, world, rank = env["device"], env["world_size"], env["rank"]
    tok = teacher.tokenizer
    use_mlm = teacher.has_mlm_head
    probs = token_probs(corpus.counts, cfg.mlm_smoothing, tok.all_special_ids)
    if len(probs) < student.config.vocab_size:
        probs = torch.cat([probs, torch.zeros(student.config.vocab_size - len(probs))])

    n_batches = math.ceil(len(corpus) / cfg.batch_size)
    steps_per_epoch = n_batches // (cfg.grad_accum * world)
    if steps_per_epoch == 0:
        raise UsageError(f"corpus has {len(corpus)} sequences: fewer than one optimizer step "
                         f"(batch {cfg.batch_size} x accum {cfg.grad_accum} x {world} processes)")
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch
    warmup_steps = int(cfg.warmup * total_steps)

    fwd = student_forward_module(student).to(device)
    model = fwd
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            fwd, device_ids=[device.index] if device.type == "cuda" else None)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    params = [p for p in student.parameters() if p.requires_grad]
    named = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
              {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, eps=cfg.adam_eps, betas=(0.9, 0.98))

    def lr_lambda(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    amp_dtype = _amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    step = 0
    if start_ckpt is not None:
        state = load_checkpoint(start_ckpt)
        check_fingerprint(state.get("fingerprint", {}), fingerprint, start_ckpt)
        try:
            student.load_state_dict(state["student"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise UsageError(f"checkpoint {start_ckpt} does not fit this student "
                             f"({str(e).splitlines()[0][:160]})") from None
        _set_rng(state["rng"])
        step = int(state["step"])
        log.truncate(step)
        log.info(f"resumed from {start_ckpt} at step {step}")

    for note in notes:
        log.info(note)
    log.info(f"{len(corpus)} sequences, {steps_per_epoch} steps/epoch, {total_steps} steps, "
             f"effective batch {cfg.batch_size * cfg.grad_accum * world} sequences, world {world}")
    crash_at = int(os.environ.get("POCKETBERT_DISTILL_CRASH_AFTER_STEP", "0"))  # test hook
    student.train()
    bar = log.bar(total=total_steps, initial=step)
    t0, tokens_seen, last = time.time(), 0, {}
    epoch_batches: dict[int, list] = {}
    while step < total_steps:
        epoch, s = divmod(step, steps_per_epoch)
        if epoch not in epoch_batches:
            epoch_batches = {epoch: length_grouped_batches(corpus.lengths, cfg.batch_size,
                                                           seed=cfg.seed * 1000 + epoch)}
        batches = epoch_batches[epoch]
        sums: dict[str, float] = {}
        for a in range(cfg.grad_accum):
            k = (s * cfg.grad_accum + a) * world + rank
            mb_seed = micro_batch_seed(cfg.seed, epoch, k)
            torch.manual_seed(mb_seed)  # dropout: a function of the micro-batch, not of history
            gen = torch.Generator().manual_seed(mb_seed)
            ids, att = collate(corpus, batches[k], tok.pad_token_id)  # (bs, seq) x2
            labels, select = None, None
            if use_mlm:
                ids, labels = mask_tokens(ids, att, probs, tok.mask_token_id,
                                          student.config.vocab_size, gen, cfg.mlm_prob)
                select = labels != -100  # (bs, seq)
            ids, att = ids.to(device), att.to(device)
            if select is not None:
                select, labels = select.to(device), labels.to(device)
            sync = a == cfg.grad_accum - 1 or world == 1
            ctx = model.no_sync() if (world > 1 and not sync) else contextlib.nullcontext()
            with ctx:
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                                    enabled=amp_dtype is not None):
                    t_hidden, t_logits = teacher_forward(teacher, ids, att, select)
                    s_hidden, s_logits = model(ids, att, select)
                    loss, terms = compute_losses(cfg, s_hidden, s_logits, t_hidden, t_logits,
                                                 labels[select] if select is not None else None, att)
                scaler.scale(loss / cfg.grad_accum).backward()
            for key, v in dict(terms, loss=float(loss.detach())).items():
                sums[key] = sums.get(key, 0.0) + v / cfg.grad_accum
            tokens_seen += int(att.sum())
        scaler.unscale_(opt)
        gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        scaler.step(opt)
        scaler.update()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tok_s = tokens_seen * world / max(time.time() - t0, 1e-9)
        last = dict(sums, tok_s=tok_s)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()})
        if step % cfg.log_every == 0 or step == total_steps:
            log.metrics(dict(step=step, epoch=epoch, lr=sched.get_last_lr()[0],
                             grad_norm=float(gnorm), **last))
        if step % cfg.save_every == 0 or step == total_steps:
            if rank == 0:
                save_checkpoint(ckdir, step, {
                    "student": student.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                    "step": step, "rng": _get_rng(), "fingerprint": fingerprint,
                    "config": dataclasses.asdict(cfg)}, keep=cfg.keep_checkpoints)
            _barrier(env)
            if crash_at and step == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
    bar.close()
    student.eval()
    return {"steps": total_steps, "steps_per_epoch": steps_per_epoch, "world_size": world,
            "effective_batch": cfg.batch_size * cfg.grad_accum * world,
            "final": last, "seconds": time.time() - t0, "mode": "triple" if use_mlm else "hidden-only"}


# ----------------------------------------------------------------------------- MLM head fitting

def fit_mlm_head(teacher, corpus, cfg: DistillConfig, env):
    """Teacher without MLM head: add one (decoder tied to the frozen word embeddings) and fit only
    the head's transform and bias with masked-LM loss; the encoder stays exactly as it was."""
    import torch
    from transformers import AutoModelForMaskedLM

    from distill.data import collate, length_grouped_batches
    from distill.masking import mask_tokens, token_probs
    from distill.student import Teacher, _frozen, mlm_head_logits

    torch.manual_seed(cfg.seed)
    mlm = AutoModelForMaskedLM.from_config(teacher.model.config)
    enc = mlm.bert if teacher.model_type == "bert" else mlm.distilbert
    enc.load_state_dict(teacher.model.state_dict(), strict=False)
    mlm.tie_weights()
    for p in mlm.parameters():
        p.requires_grad_(False)
    head = [p for n, p in mlm.named_parameters()
            if n.startswith(("cls.predictions.transform", "vocab_transform", "vocab_layer_norm"))
            or n in ("cls.predictions.bias", "vocab_projector.bias")]
    for p in head:
        p.requires_grad_(True)
    mlm.to(env["device"]).eval()
    opt = torch.optim.AdamW(head, lr=cfg.fit_mlm_head_lr)
    tok = teacher.tokenizer
    probs = token_probs(corpus.counts, cfg.mlm_smoothing, tok.all_special_ids)
    batches = length_grouped_batches(corpus.lengths, cfg.batch_size * cfg.grad_accum, seed=cfg.seed + 7)
    gen = torch.Generator().manual_seed(cfg.seed)
    from tqdm import tqdm

    losses_seen: list[float] = []
    bar = tqdm(range(cfg.fit_mlm_head_steps), desc="fitting MLM head",
               disable=not (cfg.progress and env["rank"] == 0))
    for i in bar:
        ids, att = collate(corpus, batches[i % len(batches)], tok.pad_token_id)
        ids, labels = mask_tokens(ids, att, probs, tok.mask_token_id, mlm.config.vocab_size, gen)
        sel = labels != -100
        with torch.no_grad():
            hidden = enc(input_ids=ids.to(env["device"]),
                         attention_mask=att.to(env["device"])).last_hidden_state
        logits = mlm_head_logits(mlm, teacher.model_type, hidden[sel.to(env["device"])])
        loss = torch.nn.functional.cross_entropy(logits, labels[sel].to(env["device"]))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses_seen.append(float(loss))
        bar.set_postfix(mlm=f"{float(loss):.3g}")
    tail = losses_seen[-max(1, len(losses_seen) // 10):]
    fitted = _frozen(Teacher(mlm.cpu(), tok, teacher.model_type, True, teacher.source + " +fitted MLM head"))
    return fitted, sum(tail) / len(tail)  # teacher, mean train MLM loss over the last 10% of steps


# ----------------------------------------------------------------------------- evaluation / save

def evaluate_mlm(teacher, student, path: str, cfg: DistillConfig, max_sequences: int = 2000,
                 seed: int = 1234) -> dict[str, Any]:
    """Held-out text, same fixed masking for both: MLM accuracy (teacher vs student, when there
    are MLM heads) and the mean token cosine between their last hidden states."""
    import tempfile

    import torch

    from distill.data import Corpus, build_corpus, collate
    from distill.masking import mask_tokens
    from distill.losses import cosine_loss

    tok = teacher.tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Corpus(build_corpus([Path(path)], tok, Path(tmp), min(cfg.max_len, 256), cfg.min_len,
                                     progress=False))
        probs = torch.ones(student.config.vocab_size)
        probs[tok.all_special_ids] = 0
        gen = torch.Generator().manual_seed(seed)
        fwd = student_forward_module(student).eval()
        hits = {"teacher": 0, "student": 0}
        n_pred, cos_sum, n_tok = 0, 0.0, 0
        device = next(student.parameters()).device
        idx = list(range(min(len(corpus), max_sequences)))
        for i in range(0, len(idx), 16):
            ids, att = collate(corpus, idx[i:i + 16], tok.pad_token_id)
            ids, labels = mask_tokens(ids, att, probs, tok.mask_token_id, student.config.vocab_size, gen)
            sel = labels != -100
            ids, att, sel, labels = ids.to(device), att.to(device), sel.to(device), labels.to(device)
            with torch.no_grad():
                t_h, t_l = teacher_forward(teacher, ids, att, sel)
                s_h, s_l = fwd(ids, att, sel if getattr(student, "vocab_projector", None) is not None else None)
            if t_l is not None and s_l is not None:
                hits["teacher"] += int((t_l.argmax(-1) == labels[sel]).sum())
                hits["student"] += int((s_l.argmax(-1) == labels[sel]).sum())
                n_pred += int(sel.sum())
            n = int(att.sum())
            cos_sum += (1 - float(cosine_loss(s_h, t_h, att))) * n
            n_tok += n
    res = {"sequences": len(idx), "hidden_cosine": cos_sum / max(n_tok, 1)}
    if n_pred:
        res.update(masked_tokens=n_pred, mlm_accuracy_teacher=hits["teacher"] / n_pred,
                   mlm_accuracy_student=hits["student"] / n_pred)
    return res


def save_student(student, teacher, folder: Path, info: dict[str, Any]) -> None:
    """The student as a standard Hugging Face folder (config, safetensors, tokenizer) that
    `pocketbert export` takes as it is, written atomically."""
    from pocketbert.common import atomic_output_dir

    with atomic_output_dir(folder, overwrite=True) as tmp:
        student.save_pretrained(tmp)
        teacher.tokenizer.save_pretrained(tmp)
        write_json(Path(tmp) / "distill_info.json", dict(info, teacher=teacher.source,
                                                           git_revision=git_revision()))


# ----------------------------------------------------------------------------- plumbing

def _prepare_out(out: Path, ckdir: Path, resume: str | None, overwrite: bool) -> Path | None:
    from distill.checkpoint import latest_checkpoint

    if resume:
        path = Path(resume) if resume != "latest" else latest_checkpoint(ckdir)
        if path is None:
            raise UsageError(f"nothing to resume in {out}: no checkpoints/latest.json (run "
                             "without --resume first)")
        return path
    check_output_dir(out, overwrite)
    if overwrite:  # a fresh run: no stale checkpoints or metrics from an earlier one
        import shutil

        shutil.rmtree(ckdir, ignore_errors=True)
        for name in ("metrics.jsonl", "summary.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return None


def _fingerprint(cfg: DistillConfig, teacher, layers, corpus, env) -> dict[str, Any]:
    keys = ("teacher", "init", "alpha_ce", "alpha_mlm", "alpha_cos", "alpha_mse", "alpha_hidden_mse",
            "alpha_pool_cos", "alpha_sim",
            "temperature", "mlm_prob", "mlm_smoothing", "max_len", "min_len", "batch_size",
            "epochs", "max_steps", "lr", "warmup", "seed", "fit_mlm_head_steps", "fit_mlm_head_lr")
    fp = {k: getattr(cfg, k) for k in keys}
    fp.update(layers=list(layers), corpus=corpus.key,
              micro_batches_per_step=cfg.grad_accum * env["world_size"])
    return fp


def _setup_distributed(cfg: DistillConfig) -> dict[str, Any]:
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, got '{cfg.device}'")
    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but no GPU is visible")
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return {"world_size": world, "rank": rank, "device": device}


def _barrier(env):
    if env["world_size"] > 1:
        import torch

        torch.distributed.barrier()


def _amp_dtype(cfg: DistillConfig, device):
    import torch

    if cfg.amp == "off" or (cfg.amp == "auto" and device.type != "cuda"):
        return None
    if cfg.amp not in ("auto", "bf16", "fp16"):
        raise UsageError(f"--amp must be auto, off, bf16 or fp16, got '{cfg.amp}'")
    if cfg.amp == "fp16" or (cfg.amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def _get_rng() -> dict[str, Any]:
    import numpy as np
    import torch

    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _set_rng(rng: dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


class _Logger:
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

    def close(self) -> None:
        pass


def save_run_config(cfg: DistillConfig, out: Path, extra: dict[str, Any] | None = None) -> None:
    """The resolved config + provenance, next to the checkpoints."""
    write_json(Path(out) / "config.json", {"config": dataclasses.asdict(cfg),
                                           "git_revision": git_revision(),
                                           "versions": library_versions(), **(extra or {})})
