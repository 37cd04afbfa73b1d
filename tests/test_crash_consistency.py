"""Crash consistency of every replace, in the style of SQLite's crash tests and ALICE: each
operation (export's --overwrite swap, `android bundle`, a report file, a bench record) is run once
to list the filesystem calls it makes under the test's folder; then, for every one of those calls,
it is run again from the same old state with one fault injected there:

- an interrupt (KeyboardInterrupt, as Ctrl-C/SIGTERM raise) before the call and right after it,
- an I/O error (EIO) and a full disk (ENOSPC) instead of the call,
- a crash: the process dies (os._exit, as SIGKILL) before the call or right after it.

After an in-process fault the target must hold the old or the new content, whole. After a crash
the same must hold once the next run has started (its recovery), and the next run must then
succeed with nothing stray left beside the target (`.tmp-*`, `.old-*`, journals, temp files).

The faults are injected at the os/shutil/builtins level (not through pocketbert's own hooks), so
the test also judges code that knows nothing of it.
"""

from __future__ import annotations

import builtins
import io
import errno
import os
import shutil
import signal
from pathlib import Path

import pytest

MUTATING = ("rename", "replace", "mkdir", "rmdir", "unlink", "link", "chmod", "fsync", "symlink")


class Fault(Exception):
    pass


class Injector:
    """Counts (and at call `at` faults) the mutating filesystem calls on paths under `root`."""

    def __init__(self, root: Path, at: int | None = None, kind: str = "", when: str = "before"):
        self.root, self.at, self.kind, self.when = str(root), at, kind, when
        self.calls: list[str] = []
        self.pending = False

    def _ours(self, args, kw) -> bool:
        if kw.get("dir_fd") is not None:  # shutil.rmtree's calls inside a folder it opened
            return True
        for a in args[:2]:
            if isinstance(a, (str, os.PathLike)) and os.fspath(a).startswith(self.root):
                return True
            if isinstance(a, int):  # a file descriptor (fsync, open(fd)) or a dir_fd: ours while active
                return True
        return False

    def _fire(self, when: str) -> None:
        n = len(self.calls) - 1
        if self.pending and not _signals_blocked():  # a held signal is delivered once unblocked
            self.pending = False
            raise KeyboardInterrupt
        if n != self.at or when != self.when:
            return
        if self.kind == "interrupt":
            if _signals_blocked():  # as the kernel does: Ctrl-C waits while the code holds signals
                self.pending = True
                return
            raise KeyboardInterrupt
        if self.kind == "kill":
            os._exit(137)
        err = {"eio": errno.EIO, "enospc": errno.ENOSPC}[self.kind]
        raise OSError(err, os.strerror(err))

    def wrap(self, name: str, fn):
        def call(*args, **kw):
            if not self._ours(args, kw):
                return fn(*args, **kw)
            self.calls.append(f"{name}({os.path.basename(os.fspath(args[0])) if not isinstance(args[0], int) else 'fd'})")
            self._fire("before")
            out = fn(*args, **kw)
            self._fire("after")
            return out
        return call

    def install(self, monkeypatch) -> None:
        for name in MUTATING:
            monkeypatch.setattr(os, name, self.wrap(name, getattr(os, name)))
        real_open = os.open

        def os_open(path, flags, *a, **kw):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                return self.wrap("open-w", real_open)(path, flags, *a, **kw)
            return real_open(path, flags, *a, **kw)

        monkeypatch.setattr(os, "open", os_open)
        real_builtin_open = builtins.open

        def open_(file, mode="r", *a, **kw):
            if any(c in mode for c in "wax+"):
                return self.wrap("write", real_builtin_open)(file, mode, *a, **kw)
            return real_builtin_open(file, mode, *a, **kw)

        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)  # pathlib's write_text/write_bytes


def _signals_blocked() -> bool:
    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """relative path -> content of every file under `folder` (None when it is missing)."""
    if not folder.is_dir():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def strays(parent: Path, target: Path) -> list[str]:
    """What a replace of `target` may leave beside it only while it runs."""
    n = target.name
    return sorted(p.name for p in parent.iterdir()
                  if p.name.startswith((f".tmp-{n}-", f".old-{n}-", f".{n}.pocketbert-swap", f".{n}."))
                  and not p.name.endswith(".pocketbert-lock"))


# ------------------------------------------------------------------ the operations under test

def _export_like(root: Path, version: str, old: bool, build: bool = True):
    """What `export --out O --overwrite` does once the bundles are built: the one swap."""
    from pocketbert.outputs import atomic_output_dir

    out = root / "O"
    if old and not build:
        return out
    if old:
        with atomic_output_dir(out) as tmp:
            (tmp / "onnx-fp32").mkdir()
            (tmp / "onnx-fp32" / "model.onnx").write_text("v1 " * 50)
            (tmp / "onnx-fp32" / "manifest.json").write_text("{}")
        return out

    def op():
        with atomic_output_dir(out, overwrite=True, log=lambda m: None) as tmp:
            (tmp / "onnx-fp32").mkdir()
            (tmp / "onnx-fp32" / "model.onnx").write_text(version * 60)
            (tmp / "onnx-fp32" / "manifest.json").write_text("{}")
    return out, op


