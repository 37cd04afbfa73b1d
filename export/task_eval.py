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


def squad_windows(path: Path, tokenizer, seq_len: int, n_questions: int):
    """The first `n_questions` questions of a SQuAD v1.1 file as model windows (doc stride
    `squad.doc_stride(seq_len)`: 128 at 384) and the questions by id."""
    from pocketbert import squad

    questions = squad.read_squad(path)[:n_questions]
    return squad.windows(tokenizer, questions, seq_len), {q.id: q for q in questions}


def _span_logits(wins, input_names, run, pad_to, desc, progress):
    from tqdm import tqdm

    from pocketbert.inputs import pad_inputs

    outs = []
    for w in tqdm(wins, desc=desc, unit="window", disable=not progress, leave=False):
        n = len(w.inputs["input_ids"])
        feeds = w.arrays(input_names)
        start, end = run(pad_inputs(feeds, pad_to) if pad_to else feeds)  # (1, seq) each
        outs.append((np.asarray(start[0, :n]), np.asarray(end[0, :n])))
    return outs


def squad_f1_gate(wins, questions, input_names: list[str], reference: Callable, runner: Callable,
                  pad_to: int | None, max_f1_drop: float, progress: bool = True,
                  cache: dict | None = None, min_identical: float = 0.0) -> dict:
    """Score the fp32 reference and the export on the same windows; judge the F1 drop (and
    the share of answers identical to the reference's, when `min_identical` > 0).

    `cache` keeps the reference's logits between bundles of one export run (same windows).
    """
    from pocketbert import squad

    cache = {} if cache is None else cache
    if "reference" not in cache:  # real lengths: padding does not change fp32 logits
        cache["reference"] = _span_logits(wins, input_names, reference, None, "fp32 eval", progress)
    ref_outs = cache["reference"]
    got_outs = _span_logits(wins, input_names, runner, pad_to, "export eval", progress)
    golds = {qid: q.gold_texts for qid, q in questions.items()}
    ref_pred = squad.predictions(wins, ref_outs, questions)
    got_pred = squad.predictions(wins, got_outs, questions)
    ref_scores, got_scores = squad.scores(ref_pred, golds), squad.scores(got_pred, golds)
    identical = np.mean([ref_pred.get(q, "") == got_pred.get(q, "") for q in golds])
    drop = ref_scores["f1"] - got_scores["f1"]
    result = {
        "metric": "squad_f1",
        "n_questions": len(golds),
        "n_windows": len(wins),
        "fp32_pytorch": {"exact_match": ref_scores["exact_match"], "f1": ref_scores["f1"]},
        "export": {"exact_match": got_scores["exact_match"], "f1": got_scores["f1"]},
        "f1_drop": drop,
        "identical_answers": float(identical),
        "max_f1_drop": max_f1_drop,
        "min_identical_answers": min_identical,
    }
    failed = []
    if drop > max_f1_drop:
        failed.append(f"F1 {got_scores['f1']:.2f} vs fp32 {ref_scores['f1']:.2f} "
                      f"(drop {drop:.2f} > {max_f1_drop})")
    if identical < min_identical:
        failed.append(f"identical answers {identical:.1%} < {min_identical:.1%}")
    result["status"] = "failed: " + "; ".join(failed) if failed else "passed"
    return result
