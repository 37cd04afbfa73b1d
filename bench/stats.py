"""Raw samples in, statistics out (after optimum-benchmark's latency tracker): records keep every
sample, and every summary number is derived from them here, one way, for every runtime: numpy for
moments and percentiles, scipy.stats for the trimmed mean. Only the host derives statistics (never a
board's worker), so scipy is needed here alone."""

from __future__ import annotations

import math
from typing import Sequence

TRIM_FRACTION = 0.1  # trimmed mean drops this fraction at each end: robust to a noisy neighbour


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between order statistics (numpy's default)."""
    import numpy as np

    return float(np.percentile(samples, q)) if len(samples) else math.nan


def trimmed_mean(samples: Sequence[float], fraction: float = TRIM_FRACTION) -> float:
    """Mean after dropping floor(n * fraction) samples at each end (scipy.stats.trim_mean)."""
    from scipy.stats import trim_mean

    return float(trim_mean(samples, fraction)) if len(samples) else math.nan


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """count, total, mean, std (sample), min, max, p50, p90, p99, trimmed_mean of the samples."""
    import numpy as np

    n = len(samples)
    if n == 0:
        return {"count": 0}
    xs = np.asarray(samples, dtype=np.float64)
    p50, p90, p99 = (float(p) for p in np.percentile(xs, [50, 90, 99]))
    return {"count": n, "total": float(xs.sum()), "mean": float(xs.mean()),
            "std": float(xs.std(ddof=1)) if n > 1 else 0.0, "min": float(xs.min()), "max": float(xs.max()),
            "p50": p50, "p90": p90, "p99": p99, "trimmed_mean": trimmed_mean(xs)}
