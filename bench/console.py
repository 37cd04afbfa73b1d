"""What the console shows of a bench run: library output kept off it (a record's own line:
bench.records.record_line)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pocketbert.common import fds_redirected


@contextlib.contextmanager
def quiet_output(log_path: Path):
    """Within: this process's stdout/stderr file descriptors (C/C++ logging, Python warnings) append
    to `log_path`; `print` still reaches the console when stdout is a real file descriptor."""
    with fds_redirected(log_path) as (console, _), contextlib.ExitStack() as keep:
        if console is not None:
            keep.enter_context(contextlib.redirect_stdout(console))
        yield


def error_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
