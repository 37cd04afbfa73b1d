"""What the console shows of a bench run: one line per record; library output kept off it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from bench.trust import summary
from pocketbert.common import fds_redirected


@contextlib.contextmanager
def quiet_output(log_path: Path):
    """Within: this process's stdout/stderr file descriptors (C/C++ logging, Python warnings) append
    to `log_path`; `print` still reaches the console when stdout is a real file descriptor."""
    with fds_redirected(log_path) as (console, _), contextlib.ExitStack() as keep:
        if console is not None:
            keep.enter_context(contextlib.redirect_stdout(console))
        yield


def one_line(rec: dict[str, Any]) -> str:
    """A record as one human line for the console (a noisy one says why, at once)."""
    head = f"{rec['runtime']:<10} {rec['precision']:<5} {rec['shape']:<7}"
    if rec["status"] != "ok":
        return f"{head} {rec['status']}: {rec['reason']}"
    s = rec["stats"]["latency_ms"]
    frac = rec.get("fraction_of_peak")
    noisy = summary(rec.get("trust"))
    rss = f"{rec['peak_rss_mb']:6.0f} MB" if rec.get("peak_rss_mb") is not None else "     – MB"  # not every device says
    return (f"{head} p50 {s['p50']:8.2f} ms  p90 {s['p90']:8.2f} ms  total {rec['total_model_s']:7.2f} s  "
            f"rss {rss}  {rec.get('achieved_gflops') or 0:6.1f} GFLOP/s"
            + (f" ({frac:.0%} of {rec.get('gemm_peak_kind') or 'fp32'} peak {rec['gemm_peak_gflops']:.0f})"
               if frac else "")
            + (f"  !! {noisy}" if noisy else ""))


def error_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
