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
subfolder (spec, items, result) removed after the run. `close()` removes the whole folder.
A run is watched from the board side: when our ssh goes away (timeout, Ctrl-C, a dropped
connection) the worker's stdin-watchdog stops it (SIGINT, then SIGKILL), so nothing keeps running.
Every remote path is passed through shlex.quote; file names never reach a shell unquoted.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from bench.devices import register_device
from bench.devices.payload import build_payload
from pocketbert.backends import all_runtimes, get_runtime
from pocketbert.common import UsageError
from pocketbert.contracts import WorkerResult
from pocketbert.machine import heat_warnings, parse_cpuinfo, soc_temperature

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
MIN_PYTHON = (3, 9)

def install_hint(runtime: str, python: str) -> str:
    """How to get `runtime` onto the board, from its backend (one line)."""
    backend = all_runtimes().get(runtime)
    hint = backend.install_hint.format(python=python) if backend and backend.install_hint else ""
    return f"install it there: {hint}" if hint.startswith(python) else hint


# ------------------------------------------------------------------ remote scripts (constant text)
# Each runs as `sh -c SCRIPT sh ARG...`; arguments arrive as positional parameters, never as code.

_PY_FIX = 'case $py in "~/"*) py="$HOME/${py#\\~/}";; esac\n'

PROBE_PY = r"""
import json, platform, sys
out = {"version": platform.python_version(), "machine": platform.machine(), "executable": sys.executable}
try:
    import importlib.util as u
    out["modules"] = {m: u.find_spec(m) is not None for m in %s}
except Exception as e:
    out["modules"] = {}
try:
    from importlib import metadata
    out["versions"] = {}
    for m in %s:
        try:
            out["versions"][m] = metadata.version(m)
        except Exception:
            pass
except Exception:
    pass
try:
    out["os_release"] = platform.freedesktop_os_release()
except Exception:
    pass
print(json.dumps(out))
"""


def _probe_py() -> str:
    """The probe, asking for every module a registered backend needs (and their versions)."""
    mods = repr(sorted({m for b in all_runtimes().values() for m in b.requires}))
    return PROBE_PY % (mods, mods)

STATE_SH = r"""
echo @@governor; for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor; do [ -r "$f" ] && echo "$f $(cat "$f")"; done
echo @@cur_khz; for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq; do [ -r "$f" ] && echo "$f $(cat "$f")"; done
echo @@cap_khz; for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_max_freq; do [ -r "$f" ] && echo "$f $(cat "$f")"; done
echo @@thermal; for z in /sys/class/thermal/thermal_zone*; do [ -r "$z/temp" ] && echo "${z##*/} $(cat "$z/type" 2>/dev/null | tr ' ' _) $(cat "$z/temp")"; done
echo @@throttled; vcgencmd get_throttled 2>/dev/null
echo @@loadavg; cat /proc/loadavg 2>/dev/null
echo @@time; date -u +%Y-%m-%dT%H:%M:%SZ
"""

PROBE_SH = "py=$1\n" + _PY_FIX + r"""
echo @@uname; uname -m; uname -r
echo @@hostname; hostname 2>/dev/null || cat /etc/hostname
echo @@cpuinfo; cat /proc/cpuinfo 2>/dev/null
echo @@os_release; cat /etc/os-release 2>/dev/null
echo @@model; { tr -d '\000' < /proc/device-tree/model || cat /sys/class/dmi/id/product_name; } 2>/dev/null; echo
echo @@max_khz; for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do [ -r "$f" ] && echo "$f $(cat "$f")"; done
echo @@nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN
echo @@meminfo; grep MemTotal /proc/meminfo 2>/dev/null
echo @@disk; df -Pk "${TMPDIR:-/tmp}" 2>/dev/null | tail -1
""" + STATE_SH + r"""
echo @@python; "$py" -c "$2" 2>&1; echo "exit=$?"
"""

# One worker run. The worker reads no stdin (</dev/null); the watchdog holds our stdin (fd 3) and,
# at EOF (our ssh closed it, was killed, or the connection dropped), stops the worker: SIGTERM
# (not SIGINT: sh starts background jobs with SIGINT ignored), then SIGKILL after the grace time.
# The worker writes its result only on success, so a stopped worker leaves none.
RUN_SH = "run=$1 py=$2 payload=$3 threads=$4 grace=$5\n" + _PY_FIX + r"""
cd "$run" || exit 97
echo $$ > pgid
{
""" + STATE_SH + r"""
} > state.before 2>/dev/null
if [ -n "$threads" ]; then
  OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
  export OMP_NUM_THREADS MKL_NUM_THREADS OPENBLAS_NUM_THREADS
fi
exec 3<&0
PYTHONPATH=$payload "$py" -m bench.worker spec.json result.json </dev/null &
pid=$!
echo "$pid" > pid
(
  while read -r _ <&3; do :; done
  kill -TERM "$pid" 2>/dev/null
  i=0; while [ $i -lt "$grace" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; i=$((i+1)); done
  kill -KILL "$pid" 2>/dev/null
) &
wd=$!
wait "$pid"; rc=$?
kill "$wd" 2>/dev/null
exit "$rc"
"""

# After a run: the state before it, its result, the state now; then the run folder goes.
COLLECT_SH = r"""
cd "$1" || exit 1
echo @@@before; cat state.before 2>/dev/null
echo @@@result; cat result.json 2>/dev/null; echo
echo @@@after
""" + STATE_SH + r"""
cd / && rm -rf -- "$1"
"""

# Stop what still runs from run folders (pid files written by RUN_SH): the worker, then its group.
_KILL = r"""
for p in "$@"; do
  [ -r "$p" ] || continue
  n=$(cat "$p"); case $n in ''|*[!0-9]*) continue;; esac
  case $p in */pgid) kill -KILL -- "-$n" 2>/dev/null;; *) kill -KILL "$n" 2>/dev/null;; esac
done
"""
STOP_SH = _KILL  # args: RUN/pid RUN/pgid
CLEAN_SH = 'd=$1; set -- "$d"/run.*/pid "$d"/run.*/pgid\n' + _KILL + 'rm -rf -- "$d"\n'  # the whole temp folder


