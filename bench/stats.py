"""Raw samples in, statistics out (after optimum-benchmark's latency tracker): records keep every
sample, and every summary number is derived from them here, one way, for every runtime."""

from __future__ import annotations

import math
from typing import Sequence

TRIM_FRACTION = 0.1  # trimmed mean drops this fraction at each end: robust to a noisy neighbour


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between order statistics (numpy's default)."""
    import numpy as np

    return float(np.percentile(samples, q)) if len(samples) else math.nan


def trimmed_mean(samples: Sequence[float], fraction: float = TRIM_FRACTION) -> float:
    """Mean after dropping floor(n * fraction) samples at each end (plain mean when that is 0)."""
    if not samples:
        return math.nan
    xs = sorted(samples)
    k = int(len(xs) * fraction)
    kept = xs[k:len(xs) - k] if len(xs) - 2 * k > 0 else xs
    return sum(kept) / len(kept)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """count, total, mean, std (sample), min, max, p50, p90, p99, trimmed_mean of the samples."""
    n = len(samples)
    if n == 0:
        return {"count": 0}
    mean = sum(samples) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in samples) / (n - 1)) if n > 1 else 0.0
    return {"count": n, "total": sum(samples), "mean": mean, "std": std, "min": min(samples),
            "max": max(samples), "p50": percentile(samples, 50), "p90": percentile(samples, 90),
            "p99": percentile(samples, 99), "trimmed_mean": trimmed_mean(samples)}
