"""Dynamic masking, drawn fresh for every batch (RoBERTa-style, as DistilBERT does).

15% of the real tokens are chosen, with probabilities smoothed by token frequency
(p ∝ count^-0.7, the reference implementation's `mlm_smoothing`) so rare tokens get masked more
often; of those, 80% become [MASK], 10% a random token, 10% stay as they are.
"""

from __future__ import annotations

import numpy as np
import torch


def token_probs(counts: np.ndarray, smoothing: float = 0.7,
                special_ids: list[int] = ()) -> torch.Tensor:
    """Per-token masking weights: max(count,1)^-smoothing, 0 for special tokens. (vocab,)"""
    w = np.maximum(counts.astype(np.float64), 1.0) ** -smoothing
    w[list(special_ids)] = 0.0
    return torch.tensor(w, dtype=torch.float32)


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, probs: torch.Tensor,
                mask_id: int, vocab_size: int, generator: torch.Generator,
                mlm_prob: float = 0.15, mask_frac: float = 0.8, random_frac: float = 0.1
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input_ids, labels with -100 where not predicted). Both (bs, seq).

    Exactly round(mlm_prob * n_real) positions are chosen per batch (at least 1 when any real
    token has weight), sampled without replacement with weights `probs[token]`.
    """
    weights = probs[input_ids] * attention_mask.float()  # (bs, seq)
    flat = weights.flatten()  # (bs*seq,)
    n_real = int((flat > 0).sum())
    labels = torch.full_like(input_ids, -100)
    if n_real == 0:
        return input_ids.clone(), labels
    n_pred = max(1, int(round(mlm_prob * n_real)))
    chosen = torch.multinomial(flat, n_pred, replacement=False, generator=generator)  # (n_pred,)
    pred = torch.zeros_like(flat, dtype=torch.bool)
    pred[chosen] = True
    pred = pred.view_as(input_ids)  # (bs, seq)
    labels[pred] = input_ids[pred]
    u = torch.rand(input_ids.shape, generator=generator)  # (bs, seq)
    to_mask = pred & (u < mask_frac)
    to_random = pred & (u >= mask_frac) & (u < mask_frac + random_frac)
    out = input_ids.clone()
    out[to_mask] = mask_id
    rand = torch.randint(vocab_size, input_ids.shape, generator=generator)  # (bs, seq)
    out[to_random] = rand[to_random]
    return out, labels