def _sh(script: str, *args: str) -> str:
    """A remote command line: `sh -c SCRIPT sh ARGS...`, every piece shell-quoted."""
    return "exec " + shlex.join(["sh", "-c", script, "sh", *map(str, args)])


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("@@"):
            cur = line[2:].strip()
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def _parts(text: str) -> dict[str, str]:
    """'@@@name' blocks of COLLECT_SH's output -> {name: text}."""
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("@@@"):
            cur = line[3:].strip()
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def _per_cpu(lines: list[str]) -> dict[str, str]:
    """'/sys/devices/system/cpu/cpu3/cpufreq/x VALUE' lines -> {'cpu3': 'VALUE'} (sorted by index)."""
    found = {}
    for line in lines:
        m = re.search(r"/(cpu\d+)/cpufreq/\S+\s+(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return dict(sorted(found.items(), key=lambda kv: int(kv[0][3:])))


def parse_state(sections: dict[str, list[str]]) -> dict[str, Any]:
    """Governor, frequencies, temperatures and throttle flags at one moment."""
    temps = {}
    for line in sections.get("thermal", []):
        parts = line.split()
        if len(parts) == 3 and re.fullmatch(r"-?\d+", parts[2]):
            name = parts[1] if parts[1] not in temps else f"{parts[1]}:{parts[0]}"
            milli = int(parts[2])
            temps[name] = round(milli / 1000 if abs(milli) > 200 else milli, 1)  # some zones report °C
    governors = _per_cpu(sections.get("governor", []))
    throttled = next((ln.split("=", 1)[1].strip() for ln in sections.get("throttled", []) if "=" in ln), None)
    load = (sections.get("loadavg") or [""])[0].split()
    return {"governor": ",".join(sorted(set(governors.values()))) or None,
            "cur_mhz": {k: int(v) // 1000 for k, v in _per_cpu(sections.get("cur_khz", [])).items() if v.isdigit()},
            "cap_mhz": {k: int(v) // 1000 for k, v in _per_cpu(sections.get("cap_khz", [])).items() if v.isdigit()},
            "temperature_c": temps, "rpi_throttled": throttled,
            "load_avg_1m": float(load[0]) if load else None,
            "time_utc": next(iter(sections.get("time", [])), "").strip() or None}


def throttle_warnings(before: dict, after: dict, max_mhz: dict[str, int]) -> list[str]:
    """Why the board may have slowed itself during the run (empty when no sign of it)."""
    out = []
    rb, ra = before.get("rpi_throttled"), after.get("rpi_throttled")
    if ra:
        try:
            bits_a, bits_b = int(ra, 16), int(rb or "0", 16)
            if bits_a & 0b1110 or (bits_a & ~bits_b) & (0b1110 << 16):  # capped/throttled/soft temp limit
                out.append(f"Raspberry Pi firmware reports throttling (get_throttled {rb} -> {ra})")
        except ValueError:
            pass
    for cpu, cap in after.get("cap_mhz", {}).items():
        if cpu in max_mhz and cap < max_mhz[cpu] and cap < before.get("cap_mhz", {}).get(cpu, max_mhz[cpu]):
            out.append(f"{cpu} frequency capped to {cap} MHz during the run (max {max_mhz[cpu]} MHz)")
            break
    out += heat_warnings(soc_temperature(before.get("temperature_c", {})),
                         soc_temperature(after.get("temperature_c", {})))
    if before.get("governor") != after.get("governor"):
        out.append(f"CPU governor changed during the run: {before.get('governor')} -> {after.get('governor')}")
    return out


def _os_release(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip().strip('"')
    return out


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


class SshError(RuntimeError):
    """An ssh step failed; str() is one line for the user."""


class SshDevice:
    """A board reached over SSH (see the module doc)."""

    def __init__(self, url: str, log: Callable[[str], None] | None = None):
        self.target = parse_url(url)
        self.name = self.target.url
        if shutil.which("ssh") is None:
            raise UsageError(f"{self.name}: an ssh:// device needs the OpenSSH client (`ssh`) on PATH "
                             "(Debian/Ubuntu: apt install openssh-client)")
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self._ctl_dir: str | None = None
        self._session: str | None = None  # the temp folder on the board
        self._payload: str | None = None  # its runner zip there
        self._bundles: dict[str, str] = {}  # content hash -> folder on the board
        self._runs = 0
        self._probe: dict[str, Any] | None = None
        self._info: dict[str, Any] | None = None
        atexit.register(self.close)

    # ------------------------------------------------------------------ transport
    def _ssh_cmd(self, *, master: bool = False) -> list[str]:
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

    def _dest(self) -> list[str]:
        t = self.target
        return ["--", f"{t.user}@{t.host}" if t.user else t.host]

    def _connect(self) -> None:
        """Open (or reuse) the ControlMaster connection; an unreachable board is a UsageError."""
        check = subprocess.run(self._ssh_cmd() + ["-O", "check"] + self._dest(),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=CONNECT_TIMEOUT_S)
        if check.returncode == 0:
            return
        # stderr to a file, not a pipe: the backgrounded master would hold a pipe open forever.
        with tempfile.TemporaryFile() as err:
            try:
                rc = subprocess.run(self._ssh_cmd(master=True) + ["-N", "-f"] + self._dest(),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    timeout=CONNECT_TIMEOUT_S * 2).returncode
            except subprocess.TimeoutExpired:
                rc, msg = 255, f"no answer in {CONNECT_TIMEOUT_S * 2} s"
            else:
                err.seek(0)
                msg = _last_line(err.read().decode(errors="replace"))
        if rc != 0:
            raise UsageError(f"cannot reach {self.name}: {msg or f'ssh exited {rc}'} "
                             "(check `ssh` to it works without a password: BatchMode, key in the agent or ?key=)")

    def _run(self, command: str, *, input: bytes | None = None, stdin=None, timeout: float = STEP_TIMEOUT_S,
             what: str = "") -> subprocess.CompletedProcess:
        """One remote command over the master connection; ssh's own failure (255) raises SshError."""
        try:
            proc = subprocess.run(self._ssh_cmd() + self._dest() + [command], input=input, stdin=stdin,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SshError(f"{what or 'ssh step'} on {self.name}: no answer in {timeout:.0f} s") from None
        if proc.returncode == 255:
            raise SshError(f"{what or 'ssh step'} on {self.name}: connection failed: "
                           f"{_last_line(proc.stderr.decode(errors='replace')) or 'ssh exited 255'}")
        return proc

    def _check(self, proc: subprocess.CompletedProcess, what: str) -> str:
        if proc.returncode != 0:
            text = proc.stderr.decode(errors="replace")
            err = _last_line(text)
            full = [ln for ln in text.splitlines() if "No space left" in ln or "quota exceeded" in ln.lower()]
            if full:
                err = full[0].strip()[:300]
                raise SshError(f"{what} on {self.name}: the board's disk is full ({err}); free space there "
                               "or put the temp folder elsewhere with ?tmp=DIR")
            raise SshError(f"{what} on {self.name} failed: {err or f'exit {proc.returncode}'}")
        return proc.stdout.decode(errors="replace")

    def _ensure_session(self) -> str:
        self._connect()
        if self._session is None:
            base = self.target.tmp
            script = 'd=${1:-${TMPDIR:-/tmp}}; mkdir -p -- "$d" && mktemp -d "$d/pocketbert.XXXXXX"'
            out = self._check(self._run(_sh(script, base or ""), what="making a temp folder"),
                              "making a temp folder")
            self._session = out.strip().splitlines()[-1]
        return self._session

    def _put_bytes(self, data: bytes, remote: str, what: str) -> None:
        proc = self._run(_sh('cat > "$1"', remote), input=data, what=what)
        self._check(proc, what)

    def _put_files(self, files: dict[str, bytes], remote: str, what: str) -> None:
        """Make folder `remote` holding `files` (name -> content), in one round trip."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        proc = self._run(_sh('mkdir -- "$1" && tar -xf - -C "$1"', remote), input=buf.getvalue(), what=what)
        self._check(proc, what)

    def _put_dir(self, local: Path, remote: str, what: str) -> None:
        """Send a folder as a tar stream (names travel inside the archive, never through a shell)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for p in sorted(local.iterdir()):
                if p.is_file():
                    tar.add(p, arcname=p.name, recursive=False)
        proc = self._run(_sh('mkdir -p -- "$1" && tar -xf - -C "$1"', remote), input=buf.getvalue(), what=what)
        self._check(proc, what)

    # ------------------------------------------------------------------ identity and runtimes
    def _probe_board(self) -> dict[str, Any]:
        if self._probe is None:
            self._connect()
            proc = self._run(_sh(PROBE_SH, self.target.python, _probe_py()), what="probing the board")
            sec = _sections(self._check(proc, "probing the board"))
            py_lines = sec.get("python", [])
            exit_line = next((ln for ln in reversed(py_lines) if ln.startswith("exit=")), "exit=?")
            py = None
            for ln in py_lines:
                if ln.startswith("{"):
                    try:
                        py = json.loads(ln)
                    except json.JSONDecodeError:
                        pass
            self._probe = {"sections": sec, "python": py,
                           "python_error": None if py else _last_line("\n".join(
                               ln for ln in py_lines if not ln.startswith("exit="))) or exit_line}
        return self._probe

    def _python_problem(self) -> str:
        """'' when the board's Python can run the worker, else why not (one line)."""
        p = self._probe_board()
        py = p["python"]
        where = f"on {self.name}"
        if py is None:
            return (f"no usable Python '{self.target.python}' {where} ({p['python_error']}); install python3 there "
                    "(e.g. sudo apt install python3 python3-pip) or point ?python=PATH at one")
        version = tuple(int(x) for x in py["version"].split(".")[:2])
        if version < MIN_PYTHON:
            return f"Python {py['version']} {where} is too old: the runner needs {'.'.join(map(str, MIN_PYTHON))}+"
        return ""

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
        missing = [m for m in need if not mods.get(m)]
        if missing:
            return False, (f"{', '.join(missing)} not installed on {self.name} ({self.target.python}): "
                           + install_hint(runtime, self.target.python))
        return True, ""

    def info(self) -> dict[str, Any]:
        """Who the board is: model, SoC/CPU, cores and max frequencies, ABI, OS, governor, temperatures."""
        if self._info is None:
            p = self._probe_board()
            sec, py = p["sections"], p["python"] or {}
            uname = sec.get("uname", ["", ""]) + ["", ""]
            shell_arch, kernel = uname[0].strip(), uname[1].strip()
            cpu = parse_cpuinfo("\n".join(sec.get("cpuinfo", [])))
            osr = py.get("os_release") or _os_release(sec.get("os_release", []))
            max_mhz = {k: int(v) // 1000 for k, v in _per_cpu(sec.get("max_khz", [])).items() if v.isdigit()}
            nproc = int(next(iter(sec.get("nproc", [])), "0") or 0) or cpu["processors"] or None
            mem = next(iter(sec.get("meminfo", [])), "")
            mem_gb = round(int(mem.split()[1]) / 2**20, 1) if len(mem.split()) > 1 else None
            arch = py.get("machine") or shell_arch
            emulated = self.target.emulated
            if emulated is None:  # qemu-user: the Python is aarch64, the shell around it is the host's
                emulated = bool(py.get("machine")) and bool(shell_arch) and py["machine"] != shell_arch
            state = parse_state(sec)
            model = " ".join(sec.get("model", [])).strip() or None
            cpu_model = cpu["cpu_model"]
            if emulated:
                cpu_model = f"qemu-user {arch} on {cpu_model} ({shell_arch})"
            self._info = {
                "device": self.name, "emulated": emulated, "transport": "ssh",
                "hostname": next(iter(sec.get("hostname", [])), "").strip() or self.target.host,
                "model": model, "soc": cpu["soc"], "cpu_model": cpu_model, "arch": arch, "abi": arch,
                "physical_cores": nproc, "logical_cores": nproc, "max_mhz": max_mhz,
                "isa_flags": cpu["isa_flags"] if not emulated else [],
                "os": osr.get("PRETTY_NAME") or "unknown", "kernel": kernel, "memory_gb": mem_gb,
                "governor": state["governor"], "temperature_c": state["temperature_c"],
                "load_avg_1m": state["load_avg_1m"], "python": py.get("version"),
                "runtime_versions": py.get("versions", {}), "env": {},
            }
        return dict(self._info)

    def state(self) -> dict[str, Any]:
        """Governor, frequencies, temperatures, throttle flags now."""
        return parse_state(_sections(self._check(self._run(_sh(STATE_SH), what="reading the board's state"),
                                                 "reading the board's state")))

    # ------------------------------------------------------------------ one worker run
    def run_worker(self, spec: Any, timeout_s: float | None = None) -> WorkerResult:
        """Copy payload, bundle and items over, run the worker there, pull its result back.

        The board's WorkerResult (with `device_state`: before/after and throttle warnings), or the error.
        Ctrl-C stops the remote worker, removes the run folder and re-raises.
        """
        spec_d = _spec_dict(spec)
        collected = False
        try:
            problem = self._python_problem()
            if problem:
                return WorkerResult(error=problem)
            session = self._ensure_session()
            payload = self._send_payload(session)
            self._runs += 1
            run_dir = f"{session}/run.{self._runs:04d}"  # the session folder is ours alone (mktemp, 0700)
            remote_spec, files = dict(spec_d), {}
            if spec_d.get("model_path"):
                remote_spec["model_path"] = self._send_bundle(Path(spec_d["model_path"]), session)
            if spec_d.get("items_path"):
                name = "items" + (Path(spec_d["items_path"]).suffix or ".json")
                files[name] = Path(spec_d["items_path"]).read_bytes()
                remote_spec["items_path"] = f"{run_dir}/{name}"
            files["spec.json"] = _spec_json(spec, remote_spec).encode()
            self._put_files(files, run_dir, "copying the spec and items")
        except (SshError, UsageError) as e:
            return WorkerResult(error=str(e))
        try:
            rc, err = self._run_remote(run_dir, payload, spec_d.get("threads"), timeout_s)
            if rc == "timeout":
                return WorkerResult(error=f"timed out after {timeout_s:.0f} s on {self.name}; the worker there was stopped")
            try:
                out = self._check(self._run(_sh(COLLECT_SH, run_dir), what="pulling the result"),
                                  "pulling the result")
            except SshError:
                if rc == 255:  # the board is gone: say so (its watchdog has stopped the worker)
                    return WorkerResult(error=_exit_reason(rc, err, self.name))
                raise
            collected = True
            parts = _parts(out)
            if not parts.get("result", "").strip():
                return WorkerResult(error=_exit_reason(rc, err, self.name))
            result = WorkerResult.from_json(parts["result"], f"{self.name}: the worker's result")
            if result.error:
                return result
            before = parse_state(_sections(parts.get("before", "")))
            after = parse_state(_sections(parts.get("after", "")))
            warnings = throttle_warnings(before, after, self.info()["max_mhz"])
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
        data, sha = build_payload()
        remote = f"{session}/payload-{sha[:16]}.zip"
        if self._payload != remote:
            self._put_bytes(data, remote, "copying the runner")
            self._payload = remote
        return remote

    def _send_bundle(self, model_path: Path, session: str) -> str:
        """The bundle folder holding `model_path`, sent once per content; its model's path there."""
        folder = model_path.parent
        h = hashlib.sha256()
        for p in sorted(folder.iterdir()):
            if p.is_file():
                h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
        key = h.hexdigest()[:16]
        remote = f"{session}/bundle-{key}"
        if key not in self._bundles:
            self._put_dir(folder, remote, "copying the bundle")
            self._bundles[key] = remote
        return f"{remote}/{model_path.name}"

    def _run_remote(self, run_dir: str, payload: str, threads: Any, timeout_s: float | None):
        """Run RUN_SH; (exit code | 'timeout', stderr tail). Stops the remote worker on any way out."""
        cmd = self._ssh_cmd() + self._dest() + [_sh(RUN_SH, run_dir, self.target.python, payload, threads or "", STOP_GRACE_S)]
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
            self._run(_sh(STOP_SH, f"{run_dir}/pid", f"{run_dir}/pgid"), timeout=30, what="stopping the worker")
        except SshError:
            pass

    def _remove(self, run_dir: str) -> None:
        """Remove a run folder, first killing whatever still runs from it (the run is over here)."""
        try:
            self._run(_sh(STOP_SH + 'rm -rf -- "${1%/pid}"\n', f"{run_dir}/pid", f"{run_dir}/pgid"),
                      timeout=30, what="removing the run folder")
        except SshError:
            pass  # unreachable: close() tries again

    def close(self) -> None:
        """Stop anything left, remove the temp folder on the board, close the connection."""
        if self._session is not None:
            try:
                self._connect()
                self._run(_sh(CLEAN_SH, self._session), timeout=30, what="cleaning up")
                self._session = None
            except (SshError, UsageError, subprocess.SubprocessError) as e:
                self.log(f"warning: could not clean up {self._session} on {self.name}: {e}")
                self._session = None
            self._payload, self._bundles = None, {}
        if self._ctl_dir is not None:
            try:
                subprocess.run(self._ssh_cmd() + ["-O", "exit"] + self._dest(),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
            except (OSError, subprocess.SubprocessError) as e:  # ssh gone from PATH, or hung
                self.log(f"warning: could not close the ssh connection to {self.name}: {e}")
            finally:
                shutil.rmtree(self._ctl_dir, ignore_errors=True)
                self._ctl_dir = None

    def __enter__(self) -> "SshDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@register_device("ssh")
def open_ssh(url: str) -> SshDevice:
    return SshDevice(url)


def _spec_json(spec: Any, remote: dict[str, Any]) -> str:
    """The spec as the board's worker reads it: the WorkerSpec contract with the board's paths."""
    if dataclasses.is_dataclass(spec) and hasattr(spec, "to_json"):
        return dataclasses.replace(spec, model_path=remote.get("model_path", ""),
                                   items_path=remote.get("items_path", "")).to_json()
    return json.dumps(remote)


def _spec_dict(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict):
        return dict(spec)
    if hasattr(spec, "to_json"):
        return json.loads(spec.to_json())
    return dataclasses.asdict(spec)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _exit_reason(rc: Any, stderr: str, name: str) -> str:
    if rc == 255:
        return (f"lost the connection to {name} during the run ({_last_line(stderr) or 'ssh exited 255'}); "
                "the board's watchdog stops the worker when the connection drops")
    if rc in (130, 143, -15):
        return f"the worker on {name} was stopped"
    if rc in (137, -9):
        return f"the worker on {name} was killed (out of memory?)"
    return f"the worker on {name} exited with code {rc} and no result: {_last_line(stderr) or 'no message'}"
