"""Model inputs as every runtime is fed them: int64 arrays of shape (batch, seq). numpy only."""

from __future__ import annotations

import numpy as np


def pad_inputs(feeds: dict[str, np.ndarray], width: int, pad_id: int = 0) -> dict[str, np.ndarray]:
    """Right-pad every (bs, len) input to (bs, width): what a fixed-shape mobile model is fed.

    input_ids get `pad_id`; attention_mask and token_type_ids get 0 (padded keys are masked, so the
    unpadded outputs do not change)."""
    out = {}
    for name, arr in feeds.items():
        arr = np.asarray(arr)
        if arr.shape[1] > width:
            raise ValueError(f"{name} has {arr.shape[1]} tokens, more than the padded width {width}")
        value = pad_id if name == "input_ids" else 0
        pad = np.full((arr.shape[0], width - arr.shape[1]), value, dtype=arr.dtype)
        out[name] = np.concatenate([arr, pad], axis=1)  # (bs, width)
    return out


FEATURES = ("input_ids", "attention_mask", "token_type_ids")  # what our tokenizer gives per call, in order
