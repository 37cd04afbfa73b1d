"""Real-looking model inputs without a data set: tokenized sentences of common English words.

Used for export calibration and parity (a quantizer calibrated on random ids sees activation
ranges no real text produces) and for the benchmark's `synthetic` workload. Deterministic per seed.
"""

from __future__ import annotations

import numpy as np

from pocketbert.models import _COMMON_WORDS


def _sentence(rng: np.random.Generator, n_words: int) -> str:
    words = rng.choice(_COMMON_WORDS, size=n_words)
    return " ".join(words) + "."


def synthetic_qa(rng: np.random.Generator, context_words: int) -> tuple[str, str]:
    """A question of 4-11 common words and a context of `context_words` words (~1 token each)."""
    question = _sentence(rng, int(rng.integers(4, 12))).rstrip(".") + "?"
    return question, _sentence(rng, context_words)


def synthetic_example(tokenizer, task: str, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One example of about `length` tokens (never more), as int64 arrays of shape (1, seq).

    question-answering: a short question + a context; sequence-classification: a sentence pair
    (like STS-B); fill-mask: one text with ~15% of its words replaced by [MASK]; token-classification
    and feature-extraction: one text.
    """
    if task == "question-answering":
        question, context = synthetic_qa(rng, length)  # truncation brings it to `length` tokens
        enc = tokenizer(question, context, truncation="only_second", max_length=length)
    elif task == "sequence-classification":
        half = max(2, length // 2)
        enc = tokenizer(_sentence(rng, half), _sentence(rng, half), truncation="longest_first",
                        max_length=length)
    elif task in ("token-classification", "feature-extraction"):
        enc = tokenizer(_sentence(rng, length), truncation=True, max_length=length)
    else:
        words = _sentence(rng, length).split()
        for i in rng.choice(len(words), size=max(1, len(words) * 15 // 100), replace=False):
            words[i] = tokenizer.mask_token
        enc = tokenizer(" ".join(words), truncation=True, max_length=length)
    return {k: np.asarray([v], dtype=np.int64) for k, v in enc.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")}


def synthetic_examples(tokenizer, task: str, n: int, max_len: int, seed: int = 0,
                       min_len: int = 16) -> list[dict[str, np.ndarray]]:
    """`n` examples with lengths spread evenly over [min_len, max_len] (the last one max_len).

    An even spread exercises short and full-length inputs alike, so a shape-dependent bug or a
    quantizer range that only fits one length shows up in parity.
    """
    rng = np.random.default_rng(seed)
    min_len = min(min_len, max_len)
    lengths = np.linspace(min_len, max_len, num=n).round().astype(int)
    return [synthetic_example(tokenizer, task, int(L), rng) for L in lengths]
