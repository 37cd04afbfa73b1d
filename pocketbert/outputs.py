"""Output folders: where a command may write (`check_output_dir`, before any work), the marker that
says what pocketbert wrote there (what `--overwrite` may replace, and only that), and the folder a
command writes into that becomes `--out` all-or-nothing (`atomic_output_dir`, through the one replace
primitive, pocketbert.replace)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from pocketbert import replace
from pocketbert.claims import claim, refuse_if_in_use
from pocketbert.errors import UsageError
from pocketbert.readers import read_text_bounded
from pocketbert.replace import write_file_atomic


def writable_dir(p: Path) -> bool:
    """Whether files can be created in the existing folder `p` (a real probe: root passes
    os.access checks on read-only mounts); the probe folder is removed at once."""
    if not os.access(p, os.W_OK | os.X_OK):
        return False
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".pocketbert-probe-", dir=p))
    except OSError:
        return False
    return True


def is_cwd_or_parent(p: Path) -> bool:
    """Whether `p` is the working directory or one of its parents (never ours to replace)."""
    try:
        target, cwd = Path(p).expanduser().resolve(), Path.cwd().resolve()
    except OSError:
        return False
    return target == cwd or target in cwd.parents


MARKER = ".pocketbert"  # written into every output folder we create: --overwrite replaces only these
MARKER_FORMAT = "pocketbert-output/1"


def check_output_dir(out: Path, overwrite: bool = False, replaces: bool = True) -> None:
    """Fail early (before hours of work) when `out` can't be written as a fresh folder, or when
    --overwrite would replace something this tool did not write (or the working directory).
    With `replaces` (the command swaps the whole folder), every entry must be one the marker lists
    as the earlier command's own: anything else (a user's notes, a bench run) is named and refused."""
    out = Path(out)
    if is_cwd_or_parent(out):
        raise UsageError(f"output folder {out} is the working directory or a parent of it: "
                         "name a new folder for --out")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError(f"output path {out} exists and is not a folder: choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"output folder {out} is not empty: choose a new --out or pass --overwrite")
        if not (out / MARKER).is_file():
            raise UsageError(f"--overwrite replaces only folders pocketbert wrote, and {out} has no "
                             f"{MARKER} marker: move its contents away or choose a new --out")
        others = foreign_entries(out) if replaces else []
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise UsageError(f"--overwrite replaces only what pocketbert wrote into {out}, and it also holds "
                             f"{shown}: move {'it' if len(others) == 1 else 'them'} away or choose a new --out")
    probe = out.absolute().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not writable_dir(probe):
        raise UsageError(f"cannot write to {probe}: choose a writable --out")


def marked_files(folder: Path) -> list[str] | None:
    """The entries the marker of `folder` lists as its command's own; None for an older marker
    that lists none."""
    try:
        data = json.loads(read_text_bounded(Path(folder) / MARKER, 1 << 20, "output marker"))
    except (UsageError, ValueError, RecursionError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else None


def foreign_entries(folder: Path) -> list[str]:
    """Entries of a marked `folder` that its marker does not list (with an older marker: those that
    are not bundles), sorted."""
    listed = marked_files(folder)
    out = []
    for p in sorted(Path(folder).iterdir()):
        if p.name == MARKER:
            continue
        if listed is not None and p.name in listed:
            continue
        if listed is None and p.is_dir() and (p / "manifest.json").is_file():
            continue
        out.append(p.name + ("/" if p.is_dir() else ""))
    return out


def mark_output(folder: Path, what: str = "", files: list[str] | None = None) -> None:
    """Mark `folder` as written by pocketbert (what --overwrite may later replace); `files`: the
    entries the command wrote (default: all there now)."""
    folder = Path(folder)
    if files is None:
        files = sorted(p.name for p in folder.iterdir() if p.name != MARKER)
    write_file_atomic(folder / MARKER, json.dumps({"format": MARKER_FORMAT, "written_by": f"pocketbert {what}".strip(),
                                                   "files": files}, indent=2) + "\n")


@contextlib.contextmanager
def atomic_output_dir(out: Path, overwrite: bool = False, log=None, what: str = "") -> Iterator[Path]:
    """Yield a temporary folder beside `out`; it becomes `out` only when the block succeeds, through
    the one replace primitive (pocketbert.replace: journal, rename, old content back on any error).

    `out` is claimed for the whole block (pocketbert.claims): a second run aimed at the same folder
    is refused in one line naming this one's pid, never merged into or swapped over it. An existing
    `out` keeps its mode; --overwrite refuses what the earlier command did not write (its marker).
    """
    out = Path(out)
    with claim(out):
        replace.recover(out, log)
        check_output_dir(out, overwrite)
        refuse_if_in_use(out)  # before the work, and again before the swap
        mode = out.stat().st_mode & 0o7777 if out.is_dir() else None
        with replace.staging(out, log) as tmp:
            yield tmp
            mark_output(tmp, what)
            if not overwrite and out.is_dir() and any(out.iterdir()):  # written meanwhile by something else
                raise UsageError(f"{out} was filled by another program while this run worked: nothing replaced; "
                                 "choose a new --out")
            refuse_if_in_use(out)
            if mode is not None:
                replace.step("chmod")
                os.chmod(tmp, mode)
            replace.swap_in(tmp, out, log)
