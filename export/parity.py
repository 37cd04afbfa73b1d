"""Parity of an exported model against the PyTorch model it came from.

Per input and output: max abs diff, cosine and SNR (dB) over the valid (unpadded) positions, and
agreement of the decision the app makes (QA start/end argmax, class argmax, top-1 token).

Why SNR/cosine gate the low precisions and not decision agreement: on random-init weights the
logits are nearly flat, so even a correct int8 export flips ~5% of argmaxes; a broken export
(mask ignored, a layer dropped, wrong weights) drops SNR to single digits. On trained models,
judge int8 by the task metric (F1/accuracy) instead; agreement is always reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from pocketbert.common import lookup


@dataclass(frozen=True)
class Tolerance:
    max_abs_diff: float | None  # absolute bound, relative to max(1, max|reference|)
    min_cosine: float  # worst input's cosine(exported, reference)
    min_snr_db: float  # worst input's 10·log10(|ref|² / |exported-ref|²)
    min_agreement: float | None  # fraction of identical decisions (None: report only)


# Measured here: fp32 diffs ~1e-7 (random init) to ~2e-5 (trained, logits ~10); int8 (dynamic
# per-channel) SNR 29-41 dB on random-init presets and 20.5-30 dB on a trained QA model (peaky
# logits), whose SQuAD F1 still matched fp32. Broken exports of a model whose layers matter
# (mask ignored, a layer dropped, other weights): SNR <= 8 dB. int8 bounds sit between the two.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs_diff=1e-4, min_cosine=0.99999, min_snr_db=60.0, min_agreement=1.0),
    "fp16": Tolerance(max_abs_diff=None, min_cosine=0.999, min_snr_db=30.0, min_agreement=None),
    "int8": Tolerance(max_abs_diff=None, min_cosine=0.98, min_snr_db=15.0, min_agreement=None),
    # ExecuTorch 8da4w (int8 dynamic activations, 4-bit grouped weights and embeddings): SNR
    # 16.9-18.2 dB on distilbert-tiny random init, 4-bit noise on flat logits; broken exports <= 8 dB.
    "8da4w": Tolerance(max_abs_diff=None, min_cosine=0.95, min_snr_db=12.0, min_agreement=None),
    "palette4": Tolerance(max_abs_diff=None, min_cosine=0.95, min_snr_db=12.0, min_agreement=None),
}


def _valid_positions(task: str, mask: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Keep the positions a consumer reads: unpadded tokens for token-level outputs."""
    if task in ("sequence-classification", "feature-extraction"):
        return out.reshape(out.shape[0], -1)  # (bs, labels) or (bs, hidden): one row per input
    keep = mask.astype(bool)  # (bs, seq)
    return out[keep]  # (valid,) for QA, (valid, vocab) for fill-mask


def _decisions(task: str, x: np.ndarray) -> np.ndarray:
    if task == "question-answering":
        return np.array([x.argmax()])  # one span end-point per output
    return x.argmax(axis=-1)  # per class row / per token (an embedding: its largest dimension)


def compare(task: str, ref: list[np.ndarray], got: list[np.ndarray], mask: np.ndarray,
            atol_for_ties: float = 0.0) -> dict[str, float]:
    """Metrics of one input over all outputs. A decision counts as agreeing when the exported
    model picks the reference's argmax, or an index whose reference score is within
    `atol_for_ties` of it (random-init logits have exact near-ties)."""
    max_diff, cos, snr, agree, total = 0.0, 1.0, float("inf"), 0, 0
    for r, g in zip(ref, got):
        r = _valid_positions(task, mask, np.asarray(r, np.float64))
        g = _valid_positions(task, mask, np.asarray(g, np.float64))
        if r.shape != g.shape:
            raise ValueError(f"output shape {g.shape} != reference {r.shape}")
        err = g - r
        max_diff = max(max_diff, float(np.abs(err).max()))
        denom = np.linalg.norm(r) * np.linalg.norm(g)
        cos = min(cos, float((r * g).sum() / denom) if denom > 0 else 0.0)
        noise = float((err ** 2).sum())
        snr = min(snr, 10 * np.log10(float((r ** 2).sum()) / noise) if noise > 0 else 300.0)
        picked, best = _decisions(task, g), _decisions(task, r)
        rows = r.reshape(-1, r.shape[-1]) if r.ndim > 1 else r.reshape(1, -1)
        ok = [rows[i, p] >= rows[i, b] - atol_for_ties for i, (p, b) in enumerate(zip(picked, best))]
        agree += int(np.sum(ok))
        total += len(ok)
    return {"max_abs_diff": max_diff, "cosine": cos, "snr_db": min(snr, 300.0),
            "agree": agree, "decisions": total}


def tolerance_for(precision: str, backend=None) -> Tolerance:
    """The bound of a precision: the backend's own (for a precision it adds), else TOLERANCES."""
    own = getattr(backend, "tolerances", None) or {}
    return own[precision] if precision in own else lookup(TOLERANCES, precision, "precision")


def check_parity(task: str, precision: str, reference: Callable, runner: Callable,
                 examples: list[dict[str, np.ndarray]], backend=None) -> dict:
    """Run every example through both models and judge the worst case against the tolerance."""
    tol = tolerance_for(precision, backend)
    rows = []
    scale = 1.0
    for ex in examples:
        ref = reference(ex)
        scale = max(scale, max(float(np.abs(r).max()) for r in ref))
        atol = (tol.max_abs_diff or 0.0) * max(1.0, scale)
        rows.append(compare(task, ref, runner(ex), ex["attention_mask"], atol_for_ties=atol))
    agreement = sum(r["agree"] for r in rows) / max(1, sum(r["decisions"] for r in rows))
    result = {
        "n_inputs": len(examples),
        "seq_lens": [int(ex["attention_mask"].sum()) for ex in examples],
        "max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "output_scale": scale,
        "min_cosine": min(r["cosine"] for r in rows),
        "min_snr_db": min(r["snr_db"] for r in rows),
        "decision_agreement": agreement,
        "tolerance": asdict(tol),
    }
    failures = []
    if tol.max_abs_diff is not None and result["max_abs_diff"] > tol.max_abs_diff * max(1.0, scale):
        failures.append(f"max abs diff {result['max_abs_diff']:.3g} > "
                        f"{tol.max_abs_diff * max(1.0, scale):.3g}")
    if result["min_cosine"] < tol.min_cosine:
        failures.append(f"cosine {result['min_cosine']:.6f} < {tol.min_cosine}")
    if result["min_snr_db"] < tol.min_snr_db:
        failures.append(f"SNR {result['min_snr_db']:.1f} dB < {tol.min_snr_db} dB")
    if tol.min_agreement is not None and agreement < tol.min_agreement:
        failures.append(f"decision agreement {agreement:.1%} < {tol.min_agreement:.0%}")
    result["status"] = "failed: " + "; ".join(failures) if failures else "passed"
    return result
