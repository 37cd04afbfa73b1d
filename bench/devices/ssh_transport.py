"""The ssh transport: a board's URL read, and one OpenSSH ControlMaster connection to it that runs
shell commands and puts folders there (bench.devices.remote.Transport)."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from bench.devices.board import sh
from bench.devices.remote import RemoteError, last_line
from pocketbert.common import UsageError

QUERY = {
    "python": "the board's Python (default python3)",
    "key": "identity file (default: $POCKETBERT_SSH_KEY or ssh's own)",
    "known_hosts": "known_hosts file (default: ssh's)",
    "tmp": "parent folder of the temp folder on the board (default $TMPDIR or /tmp)",
    "emulated": "1 to label the records emulated (qemu-user is detected)",
}
KEY_ENV = "POCKETBERT_SSH_KEY"
CONNECT_TIMEOUT_S = 15  # a board that does not answer within this is reported unreachable
STEP_TIMEOUT_S = 600  # copying a bundle (hundreds of MB on a slow link) or probing under emulation
STOP_GRACE_S = 10  # after asking the remote worker to stop, how long before it is killed


@dataclasses.dataclass
class SshTarget:
    url: str
    user: str | None
    host: str
    port: int | None
    python: str = "python3"
    key: str | None = None
    known_hosts: str | None = None
    tmp: str | None = None
    emulated: bool | None = None  # None: detect


def parse_url(url: str) -> SshTarget:
    """ssh://[user@]host[:port][?python=...&key=...] -> SshTarget; bad input is a UsageError."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise UsageError(f"bad SSH device '{url}': use ssh://[user@]host[:port][?python=PATH&key=PATH]")
    if parts.path not in ("", "/"):
        raise UsageError(f"bad SSH device '{url}': no path after the host (options go in ?python=...&key=...)")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"bad SSH device '{url}': the port must be a number") from None
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - set(QUERY))
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)} in '{url}'; valid: {', '.join(QUERY)}")
    q = {k: v[-1] for k, v in query.items()}
    key = q.get("key") or os.environ.get(KEY_ENV) or None
    if key and not Path(key).expanduser().is_file():
        raise UsageError(f"SSH key {key} not found")
    emulated = None
    if "emulated" in q:
        emulated = q["emulated"].lower() in ("1", "true", "yes")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    clean = f"ssh://{parts.username + '@' if parts.username else ''}{host}{f':{port}' if port else ''}"
    if q.get("python"):  # which interpreter ran is part of what was measured (e.g. an emulated one)
        clean += "?" + urlencode({"python": q["python"]}, safe="/~")
    return SshTarget(url=clean, user=parts.username, host=parts.hostname, port=port,
                     python=q.get("python") or "python3", key=str(Path(key).expanduser()) if key else None,
                     known_hosts=q.get("known_hosts"), tmp=q.get("tmp"), emulated=emulated)


class SshError(RemoteError):
    """An ssh step failed; str() is one line for the user."""


