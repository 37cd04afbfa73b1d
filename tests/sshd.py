"""A real OpenSSH server on 127.0.0.1 for the SSH device tests (Debian's openssh-server).

`start_sshd(folder)` generates a host key and a client key into `folder`, writes a config of its
own (a free non-22 port, key login only, root allowed with a key since CI runs as root) and
starts `/usr/sbin/sshd -D` on it. Not root: sshd runs as the current user, who alone can log in
(sshd warns but works without privilege separation); `skip_reason()` says why it cannot run here.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def skip_reason() -> str:
    """'' when a test sshd can be started here, else why not."""
    if not Path(SSHD).is_file():
        return "openssh-server not installed (bash scripts/install_system_tools.sh)"
    for tool in ("ssh", "ssh-keygen"):
        if not shutil.which(tool):
            return f"{tool} not found (openssh-client)"
    return ""


@dataclass
class Sshd:
    proc: subprocess.Popen
    port: int
    user: str
    key: Path
    known_hosts: Path
    folder: Path

    def url(self, **query: str) -> str:
        from urllib.parse import urlencode

        q = {"key": str(self.key), "known_hosts": str(self.known_hosts), **query}
        return f"ssh://{self.user}@127.0.0.1:{self.port}?{urlencode(q)}"

    def connection_pids(self) -> list[int]:
        """The per-connection sshd processes (every sshd below the listener): killing them drops
        every connection at once, as a board losing power or network would."""
        children: dict[int, list[int]] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d.name))
        out, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                try:
                    comm = Path(f"/proc/{child}/comm").read_text().strip()
                except OSError:
                    continue
                if comm.startswith("sshd"):
                    out.append(child)
                    todo.append(child)
        return out

    def go_offline(self) -> int:
        """The board vanishes: the listener first (no new connection), then every open one."""
        pids = self.connection_pids()
        self.proc.kill()
        self.proc.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    def start(self) -> None:
        """(Re)start the listener on the same port, keys and config."""
        log = open(self.folder / "sshd.log", "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.folder / 'sshd.log').read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("sshd did not listen within 10 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.go_offline()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sshd(folder: Path) -> Sshd:
    folder.mkdir(parents=True, exist_ok=True)
    host_key, key = folder / "host_ed25519", folder / "client_ed25519"
    for k in (host_key, key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
    (folder / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
    root = os.geteuid() == 0
    if root:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes no", "LogLevel ERROR", "MaxSessions 32", "MaxStartups 32",
    ]) + "\n")
    server = Sshd(None, port, getpass.getuser(), key, folder / "known_hosts", folder)  # type: ignore[arg-type]
    server.start()
    return server
