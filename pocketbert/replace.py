"""The one way pocketbert replaces a folder or a file: all or nothing, also across a crash.

A folder (an export's --out, the Android app's bundle assets, a cached bench bundle) is replaced
in these steps; each goes through `step()`, where the crash-consistency test injects an interrupt,
an I/O error, a full disk or a SIGKILL:

  1. the new content is built complete in a sibling temp folder (`.tmp-<name>-<pid>-*`) and checked;
  2. a journal (`.<name>.pocketbert-swap`, written whole: temp file, fsync, rename) names the temp
     folder and where the old content will wait (`.old-<name>-<pid>-*`);
  3. the old folder is renamed aside, the new one renamed in (Ctrl-C/SIGTERM are held meanwhile);
  4. the old folder is deleted, then the journal.

An error at 2-3 renames the old folder back. A run killed between the steps leaves the journal;
`recover()` (run by the next replace of the same target, under its claim) then finishes the swap
when the new folder is in place and undoes it otherwise, so no `.old-*` folder is ever stranded.
Files (reports, records, models.json) are written by `write_file_atomic`: unique temp file, fsync,
rename, the temp file removed on any error. stdlib only; nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import glob
import re
import sys
import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

JOURNAL_SUFFIX = ".pocketbert-swap"
JOURNAL_FORMAT = "pocketbert-swap/1"

_hooks: list[Callable[[str], None]] = []  # the crash-consistency test's fault injectors
_temp_outputs: list[Path] = []  # temp folders being written now (a second Ctrl-C removes them at once)


def step(name: str) -> None:
    """Mark one filesystem step (a no-op unless a test injects a fault here)."""
    for hook in list(_hooks):
        hook(name)


def journal_path(target: Path) -> Path:
    target = Path(target).absolute()
    return target.parent / f".{target.name}{JOURNAL_SUFFIX}"


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C/SIGTERM wait until the block is done (the swap and its undo are never cut in two)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)  # a held signal is delivered now


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file_atomic(path: Path, data: bytes | str) -> None:
    """Write `path` whole or not at all: a unique temp file beside it (fsynced), renamed over it.
    On any error or interrupt the temp file is removed and `path` keeps what it held."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    remove_stale_temps(path.parent, f".{path.name}.")
    fd, tmp = -1, None
    try:
        with signals_held():  # a Ctrl-C waits until the temp file is ours to remove
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
        try:
            step("file-write")
            with open(fd, "wb", closefd=False) as f:
                f.write(data)
                f.flush()
                step("file-fsync")
                os.fsync(f.fileno())
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make a report private
        step("file-rename")
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temps(folder: Path, prefix: str) -> None:
    """Remove `<prefix><pid>-*.tmp` files of processes that are gone (a killed writer's temp file)."""
    with contextlib.suppress(OSError):
        for p in Path(folder).iterdir():
            rest = p.name[len(prefix):] if p.name.startswith(prefix) else ""
            pid = rest.split("-", 1)[0]
            if rest.endswith(".tmp") and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    p.unlink()


def _rmtree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_leftovers(folder: Path, prefix: str, log=None, temp_suffix: bool = False) -> list[Path]:
    """Remove `<prefix><pid>-*` entries in `folder` whose owning process is gone (what a killed
    run left behind); returns (and logs) what was removed. Others' live runs are left alone.
    With `temp_suffix` the name must end `<pid>-<mkdtemp's 8 characters>` exactly (so `.tmp-run-`
    never matches a sibling output's `.tmp-run-2-<pid>-...`)."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.glob(glob_escape(prefix) + "*"):
        rest = p.name[len(prefix):]
        if temp_suffix and not re.fullmatch(r"\d+-[a-z0-9_]{8}", rest):
            continue
        pid = rest.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        removed.append(p)
        (log or _say)(f"removed {p}: left behind by an interrupted run (pid {pid})")
    return removed


def glob_escape(s: str) -> str:
    return glob.escape(s)


# ------------------------------------------------------------------ the folder swap

def swap_in(new: Path, target: Path, log=None) -> None:
    """Put the complete folder `new` at `target` (a sibling), keeping the old one until the new one
    is in place; on any error or interrupt the old one is back at `target` and `new` is removed."""
    new, target = Path(new).absolute(), Path(target).absolute()
    journal = journal_path(target)
    old = target.parent / f".old-{target.name}-{os.getpid()}-{new.name.rsplit('-', 1)[-1]}"
    with signals_held():
        step("journal")
        write_file_atomic(journal, json.dumps({"format": JOURNAL_FORMAT, "pid": os.getpid(), "target": target.name,
                                               "new": new.name, "old": old.name}) + "\n")
        swapped = False
        try:
            if target.exists() or target.is_symlink():
                step("aside")
                os.rename(target, old)
            step("in")
            os.rename(new, target)
            swapped = True
        except BaseException:
            if not new.exists() and target.exists():  # stopped right after the rename in: done
                swapped = True
                raise
            if old.exists() and not target.exists():
                os.rename(old, target)  # undo: the old content is whole again
            with contextlib.suppress(OSError):
                _rmtree(new)
            with contextlib.suppress(OSError):
                journal.unlink()
            raise
        finally:
            if swapped:  # the new content is in place: never undone, only finished
                _finish(target, old, journal, log)


def _finish(target: Path, old: Path, journal: Path, log=None) -> None:
    """After the new folder is in place: delete the old one, then the journal. A failure here
    leaves the journal (the next run finishes the job) but never the new content's place."""
    try:
        step("drop-old")
        if old.exists() or old.is_symlink():
            _rmtree(old)
        step("drop-journal")
        journal.unlink(missing_ok=True)
        _fsync_dir(target.parent)
    except OSError as e:
        (log or _say)(f"note: {target} is replaced; removing the old copy failed ({e.strerror or e}): "
                      "the next run into that folder finishes it")


