"""Android phones over adb: `--device adb://SERIAL[?via=app|minibench|runner&runner=PATH&launches=N]`.

SERIAL is what `adb devices` lists (USB serial, or HOST:PORT after `adb connect`). The real `adb`
client binary is driven by subprocess (argv lists, never a host shell); every path inside a device
shell command line is shlex-quoted. The runtimes whose record says `on_phones` run there, each
in the ways (`via`) it lists (ExecuTorch `.pte` bundles all three, ONNX bundles via=app). Three ways:

  via=app        (default) the pocketbert demo app's benchmark activity (android_demo/BENCHMARK_PROTOCOL.md):
                 push manifest.json, vocab.txt, the model file and a workload file (the host's items as
                 question/context text), `am start -S -W` with extras, poll for its record JSON
                 (`run-as org.pocketbert.demo cat files/bench/NAME`). Per-item latency on real inputs,
                 on-device tokenization and answer search: the full record.
  via=minibench  ExecuTorch's own benchmark app (org.pytorch.minibench): push the .pte, launch it
                 `launches` times (default 1), convert benchmark_results.json (bench/devices/minibench.py).
                 All-ones inputs, one mean per launch; what it cannot give is in the record's notes.
  via=runner     a user-supplied arm64 runner binary (`runner=PATH`, e.g. ExecuTorch's executor_runner
                 built with the NDK): push + chmod it, run `--model_path PTE --num_executions N
                 [--cpu_threads T]`, parse its log ("Iteration i of n: X ms", "Model loaded in X ms")
                 from stdout, or from logcat (tag ExecuTorch) when stdout has none: a runner built
                 with ExecuTorch's `android` CMake preset logs through __android_log_print.

Around every run: thermal zones, CPU max/current frequencies and governors, battery (`dumpsys
battery`) before and after; a warning when a core's max frequency dropped or the SoC ran hot.
adb's old shell protocol loses exit codes, so every command ends in `; echo __PB_EXIT__$?` and
the marker is parsed (the same on shell protocol v2, whose separate stderr is kept); no marker
means the device went away. A timeout, a disconnect or a full disk
is a one-line error for that run (records already written stay); the app is force-stopped, a
runner killed and pushed files removed at `close()`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.devices import minibench
from bench.devices import register_device
from bench.devices.phone_runs import APP_INSTALL_HINT, APP_PACKAGE, REMOTE_ROOT, run_app, run_minibench, run_runner
from bench.devices.remote import STATE_SH, Disconnected, RemoteError, SentOnce, last_line, parse_state, throttle_warnings
from pocketbert.backends import all_runtimes
from pocketbert.common import UsageError
from pocketbert.contracts import WorkerResult, WorkerSpec
from pocketbert.machine import mem_total_gb, parse_cpuinfo

EXIT_MARKER = "__PB_EXIT__"
VIAS = ("app", "minibench", "runner")
DEFAULT_TIMEOUT_S = 1800.0  # one run with no --timeout: long enough for BERT-base on a slow phone
DISK_MARGIN_BYTES = 32 * 2**20  # keep this much free after pushing

AdbError = RemoteError  # one run's one-line failure (the record's reason); Disconnected: the phone went away


@dataclass
class AdbOptions:
    via: str = "app"  # app | minibench | runner (module docstring)
    runner: str | None = None  # local path of the arm64 runner binary (via=runner)
    launches: int = 1  # minibench launches per run: one latency sample each
    keep: bool = False  # leave pushed files on the device at close (re-runs skip the push)


def parse_url(url: str) -> tuple[str, AdbOptions]:
    """adb://SERIAL?via=...&runner=...&launches=N -> (serial, options); bad input is a UsageError."""
    parts = urlsplit(url)
    serial = parts.netloc + parts.path.rstrip("/") if parts.scheme == "adb" else ""
    if not serial:
        raise UsageError(f"--device {url}: expected adb://SERIAL (a serial from `adb devices`)")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"via", "runner", "launches", "keep"})
    if unknown:
        raise UsageError(f"--device {url}: unknown option {unknown[0]!r} (use via, runner, launches, keep)")
    opts = AdbOptions()
    via = query.get("via", ["app"])[-1]
    if via not in VIAS:
        raise UsageError(f"--device {url}: via={via!r} is not one of {', '.join(VIAS)}")
    opts.via = via
    if "runner" in query:
        opts.runner = os.path.expanduser(query["runner"][-1])
        if not Path(opts.runner).is_file():
            raise UsageError(f"--device {url}: runner {opts.runner} not found")
    if via == "runner" and not opts.runner:
        raise UsageError(f"--device {url}: via=runner needs runner=PATH (an arm64 binary, e.g. executor_runner)")
    try:
        opts.launches = int(query.get("launches", ["1"])[-1])
    except ValueError:
        raise UsageError(f"--device {url}: launches must be an integer") from None
    if opts.launches < 1:
        raise UsageError(f"--device {url}: launches must be at least 1")
    opts.keep = query.get("keep", ["0"])[-1] not in ("0", "", "false", "no")
    return serial, opts


def adb_binary() -> str | None:
    return shutil.which(os.environ.get("POCKETBERT_ADB", "adb"))


# --------------------------------------------------------------------------------------- the device


class AdbDevice:
    """One phone. `available`, `info`, `run_worker`, `close` as the Device protocol asks."""

    def __init__(self, serial: str, options: AdbOptions | None = None, adb: str | None = None):
        self.serial = serial
        self.opts = options or AdbOptions()
        self.name = f"adb://{serial}"
        self.adb = adb or adb_binary()
        self.sent = SentOnce(self, f"{REMOTE_ROOT}/bundles")  # what was pushed, by content
        self.gone: str | None = None  # why the device is unusable (set on disconnect)
        self._installed: dict[str, bool] = {}
        self._info: dict[str, Any] | None = None
        self.copied_in = False  # inputs copied into the app's files/in (SELinux fallback)

    # ---- transport ----------------------------------------------------------------------------
    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        if not self.adb:
            raise AdbError("adb not found: install Android platform-tools (Debian/Ubuntu: apt install adb)")
        try:
            proc = subprocess.run([self.adb, "-s", self.serial, *args], capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, errors="replace")
        except subprocess.TimeoutExpired:
            raise AdbError(f"{self.name}: `adb {args[0]}` timed out after {timeout:.0f} s") from None
        err = (proc.stderr or "").strip()
        if proc.returncode != 0 and re.search(r"device .*not found|device offline|no devices|device unauthorized"
                                              r"|closed|disconnected|protocol fault", err):
            raise Disconnected(f"{self.name} is not reachable ({last_line(err)}): check the cable / "
                               "`adb devices`; unlock the phone and accept the USB-debugging prompt")
        return proc

    def shell(self, command: str, timeout: float = 60.0, check: bool = True) -> tuple[int, str]:
        """Run `command` in the device shell; (exit status, stdout+stderr). No marker = disconnected."""
        self._alive()
        proc = self._run(["shell", f"{command}; echo {EXIT_MARKER}$?"], timeout)
        out = proc.stdout or ""
        i = out.rfind(EXIT_MARKER)
        m = re.match(r"(\d+)", out[i + len(EXIT_MARKER):]) if i >= 0 else None
        if m is None:
            self.gone = (f"{self.name} disconnected during `{_short(command)}` (no exit marker"
                          f"{': ' + last_line(proc.stderr) if proc.stderr.strip() else ''})")
            raise Disconnected(self.gone)
        # shell protocol v2 (every Android 7+ phone) carries stderr apart: keep it, errors say why
        status, text = int(m.group(1)), out[:i] + (proc.stderr or "")
        if check and status != 0:
            raise AdbError(f"{self.name}: `{_short(command)}` exited {status}: {last_line(text) or 'no output'}")
        return status, text

    def _alive(self) -> None:
        if self.gone:
            raise Disconnected(self.gone)

    def put(self, files: dict[str, Path | bytes], remote_dir: str, timeout: float = 600.0) -> None:
        """Make remote_dir hold `files` (name there -> a local file or bytes) after checking there is
        room; a failed push leaves nothing behind."""
        with tempfile.TemporaryDirectory(prefix="pocketbert-adb-") as tmp:
            local = []
            for name, src in files.items():
                local.append(Path(tmp) / name)
                if isinstance(src, bytes):
                    local[-1].write_bytes(src)
                else:
                    os.symlink(Path(src).resolve(), local[-1])
            self._push(local, remote_dir, timeout)

    def _push(self, local: list[Path], remote_dir: str, timeout: float) -> None:
        need = sum(p.stat().st_size for p in local)
        free = self.free_bytes(REMOTE_ROOT.rsplit("/", 1)[0])  # /data/local/tmp: exists before the first push
        if free is not None and free < need + DISK_MARGIN_BYTES:
            raise AdbError(f"{self.name}: not enough space on the device ({free / 2**20:.0f} MiB free under "
                           f"{remote_dir}, {(need + DISK_MARGIN_BYTES) / 2**20:.0f} MiB needed): free some space")
        self.shell(f"mkdir -p {shlex.quote(remote_dir)}")
        self._alive()
        proc = self._run(["push", *map(str, local), remote_dir + "/"], timeout)
        if proc.returncode != 0:
            self.shell(f"rm -rf {shlex.quote(remote_dir)}", check=False)
            text = f"{proc.stderr}\n{proc.stdout}"  # adb 29 prints push errors on stdout, among progress lines
            reason = next((ln.strip().removeprefix("adb: error: ") for ln in text.splitlines() if "error" in ln),
                          last_line(text))
            full = "No space left" in reason or "ENOSPC" in reason
            raise AdbError(f"{self.name}: pushing {', '.join(p.name for p in local)} failed "
                           f"({'device disk full: ' if full else ''}{reason})")

    def free_bytes(self, path: str) -> int | None:
        """Free bytes of the file system holding `path` (`df -k`), None when unreadable."""
        status, out = self.shell(f"df -k {shlex.quote(path)}", check=False)
        lines = [ln.split() for ln in out.strip().splitlines() if ln.strip()]
        if status != 0 or len(lines) < 2:
            return None
        head, row = lines[0], lines[-1]
        col = next((i for i, h in enumerate(head) if h.lower().startswith(("avail", "free"))), 3)
        try:
            return int(row[col]) * 1024
        except (IndexError, ValueError):
            return None

    # ---- identity and state -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Thermal zones, per-core frequencies and governor (bench.devices.remote), battery: a snapshot."""
        _, out = self.shell(STATE_SH, check=False)
        _, batt = self.shell("dumpsys battery", check=False)
        return {**parse_state(out), "battery": _battery(batt)}

    def info(self) -> dict[str, Any]:
        if self._info is None:
            try:
                self._info = self._read_info()
            except AdbError as e:  # before any run: the user's device is not there
                raise UsageError(str(e)) from None
        return self._info

    def _read_info(self) -> dict[str, Any]:
        _, out = self.shell("getprop", check=False)
        props = dict(re.findall(r"^\[([^\]]+)\]: \[(.*)\]$", out, flags=re.M))
        _, cpuinfo = self.shell("cat /proc/cpuinfo", check=False)
        _, meminfo = self.shell("cat /proc/meminfo", check=False)
        st = self.state()
        cpu = parse_cpuinfo(cpuinfo)
        parts = cpu["cores"]
        cores = [{"cpu": int(c), "max_mhz": v.get("max_mhz"),
                  "core": parts.get(int(c))} for c, v in st["cores"].items()]
        soc = " ".join(x for x in (props.get("ro.soc.manufacturer"), props.get("ro.soc.model")) if x) \
            or props.get("ro.board.platform") or props.get("ro.hardware") or cpu["soc"] or "unknown SoC"
        clusters = sorted({(c["max_mhz"], c["core"]) for c in cores if c["max_mhz"]}, key=lambda x: x[0])
        described = ", ".join(f"{sum(1 for c in cores if (c['max_mhz'], c['core']) == k)}x "
                              f"{k[1] or 'core'} @ {k[0]} MHz" for k in clusters)

        return {
            "device": self.name, "hostname": props.get("ro.product.device", self.serial),
            "cpu_model": f"{soc} ({described})" if described else soc, "soc": soc,
            "manufacturer": props.get("ro.product.manufacturer"), "model": props.get("ro.product.model"),
            "arch": props.get("ro.product.cpu.abi", "?"), "abis": props.get("ro.product.cpu.abilist", "").split(","),
            "physical_cores": len(cores) or None, "logical_cores": len(cores) or None, "cores": cores,
            "default_threads": _performance_cores(cores),
            "isa_flags": cpu["isa_flags"],
            "os": f"Android {props.get('ro.build.version.release', '?')} (API {props.get('ro.build.version.sdk', '?')})",
            "build": props.get("ro.build.fingerprint"), "serial": self.serial,
            "memory_gb": mem_total_gb(meminfo),
            "load_avg_1m": st["load_avg_1m"], "governors": sorted({v.get("governor") for v in
                                                                  st["cores"].values() if v.get("governor")}),
            "temperature_c": st["soc_temperature_c"], "battery": st["battery"], "env": {},
        }

    def available(self, runtime: str) -> tuple[bool, str]:
        runtimes = all_runtimes()
        phone = {n: r.label or n for n, r in runtimes.items() if r.on_phones}  # Runtime.on_phones: the vias
        if runtime not in phone:
            return False, (f"does not run on adb devices (phones run {' / '.join(phone.values())} bundles: "
                           f"--runtime {' '.join(phone)})")
        if self.opts.via not in runtimes[runtime].on_phones:
            return False, (f"does not run with via={self.opts.via} (it runs with via="
                           f"{', via='.join(runtimes[runtime].on_phones)})")
        if not self.adb:
            return False, "needs adb: install Android platform-tools (Debian/Ubuntu: apt install adb)"
        if self.opts.via == "runner":
            return True, ""
        pkg, hint = ((APP_PACKAGE, APP_INSTALL_HINT) if self.opts.via == "app"
                     else (minibench.PACKAGE, minibench.INSTALL_HINT))
        if pkg not in self._installed:
            try:
                status, out = self.shell(f"pm path {pkg}", check=False)
            except AdbError as e:
                return False, str(e)
            self._installed[pkg] = status == 0 and "package:" in out
        return (True, "") if self._installed[pkg] else (False, f"needs {pkg} on {self.name}: {hint}")

    # ---- one run ------------------------------------------------------------------------------
    def run_worker(self, spec: WorkerSpec, timeout_s: float | None = None) -> WorkerResult:
        """Run one spec the configured way (app, minibench, runner): the phone records the run itself
        (WorkerResult.record), with its state before and after; or the error."""
        ok, why = self.available(spec.runtime)
        if not ok:
            return WorkerResult(error=f"{spec.runtime} {why}")
        deadline = time.monotonic() + (timeout_s or DEFAULT_TIMEOUT_S)
        run = {"app": run_app, "minibench": run_minibench, "runner": run_runner}[self.opts.via]
        try:
            before = self.state()
            rec = run(self, spec, deadline, timeout_s or DEFAULT_TIMEOUT_S)
            after = self.state()
        except Disconnected as e:
            return WorkerResult(error=str(e))
        except AdbError as e:
            self.stop_quietly()
            return WorkerResult(error=str(e))
        except KeyboardInterrupt:
            self.stop_quietly()
            raise
        warnings = throttle_warnings(before, after)
        if warnings:
            rec["reason"] = "; ".join(x for x in (rec.get("reason"), *warnings) if x)
        return WorkerResult(record=rec, device_state={"before": before, "after": after, "warnings": warnings})

    def stop_quietly(self) -> None:
        """Leave nothing running: force-stop the app, kill a runner (best effort, short timeouts)."""
        if self.gone:
            return
        try:
            if self.opts.via == "runner" and self.opts.runner:
                name = Path(self.opts.runner).name
                status, pids = self.shell(f"pidof {shlex.quote(name)}", timeout=15, check=False)
                if status == 0 and pids.split():
                    self.shell("kill " + " ".join(shlex.quote(p) for p in pids.split()), timeout=15, check=False)
            else:
                pkg = APP_PACKAGE if self.opts.via == "app" else minibench.PACKAGE
                self.shell(f"am force-stop {pkg}", timeout=15, check=False)
        except AdbError:
            pass

    def send_bundle(self, model_path: str, names: list[str], rename: dict[str, str] | None = None) -> str:
        """The bundle's files `names` (from the model file's folder, some renamed there) on the phone,
        pushed once per content; the folder there."""
        files = {}
        for name in names:
            f = Path(model_path).parent / name
            if not f.is_file():
                raise AdbError(f"bundle file {f} missing")
            files[(rename or {}).get(name, name)] = f
        remote = self.sent.folder(files)
        self.shell(f"chmod -R a+rX {shlex.quote(REMOTE_ROOT)}", check=False)
        return remote

    # ---- end ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop what runs and remove what was pushed (unless keep=1)."""
        if self.gone or not self.adb:
            return
        try:
            self.stop_quietly()
            if not self.opts.keep and self.sent.held:
                self.shell(f"rm -rf {shlex.quote(REMOTE_ROOT)}", timeout=30, check=False)
                self.sent.clear()
            if not self.opts.keep and self.copied_in:
                self.shell(f"run-as {APP_PACKAGE} rm -rf files/in", timeout=30, check=False)
                self.copied_in = False
        except AdbError:
            pass


