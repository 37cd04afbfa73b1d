"""GLUE-style TSV data in one place: read a headered TSV (STS-B, SST-2, MRPC...), pick its text
and label columns, and score with Pearson/Spearman or accuracy.

Used by the benchmark's `stsb` workload, task distillation and the reproduction script. numpy only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pocketbert.common import UsageError
from pocketbert.readers import read_text_bounded


@dataclass
class TsvRows:
    path: Path
    ids: list[str]  # the `index` column, or the row number
    first: list[str]  # sentence1, or sentence for single-sentence tasks
    second: list[str] | None  # sentence2 (None for single-sentence tasks)
    labels: list[str] | None  # raw `score` / `label` column (None when the file has none)
    label_column: str | None


def read_tsv(path: str | Path, need_labels: bool = False) -> TsvRows:
    """Rows of a GLUE-style TSV with a header: `sentence1`+`sentence2` or `sentence`, optional
    `index`, and `score` or `label`. Every malformed file is a one-line UsageError."""
    path = Path(path)
    text = read_text_bounded(path, what="data file")  # a regular file of bounded size, UTF-8
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise UsageError(f"{path} is empty: expected a GLUE-style TSV with a header")
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader)
    if "sentence1" in header and "sentence2" in header:
        cols = ("sentence1", "sentence2")
    elif "sentence" in header:
        cols = ("sentence",)
    else:
        raise UsageError(f"{path}: header lacks 'sentence1'/'sentence2' or 'sentence' "
                         f"(got {', '.join(header[:8])}): expected a GLUE-style TSV")
    label_col = "score" if "score" in header else "label" if "label" in header else None
    if need_labels and label_col is None:
        raise UsageError(f"{path}: no 'label' or 'score' column")
    idx = {c: header.index(c) for c in (*cols, label_col, "index") if c and c in header}
    ids, first, second, labels = [], [], [], []
    for lineno, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise UsageError(f"{path}, line {lineno}: {len(fields)} tab-separated fields, expected {len(header)}")
        ids.append(fields[idx["index"]] if "index" in idx else str(lineno - 2))
        first.append(fields[idx[cols[0]]])
        if len(cols) == 2:
            second.append(fields[idx[cols[1]]])
        if label_col:
            labels.append(fields[idx[label_col]])
    if not ids:
        raise UsageError(f"{path} has a header but no rows")
    return TsvRows(path, ids, first, second if len(cols) == 2 else None, labels if label_col else None,
                   label_col)


def float_labels(rows: TsvRows) -> list[float]:
    """The label column as numbers (regression, e.g. STS-B scores)."""
    if rows.labels is None:
        raise UsageError(f"{rows.path}: no 'label' or 'score' column")
    out = []
    for i, x in enumerate(rows.labels):
        try:
            v = float(x)
        except ValueError:
            v = float("nan")
        if not np.isfinite(v):
            raise UsageError(f"{rows.path}, row {i + 1}: {rows.label_column} {x!r} is not a finite number")
        out.append(v)
    return out


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def ranks(x: Sequence[float]) -> np.ndarray:
    """Ranks with ties averaged (as scipy.stats.rankdata), in numpy."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=r) / counts)[inverse]


def pearson_spearman(pred: Sequence[float], gold: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation (STS-B's metrics)."""
    return {"pearson": pearson(pred, gold), "spearman": pearson(ranks(pred), ranks(gold)), "n": len(gold)}


def accuracy(pred: Sequence, gold: Sequence) -> dict[str, float]:
    pred, gold = list(pred), list(gold)
    return {"accuracy": sum(int(p == g) for p, g in zip(pred, gold)) / max(len(gold), 1), "n": len(gold)}
