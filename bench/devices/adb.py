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

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.devices import minibench
from pocketbert.backends import all_runtimes
from pocketbert.common import UsageError
from pocketbert.contracts import WorkerResult
from pocketbert.machine import heat_warnings, parse_cpuinfo, soc_temperature

APP_PACKAGE = "org.pocketbert.demo"
APP_COMPONENT = f"{APP_PACKAGE}/.BenchmarkActivity"
APP_INSTALL_HINT = "install the demo app: `cd android_demo && ./gradlew installDebug` (a debuggable build: run-as)"
REMOTE_ROOT = "/data/local/tmp/pocketbert"
EXIT_MARKER = "__PB_EXIT__"
VIAS = ("app", "minibench", "runner")
DEFAULT_TIMEOUT_S = 1800.0  # one run with no --timeout: long enough for BERT-base on a slow phone
POLL_S = 0.5  # how often a finished result file is looked for
DISK_MARGIN_BYTES = 32 * 2**20  # keep this much free after pushing


class AdbError(Exception):
    """A one-line failure of one run (the message is the record's reason)."""


class Disconnected(AdbError):
    """The device went away (no exit marker, or adb says it is gone)."""


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
        self._pushed: dict[str, str] = {}  # digest of the local files (name, size, mtime) -> remote folder
        self._gone: str | None = None  # why the device is unusable (set on disconnect)
        self._installed: dict[str, bool] = {}
        self._info: dict[str, Any] | None = None
        self._copied_in = False  # inputs copied into the app's files/in (SELinux fallback)

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
            raise Disconnected(f"{self.name} is not reachable ({_last_line(err)}): check the cable / "
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
            self._gone = (f"{self.name} disconnected during `{_short(command)}` (no exit marker"
                          f"{': ' + _last_line(proc.stderr) if proc.stderr.strip() else ''})")
            raise Disconnected(self._gone)
        # shell protocol v2 (every Android 7+ phone) carries stderr apart: keep it, errors say why
        status, text = int(m.group(1)), out[:i] + (proc.stderr or "")
        if check and status != 0:
            raise AdbError(f"{self.name}: `{_short(command)}` exited {status}: {_last_line(text) or 'no output'}")
        return status, text

    def _alive(self) -> None:
        if self._gone:
            raise Disconnected(self._gone)

    def push(self, local: list[Path], remote_dir: str, timeout: float = 600.0) -> None:
        """Push files into remote_dir after checking there is room; a failed push leaves nothing behind."""
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
                          _last_line(text))
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
        """Thermal zones, per-core max/current frequency and governor, battery: a snapshot."""
        globs = " ".join(f"/sys/devices/system/cpu/cpu*/cpufreq/{f}" for f in
                         ("cpuinfo_max_freq", "scaling_max_freq", "scaling_cur_freq", "scaling_governor"))
        _, out = self.shell(f"grep -s -H '' {globs} /sys/class/thermal/thermal_zone*/type "
                            "/sys/class/thermal/thermal_zone*/temp /proc/loadavg", check=False)
        cores: dict[int, dict[str, Any]] = {}
        zones: dict[str, dict[str, Any]] = {}
        load = None
        for line in out.splitlines():
            path, _, value = line.partition(":")
            value = value.strip()
            if m := re.match(r"/sys/devices/system/cpu/cpu(\d+)/cpufreq/(\w+)$", path):
                key = m.group(2)
                cores.setdefault(int(m.group(1)), {})[key] = value if key == "scaling_governor" else _int(value)
            elif m := re.match(r"/sys/class/thermal/(thermal_zone\d+)/(type|temp)$", path):
                zones.setdefault(m.group(1), {})[m.group(2)] = value
            elif path == "/proc/loadavg":
                load = _float(value.split()[0]) if value else None
        temps = {}
        for zone, z in sorted(zones.items()):
            t = _float(z.get("temp"))
            if t is not None and -40 < (t / 1000 if abs(t) > 1000 else t) < 150:
                temps[f"{zone}:{z.get('type', '?')}"] = round(t / 1000 if abs(t) > 1000 else t, 1)
        _, batt = self.shell("dumpsys battery", check=False)
        return {"time_utc": _utc(), "cores": {str(k): v for k, v in sorted(cores.items())}, "temperature_c": temps,
                "soc_temperature_c": soc_temperature(temps), "battery": _battery(batt), "load_avg_1m": load}

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
        cores = [{"cpu": int(c), "max_mhz": (v.get("cpuinfo_max_freq") or 0) // 1000 or None,
                  "core": parts.get(int(c))} for c, v in st["cores"].items()]
        soc = " ".join(x for x in (props.get("ro.soc.manufacturer"), props.get("ro.soc.model")) if x) \
            or props.get("ro.board.platform") or props.get("ro.hardware") or cpu["soc"] or "unknown SoC"
        clusters = sorted({(c["max_mhz"], c["core"]) for c in cores if c["max_mhz"]}, key=lambda x: x[0])
        described = ", ".join(f"{sum(1 for c in cores if (c['max_mhz'], c['core']) == k)}x "
                              f"{k[1] or 'core'} @ {k[0]} MHz" for k in clusters)
        mem = re.search(r"MemTotal:\s+(\d+)", meminfo)

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
            "memory_gb": round(int(mem.group(1)) / 2**20, 1) if mem else None,
            "load_avg_1m": st["load_avg_1m"], "governors": sorted({v.get("scaling_governor") for v in
                                                                  st["cores"].values() if v.get("scaling_governor")}),
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
    def run_worker(self, spec, timeout_s: float | None = None) -> WorkerResult:
        """Run one spec the configured way (app, minibench, runner): the phone records the run itself
        (WorkerResult.record), with its state before and after; or the error."""
        get = spec.get if isinstance(spec, dict) else (lambda k, d=None: getattr(spec, k, d))
        if get("kind") == "gemm":
            return WorkerResult(error=f"no GEMM peak on {self.name} (it runs phone runtimes' bundles only)")
        ok, why = self.available(get("runtime"))
        if not ok:
            return WorkerResult(error=f"{get('runtime')} {why}")
        deadline = time.monotonic() + (timeout_s or DEFAULT_TIMEOUT_S)
        run = {"app": self._run_app, "minibench": self._run_minibench, "runner": self._run_runner}[self.opts.via]
        try:
            before = self.state()
            rec = run(get, deadline, timeout_s or DEFAULT_TIMEOUT_S)
            after = self.state()
        except Disconnected as e:
            return WorkerResult(error=str(e))
        except AdbError as e:
            self._stop_quietly()
            return WorkerResult(error=str(e))
        except KeyboardInterrupt:
            self._stop_quietly()
            raise
        warnings = throttle_warnings(before, after)
        if warnings:
            rec["reason"] = "; ".join(x for x in (rec.get("reason"), *warnings) if x)
        return WorkerResult(record=rec, device_state={"before": before, "after": after, "warnings": warnings})

    def _stop_quietly(self) -> None:
        """Leave nothing running: force-stop the app, kill a runner (best effort, short timeouts)."""
        if self._gone:
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

    def _push_bundle(self, model_path: str, names: list[str], rename: dict[str, str] | None = None) -> str:
        """Push the bundle's files `names` (from the model file's folder) once; the remote folder."""
        bundle = Path(model_path).parent
        files = [bundle / n for n in names]
        for f in files:
            if not f.is_file():
                raise AdbError(f"bundle file {f} missing")
        digest = hashlib.sha256(json.dumps([(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
                                           + sorted((rename or {}).items())).encode()).hexdigest()[:16]
        if digest in self._pushed:
            return self._pushed[digest]
        remote = f"{REMOTE_ROOT}/bundles/{digest}"
        if rename:
            with tempfile.TemporaryDirectory(prefix="pocketbert-adb-") as tmp:
                links = []
                for f in files:
                    link = Path(tmp) / rename.get(f.name, f.name)
                    os.symlink(f.resolve(), link)
                    links.append(link)
                self.push(links, remote)
        else:
            self.push(files, remote)
        self.shell(f"chmod -R a+rX {shlex.quote(REMOTE_ROOT)}", check=False)
        self._pushed[digest] = remote
        return remote

    def _wait_file(self, pkg: str, rel: str, deadline: float, what: str, timeout_s: float) -> str:
        """Poll `run-as pkg cat rel` until it holds JSON; the app dying without it is an error."""
        gone = 0
        while True:
            status, text = self.shell(f"run-as {pkg} cat {shlex.quote(rel)}", check=False)
            if status != 0 and re.search(r"run-as: .*(not debuggable|unknown package|Could not set capabilities)",
                                         text):
                raise AdbError(f"{self.name}: cannot read {pkg}'s results ({_last_line(text)}): "
                               "install its debug build (run-as needs a debuggable app)")
            if status == 0 and text.strip():
                try:
                    json.loads(text)
                    return text
                except json.JSONDecodeError:
                    pass  # still being written
            if time.monotonic() > deadline:
                raise AdbError(f"{self.name}: {what} timed out after {timeout_s:.0f} s (no result yet)")
            status, _ = self.shell(f"pidof {pkg}", check=False)
            gone = gone + 1 if status != 0 else 0
            if gone >= 3:  # not running for three polls in a row, and no result
                raise AdbError(f"{self.name}: {pkg} stopped without a result (crashed? "
                               f"`adb -s {self.serial} logcat -d | tail -50`)")
            time.sleep(POLL_S)

    # -- via=app
    def _run_app(self, get, deadline: float, timeout_s: float) -> dict[str, Any]:  # the device's record
        ok, why = self.available(get("runtime"))
        if not ok:
            raise AdbError(why)
        if get("task") != "question-answering":
            raise AdbError(f"the demo app's benchmark mode runs question-answering workloads, not {get('task')} "
                           "(use via=minibench or via=runner to time the model alone)")
        model_path = get("model_path")
        manifest = json.loads((Path(model_path).parent / "manifest.json").read_text())
        remote = self._push_bundle(model_path, ["manifest.json", "vocab.txt", manifest["model_file"]])
        workload = app_workload(get("items_path"), Path(model_path).parent / "vocab.txt", get("task"))
        with tempfile.TemporaryDirectory(prefix="pocketbert-adb-") as tmp:
            wl = Path(tmp) / f"workload-{uuid.uuid4().hex[:8]}.json"
            wl.write_text(json.dumps(workload))
            self.push([wl], f"{REMOTE_ROOT}/workloads")
        remote_wl = f"{REMOTE_ROOT}/workloads/{wl.name}"
        self.shell(f"chmod -R a+rX {shlex.quote(REMOTE_ROOT)}", check=False)
        if not self._copied_in:
            rec = self._launch_app(remote, remote_wl, get, deadline, timeout_s)
        if self._copied_in or (rec.get("status") != "ok" and _unreadable_tmp(str(rec.get("reason")))):
            # SELinux keeps this phone's apps out of /data/local/tmp: copy the inputs into the app's
            # own files folder, pass paths relative to it (BENCHMARK_PROTOCOL.md), and keep doing so.
            self._copied_in = True
            self.shell(f"run-as {APP_PACKAGE} sh -c " + shlex.quote(
                f"mkdir -p files/in/bundles files/in/workloads && cp -r {shlex.quote(remote)} files/in/bundles/ "
                f"&& cp {shlex.quote(remote_wl)} files/in/workloads/"))
            rec = self._launch_app(_in_app(remote), _in_app(remote_wl), get, deadline, timeout_s)
            self.shell(f"run-as {APP_PACKAGE} rm -f {shlex.quote('files/' + _in_app(remote_wl))}", check=False)
        if not self._gone:
            self.shell(f"rm -f {shlex.quote(remote_wl)}", check=False)
        if not isinstance(rec, dict) or rec.get("schema") != "pocketbert-bench/1":
            raise AdbError(f"{self.name}: the app's result is not a pocketbert-bench/1 record")
        if rec.get("status") != "ok":
            raise AdbError(f"the app: {rec.get('reason') or rec.get('status')}")
        rec.setdefault("notes", {}).setdefault("source", f"{APP_PACKAGE} BenchmarkActivity")
        return rec

    def _launch_app(self, bundle: str, workload: str, get, deadline: float, timeout_s: float) -> dict[str, Any]:
        """One `am start` of the app's benchmark activity; its record (whatever its status)."""
        result_name = f"pb-{uuid.uuid4().hex[:12]}.json"
        result_rel = shlex.quote(f"files/bench/{result_name}")
        self.shell(f"run-as {APP_PACKAGE} rm -f {result_rel}", check=False)
        extras = [("--es", "bundle", bundle), ("--es", "workload", workload), ("--ei", "iterations", "1"),
                  ("--ei", "warmup", str(get("warmup") or 0)), ("--ei", "threads", str(get("threads") or 0)),
                  ("--es", "shape", get("shape") or "dynamic"), ("--ei", "seq_len", str(get("seq_len"))),
                  ("--es", "run_id", get("label") or "pocketbert"), ("--es", "result", result_name)]
        try:
            self._am_start(APP_COMPONENT, extras)
            text = self._wait_file(APP_PACKAGE, f"files/bench/{result_name}", deadline, "the demo app", timeout_s)
        finally:
            self._stop_quietly()
            if not self._gone:
                self.shell(f"run-as {APP_PACKAGE} rm -f {result_rel}", check=False)
        return json.loads(text)

    def _am_start(self, component: str, extras: list[tuple[str, str, str]]) -> None:
        args = " ".join(f"{flag} {shlex.quote(k)} {shlex.quote(v)}" for flag, k, v in extras)
        _, out = self.shell(f"am start -S -W -n {shlex.quote(component)} {args}", timeout=120)
        if re.search(r"^Error|Exception|does not exist", out, flags=re.M):
            raise AdbError(f"{self.name}: am start {component}: {_last_line(out)}")

    # -- via=minibench
    def _run_minibench(self, get, deadline: float, timeout_s: float) -> dict[str, Any]:  # the device's record
        ok, why = self.available(get("runtime"))
        if not ok:
            raise AdbError(why)
        if get("shape") == "dynamic":
            raise AdbError("via=minibench feeds fixed-shape all-ones inputs: run it with --shape fixed")
        model_path = Path(get("model_path"))
        items = _count_items(get("items_path"))
        name = minibench.minibench_model_name(get("model") or model_path.parent.name, get("precision") or "fp32")
        remote = self._push_bundle(str(model_path), [model_path.name], rename={model_path.name: name})
        num_iter, warmup = max(items, 1), int(get("warmup") or 0)
        launches = []
        for _ in range(self.opts.launches):
            self.shell(f"run-as {minibench.PACKAGE} rm -f {minibench.RESULT_FILE}", check=False)
            try:
                self._am_start(minibench.COMPONENT, [("--es", "model_dir", remote), ("--ei", "num_iter", str(num_iter)),
                                                     ("--ei", "num_warm_up_iter", str(warmup))])
                text = self._wait_file(minibench.PACKAGE, minibench.RESULT_FILE, deadline, "minibench", timeout_s)
            finally:
                self._stop_quietly()
            try:
                launches.append(minibench.parse_results(text))
            except ValueError as e:
                raise AdbError(f"{self.name}: {e}") from None
        try:
            rec = minibench.launches_to_record(launches, num_iter, warmup)
        except ValueError as e:
            raise AdbError(f"{self.name}: {e}") from None
        if rec["status"] != "ok":
            raise AdbError(rec["reason"])
        seq = int(get("seq_len") or 0)
        rec["tokens"] = {"real": seq * rec["n_model_calls"], "fed": seq * rec["n_model_calls"]}
        return rec

    # -- via=runner
    def _run_runner(self, get, deadline: float, timeout_s: float) -> dict[str, Any]:  # the device's record
        if get("shape") == "dynamic":
            raise AdbError("via=runner feeds fixed-shape all-ones inputs: run it with --shape fixed")
        runner = Path(self.opts.runner)
        model_path = Path(get("model_path"))
        remote_bin = self._push_bundle(str(runner), [runner.name]) + "/" + runner.name
        self.shell(f"chmod 755 {shlex.quote(remote_bin)}")
        remote = self._push_bundle(str(model_path), [model_path.name])
        items, warmup = max(_count_items(get("items_path")), 1), int(get("warmup") or 0)
        base = f"{shlex.quote(remote_bin)} --model_path={shlex.quote(remote + '/' + model_path.name)} " \
               f"--num_executions={items + warmup + 1}"
        threads = get("threads")
        budget = max(deadline - time.monotonic(), 1.0)
        _, since = self.shell("date +%s", check=False)  # logcat -T: this run's lines only
        try:
            status, out = self.shell(base + (f" --cpu_threads={int(threads)}" if threads else ""),
                                     timeout=budget, check=False)
            if status != 0 and threads and "cpu_threads" in out:  # an older runner without the flag
                status, out = self.shell(base, timeout=budget, check=False)
        except AdbError as e:
            if "timed out" in str(e):
                self._stop_quietly()
                raise AdbError(f"{self.name}: the runner timed out after {timeout_s:.0f} s") from None
            raise
        if status != 0:
            raise AdbError(f"{self.name}: runner exited {status}: {_last_line(out) or 'no output'}")
        source = "stdout"
        if not (_ITER.search(out) or _TOTAL.search(out)) and since.strip().isdigit():
            _, log = self.shell(f"logcat -d -v raw -s {minibench.RUNNER_LOG_TAG} -T {since.strip()}.000", check=False)
            out, source = f"{out}\n{log}", f"logcat (tag {minibench.RUNNER_LOG_TAG})"
        rec = parse_runner_output(out, warmup=warmup + 1, seq_len=int(get("seq_len") or 0))
        rec["notes"]["runner"] = runner.name
        rec["notes"]["runner_output"] = source
        return rec

    # ---- end ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop what runs and remove what was pushed (unless keep=1)."""
        if self._gone or not self.adb:
            return
        try:
            self._stop_quietly()
            if not self.opts.keep and self._pushed:
                self.shell(f"rm -rf {shlex.quote(REMOTE_ROOT)}", timeout=30, check=False)
                self._pushed.clear()
            if not self.opts.keep and self._copied_in:
                self.shell(f"run-as {APP_PACKAGE} rm -rf files/in", timeout=30, check=False)
                self._copied_in = False
        except AdbError:
            pass


# ------------------------------------------------------------------------------------------ helpers

def app_workload(items_path: str, vocab: Path, task: str) -> dict[str, Any]:
    """The host's items as the app's workload file (question/context text; one window -> max_tokens).

    The question is the item's text when the items carry it, else decoded from its input ids with
    the bundle's vocab (uncased WordPiece round-trips)."""
    data = json.loads(Path(items_path).read_text())
    raw = data["items"] if isinstance(data, dict) else data
    words = vocab.read_text(encoding="utf-8").splitlines() if vocab.is_file() else []
    out = []
    for it in raw:
        post = it.get("post") or {}
        feats = it["features"]
        ids = _ids(feats[0])
        question = post.get("question") or _decode_question(ids, words)
        item = {"id": it["id"], "question": question, "context": post.get("context", "")}
        if len(feats) == 1:
            item["max_tokens"] = len(ids)
        out.append(item)
    return {"format": "pocketbert-android-workload/1", "name": "host-items", "task": task,
            "source": "pocketbert bench items (host tokenization, sent as text)", "items": out}


def _unreadable_tmp(reason: str) -> bool:
    """The app's reason for failing when SELinux hides /data/local/tmp from it (the bundle's manifest
    looks absent, or the workload cannot be read)."""
    return "cannot read" in reason or f"no bundle '{REMOTE_ROOT}/" in reason


def _in_app(remote: str) -> str:
    """A path under REMOTE_ROOT as its copy in the app's files dir, relative to that dir (as the app takes it)."""
    return "in/" + remote.removeprefix(REMOTE_ROOT + "/")


def _ids(feature: dict) -> list[int]:
    ids = feature["input_ids"]
    while isinstance(ids, list) and ids and isinstance(ids[0], list):  # (1, n) nesting
        ids = ids[0]
    return [int(x) for x in ids]


def _decode_question(ids: list[int], words: list[str]) -> str:
    """Tokens between [CLS] and the first [SEP], WordPiece '##' pieces joined."""
    toks = [words[i] if 0 <= i < len(words) else "[UNK]" for i in ids]
    if "[SEP]" in toks:
        toks = toks[:toks.index("[SEP]")]
    toks = [t for t in toks if t not in ("[CLS]", "[PAD]")]
    text = ""
    for t in toks:
        text += t[2:] if t.startswith("##") else (" " + t if text else t)
    return text


def _count_items(items_path: str | None) -> int:
    if not items_path:
        return 1
    data = json.loads(Path(items_path).read_text())
    return len(data["items"] if isinstance(data, dict) else data)


_ITER = re.compile(r"Iteration (\d+) of (\d+): ([\d.]+) ms")
_LOADED = re.compile(r"Model loaded in ([\d.]+) ms")
_TOTAL = re.compile(r"Model executed successfully (\d+) time\(s\) in ([\d.]+) ms")


def parse_runner_output(text: str, warmup: int, seq_len: int) -> dict[str, Any]:
    """executor_runner's log -> record fields. Per-iteration lines (newer runners) give samples (the
    first `warmup` dropped; the first is first_inference_ms); older runners print only a total."""
    iters = [float(m.group(3)) for m in _ITER.finditer(text)]
    total = _TOTAL.search(text)
    loaded = _LOADED.search(text)
    if not iters and not total:
        raise AdbError(f"runner output has no timing lines ({_last_line(text) or 'empty'})")
    notes: dict[str, Any] = {"source": "runner", "not_measured": {
        "inputs": "all-ones tensors at the program's (largest) shape: no real questions",
        "tokenize_ms": "not measured (no tokenizer): 0.0 placeholders",
        "postprocess_ms": "not measured (no answer search): 0.0 placeholders",
        "peak_rss_mb": "not reported by the runner"}}
    if iters:
        first, samples = iters[0], iters[warmup:] or iters[-1:]
        calls = len(iters)
    else:
        n, ms = int(total.group(1)), float(total.group(2))
        first, samples, calls = None, [ms / n], n
        notes["not_measured"]["latency_ms"] = f"one sample: the runner printed only its total over {n} calls"
    n = len(samples)
    return {"status": "ok", "reason": "", "workload": "runner-ones", "shape": "fixed",
            "workload_source": f"runner: all-ones inputs, {calls} executions", "item_ids":
                [f"execution-{i + 1}" for i in range(n)], "latency_ms": samples, "tokenize_ms": [0.0] * n,
            "postprocess_ms": [0.0] * n, "load_ms": float(loaded.group(1)) if loaded else None,
            "first_inference_ms": first, "n_items": n, "n_model_calls": n, "peak_rss_mb": None,
            "baseline_rss_mb": None, "runtime_rss_mb": None, "threads_effective": None, "answers_sample": [],
            "tokens": {"real": seq_len * n, "fed": seq_len * n}, "notes": notes}


def throttle_warnings(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Warnings when the phone throttled during a run: a core's max frequency dropped, or it ran hot."""
    out = []
    for cpu, b in before.get("cores", {}).items():
        a = after.get("cores", {}).get(cpu, {})
        fb, fa = b.get("scaling_max_freq"), a.get("scaling_max_freq")
        if fb and fa and fa < fb:
            out.append(f"throttled: cpu{cpu} max frequency fell from {fb // 1000} to {fa // 1000} MHz during the run")
    return out + heat_warnings(before.get("soc_temperature_c"), after.get("soc_temperature_c"))


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


def _float(value: str | None) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _short(command: str) -> str:
    return command if len(command) < 80 else command[:77] + "..."


def _utc() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def open_adb(url: str) -> AdbDevice:
    serial, opts = parse_url(url)
    return AdbDevice(serial, opts)


try:  # the registry (bench/devices/__init__.py)
    from bench.devices import register_device

    register_device("adb")(open_adb)
except ImportError:  # pragma: no cover - before the registry exists
    pass
