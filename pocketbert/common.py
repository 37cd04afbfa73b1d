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
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator


class UsageError(Exception):
    """A problem with the user's input: the CLI prints it on one line and exits with code 2."""

    exit_code = 2


class CheckFailed(UsageError):
    """A check on our own output failed (e.g. export parity out of tolerance): exit code 1."""

    exit_code = 1


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


def check_output_dir(out: Path, overwrite: bool = False) -> None:
    """Fail early (before hours of work) when `out` can't be written as a fresh folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path {out} exists and is not a folder: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"output folder {out} is not empty: choose a new --out or pass --overwrite")
    parent = out.resolve().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise UsageError(f"cannot write to {probe}: choose a writable --out")


@contextlib.contextmanager
def atomic_output_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; rename it to `out` only when the block succeeds.

    An error, Ctrl-C or a kill leaves no folder at `out` that looks complete (at most a
    `.tmp-*` sibling after SIGKILL, which the next run does not mistake for a bundle).
    """
    out = Path(out)
    check_output_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically (temp file + rename): readers never see half of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename), dataclasses converted."""
    write_text_atomic(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj
