"""What an ssh device runs on the board (constant shell scripts and a Python probe; arguments arrive
as positional parameters, never as code) and the reading of what they print: the board's identity
and whether its Python can run the worker."""

from __future__ import annotations

import json
import shlex
from typing import Any

from bench.devices.remote import STATE_SH as _STATE_SH
from bench.devices.remote import last_line, parse_state
from pocketbert.backends import all_runtimes
from pocketbert.machine import mem_total_gb, parse_cpuinfo

MIN_PYTHON = (3, 9)

# The device state (bench.devices.remote) with the board's own clock
STATE_SH = _STATE_SH + "; echo time_utc:$(date -u +%Y-%m-%dT%H:%M:%SZ)"


def install_hint(runtime: str, python: str) -> str:
    """How to get `runtime` onto the board, from its backend (one line)."""
    backend = all_runtimes().get(runtime)
    hint = backend.install_hint.format(python=python) if backend and backend.install_hint else ""
    return f"install it there: {hint}" if hint.startswith(python) else hint

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

WORKER_REQUIRES = ("psutil", "pydantic")  # what the worker itself imports beyond the stdlib: its spec and result
# (pocketbert.contracts), its CPU and memory accounting (bench.machine, bench.worker)


def probe_py() -> str:
    """The probe, asking for every module the worker or a registered backend needs (and their versions)."""
    mods = repr(sorted({m for b in all_runtimes().values() for m in b.requires} | set(WORKER_REQUIRES)))
    return PROBE_PY % (mods, mods)

PROBE_SH = "py=$1\n" + _PY_FIX + r"""
echo @@uname; uname -m; uname -r
echo @@hostname; hostname 2>/dev/null || cat /etc/hostname
echo @@cpuinfo; cat /proc/cpuinfo 2>/dev/null
echo @@os_release; cat /etc/os-release 2>/dev/null
echo @@model; { tr -d '\000' < /proc/device-tree/model || cat /sys/class/dmi/id/product_name; } 2>/dev/null; echo
echo @@nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN
echo @@meminfo; grep MemTotal /proc/meminfo 2>/dev/null
echo @@disk; df -Pk "${TMPDIR:-/tmp}" 2>/dev/null | tail -1
echo @@state; """ + STATE_SH + r"""
echo @@python; "$py" -c "$2" 2>&1; echo "exit=$?"
"""

# One worker run. The worker reads no stdin (</dev/null); the watchdog holds our stdin (fd 3) and,
# at EOF (our ssh closed it, was killed, or the connection dropped), stops the worker: SIGTERM
# (not SIGINT: sh starts background jobs with SIGINT ignored), then SIGKILL after the grace time.
# The worker writes its result only on success, so a stopped worker leaves none.
RUN_SH = "run=$1 py=$2 payload=$3 threads=$4 grace=$5\n" + _PY_FIX + r"""
cd "$run" || exit 97
echo $$ > pgid
{ """ + STATE_SH + r"""; } > state.before 2>/dev/null
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

def sh(script: str, *args: str) -> str:
    """A remote command line: `sh -c SCRIPT sh ARGS...`, every piece shell-quoted."""
    return "exec " + shlex.join(["sh", "-c", script, "sh", *map(str, args)])

def sections(text: str, marker: str = "@@") -> dict[str, list[str]]:
    """'MARKER name' lines of a script's output -> {name: the lines under it}."""
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith(marker):
            cur = line[len(marker):].strip()
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def parts(text: str) -> dict[str, str]:
    """'@@@name' blocks of COLLECT_SH's output -> {name: text}."""
    return {k: "\n".join(v) for k, v in sections(text, "@@@").items()}


def _os_release(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip().strip('"')
    return out


def read_probe(text: str) -> dict[str, Any]:
    """PROBE_SH's output -> its sections, the board Python's facts (None: no usable Python) and why not."""
    sec = sections(text)
    py_lines = sec.get("python", [])
    exit_line = next((ln for ln in reversed(py_lines) if ln.startswith("exit=")), "exit=?")
    py = None
    for ln in py_lines:
        if ln.startswith("{"):
            try:
                py = json.loads(ln)
            except json.JSONDecodeError:
                pass
    return {"sections": sec, "python": py, "python_error": None if py else last_line("\n".join(
        ln for ln in py_lines if not ln.startswith("exit="))) or exit_line}


def python_problem(probe: dict[str, Any], python: str, name: str) -> str:
    """'' when the board's Python can run the worker, else why not (one line)."""
    py = probe["python"]
    if py is None:
        return (f"no usable Python '{python}' on {name} ({probe['python_error']}); install python3 there "
                "(e.g. sudo apt install python3 python3-pip) or point ?python=PATH at one")
    version = tuple(int(x) for x in py["version"].split(".")[:2])
    if version < MIN_PYTHON:
        return f"Python {py['version']} on {name} is too old: the runner needs {'.'.join(map(str, MIN_PYTHON))}+"
    return ""


def board_info(probe: dict[str, Any], name: str, host: str, emulated: bool | None) -> dict[str, Any]:
    """Who the board is: model, SoC/CPU, cores and max frequencies, ABI, OS, governor, temperatures
    (`emulated` None: detected, qemu-user's Python differing from the shell's machine)."""
    sec, py = probe["sections"], probe["python"] or {}
    uname = sec.get("uname", ["", ""]) + ["", ""]
    shell_arch, kernel = uname[0].strip(), uname[1].strip()
    cpu = parse_cpuinfo("\n".join(sec.get("cpuinfo", [])))
    osr = py.get("os_release") or _os_release(sec.get("os_release", []))
    state = parse_state("\n".join(sec.get("state", [])))
    nproc = int(next(iter(sec.get("nproc", [])), "0") or 0) or cpu["processors"] or None
    mem_gb = mem_total_gb("\n".join(sec.get("meminfo", [])))
    arch = py.get("machine") or shell_arch
    if emulated is None:  # qemu-user: the Python is aarch64, the shell around it is the host's
        emulated = bool(py.get("machine")) and bool(shell_arch) and py["machine"] != shell_arch
    cpu_model = f"qemu-user {arch} on {cpu['cpu_model']} ({shell_arch})" if emulated else cpu["cpu_model"]
    return {
        "device": name, "emulated": emulated, "transport": "ssh",
        "hostname": next(iter(sec.get("hostname", [])), "").strip() or host,
        "model": " ".join(sec.get("model", [])).strip() or None, "soc": cpu["soc"], "cpu_model": cpu_model,
        "arch": arch, "abi": arch, "physical_cores": nproc, "logical_cores": nproc,
        "max_mhz": {f"cpu{k}": c["max_mhz"] for k, c in state["cores"].items() if c.get("max_mhz")},
        "isa_flags": cpu["isa_flags"] if not emulated else [],
        "os": osr.get("PRETTY_NAME") or "unknown", "kernel": kernel, "memory_gb": mem_gb,
        "governor": state["governor"], "temperature_c": state["temperature_c"],
        "load_avg_1m": state["load_avg_1m"], "python": py.get("version"),
        "runtime_versions": py.get("versions", {}), "env": {},
    }
