"""Issue 20: the console is pocketbert's. One real run per command (tiny presets), stdout and stderr
read line by line: a line a library wrote (warnings, C++ logging, tracebacks, stray progress bars)
fails the test. A new command fails `test_every_command_has_a_console_case` until it has one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pocketbert.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parent.parent
# What library output looks like: Python warnings, glog/absl/torch logging prefixes (W1203 11:43:04...),
# cpuinfo and other C++ lines, tracebacks, "Failed to load" from optional kernels, tqdm bars.
FOREIGN = re.compile(r"Warning\b|warnings\.warn|^[WIEF]\d{4} \d\d:|cpuinfo|^\[[WIEF] |Traceback|^\s+File \"|"
                     r"site-packages|Failed to load|it/s\]|\d+%\|")
NOT_COVERED = {"android": "needs the Android app tree and a device; its console is tests/test_android_cli.py's"}


def _run(tmp_path: Path, *argv: str) -> tuple[int, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "pocketbert.cli", *argv], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=900)
    lines = (r.stdout + "\n" + r.stderr).replace("\r", "\n").splitlines()
    return r.returncode, [x for x in lines if x.strip()]


def _foreign(lines: list[str]) -> list[str]:
    return [x for x in lines if FOREIGN.search(x)]


def test_every_command_has_a_console_case():
    assert set(SUBCOMMANDS) == set(COMMANDS) | set(NOT_COVERED)


def test_the_detector_sees_library_lines():
    assert _foreign(["W1203 11:43:04.687000 25355 torch/utils/_pytree.py:630] <enum 'X'> is an Enum",
                     "Failed to load /x/torchao/_C_mxfp8.so: Could not load this library",
                     "/x/y.py:3: UserWarning: something", "Writing model shards: 100%|██████████| 1/1 [00:00<00:00, 282.03it/s]",
                     "[W cpuinfo.c:123] Error in cpuinfo: failed to parse"]) != []
    assert _foreign(["wrote 1 bundle(s) to o", "| onnx-fp32 | 0.8 | passed |", "pocketbert bench: error: x"]) == []


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console")


def _export(work):
    return _run(work, "export", "--model", "bert-tiny", "--target", "onnx", "--seq-len", "16", "--parity-samples", "2",
                "--out", "b")


def _bench(work):
    return _run(work, "bench", "--bundle", "b", "--shape", "dynamic", "--seq-len", "16", "--limit", "2", "--warmup", "0",
                "--quiet", "--out", "res", "--run-id", "r")


def _report(work):
    return _run(work, "report", "res/r", "--out", "rep")


def _distill(work):
    (work / "c.txt").write_text("".join(f"the model number {i} is a small student of the teacher\n" for i in range(40)))
    return _run(work, "distill", "--teacher", "bert-tiny", "--data", "c.txt", "--out", "d", "--batch-size", "4",
                "--max-steps", "2", "--no-progress")


COMMANDS = {"export": _export, "bench": _bench, "report": _report, "distill": _distill}


@pytest.mark.parametrize("command", list(COMMANDS))  # in order: bench times export's bundle, report reads bench's
def test_a_command_prints_only_its_own_lines(command, work):
    rc, lines = COMMANDS[command](work)
    assert rc == 0, lines
    assert _foreign(lines) == [], lines


def test_an_executorch_export_keeps_the_runtimes_own_lines_in_its_log(tmp_path):
    # ExecuTorch's runtime (the parity check loads the .pte) writes cpuinfo/threadpool lines from C++
    # straight to file descriptor 2: they belong in OUT/export.log, not on the user's console.
    rc, lines = _run(tmp_path, "export", "--model", "bert-tiny", "--target", "executorch", "--precision", "fp32",
                     "--seq-len", "16", "--parity-samples", "2", "--out", "b")
    assert rc == 0, lines
    assert _foreign(lines) == [], lines
    assert any("wrote 1 bundle(s)" in x for x in lines), lines
    log = tmp_path / "b" / "export.log"
    if log.exists():  # what the runtime said is kept, under a header
        assert log.read_text().startswith("===== pocketbert export: runtime output")
