"""The task-metric gate for low-precision exports of trained models.

Logit SNR says a quantized export is numerically close; it does not say the app still answers
well. On a trained QA model int8 keeps F1 within a few points while changing many exact spans
(plain int8 ONNX kept 56% of answers identical at -2.5 F1 here), so an agreement bound would reject
good exports and a loose logit bound would pass bad ones. This gate runs the PyTorch fp32 model
and the export over the same SQuAD questions and fails when F1 drops more than `max_f1_drop`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from pocketbert.common import UsageError


def parse_eval_spec(spec: str) -> tuple[str, Path]:
    """'squad:PATH' -> ('squad', PATH); the data must exist."""
    kind, _, path = spec.partition(":")
    if kind != "squad" or not path:
        raise UsageError(f"--eval-data {spec!r}: expected squad:PATH (SQuAD v1.1 JSON)")
    if not Path(path).is_file():
        raise UsageError(f"--eval-data: {path} not found")
    return kind, Path(path)


def squad_windows(path: Path, tokenizer, seq_len: int, n_questions: int, stride: int = 128):
    """The first `n_questions` questions of a SQuAD v1.1 file as model windows (384/128 style)."""
    from distill.task import load_squad

    data = load_squad(str(path), tokenizer, max_len=seq_len, stride=stride, train=False)
    keep = list(data["examples"])[:n_questions]
    wanted = set(keep)
    feats = [f for f in data["features"] if f["example"] in wanted]
    return feats, {qid: data["examples"][qid] for qid in keep}


def _feeds(feat: dict, input_names: list[str], pad_to: int | None) -> dict[str, np.ndarray]:
    n = len(feat["input_ids"])
    width = pad_to or n
    out = {}
    for name in input_names:
        row = np.zeros((1, width), dtype=np.int64)
        if name == "attention_mask":
            row[0, :n] = 1
        else:
            row[0, :n] = feat[name]
        out[name] = row
    return out


def _span_logits(feats, input_names, run, pad_to, desc, progress):
    import torch
    from tqdm import tqdm

    outs = []
    for feat in tqdm(feats, desc=desc, unit="window", disable=not progress, leave=False):
        n = len(feat["input_ids"])
        start, end = run(_feeds(feat, input_names, pad_to))  # (1, seq) each
        outs.append((torch.from_numpy(np.asarray(start[0, :n])),
                     torch.from_numpy(np.asarray(end[0, :n]))))
    return outs


def squad_f1_gate(feats, examples, input_names: list[str], reference: Callable, runner: Callable,
                  pad_to: int | None, max_f1_drop: float, progress: bool = True,
                  cache: dict | None = None) -> dict:
    """Score the fp32 reference and the export on the same windows; judge the F1 drop.

    `cache` keeps the reference's logits between bundles of one export run (same windows).
    """
    from distill.metrics import squad_scores
    from distill.task import squad_predictions

    cache = {} if cache is None else cache
    if "reference" not in cache:  # real lengths: padding does not change fp32 logits
        cache["reference"] = _span_logits(feats, input_names, reference, None, "fp32 eval", progress)
    ref_outs = cache["reference"]
    got_outs = _span_logits(feats, input_names, runner, pad_to, "export eval", progress)
    golds = {qid: [a["text"] for a in e["answers"]] or [""] for qid, e in examples.items()}
    ref_pred = squad_predictions(feats, ref_outs, examples)
    got_pred = squad_predictions(feats, got_outs, examples)
    ref_scores, got_scores = squad_scores(ref_pred, golds), squad_scores(got_pred, golds)
    identical = np.mean([ref_pred.get(q, "") == got_pred.get(q, "") for q in golds])
    drop = ref_scores["f1"] - got_scores["f1"]
    result = {
        "metric": "squad_f1",
        "n_questions": len(golds),
        "n_windows": len(feats),
        "fp32_pytorch": {"exact_match": ref_scores["exact_match"], "f1": ref_scores["f1"]},
        "export": {"exact_match": got_scores["exact_match"], "f1": got_scores["f1"]},
        "f1_drop": drop,
        "identical_answers": float(identical),
        "max_f1_drop": max_f1_drop,
    }
    result["status"] = ("passed" if drop <= max_f1_drop else
                        f"failed: F1 {got_scores['f1']:.2f} vs fp32 {ref_scores['f1']:.2f} "
                        f"(drop {drop:.2f} > {max_f1_drop})")
    return result