def _performance_cores(cores: list[dict[str, Any]]) -> int | None:
    """Cores above the slowest cluster (the big and prime cores): a phone's sensible thread count;
    all cores when they are all alike. (Not ExecuTorch's own default, which is processors / 2.)"""
    freqs = [c["max_mhz"] for c in cores if c.get("max_mhz")]
    if not freqs:
        return None
    fast = [f for f in freqs if f > min(freqs)]
    return len(fast) or len(freqs)


def _battery(text: str) -> dict[str, Any]:
    fields = dict(re.findall(r"^\s*([A-Za-z ]+):\s*(.+?)\s*$", text, flags=re.M))
    out: dict[str, Any] = {}
    if "level" in fields:
        out["level_pct"] = _int(fields["level"])
    if "temperature" in fields and _int(fields["temperature"]) is not None:
        out["temperature_c"] = _int(fields["temperature"]) / 10
    powered = [k.split()[0] for k in ("AC powered", "USB powered", "Wireless powered") if fields.get(k) == "true"]
    out["charging_from"] = powered or None
    if "status" in fields:
        out["status"] = {"2": "charging", "3": "discharging", "4": "not charging", "5": "full"}.get(
            fields["status"], fields["status"])
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _short(command: str) -> str:
    return command if len(command) < 80 else command[:77] + "..."


@register_device("adb")
def open_adb(url: str) -> AdbDevice:
    serial, opts = parse_url(url)
    return AdbDevice(serial, opts)