def recover(target: Path, log=None) -> str | None:
    """Finish or undo a swap of `target` that a killed run left (its journal); call it while holding
    `target`'s claim. Returns what was done, or None when there was nothing to do."""
    target = Path(target).absolute()
    journal = journal_path(target)
    if not journal.is_file():
        return None
    try:
        j = json.loads(journal.read_text()[:4096])
        new, old = target.parent / j["new"], target.parent / j["old"]
        if not all(isinstance(j[k], str) and "/" not in j[k] for k in ("new", "old")):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        journal.unlink(missing_ok=True)  # unreadable: written half by a killed run, before any rename
        return None
    if old.exists() and (new.exists() or not target.exists()):  # moved aside, the new one never arrived
        if target.exists():
            _rmtree(target)
        os.rename(old, target)
        done = f"put back {target} (a run replacing it was killed before it finished)"
    elif new.exists():  # killed before the old one was moved: nothing changed
        done = f"removed the unfinished replacement of {target} (its run was killed)"
    else:
        done = f"finished replacing {target} (a run was killed after the swap)"
    for leftover in (new, old):
        if leftover.exists() or leftover.is_symlink():
            _rmtree(leftover)
    journal.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    (log or _say)(done)
    return done


def recover_all(folder: Path, log=None) -> None:
    """`recover()` every journal in `folder` whose writer is gone."""
    with contextlib.suppress(OSError):
        for j in Path(folder).glob(f".*{JOURNAL_SUFFIX}"):
            try:
                pid = int(json.loads(j.read_text()[:4096]).get("pid", 0))
            except (OSError, ValueError, AttributeError, TypeError):
                pid = 0
            if pid != os.getpid() and (pid <= 0 or not pid_alive(pid)):
                recover(j.parent / j.name[1:-len(JOURNAL_SUFFIX)], log)


@contextlib.contextmanager
def staging(target: Path, log=None) -> Iterator[Path]:
    """A sibling temp folder to build `target`'s new content in (the umask's mode); removed when
    the block fails. Temp folders of killed runs beside it are removed first (and named)."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    for kind in (".tmp-", ".old-"):
        clean_leftovers(target.parent, f"{kind}{target.name}-", log, temp_suffix=True)
    step("stage")
    tmp = None
    try:
        with signals_held():  # made and registered as one step: a Ctrl-C never strands it
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-{os.getpid()}-", dir=target.parent))
            _temp_outputs.append(tmp)  # a second Ctrl-C, which stops at once, removes it too
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would make the result private to this user
        yield tmp
    finally:
        if tmp is not None:
            _temp_outputs.remove(tmp)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def replace_folder_from(target: Path, build: Callable[[Path], None], log=None) -> None:
    """Build `target`'s new content with `build(folder)` and swap it in (the old folder's mode kept)."""
    target = Path(target).absolute()
    recover(target, log)
    mode = target.stat().st_mode & 0o7777 if target.is_dir() else None
    with staging(target, log) as tmp:
        build(tmp)
        if mode is not None:
            step("chmod")
            os.chmod(tmp, mode)
        swap_in(tmp, target, log)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)
