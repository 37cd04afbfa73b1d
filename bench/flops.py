"""FLOPs of one forward pass of a BERT-family encoder, counted from shapes (multiply-add = 2 FLOPs).

Only matrix products are counted (projections, FFN, attention scores and context, task head):
embeddings, LayerNorm, softmax and GELU are O(seq * hidden) and below 1% at these sizes. This is
the numerator of the roofline figure: achieved GFLOP/s = FLOPs / model time.
"""

from __future__ import annotations

from typing import Any


def encoder_shape(config: dict[str, Any]) -> tuple[int, int, int]:
    """(layers, hidden, intermediate) from a BERT or DistilBERT config dict."""
    layers = config.get("num_hidden_layers", config.get("n_layers"))
    hidden = config.get("hidden_size", config.get("dim"))
    inter = config.get("intermediate_size", config.get("hidden_dim"))
    if None in (layers, hidden, inter):
        raise ValueError("config has no layer/hidden/intermediate sizes (not BERT-family?)")
    return int(layers), int(hidden), int(inter)


def forward_flops(config: dict[str, Any], seq: int, task: str = "question-answering", batch: int = 1) -> int:
    """FLOPs of one forward at (batch, seq)."""
    layers, h, inter = encoder_shape(config)
    per_layer = (2 * seq * 4 * h * h        # Q, K, V and output projections
                 + 2 * seq * 2 * h * inter  # FFN up and down
                 + 2 * 2 * seq * seq * h)   # Q K^T and attention @ V (all heads together)
    if task == "question-answering":
        head = 2 * seq * h * 2                # start/end logits on every token
    elif task == "sequence-classification":
        head = 2 * h * h + 2 * h * 2          # pooler / pre-classifier + classifier on one token
    else:
        head = 2 * seq * h * h + 2 * seq * h * int(config.get("vocab_size", 0))  # MLM transform + decoder
    return batch * (layers * per_layer + head)