class SshConnection:
    """The transport of an ssh device (bench.devices.remote.Transport): one ControlMaster connection,
    each step a multiplexed session (module doc of bench/devices/ssh.py)."""

    def __init__(self, target: SshTarget):
        self.target, self.name = target, target.url
        self._ctl_dir: str | None = None

    def shell(self, command: str, timeout: float = STEP_TIMEOUT_S, check: bool = True) -> tuple[int, str]:
        """`command` in the board's sh; (status, stdout). check: a non-zero status raises SshError."""
        self.connect()
        proc = self.run(sh(command), timeout=timeout, what=_what(command))
        return proc.returncode, (self.check(proc, _what(command)) if check else proc.stdout.decode(errors="replace"))

    def put(self, files: dict[str, Path | bytes], remote_dir: str) -> None:
        """Make folder `remote_dir` hold `files` in one round trip: a tar stream (names travel inside the
        archive, never through a shell)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, src in files.items():
                data = src if isinstance(src, bytes) else Path(src).read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        what = f"copying {', '.join(files)}"
        script = 'mkdir -p -- "$1" && tar -xf - -C "$1" || { rc=$?; rm -rf -- "$1"; exit "$rc"; }'  # all or nothing
        self.check(self.run(sh(script, remote_dir), input=buf.getvalue(), what=what),
                    what)

    def ssh_cmd(self, *, master: bool = False) -> list[str]:
        t = self.target
        if self._ctl_dir is None:
            self._ctl_dir = tempfile.mkdtemp(prefix="pb-ssh-")  # short: unix socket paths are <108 bytes
        opts = {"BatchMode": "yes", "ConnectTimeout": str(CONNECT_TIMEOUT_S), "ServerAliveInterval": "5",
                "ServerAliveCountMax": "3", "StrictHostKeyChecking": "accept-new",
                "ControlPath": f"{self._ctl_dir}/%C", "ControlMaster": "yes" if master else "no",
                "ControlPersist": "300" if master else "no", "LogLevel": "ERROR"}
        if t.known_hosts:
            opts["UserKnownHostsFile"] = str(Path(t.known_hosts).expanduser())
        cmd = ["ssh"]
        for k, v in opts.items():
            cmd += ["-o", f"{k}={v}"]
        if t.key:
            cmd += ["-i", t.key, "-o", "IdentitiesOnly=yes"]
        if t.port:
            cmd += ["-p", str(t.port)]
        return cmd

    def dest(self) -> list[str]:
        t = self.target
        return ["--", f"{t.user}@{t.host}" if t.user else t.host]

    def connect(self) -> None:
        """Open (or reuse) the ControlMaster connection; an unreachable board is a UsageError."""
        check = subprocess.run(self.ssh_cmd() + ["-O", "check"] + self.dest(),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=CONNECT_TIMEOUT_S)
        if check.returncode == 0:
            return
        # stderr to a file, not a pipe: the backgrounded master would hold a pipe open forever.
        with tempfile.TemporaryFile() as err:
            try:
                rc = subprocess.run(self.ssh_cmd(master=True) + ["-N", "-f"] + self.dest(),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    timeout=CONNECT_TIMEOUT_S * 2).returncode
            except subprocess.TimeoutExpired:
                rc, msg = 255, f"no answer in {CONNECT_TIMEOUT_S * 2} s"
            else:
                err.seek(0)
                msg = last_line(err.read().decode(errors="replace"))
        if rc != 0:
            raise UsageError(f"cannot reach {self.name}: {msg or f'ssh exited {rc}'} "
                             "(check `ssh` to it works without a password: BatchMode, key in the agent or ?key=)")

    def run(self, command: str, *, input: bytes | None = None, stdin=None, timeout: float = STEP_TIMEOUT_S,
             what: str = "") -> subprocess.CompletedProcess:
        """One remote command over the master connection; ssh's own failure (255) raises SshError."""
        try:
            proc = subprocess.run(self.ssh_cmd() + self.dest() + [command], input=input, stdin=stdin,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SshError(f"{what or 'ssh step'} on {self.name}: no answer in {timeout:.0f} s") from None
        if proc.returncode == 255:
            raise SshError(f"{what or 'ssh step'} on {self.name}: connection failed: "
                           f"{last_line(proc.stderr.decode(errors='replace')) or 'ssh exited 255'}")
        return proc

    def check(self, proc: subprocess.CompletedProcess, what: str) -> str:
        if proc.returncode != 0:
            text = proc.stderr.decode(errors="replace")
            err = last_line(text)
            full = [ln for ln in text.splitlines()  # tar says a short write as "Wrote only N of M bytes"
                    if "No space left" in ln or "quota exceeded" in ln.lower() or "Wrote only" in ln]
            if full:
                err = full[0].strip()[:300]
                raise SshError(f"{what} on {self.name}: the board's disk is full ({err}); free space there "
                               "or put the temp folder elsewhere with ?tmp=DIR")
            raise SshError(f"{what} on {self.name} failed: {err or f'exit {proc.returncode}'}")
        return proc.stdout.decode(errors="replace")

    def close(self, log: Callable[[str], None]) -> None:
        """Close the master connection and remove its socket folder."""
        if self._ctl_dir is not None:
            try:
                subprocess.run(self.ssh_cmd() + ["-O", "exit"] + self.dest(),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
            except (OSError, subprocess.SubprocessError) as e:  # ssh gone from PATH, or hung
                log(f"warning: could not close the ssh connection to {self.name}: {e}")
            finally:
                shutil.rmtree(self._ctl_dir, ignore_errors=True)
                self._ctl_dir = None


def _what(command: str) -> str:
    return f"`{command if len(command) < 60 else command[:57] + '...'}`"
