"""SSH device: run the benchmark worker on an ARM board (Raspberry Pi, Jetson, Graviton...).

    ssh://[user@]host[:port][?python=PATH&key=PATH&known_hosts=PATH&tmp=DIR&emulated=1]

Uses the system `ssh` (OpenSSH): your ~/.ssh/config, agent and keys apply as for `ssh host`.
BatchMode (never a password prompt), one ControlMaster connection per device (each step is a
multiplexed session: a run costs a few round trips, not a handshake each), host keys
`StrictHostKeyChecking=accept-new` (a new board is learnt on first use, a changed key is refused).
Query options (URL-encode odd characters, e.g. %20 for a space):
  python       the board's Python (default `python3` on its PATH; `~/venv/bin/python3` works)
  key          an identity file (default: env POCKETBERT_SSH_KEY, else ssh's own config/agent)
  known_hosts  a known_hosts file of your own (default: ssh's ~/.ssh/known_hosts)
  tmp          folder for the per-device temp folder on the board (default: $TMPDIR or /tmp)
  emulated     1: label the records emulated (auto-detected for qemu-user: the shell's `uname -m`
               differs from the board Python's machine)

Per device, a temp folder made with `mktemp -d` on the board holds the runner payload (a zip of
our pure-Python worker code, run as `PYTHONPATH=payload.zip python3 -m bench.worker`; nothing is
installed on the board) and the bundles, each sent once (by content hash); each run gets its own
subfolder (spec with its items, result) removed after the run. `close()` removes the whole folder.
A run is watched from the board side: when our ssh goes away (timeout, Ctrl-C, a dropped
connection) the worker's stdin-watchdog stops it (SIGINT, then SIGKILL), so nothing keeps running.
Every remote path is passed through shlex.quote; file names never reach a shell unquoted.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from bench.devices import register_device
from bench.devices.board import (CLEAN_SH, COLLECT_SH, PROBE_SH, RUN_SH, STATE_SH, STOP_SH, WORKER_REQUIRES, board_info, parts, probe_py,
                                 install_hint, python_problem, read_probe, sh)
from bench.devices.payload import build_payload
from bench.devices.remote import SentOnce, last_line, parse_state, throttle_warnings
from bench.devices.ssh_transport import STOP_GRACE_S, SshConnection, SshError, parse_url
from pocketbert.backends import get_runtime
from pocketbert.common import UsageError
from pocketbert.contracts import WorkerResult, WorkerSpec


class SshDevice:
    """A board reached over SSH (see the module doc)."""

    def __init__(self, url: str, log: Callable[[str], None] | None = None):
        self.target = parse_url(url)
        self.name = self.target.url
        if shutil.which("ssh") is None:
            raise UsageError(f"{self.name}: an ssh:// device needs the OpenSSH client (`ssh`) on PATH "
                             "(Debian/Ubuntu: apt install openssh-client)")
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.conn = SshConnection(self.target)
        self._session: str | None = None  # the temp folder on the board
        self._sent: SentOnce | None = None  # the runner zip and bundles there, each sent once
        self._runs = 0
        self._probe: dict[str, Any] | None = None
        self._info: dict[str, Any] | None = None
        atexit.register(self.close)

    def _ensure_session(self) -> str:
        self.conn.connect()
        if self._session is None:
            base = self.target.tmp
            script = 'd=${1:-${TMPDIR:-/tmp}}; mkdir -p -- "$d" && mktemp -d "$d/pocketbert.XXXXXX"'
            out = self.conn.check(self.conn.run(sh(script, base or ""), what="making a temp folder"),
                                  "making a temp folder")
            self._session = out.strip().splitlines()[-1]
        return self._session

    # ------------------------------------------------------------------ identity and runtimes
    def _probe_board(self) -> dict[str, Any]:
        if self._probe is None:
            self.conn.connect()
            proc = self.conn.run(sh(PROBE_SH, self.target.python, probe_py()), what="probing the board")
            self._probe = read_probe(self.conn.check(proc, "probing the board"))
        return self._probe

    def _python_problem(self) -> str:
        """'' when the board's Python can run the worker, else why not (one line)."""
        return python_problem(self._probe_board(), self.target.python, self.name)

    def available(self, runtime: str) -> tuple[bool, str]:
        """Whether `runtime` can run on the board, else one line saying how to install it there."""
        backend = get_runtime(runtime)
        if backend.only_on:
            return False, f"{runtime} runs on {backend.only_on} only, not on {self.name}"
        problem = self._python_problem()
        if problem:
            return False, problem
        need = backend.requires
        if not need:
            return False, f"{runtime} does not say which Python modules it needs: it cannot run on an SSH device"
        mods = self._probe_board()["python"]["modules"]
        py = self.target.python
        lacking = [m for m in WORKER_REQUIRES if not mods.get(m)]  # the worker's own: one line says all of it
        worker = f"{py} -m pip install {' '.join(lacking)} (the worker's own: its spec and result, CPU and memory accounting)" if lacking else ""
        missing = [m for m in need if not mods.get(m)]
        if missing:
            return False, (f"{', '.join(missing + lacking)} not installed on {self.name} ({py}): "
                           + install_hint(runtime, py) + (f"; and {worker}" if worker else ""))
        if lacking:
            return False, f"{', '.join(lacking)} not installed on {self.name}: install it there: {worker}"
        return True, ""

    def info(self) -> dict[str, Any]:
        """Who the board is (bench.devices.board.board_info)."""
        if self._info is None:
            self._info = board_info(self._probe_board(), self.name, self.target.host, self.target.emulated)
        return dict(self._info)

    def state(self) -> dict[str, Any]:
        """Governor, frequencies, temperatures, throttle flags now."""
        return parse_state(self.conn.shell(STATE_SH, check=False)[1])

    # ------------------------------------------------------------------ one worker run
    def run_worker(self, spec: WorkerSpec, timeout_s: float | None = None) -> WorkerResult:
        """Copy payload, bundle and spec (its items in it) over, run the worker there, pull its result back.

        The board's WorkerResult (with `device_state`: before/after and throttle warnings), or the error.
        Ctrl-C stops the remote worker, removes the run folder and re-raises.
        """
        collected = False
        try:
            problem = self._python_problem()
            if problem:
                return WorkerResult(error=problem)
            session = self._ensure_session()
            payload = self._send_payload(session)
            self._runs += 1
            run_dir = f"{session}/run.{self._runs:04d}"  # the session folder is ours alone (mktemp, 0700)
            if spec.model_path:  # the spec as the board's worker reads it: the board's path of the model
                spec = spec.replace(model_path=self._send_bundle(Path(spec.model_path), session))
            self.conn.put({"spec.json": spec.to_json().encode()}, run_dir)
        except (SshError, UsageError) as e:
            return WorkerResult(error=str(e))
        try:
            rc, err = self._run_remote(run_dir, payload, spec.threads, timeout_s)
            if rc == "timeout":
                return WorkerResult(error=f"timed out after {timeout_s:.0f} s on {self.name}; the worker there was stopped")
            try:
                out = self.conn.check(self.conn.run(sh(COLLECT_SH, run_dir), what="pulling the result"), "pulling the result")
            except SshError:
                if rc == 255:  # the board is gone: say so (its watchdog has stopped the worker)
                    return WorkerResult(error=_exit_reason(rc, err, self.name))
                raise
            collected = True
            found = parts(out)
            if not found.get("result", "").strip():
                return WorkerResult(error=_exit_reason(rc, err, self.name))
            result = WorkerResult.from_json(found["result"], f"{self.name}: the worker's result")
            if result.error:
                return result
            before, after = parse_state(found.get("before", "")), parse_state(found.get("after", ""))
            warnings = throttle_warnings(before, after)
            for w in warnings:
                self.log(f"warning: {self.name}: {w}")
            result.device_state = {"before": before, "after": after, "warnings": warnings}
            return result
        except (SshError, UsageError) as e:  # UsageError: a result that is not a worker result
            return WorkerResult(error=str(e))
        finally:
            if not collected:
                self._remove(run_dir)

    def _send_payload(self, session: str) -> str:
        """The runner zip on the board (sent once per content); its path there."""
        return f"{self._sent_once(session).folder({'payload.zip': build_payload()[0]}, 'runner')}/payload.zip"

    def _send_bundle(self, model_path: Path, session: str) -> str:
        """The bundle folder holding `model_path`, sent once per content; its model's path there."""
        files = {p.name: p for p in sorted(model_path.parent.iterdir()) if p.is_file()}
        return f"{self._sent_once(session).folder(files, 'bundle')}/{model_path.name}"

    def _sent_once(self, session: str) -> SentOnce:
        if self._sent is None or self._sent.root != session:
            self._sent = SentOnce(self.conn, session)
        return self._sent

    def _run_remote(self, run_dir: str, payload: str, threads: Any, timeout_s: float | None):
        """Run RUN_SH; (exit code | 'timeout', stderr tail). Stops the remote worker on any way out."""
        cmd = self.conn.ssh_cmd() + self.conn.dest() + [sh(RUN_SH, run_dir, self.target.python, payload, threads or "", STOP_GRACE_S)]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._stop(proc, run_dir)
                return "timeout", ""
            except KeyboardInterrupt:
                self._stop(proc, run_dir)
                raise
            finally:
                if proc.stdin and not proc.stdin.closed:
                    proc.stdin.close()
            err.seek(0)
            return proc.returncode, err.read().decode(errors="replace")

    def _stop(self, proc: subprocess.Popen, run_dir: str) -> None:
        """Close our end (the board's watchdog stops the worker), then make sure of it."""
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
        try:
            proc.wait(timeout=STOP_GRACE_S + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            self.conn.run(sh(STOP_SH, f"{run_dir}/pid", f"{run_dir}/pgid"), timeout=30, what="stopping the worker")
        except SshError:
            pass

    def _remove(self, run_dir: str) -> None:
        """Remove a run folder, first killing whatever still runs from it (the run is over here)."""
        try:
            self.conn.run(sh(STOP_SH + 'rm -rf -- "${1%/pid}"\n', f"{run_dir}/pid", f"{run_dir}/pgid"),
                      timeout=30, what="removing the run folder")
        except SshError:
            pass  # unreachable: close() tries again

    def close(self) -> None:
        """Stop anything left, remove the temp folder on the board, close the connection."""
        if self._session is not None:
            try:
                self.conn.connect()
                self.conn.run(sh(CLEAN_SH, self._session), timeout=30, what="cleaning up")
                self._session = None
            except (SshError, UsageError, subprocess.SubprocessError) as e:
                self.log(f"warning: could not clean up {self._session} on {self.name}: {e}")
                self._session = None
            self._sent = None
        self.conn.close(self.log)

    def __enter__(self) -> "SshDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@register_device("ssh")
def open_ssh(url: str) -> SshDevice:
    return SshDevice(url)


def _exit_reason(rc: Any, stderr: str, name: str) -> str:
    if rc == 255:
        return (f"lost the connection to {name} during the run ({last_line(stderr) or 'ssh exited 255'}); "
                "the board's watchdog stops the worker when the connection drops")
    if rc in (130, 143, -15):
        return f"the worker on {name} was stopped"
    if rc in (137, -9):
        return f"the worker on {name} was killed (out of memory?)"
    return f"the worker on {name} exited with code {rc} and no result: {last_line(stderr) or 'no message'}"

