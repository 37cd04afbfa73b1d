"""Issue 20, concurrency: two runs aimed at one export --out or one bench run folder at the same time
are never merged; the second is refused in one line naming the first's pid. An existing --run-id is
refused unless --overwrite says the user means to add to it. Real processes, no mocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pocketbert.claims import claim, claim_run_folder, holder_pid, lock_path
from pocketbert.cli import main
from pocketbert.common import UsageError

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}


def _cli(*argv: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pocketbert.cli", *argv], cwd=cwd, env=_env(cwd),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(pred, proc: subprocess.Popen, timeout_s: float = 240.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"ended early: rc {proc.returncode}, {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_two_exports_at_once_on_one_out_one_wins_the_other_is_refused_naming_it(tmp_path):
    argv = ["export", "--model", "bert-tiny", "--target", "onnx", "--seq-len", "16", "--parity-samples", "2",
            "--out", "o"]
    procs = [_cli(*argv, cwd=tmp_path), _cli(*argv, cwd=tmp_path)]
    errs = []
    try:
        for p in procs:
            errs.append(p.communicate(timeout=600)[1])
    finally:
        for p in procs:
            p.kill()
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], (codes, errs)
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    lines = errs[loser].strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("pocketbert export: error:") and f"(pid {procs[winner].pid})" in lines[0], lines
    assert "--out" in lines[0]
    out = tmp_path / "o"
    assert sorted(p.name for p in out.iterdir()) == [".pocketbert", "onnx-fp32"]  # the winner's, whole
    assert json.loads((out / "onnx-fp32" / "manifest.json").read_text())["target"] == "onnx"
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".old-")) or "lock" in p.name]
    assert left == []  # no staging folder, no lock file


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_two_benches_at_once_on_one_run_id_the_second_is_refused_naming_the_first(tmp_path):
    argv = ["bench", "--model", "bert-tiny", "--runtime", "pytorch", "--precision", "fp32", "--shape", "dynamic",
            "--seq-len", "16", "--limit", "1", "--warmup", "0", "--quiet", "--no-report", "--out", "res",
            "--run-id", "r"]
    first = _cli(*argv, cwd=tmp_path)
    try:
        _wait_for(lambda: holder_pid(tmp_path / "res" / "r") == first.pid, first)
        second = _cli(*argv, cwd=tmp_path)
        _, err2 = second.communicate(timeout=300)
        _, err1 = first.communicate(timeout=600)
    finally:
        first.kill()
    lines = err2.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, lines
    assert f"(pid {first.pid})" in lines[0] and "--run-id" in lines[0], lines
    assert first.returncode == 0, err1
    run = tmp_path / "res" / "r"
    [rec] = [json.loads(p.read_text()) for p in run.glob("*.json")]
    assert rec["status"] == "ok"
    assert (run / "bench.log").is_file()  # the first run's log (the second never opened it)
    assert not lock_path(run).exists()
    # after it: the run id exists, so a new run is refused unless --overwrite says "add to it"
    third = _cli(*argv, cwd=tmp_path)
    _, err3 = third.communicate(timeout=300)
    assert third.returncode == 2 and "already holds an earlier run" in err3 and "--overwrite" in err3, err3
    assert [p.name for p in run.glob("*.json")] == [next(run.glob("*.json")).name]


def test_claim_is_reentrant_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "a" / "b" / "out"
    with claim(target):
        assert holder_pid(target) == os.getpid()
        with claim(target):  # the same process: nested use (export CLI, then its atomic folder)
            pass
        assert lock_path(target).exists()
    assert not lock_path(target).exists()
    assert not (tmp_path / "a").exists()  # folders made only for the lock are removed again


def test_a_killed_holder_does_not_block_the_next_run(tmp_path):
    target = tmp_path / "out"
    code = ("import os, signal, sys, pathlib\nfrom pocketbert.claims import claim\n"
            "with claim(pathlib.Path(sys.argv[1])):\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    r = subprocess.run([sys.executable, "-c", code, str(target)], env=_env(tmp_path), timeout=120)
    assert r.returncode == -signal.SIGKILL and lock_path(target).exists()  # the file stays; its lock died
    with claim(target):
        assert holder_pid(target) == os.getpid()


def test_a_live_holder_refuses_in_one_line_with_its_pid(tmp_path):
    target = tmp_path / "out"
    code = ("import sys, time, pathlib\nfrom pocketbert.claims import claim\n"
            "with claim(pathlib.Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(target)], env=_env(tmp_path),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError) as e, claim(target, "--out"):
            pass
        assert f"(pid {holder.pid})" in str(e.value) and "\n" not in str(e.value)
    finally:
        holder.kill()
        holder.wait()


def test_an_existing_run_folder_needs_overwrite(tmp_path):
    run = tmp_path / "res" / "r"
    run.mkdir(parents=True)
    with claim_run_folder(run):  # empty: fine
        pass
    (run / "old-record.json").write_text("{}")
    with pytest.raises(UsageError, match="already holds an earlier run"), claim_run_folder(run):
        pass
    with claim_run_folder(run, overwrite=True):
        pass
    assert (run / "old-record.json").read_text() == "{}"


def test_bench_run_id_that_exists_is_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "res" / "r"
    run.mkdir(parents=True)
    (run / "kept.json").write_text("{}")
    rc = main(["bench", "--model", "bert-tiny", "--runtime", "pytorch", "--out", str(tmp_path / "res"),
               "--run-id", "r", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--run-id r" in err[0] and "--overwrite" in err[0], err
    assert sorted(p.name for p in run.iterdir()) == ["kept.json"]


def test_a_distill_on_an_out_another_run_holds_is_refused_naming_it(tmp_path, capsys, monkeypatch):
    """Two distillations (or a --resume beside a live run) on one --out would interleave their
    checkpoints: the second is refused in one line naming the first's pid, and touches nothing. Under
    torchrun the ranks of one run share the folder: only rank 0 holds it."""
    out = tmp_path / "student"
    code = ("import sys, time, pathlib\nfrom pocketbert.claims import claim\n"
            "with claim(pathlib.Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], env=_env(tmp_path), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for argv in (["distill", "pretrain", "--teacher", "bert-tiny", "--out", str(out)],
                     ["distill", "--out", str(out), "--resume"]):
            rc = main(argv)
            err = capsys.readouterr().err.strip().splitlines()
            assert rc == 2 and len(err) == 1 and f"(pid {holder.pid})" in err[0] and "--out" in err[0], err
        assert not out.exists()
        monkeypatch.setenv("RANK", "1")  # a rank of the holder's own torchrun job: not refused by the claim
        rc = main(["distill", "pretrain", "--teacher", "bert-tiny", "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and "--data are required" in err[0], err
    finally:
        holder.kill()
        holder.wait()
