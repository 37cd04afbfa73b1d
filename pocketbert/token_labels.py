"""Token classification's post-processing (NER, PII): per-token logits -> a label per word -> entity
spans with character offsets. numpy only: the benchmark worker times exactly this on every runtime.

A word's label is its first sub-token's (the convention token-classification models are trained
with); spans follow IOB2 (B-X starts an X, I-X continues an X; an I-X after another type starts a
new span, as Hugging Face's "simple" aggregation does); labels without a B-/I- prefix are their own
type, and "O" (or a label of the model's config that is neither) is outside.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

OUTSIDE = "O"


def word_labels(logits: np.ndarray, word_ids: Sequence[int | None]) -> list[int]:
    """(seq, num_labels) logits and the tokenizer's word ids per token -> one class index per word
    (its first sub-token's argmax), in word order. Special and padding tokens (word id None) skipped."""
    best = np.asarray(logits).argmax(axis=-1)  # (seq,)
    out: dict[int, int] = {}
    for i, w in enumerate(word_ids[:len(best)]):
        if w is not None and w not in out:
            out[w] = int(best[i])
    return [out[w] for w in sorted(out)]


def _split(label: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'I-PER' -> ('I', 'PER'); 'PER' -> ('B', 'PER'); 'O' -> ('O', '')."""
    if label == OUTSIDE:
        return OUTSIDE, ""
    if len(label) > 2 and label[1] in "-_" and label[0] in "BIES":
        return ("B" if label[0] in "BS" else "I"), label[2:]
    return "I", label  # a bare type: consecutive words of it are one span


def entity_spans(labels: Sequence[str], word_offsets: Sequence[tuple[int, int]], text: str) -> list[dict]:
    """Labels per word and each word's (start, end) characters -> [{"entity", "start", "end", "text"}]."""
    spans: list[dict] = []
    current = None
    for label, (start, end) in zip(labels, word_offsets):
        tag, kind = _split(label)
        if tag == OUTSIDE:
            current = None
            continue
        if tag == "B" or current is None or current["entity"] != kind:
            current = {"entity": kind, "start": int(start), "end": int(end)}
            spans.append(current)
        else:
            current["end"] = int(end)
    for s in spans:
        s["text"] = text[s["start"]:s["end"]]
    return spans


def word_offsets(offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None]) -> list[tuple[int, int]]:
    """Per word, in word order: (its first sub-token's start, its last sub-token's end)."""
    out: dict[int, list[int]] = {}
    for (start, end), w in zip(offsets, word_ids):
        if w is None:
            continue
        if w in out:
            out[w][1] = end
        else:
            out[w] = [start, end]
    return [tuple(out[w]) for w in sorted(out)]