def _fake_bundle(folder: Path, weights: str) -> Path:
    import json

    from export.bundle import describe_files
    from pocketbert.contracts import Manifest

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_text(weights)
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    m = Manifest(target="onnx", precision="fp32", task="question-answering", model_type="bert",
                 source="preset:bert-tiny", model_file="model.onnx", seq_len=64, seq_lens=[64],
                 dynamic_seq=True, inputs=[{"name": "input_ids", "dtype": "int64", "shape": [1, "seq"]}],
                 outputs=[{"name": "start_logits", "dtype": "float32", "shape": [1, "seq"]}],
                 files=describe_files(folder)).to_dict()
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def _android(root: Path, version: str, old: bool, build: bool = True):
    from android_demo.cli import bundle_into_app

    app = root / "app-project"
    assets = app / "app" / "src" / "main" / "assets" / "bundles"
    if old and not build:
        return assets
    if old:
        (app / "app").mkdir(parents=True)
        (app / "settings.gradle.kts").write_text("")
        bundle_into_app([_fake_bundle(root / "src-old", "old weights " * 20)], app, name="qa")
        bundle_into_app([_fake_bundle(root / "src-keep", "kept weights")], app, name="keep")
        return assets
    src = _fake_bundle(root / f"src-{version}", f"{version} weights " * 20)
    return assets, lambda: bundle_into_app([src], app, name="qa")


def _file_writer(name: str):
    def scenario(root: Path, version: str, old: bool, build: bool = True):
        from pocketbert.common import write_json

        path = root / name
        if old and not build:
            return path
        if old:
            write_json(path, {"value": "old" * 40})
            return path
        return path, lambda: write_json(path, {"value": version * 40})
    return scenario


SCENARIOS = {"export --overwrite": _export_like, "android bundle": _android,
             "report": _file_writer("report.md"), "record": _file_writer("r-onnx-fp32.json")}


def _content(target: Path):
    if target.is_dir() or not target.exists():
        return snapshot(target)
    return target.read_bytes()


def _setup(tmp_path: Path, scenario):
    """A fresh copy of the scenario's old state (built once, then copied: a third of the time)."""
    root, template = tmp_path / "w", tmp_path / "template"
    if root.exists():
        shutil.rmtree(root)
    if not template.exists():
        template.mkdir()
        SCENARIOS[scenario](template, "", old=True)
    shutil.copytree(template, root, symlinks=True)
    target = SCENARIOS[scenario](root, "", old=True, build=False)
    return root, target


def _plan(tmp_path: Path, scenario, monkeypatch) -> tuple[list[str], object, object]:
    """The calls a clean run makes, and the old and new contents."""
    root, target = _setup(tmp_path, scenario)
    old = _content(target)
    _, op = SCENARIOS[scenario](root, "new", old=False)
    with monkeypatch.context() as m:
        inj = Injector(root)
        inj.install(m)
        op()
    new = _content(target)
    assert new != old and new is not None
    return inj.calls, old, new


def _run_with_fault(tmp_path, scenario, monkeypatch, at, kind, when) -> tuple[Path, Path, object]:
    root, target = _setup(tmp_path, scenario)
    _, op = SCENARIOS[scenario](root, "new", old=False)
    if kind == "kill":
        pid = os.fork()
        if pid == 0:  # the child dies at the chosen call, as SIGKILL would leave it
            try:
                with monkeypatch.context() as m:
                    Injector(root, at, kind, when).install(m)
                    op()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        return root, target, None
    with monkeypatch.context() as m:
        Injector(root, at, kind, when).install(m)
        try:
            op()
            raised = None
        except (KeyboardInterrupt, OSError, Exception) as e:  # noqa: B014 - what the CLI turns into one line
            raised = e
    return root, target, raised


HEAVY_SCENARIOS = {"android bundle"}  # ~60 calls x 6 faults x 3 runs of the command: about 50 s on 2 cores

FAULTS = [("interrupt", "before"), ("interrupt", "after"), ("eio", "before"), ("enospc", "before"),
          ("kill", "before"), ("kill", "after")]


@pytest.mark.parametrize("scenario", [pytest.param(s, marks=[pytest.mark.heavy] if s in HEAVY_SCENARIOS else [])
                                      for s in SCENARIOS])
def test_every_step_of_every_replace_leaves_the_old_or_the_new_state_whole(scenario, tmp_path, monkeypatch):
    calls, old, new = _plan(tmp_path, scenario, monkeypatch)
    assert calls, "the operation made no filesystem call under its folder"
    broken = []
    for at, call in enumerate(calls):
        for kind, when in FAULTS:
            root, target, raised = _run_with_fault(tmp_path, scenario, monkeypatch, at, kind, when)
            label = f"{kind} {when} call {at} {call}"
            if kind != "kill":
                state = _content(target)
                if state not in (old, new):
                    broken.append(f"{label}: {target.name} is neither the old nor the new one")
                    continue
                left = strays(target.parent, target)
                if state == old and left:  # not only whole: nothing beside it for the user to find
                    broken.append(f"{label}: the old state is back but {left} was left beside it")
            # the next run: its recovery, then the same operation succeeding, nothing stray after it
            _, op = SCENARIOS[scenario](root, "new", old=False)
            try:
                from pocketbert.replace import recover_all

                recover_all(target.parent, log=lambda m: None)
            except ImportError:  # the code under test has no journal
                pass
            state = _content(target)
            if state not in (old, new):
                broken.append(f"{label}: after the next run's recovery, {target.name} is neither old nor new")
                continue
            try:
                op()
            except Exception as e:  # noqa: BLE001
                broken.append(f"{label}: the next run failed ({type(e).__name__}: {e})")
                continue
            if _content(target) != new:
                broken.append(f"{label}: the next run did not write the new state")
            left = strays(target.parent, target)
            if left:
                broken.append(f"{label}: the next run left {left}")
    assert not broken, f"{len(broken)} of {len(calls) * len(FAULTS)} faults broke {scenario}:\n" + "\n".join(broken[:20])
