"""What the console shows of a bench run: library output kept off it (a record's own line:
bench.records.record_line)."""

from __future__ import annotations

import contextlib
import sys
import os
from pathlib import Path


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


def error_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
