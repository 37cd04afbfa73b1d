"""The distillation losses, each a plain function of tensors (so each is tested against a
reference computation). Padding never contributes: every loss takes the mask of the positions
that count, and a mask with nothing in it gives a loss of exactly 0 (with a gradient path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _zero(x: torch.Tensor) -> torch.Tensor:
    return x.sum() * 0.0  # keeps the graph (DDP needs every parameter to get a gradient)


def kd_kl_loss(s_logits: torch.Tensor, t_logits: torch.Tensor, temperature: float = 2.0,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """T² · KL(teacher_T ‖ student_T) per position, averaged over positions where `mask`.

    s_logits/t_logits: (..., vocab); mask: (...) bool. As in the paper's code (KLDivLoss
    'batchmean' over the selected positions), scaled by T² so gradients keep their size.
    """
    if mask is not None:
        s_logits, t_logits = s_logits[mask], t_logits[mask]  # (n, vocab)
    s_logits = s_logits.reshape(-1, s_logits.size(-1))
    t_logits = t_logits.reshape(-1, t_logits.size(-1))
    if s_logits.size(0) == 0:
        return _zero(s_logits)
    log_p_s = F.log_softmax(s_logits.float() / temperature, dim=-1)  # (n, vocab)
    log_p_t = F.log_softmax(t_logits.float() / temperature, dim=-1)  # (n, vocab)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)  # (n,)
    return kl.mean() * temperature**2


def mlm_loss(s_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Masked-LM cross-entropy over positions whose label is not -100 (0 when none are)."""
    keep = labels != -100
    if not keep.any():
        return _zero(s_logits)
    return F.cross_entropy(s_logits[keep].float(), labels[keep])


def cosine_loss(s_hidden: torch.Tensor, t_hidden: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
    """Mean over non-padding tokens of 1 - cos(student, teacher) of last hidden states.

    s_hidden/t_hidden: (bs, seq, dim); mask: (bs, seq) bool/0-1 (the attention mask).
    """
    mask = mask.bool()
    if not mask.any():
        return _zero(s_hidden)
    s, t = s_hidden[mask].float(), t_hidden[mask].float()  # (n, dim)
    return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()


def mse_loss(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of squared differences per position, averaged over positions where `mask` (the
    reference implementation's α_mse on logits: MSELoss(sum) / n)."""
    if mask is not None:
        s, t = s[mask], t[mask]  # (n, d)
    s = s.reshape(-1, s.size(-1)).float()
    t = t.reshape(-1, t.size(-1)).float()
    if s.size(0) == 0:
        return _zero(s)
    return ((s - t) ** 2).sum() / s.size(0)


def hidden_mse_loss(s_hidden: torch.Tensor, t_hidden: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of last hidden states over non-padding tokens and dimensions.

    s_hidden/t_hidden: (bs, seq, dim); mask: (bs, seq). Matches norms, which cosine ignores.
    """
    mask = mask.bool()
    if not mask.any():
        return _zero(s_hidden)
    return F.mse_loss(s_hidden[mask].float(), t_hidden[mask].float())


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states over non-padding tokens: the sentence embedding. (bs, dim)"""
    m = mask.to(hidden.dtype).unsqueeze(-1)  # (bs, seq, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # (bs, dim)


def pooled_cosine_loss(s_hidden: torch.Tensor, t_hidden: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
    """Mean over sequences of 1 - cos(mean-pooled student, mean-pooled teacher).

    The embedding a sentence-embedding teacher is used through; rows with no real token are
    left out. s_hidden/t_hidden: (bs, seq, dim); mask: (bs, seq).
    """
    keep = mask.bool().any(-1)  # (bs,)
    if not keep.any():
        return _zero(s_hidden)
    s = mean_pool(s_hidden.float(), mask)[keep]  # (n, dim)
    t = mean_pool(t_hidden.float(), mask)[keep]  # (n, dim)
    return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()


def similarity_loss(s_hidden: torch.Tensor, t_hidden: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
    """Relational term: mean squared difference between the student's and the teacher's
    in-batch cosine-similarity matrices of mean-pooled embeddings (off-diagonal pairs only).

    What a sentence-embedding model is judged on is how it ranks pairs, which per-token terms
    only reach indirectly. 0 when the batch has fewer than two non-empty sequences.
    """
    keep = mask.bool().any(-1)  # (bs,)
    n = int(keep.sum())
    if n < 2:
        return _zero(s_hidden)
    s = F.normalize(mean_pool(s_hidden.float(), mask)[keep], dim=-1)  # (n, dim)
    t = F.normalize(mean_pool(t_hidden.float(), mask)[keep], dim=-1)  # (n, dim)
    off = ~torch.eye(n, dtype=torch.bool, device=s.device)  # (n, n)
    return ((s @ s.T - t @ t.T)[off] ** 2).mean()
