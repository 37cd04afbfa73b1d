"""A teacher without an MLM head (e.g. a sentence-embedding model) gets one fitted on the frozen
teacher, so the full triple loss can be used: the decoder is tied to the word embeddings and only
the head's transform and bias train; the encoder stays exactly as it was."""

from __future__ import annotations

from typing import Any


def fit_mlm_head(teacher, corpus, cfg, ctx) -> tuple[Any, float]:
    """-> (the teacher with a fitted head, mean train MLM loss over the last 10% of steps).
    `cfg`: a DistillConfig (fit_mlm_head_steps/lr, batch size, masking); `ctx`: a RunContext."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForMaskedLM

    from distill.data import collate, length_grouped_batches
    from distill.masking import mask_tokens, token_probs
    from distill.student import Teacher, _frozen, mlm_head_logits

    torch.manual_seed(cfg.seed)
    mlm = AutoModelForMaskedLM.from_config(teacher.model.config)
    enc = mlm.base_model
    enc.load_state_dict(teacher.model.state_dict(), strict=False)
    mlm.tie_weights()
    for p in mlm.parameters():
        p.requires_grad_(False)
    tied = mlm.get_input_embeddings().weight  # the decoder shares it: only the head's own weights train
    head = [p for n, p in mlm.named_parameters()
            if n.startswith(teacher.family.mlm_head_keys) and p is not tied]
    for p in head:
        p.requires_grad_(True)
    device = ctx.device
    mlm.to(device).eval()
    opt = torch.optim.AdamW(head, lr=cfg.fit_mlm_head_lr)
    tok = teacher.tokenizer
    probs = token_probs(corpus.counts, cfg.mlm_smoothing, tok.all_special_ids)
    batches = length_grouped_batches(corpus.lengths, cfg.batch_size * cfg.grad_accum, seed=cfg.seed + 7)
    gen = torch.Generator().manual_seed(cfg.seed)

    losses_seen: list[float] = []
    bar = tqdm(range(cfg.fit_mlm_head_steps), desc="fitting MLM head",
               disable=not (cfg.progress and ctx.is_main))
    for i in bar:
        ids, att = collate(corpus, batches[i % len(batches)], tok.pad_token_id)
        ids, labels = mask_tokens(ids, att, probs, tok.mask_token_id, mlm.config.vocab_size, gen)
        sel = labels != -100
        with torch.no_grad():
            hidden = enc(input_ids=ids.to(device), attention_mask=att.to(device)).last_hidden_state
        logits = mlm_head_logits(mlm, teacher.model_type, hidden[sel.to(device)])
        loss = torch.nn.functional.cross_entropy(logits, labels[sel].to(device))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses_seen.append(float(loss))
        bar.set_postfix(mlm=f"{float(loss):.3g}")
    tail = losses_seen[-max(1, len(losses_seen) // 10):]
    fitted = _frozen(Teacher(mlm.cpu(), tok, teacher.model_type, True, teacher.source + " +fitted MLM head"))
    return fitted, sum(tail) / len(tail)
