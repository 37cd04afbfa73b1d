"""Exclusive claims on what a run writes (an export's --out, a bench run folder): two runs aimed
at one place at the same time are never merged; the second is refused in one line naming the
first's pid.

A claim is an `fcntl.flock` on a lock file beside the target (`.<name>.pocketbert-lock`, holding
the owner's pid). The kernel drops the lock when its owner dies, even by SIGKILL, so a stale lock
file never blocks a later run; a finished run removes its lock file (and the folders it had to
create for it, when they stayed empty). Claims are re-entrant within one process. stdlib only.

Why fcntl and not filelock (4.3, checked): what this module needs, filelock does not do. Its
FileLock takes exclusive flocks only and keeps the lock file on release; the holder's pid is written
only by its soft (marker-file) fallback. Here a refusal names the holder's pid read from the locked
file, a finished run removes its lock file, and `claimed_by_another` / `users_of` ask "is anyone
holding this?" with a shared non-blocking flock that never excludes a second asker; taking
filelock's exclusive lock to ask would make two askers refuse each other. Its ReadWriteLock is an
SQLite database per lock, not a flock on the holder's own file (`in_use`'s holds die with the
process and name the run that holds them).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

from pocketbert.errors import UsageError

try:
    import fcntl
except ImportError:  # not POSIX: no claims (nothing else here depends on them)
    fcntl = None

LOCK_SUFFIX = ".pocketbert-lock"
_held: dict[str, int] = {}  # lock path -> nesting depth in this process


def lock_path(target: Path) -> Path:
    target = Path(target).absolute()
    return target.parent / f".{target.name}{LOCK_SUFFIX}"


def remove_held_lock_files() -> None:
    """For a process about to die at once (a second Ctrl-C): remove the lock files it holds; the
    kernel drops the locks themselves with the process."""
    for key in list(_held):
        with contextlib.suppress(OSError):
            Path(key).unlink()


def holder_pid(target: Path) -> int | None:
    """The pid written in `target`'s lock file (None when there is none or it is unreadable)."""
    try:
        text = lock_path(target).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def claim(target: Path, flag: str = "--out", wait: bool = False) -> Iterator[None]:
    """Hold `target` for this process within the block; another live holder: a one-line UsageError
    naming its pid and `flag` (the option that chose the target), or with `wait`, wait for it."""
    path = lock_path(target)
    key = str(path)
    if fcntl is None or key in _held:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    created = _make_parents(path.parent)
    fd = _acquire(path, target, flag, wait)
    _held[key] = 1
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        del _held[key]
        try:
            with contextlib.suppress(OSError):
                path.unlink()  # before unlocking: a waiting run then re-checks and takes a fresh file
        finally:
            os.close(fd)  # the lock goes with it, whatever happened to the file
        for folder in reversed(created):  # only folders this claim made, and only when empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def _make_parents(folder: Path) -> list[Path]:
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {folder} ({e.strerror or e}): choose a writable location") from None
    return list(reversed(missing))


def _acquire(path: Path, target: Path, flag: str, wait: bool = False) -> int:
    for _ in range(100):  # another run may remove the file between our open and our lock: retry
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # its folder was just removed by a finishing run
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        except OSError as e:
            raise UsageError(f"cannot write to {path.parent} ({e.strerror or e}): "
                             f"choose a writable {flag}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            pid = _wait_for_pid(fd)
            os.close(fd)
            who = f"pid {pid}" if pid else "a process that just started"
            raise UsageError(f"{target} is being written by another pocketbert run ({who}): wait for it "
                             f"to finish or choose another {flag}") from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)  # we locked a file its owner had just removed: take the new one
    raise UsageError(f"could not claim {target}: its lock file {path} keeps changing")


def _wait_for_pid(fd: int) -> int | None:
    """The holder writes its pid right after locking: read it (a moment's wait at most)."""
    for _ in range(40):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.025)
    return None


@contextlib.contextmanager
def claim_run_folder(folder: Path, flag: str = "--run-id", overwrite: bool = False) -> Iterator[None]:
    """`claim(folder)`, and refuse a folder that already holds something unless `overwrite` says the
    user means to add to it: an earlier run's records are never replaced silently."""
    folder = Path(folder)
    with claim(folder, flag):
        if not overwrite and folder.is_dir() and any(folder.iterdir()):
            raise UsageError(f"{flag} {folder.name}: {folder} already holds an earlier run: choose another "
                             f"{flag}, or pass --overwrite to add to it (its records of the same runs are replaced)")
        yield


# ------------------------------------------------------------------ bundles in use (shared holds)

USES_DIR = Path("/tmp/pocketbert-in-use")  # not $TMPDIR: every process on the machine must see the same holds


def _uses_dir() -> Path:
    return USES_DIR


def _use_key(folder: Path) -> str:
    import hashlib

    return hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:20]


@contextlib.contextmanager
def in_use(folder: Path, who: str) -> Iterator[None]:
    """Hold `folder` (a bundle) in use within the block: a replace of it, or of the export folder
    holding it, is refused in one line naming `who` (`users_of`). Many holders may share a folder.
    The hold is an flock on this process's own file in a shared folder: it dies with the process.
    A folder being replaced right now (claimed by another run) is refused here instead."""
    if fcntl is None:
        yield
        return
    folder = Path(folder)
    d = _uses_dir()
    if not d.is_dir():
        d.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(d, 0o1777)  # shared by every user's runs, like /tmp itself
    path = d / f"{_use_key(folder)}-{os.getpid()}-{id(folder):x}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{who} (pid {os.getpid()})\n{folder.resolve()}\n".encode())
        for target in (folder, folder.parent):  # announced first, then checked: an export sees us or we see it
            pid = claimed_by_another(target)
            if pid:
                raise UsageError(f"{folder} is being replaced by another pocketbert run (pid {pid}): wait for it "
                                 "to finish")
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def users_of(target: Path) -> list[str]:
    """Who holds `target`, or a bundle folder directly inside it, in use now (`in_use`)."""
    if fcntl is None or not _uses_dir().is_dir():
        return []
    target = Path(target)
    folders = [target] + ([p for p in target.iterdir() if p.is_dir()] if target.is_dir() else [])
    found = []
    for folder in folders:
        for path in _uses_dir().glob(f"{_use_key(folder)}-*"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    found.append(os.pread(fd, 512, 0).decode(errors="replace").splitlines()[0] or "a pocketbert run")
                    continue
                with contextlib.suppress(OSError):  # a holder that died: its file goes
                    path.unlink()
            finally:
                os.close(fd)
    return sorted(set(found))


def refuse_if_in_use(target: Path, flag: str = "--out") -> None:
    """A one-line UsageError naming the runs that hold `target` (or a bundle in it) in use."""
    users = users_of(target)
    if users:
        raise UsageError(f"{target} holds a bundle in use by {', '.join(users)}: replacing it would change the "
                         f"files under that run; wait for it to finish or choose another {flag}")


def claimed_by_another(target: Path) -> int | None:
    """The pid of another process holding `target`'s claim now (None: nobody, or this process)."""
    path = lock_path(target)
    if fcntl is None or str(path) in _held:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
    return None
