"""Small helpers every subcommand shares: the one error type the CLI turns into exit code 2,
atomic output folders, provenance (git revision, library versions) and file hashes.

Nothing here imports torch, so `pocketbert --help` stays instant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from pocketbert.claims import remove_held_lock_files
from pocketbert.errors import CheckFailed, UsageError  # noqa: F401 - their home for every caller
from pocketbert.replace import _temp_outputs, clean_leftovers, pid_alive, write_file_atomic  # noqa: F401 - re-exported


def lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    """`registry[name]`, or a UsageError that lists the valid names."""
    try:
        return registry[name]
    except KeyError:
        valid = ", ".join(sorted(registry))
        raise UsageError(f"unknown {what} '{name}': choose one of {valid}") from None


def quiet_backends() -> None:
    """Silence the import-time chatter of torch/torchao/coremltools (deprecation notes that say
    nothing about the user's model), so a command's output is its progress and results."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*TracerWarning.*")
    import torch  # noqa: F401 - torch configures its loggers on import; override after

    for name in ("torch", "torch.utils._pytree", "torch.onnx", "torchao", "coremltools",
                 "onnxscript", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars: one line per load on stderr


_console: list = []  # the console's stderr while native_output_captured() is active (innermost last)


def console_stderr():
    """Where pocketbert's own progress bars and notes go: the console, also while the libraries'
    output is being captured."""
    return _console[-1] if _console else sys.stderr


@contextlib.contextmanager
def fds_redirected(target: Path | int) -> Iterator[tuple[Any, Any]]:
    """Within: this process's file descriptors 1 and 2 (Python and C/C++ alike) write to `target`, a
    log file appended to (its folder made) or an open descriptor; yields Python files on the console's
    stdout and stderr (None for a stream replaced by tests or notebooks, which stays as it is) for what
    must still reach it. Restored after, whatever happened. The one fd capture: the export log, the
    bench log and the worker's log go through it."""
    _flush_std()
    saved = [os.dup(1), os.dup(2)]
    console = (_console_copy(sys.stdout, 1, saved[0]), _console_copy(sys.stderr, 2, saved[1]))
    if isinstance(target, int):
        os.dup2(target, 1)
        os.dup2(target, 2)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        yield console
    finally:
        _flush_std()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        for c in console:
            if c is not None:
                c.close()


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()


def _console_copy(stream, fd: int, saved: int):
    """A Python file on the console for `stream` when it writes to `fd`; None when it was replaced
    (tests, notebooks), which then stays as it is."""
    try:
        if stream.fileno() != fd:
            return None
    except (AttributeError, OSError, ValueError):
        return None
    return os.fdopen(os.dup(saved), "w", buffering=1)


@contextlib.contextmanager
def native_output_captured() -> Iterator[list[str]]:
    """Within: what libraries write — C/C++ on file descriptors 1 and 2 (ExecuTorch's cpuinfo and
    threadpool lines), and on Python's sys.stderr (warnings, logging, pybind-redirected std::cerr) —
    goes to a temp file; print (stdout) and the bars and notes given console_stderr() still reach the
    console. After the block, the list holds the captured text."""
    captured: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        try:
            with fds_redirected(tmp.fileno()) as (console_out, console_err), contextlib.ExitStack() as keep:
                if console_out is not None:
                    keep.enter_context(contextlib.redirect_stdout(console_out))
                if console_err is not None:  # sys.stderr was the console: libraries' Python-side lines to the file
                    library = open(os.dup(tmp.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
                    keep.callback(library.close)
                    keep.enter_context(contextlib.redirect_stderr(library))
                _console.append(console_err or sys.stderr)
                keep.callback(_console.pop)
                yield captured
        finally:
            tmp.seek(0)
            captured.append(tmp.read().decode(errors="replace"))


def append_log(path: Path, header: str, text: str) -> None:
    """Append `text` under a `===== header` line to the log at `path` (nothing when empty)."""
    if text.strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(f"===== {header} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n{text.rstrip()}\n")


def git_revision() -> str:
    """The project's git revision (with '-dirty' when the tree has changes), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


TRACKED_LIBRARIES = ("pocketbert", "torch", "transformers", "tokenizers", "executorch", "torchao",
                     "coremltools", "onnx", "onnxruntime", "onnxscript", "numpy")


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries an output depends on ('not installed' when absent)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_size(path: Path) -> int:
    """Size in bytes of a file, or of every file under a folder (an .mlpackage is a folder)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, sorted)."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode() + b"\0" + sha256_file(p).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------ signals

class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: cleanup runs (finally blocks) as for Ctrl-C; the CLI exits 128+signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_received: list[int] = []  # signals received by this process (the first decides the exit code)
_deferring: list[str] = []  # library steps running now that an exception must not cut in two


_kept: list[str] = []  # what a stopped command leaves on disk on purpose (e.g. checkpoints to resume from)


def received_signal() -> int | None:
    return _received[0] if _received else None


def note_kept(what: str) -> None:
    """Record that `what` stays on disk if this command is stopped now: the interrupt message says
    so instead of "nothing partial was left behind"."""
    if what not in _kept:
        _kept.append(what)


def kept_on_disk() -> list[str]:
    return list(_kept)


def _on_signal(signum, frame) -> None:
    import signal
    import sys

    first = not _received
    _received.append(signum)
    if first and not _deferring:
        raise Interrupted(signum)
    if first:  # inside a deferred step: say so now, stop when the step returns
        print(f"pocketbert: stopping after {_deferring[-1]} (it cannot be cut safely); "
              "press Ctrl-C again to stop at once", file=console_stderr(), flush=True)
    elif _deferring and len(_received) == 2:  # asked twice: stop now, without running library code
        for tmp in list(_temp_outputs):  # (this handler runs between bytecodes: no writer is mid-call)
            shutil.rmtree(tmp, ignore_errors=True)
        remove_held_lock_files()
        kept = kept_on_disk()
        print(f"pocketbert: stopped at once during {_deferring[-1]}; "
              + (f"kept on disk: {'; '.join(kept)}" if kept else "nothing partial was left behind"),
              file=console_stderr(), flush=True)
        signal.signal(signum, signal.SIG_DFL)  # the default action: the exit status says which signal
        os.kill(os.getpid(), signum)
    # otherwise ignored: the cleanup started by the first signal must finish


@contextlib.contextmanager
def signals_deferred(what: str) -> Iterator[None]:
    """Hold a Ctrl-C/SIGTERM until `what` returns, then stop as usual.

    Raising from a signal handler in the middle of torch.export / ExecuTorch lowering / ONNX
    conversion runs the libraries' C++ unwinding from an arbitrary point: CI saw one SIGSEGV (exit
    -11, no message) when SIGTERM landed in an export. Steps like that run whole; a second signal
    stops at once (the default action; the temp folder is cleaned by the next run)."""
    import signal

    if signal.getsignal(signal.SIGINT) is not _on_signal:  # not under the CLI (a test, a notebook): as is
        yield
        return
    _deferring.append(what)
    try:
        yield
    finally:
        _deferring.pop()
    if _received and not _deferring:
        raise Interrupted(_received[0])


def reset_signal_state() -> None:
    """Forget the signals of a finished command: the next one in this process starts clean."""
    _received.clear()
    _deferring.clear()
    _kept.clear()


def install_signal_handlers() -> None:
    """SIGTERM handled like SIGINT (Ctrl-C): raise in the main thread, clean up, exit 128+signal."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    _received.clear()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically (unique temp file, fsync, rename; the temp file removed on any
    error, a full disk included): readers never see half of it."""
    write_file_atomic(Path(path), text)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename), dataclasses converted."""
    write_text_atomic(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "model_dump"):  # a pydantic contract (pocketbert.contracts)
        return obj.model_dump(mode="json", by_alias=True)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj
