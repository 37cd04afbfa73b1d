"""What one distillation step computes: the student's and the frozen teacher's forward passes and
the weighted triple loss. Imports torch: import this module lazily (inside functions)."""

from __future__ import annotations

from typing import Any

import torch

from distill import losses
from distill.student import mlm_head_logits, student_encoder


class StudentForward(torch.nn.Module):
    """The nn.Module DDP wraps: student encoder + MLM head applied only where predictions count
    (30K-way logits for every token would dominate the cost)."""

    def __init__(self, student):
        super().__init__()
        self.m = student

    def forward(self, input_ids, attention_mask, select=None):
        """-> hidden (bs, seq, dim), logits (n_selected, vocab) or None."""
        hidden = student_encoder(self.m)(input_ids=input_ids,
                                         attention_mask=attention_mask).last_hidden_state
        logits = None
        if select is not None:
            logits = mlm_head_logits(self.m, self.m.config.model_type, hidden[select])  # (n, vocab)
        return hidden, logits


def teacher_forward(teacher, input_ids, attention_mask, select=None):
    """Frozen teacher: last hidden states (bs, seq, dim) and MLM logits at `select` (n, vocab)."""
    with torch.no_grad():
        hidden = teacher.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = None
        if select is not None and teacher.has_mlm_head:
            logits = mlm_head_logits(teacher.model, teacher.model_type, hidden[select])
    return hidden, logits


def compute_losses(cfg, s_hidden, s_logits, t_hidden, t_logits, labels,
                   attention_mask) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted triple loss (a DistillConfig's alphas and temperature) and each term."""
    terms: dict[str, tuple[float, Any]] = {}
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
