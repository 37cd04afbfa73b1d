"""The task gates of the sentence tasks (`export --eval-data`), PyTorch fp32 vs the export on real text:

  stsb:PATH  feature-extraction: every sentence of an STS-B TSV embedded by both; the gate fails when the
             export's Spearman (cosine of each pair vs the gold score, points) drops more than
             `max_drop` below fp32's, or its embeddings' mean cosine to fp32's is under `min_cosine`.
  text:PATH  token-classification: passages of a text file (WikiText), a TSV or a SQuAD JSON's contexts;
             the gate fails when fewer than `min_agreement` of the words get fp32's label (a word's
             label: its first sub-token's argmax, what the app shows).

No gold labels are needed for text: the question is whether the export labels like the model it came
from, over thousands of real words, not whether the model is good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from pocketbert import glue
from pocketbert.common import UsageError, console_stderr
from pocketbert.inputs import pad_inputs
from pocketbert.texts import read_passages
from pocketbert.token_labels import word_labels


def _feeds(enc, i: int) -> dict[str, np.ndarray]:
    return {k: np.asarray([enc[k][i]], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
            if k in enc}


def stsb_items(path: Path, tokenizer, seq_len: int, n: int):
    """The first `n` rows of an STS-B TSV: each distinct sentence's feeds once, and
    {"pairs": [(i, j)] per row, "gold": [score]}."""
    rows = glue.read_tsv(path, need_labels=True)
    if rows.second is None:
        raise UsageError(f"{path}: an STS-B TSV has sentence1 and sentence2 columns")
    gold = glue.float_labels(rows)[:n]
    index: dict[str, int] = {}
    pairs = [(index.setdefault(a, len(index)), index.setdefault(b, len(index)))
             for a, b in zip(rows.first[:n], rows.second[:n])]
    enc = tokenizer(list(index), truncation=True, max_length=seq_len)
    return [_feeds(enc, i) for i in range(len(index))], {"pairs": pairs, "gold": gold}


def text_items(path: Path, tokenizer, seq_len: int, n: int):
    """The first `n` passages of a text file (each cut to `seq_len` tokens) and their word ids."""
    passages = read_passages(path)[:n]
    enc = tokenizer(passages, truncation=True, max_length=seq_len)
    return [_feeds(enc, i) for i in range(len(passages))], {"word_ids": [enc.word_ids(i) for i in range(len(passages))]}


def _outputs(feeds, run, pad_to, desc, progress):
    from tqdm import tqdm

    out = []
    for f in tqdm(feeds, desc=desc, unit="text", disable=not progress, leave=False, file=console_stderr()):
        n = f["input_ids"].shape[1]
        (first,) = run(pad_inputs(f, pad_to) if pad_to else f)[:1]
        out.append(np.asarray(first[0])[:n] if first.ndim == 3 else np.asarray(first[0]))  # (n, L) or (hidden,)
    return out


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (n, hidden) arrays (float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


def stsb_spearman(embeddings: np.ndarray, pairs, gold) -> float:
    """Spearman (points) of each pair's cosine against the gold scores."""
    i, j = np.asarray(pairs).T
    return 100 * glue.pearson_spearman(_cosines(embeddings[i], embeddings[j]), gold)["spearman"]


def stsb_embedding_gate(feeds, answers: dict, reference: Callable, runner: Callable, pad_to: int | None,
                        max_drop: float, min_cosine: float, progress: bool = True, cache: dict | None = None) -> dict:
    cache = {} if cache is None else cache
    if "reference" not in cache:  # real lengths: padding does not change fp32 embeddings
        cache["reference"] = np.stack(_outputs(feeds, reference, None, "fp32 eval", progress))
    ref, got = cache["reference"], np.stack(_outputs(feeds, runner, pad_to, "export eval", progress))
    ref_rho, got_rho = (stsb_spearman(e, answers["pairs"], answers["gold"]) for e in (ref, got))
    cos = _cosines(ref, got)
    result = {"metric": "stsb_spearman", "n_rows": len(answers["pairs"]), "n_sentences": len(feeds),
              "fp32_pytorch": {"spearman": ref_rho}, "export": {"spearman": got_rho},
              "spearman_drop": ref_rho - got_rho, "mean_cosine_to_fp32": float(cos.mean()),
              "min_cosine_to_fp32": float(cos.min()), "max_spearman_drop": max_drop, "min_mean_cosine": min_cosine}
    return judge(result, [(ref_rho - got_rho > max_drop,
                           f"Spearman {got_rho:.2f} vs fp32 {ref_rho:.2f} (drop {ref_rho - got_rho:.2f} > {max_drop})"),
                          (cos.mean() < min_cosine, f"mean cosine to fp32 {cos.mean():.5f} < {min_cosine}")])


def token_agreement_gate(feeds, answers: dict, reference: Callable, runner: Callable, pad_to: int | None,
                         min_agreement: float, progress: bool = True, cache: dict | None = None) -> dict:
    cache = {} if cache is None else cache
    if "reference" not in cache:
        cache["reference"] = [word_labels(x, w) for x, w in
                              zip(_outputs(feeds, reference, None, "fp32 eval", progress), answers["word_ids"])]
    ref = cache["reference"]
    got = [word_labels(x, w) for x, w in zip(_outputs(feeds, runner, pad_to, "export eval", progress),
                                             answers["word_ids"])]
    same = [a == b for r, g in zip(ref, got) for a, b in zip(r, g)]
    agreement = float(np.mean(same)) if same else 1.0
    result = {"metric": "label_agreement", "n_passages": len(feeds), "n_words": len(same),
              "export": {"label_agreement": agreement},
              "identical_passages": float(np.mean([r == g for r, g in zip(ref, got)])),
              "min_label_agreement": min_agreement}
    return judge(result, [(agreement < min_agreement, f"label agreement {agreement:.2%} < {min_agreement:.0%}")])


def judge(result: dict, checks: list[tuple[bool, str]]) -> dict:
    failed = [why for bad, why in checks if bad]
    result["status"] = "failed: " + "; ".join(failed) if failed else "passed"
    return result
