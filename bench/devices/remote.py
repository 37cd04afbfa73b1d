"""The remote-runner core every remote device shares: one push/run contract (`Transport`: a shell
command and a folder of files put there), each folder sent once per content (`SentOnce`), one
reader of the device's /sys and /proc state (governors, frequencies, temperatures, load) and one
rule for what in it says the run was throttled. ssh (bench/devices/ssh.py) and adb
(bench/devices/adb.py) are transports over it; what runs there is theirs (the worker over ssh; the
demo app, minibench or a runner binary on a phone: bench/devices/phone_runs.py).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pocketbert.machine import heat_warnings, soc_temperature


class RemoteError(Exception):
    """One step on a remote device failed; str() is one line (a run's reason)."""


class Disconnected(RemoteError):
    """The device went away during a step."""


class Transport(Protocol):
    """How the host reaches a device: a shell command there, and files put into a folder there."""

    name: str

    def shell(self, command: str, timeout: float = 60.0, check: bool = True) -> tuple[int, str]:
        """Run `command` in the device's shell: (exit status, output); check: a non-zero status raises."""

    def put(self, files: dict[str, Path | bytes], remote_dir: str) -> None:
        """Make `remote_dir` hold `files` (name there -> a local file or bytes); nothing half-sent stays."""


class SentOnce:
    """Folders a device already holds, by content: each is put there once per device session."""

    def __init__(self, transport: Transport, root: str):
        self.transport, self.root = transport, root
        self.held: dict[str, str] = {}  # content key -> folder there

    def folder(self, files: dict[str, Path | bytes], prefix: str = "bundle") -> str:
        """The folder on the device holding `files`, sent now when it is not there yet."""
        key = content_key(files)
        if key not in self.held:
            remote = f"{self.root}/{prefix}-{key}"
            self.transport.put(files, remote)
            self.held[key] = remote
        return self.held[key]

    def clear(self) -> None:
        self.held.clear()


def content_key(files: dict[str, Path | bytes]) -> str:
    """16 hex digits of sha256 over the files' names and contents."""
    h = hashlib.sha256()
    for name, src in sorted(files.items()):
        data = src if isinstance(src, bytes) else Path(src).read_bytes()
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------- /sys and /proc

# One command, the same on a Debian board and an Android phone (toybox grep): every readable
# cpufreq/thermal file and the load average as PATH:VALUE lines, then the Raspberry Pi firmware's
# throttle flags where there is such a thing (its exit status means nothing).
STATE_SH = ("grep -s -H '' " + " ".join(
    f"/sys/devices/system/cpu/cpu*/cpufreq/{f}" for f in
    ("cpuinfo_max_freq", "scaling_max_freq", "scaling_cur_freq", "scaling_governor"))
    + " /sys/class/thermal/thermal_zone*/type /sys/class/thermal/thermal_zone*/temp /proc/loadavg;"
    " vcgencmd get_throttled 2>/dev/null")
_KHZ = {"cpuinfo_max_freq": "max_mhz", "scaling_max_freq": "cap_mhz", "scaling_cur_freq": "cur_mhz"}


def parse_state(text: str) -> dict[str, Any]:
    """STATE_SH's output -> per-core max/cap/current MHz and governor, temperatures (°C, by
    'zone:type'), the SoC's temperature, load average, Raspberry Pi throttle flags; the time from a
    'time_utc:' line where the device gave one (else now, on the host)."""
    cores: dict[int, dict[str, Any]] = {}
    zones: dict[str, dict[str, str]] = {}
    load = time_utc = throttled = None
    for line in text.splitlines():
        path, _, value = line.partition(":")
        value = value.strip()
        if m := re.match(r"/sys/devices/system/cpu/cpu(\d+)/cpufreq/(\w+)$", path):
            core = cores.setdefault(int(m.group(1)), {})
            if m.group(2) == "scaling_governor":
                core["governor"] = value
            elif value.isdigit():
                core[_KHZ[m.group(2)]] = int(value) // 1000
        elif m := re.match(r"/sys/class/thermal/(thermal_zone\d+)/(type|temp)$", path):
            zones.setdefault(m.group(1), {})[m.group(2)] = value
        elif path == "/proc/loadavg":
            load = _float(value.split()[0]) if value else None
        elif path == "time_utc":
            time_utc = value or None
        elif line.startswith("throttled="):
            throttled = line.split("=", 1)[1].strip()
    temps = {}
    for zone, z in sorted(zones.items(), key=lambda kv: int(kv[0].removeprefix("thermal_zone"))):
        t = _float(z.get("temp"))
        if t is not None and -40 < (t / 1000 if abs(t) > 200 else t) < 150:  # some zones report °C
            temps[f"{zone}:{z.get('type', '?')}"] = round(t / 1000 if abs(t) > 200 else t, 1)
    governors = sorted({c["governor"] for c in cores.values() if c.get("governor")})
    return {"time_utc": time_utc or utc_now(), "cores": {str(k): v for k, v in sorted(cores.items())},
            "governor": ",".join(governors) or None, "temperature_c": temps,
            "soc_temperature_c": soc_temperature(temps), "load_avg_1m": load, "rpi_throttled": throttled}


def throttle_warnings(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why the device may have slowed itself during the run (empty when no sign of it): a core's
    frequency cap fell, the firmware says so, the SoC ran hot or warmed, the governor changed."""
    out = []
    for cpu, b in before.get("cores", {}).items():
        fb, fa = b.get("cap_mhz"), after.get("cores", {}).get(cpu, {}).get("cap_mhz")
        if fb and fa and fa < fb:
            out.append(f"throttled: cpu{cpu} max frequency fell from {fb} to {fa} MHz during the run")
    rb, ra = before.get("rpi_throttled"), after.get("rpi_throttled")
    if ra:
        try:
            bits_a, bits_b = int(ra, 16), int(rb or "0", 16)
            if bits_a & 0b1110 or (bits_a & ~bits_b) & (0b1110 << 16):  # capped/throttled/soft temp limit
                out.append(f"throttled: Raspberry Pi firmware reports throttling (get_throttled {rb} -> {ra})")
        except ValueError:
            pass
    out += heat_warnings(before.get("soc_temperature_c"), after.get("soc_temperature_c"))
    if before.get("governor") != after.get("governor"):
        out.append(f"CPU governor changed during the run: {before.get('governor')} -> {after.get('governor')}")
    return out


# ------------------------------------------------------------------------------------------ helpers

def last_line(text: str | None) -> str:
    """The last non-empty line of a command's output (300 characters at most): its one-line reason."""
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _float(value: str | None) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None
