"""What the console shows of a bench run: one line per record; library output kept off it."""

from __future__ import annotations

import contextlib
import sys
import os
from pathlib import Path
from typing import Any

from bench.trust import summary


@contextlib.contextmanager
def quiet_output(log_path: Path):
    """Within: this process's stdout/stderr file descriptors (C/C++ logging, Python warnings) append
    to `log_path`; `print` still reaches the console when stdout is a real file descriptor."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    console = None
    try:
        if sys.stdout.fileno() == 1:
            console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    except (AttributeError, OSError, ValueError):  # stdout replaced (tests, notebooks): leave it
        pass
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        if console is not None:
            with contextlib.redirect_stdout(console):
                yield
        else:
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in saved:
            os.close(f)
        if console is not None:
            console.close()


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
