"""A small fake Android device that speaks the adb device (transport) protocol over TCP.

The REAL `adb` client talks to it: `adb connect 127.0.0.1:PORT`, then `adb -s 127.0.0.1:PORT shell|push|pull`.
What it implements:
  * transport: 24-byte message headers (command, arg0, arg1, length, byte-sum checksum, magic), CNXN
    answered directly (a device with auth off), OPEN/OKAY/WRTE/CLSE streams with one-WRTE-in-flight
    flow control. The banner advertises `shell_v2` (as every Android 7+ phone does): the client
    opens `shell,v2,...:CMD` and gets stdout, stderr and the exit code in shell-protocol packets
    (1-byte id, 4-byte length). `shell_v2=False` advertises nothing: the old `shell:CMD` (merged
    output, no exit status). Sync v1 (STAT/SEND/DATA/DONE/RECV/QUIT) either way.
  * a tiny shell over a fake file system (a tmp folder standing in for `/`): `;`, `&&`, `||`,
    `2>/dev/null`, `$?`, unquoted globs; getprop, cat, grep -H, ls, df, mkdir, rm, chmod, echo, pm path,
    am start/force-stop, run-as PKG (cat/rm/ls), dumpsys battery, pidof, kill, and executing a pushed
    file (host scripts standing in for arm64 runners).
  * two apps: the pocketbert demo app's benchmark activity, which runs the app's own code: qa-core's
    BenchLaunch (extras, allowed paths, WordPiece, windows, span search, record writer) on the JVM
    (FakePhoneMain.kt, compiled by tests/kotlin_build.py), only the model call handed back over a
    socket to this fake, which runs it with ExecuTorch's Python runtime; and ExecuTorch's
    minibench (writes benchmark_results.json in minibench's Gson format). Like real activities,
    `am start -W` returns at launch and the benchmark finishes in the background.
  * faults: `drop_on` (close the connection when a shell command contains a string), `free_kb` (df
    and a full disk: pushes beyond it fail with ENOSPC).
"""

from __future__ import annotations

import glob
import json
import os
import queue
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

A_SYNC, A_CNXN, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_AUTH = (
    0x434E5953, 0x4E584E43, 0x4E45504F, 0x59414B4F, 0x45534C43, 0x45545257, 0x48545541)
A_VERSION = 0x01000001  # skip-checksum version; the checksum is filled in anyway
MAX_PAYLOAD = 256 * 1024

APP_PKG = "org.pocketbert.demo"
APP_ACTIVITY = f"{APP_PKG}/.BenchmarkActivity"
MINIBENCH_PKG = "org.pytorch.minibench"

DEFAULT_PROPS = {
    "ro.product.model": "Fake Pixel", "ro.product.manufacturer": "pocketbert", "ro.product.brand": "pocketbert",
    "ro.product.name": "fakephone", "ro.product.device": "fakephone", "ro.soc.manufacturer": "Fakecomm",
    "ro.soc.model": "FK8550", "ro.board.platform": "fake", "ro.hardware": "fake",
    "ro.product.cpu.abi": "arm64-v8a", "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.build.version.release": "14", "ro.build.version.sdk": "34", "ro.build.fingerprint": "fake/fake:14/X/1:user",
    "ro.serialno": "FAKE0001",
}


class Dropped(Exception):
    """The fake device was told to drop the connection."""


def _header(cmd: int, arg0: int, arg1: int, data: bytes) -> bytes:
    return struct.pack("<6I", cmd, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, cmd ^ 0xFFFFFFFF)


class _Stream:
    def __init__(self, conn: "_Connection", local: int, remote: int):
        self.conn, self.local, self.remote = conn, local, remote
        self.ready = threading.Event()  # the host's OKAY for our last WRTE
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.buf = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        for i in range(0, len(data), self.conn.max_payload):
            if self.closed:
                raise ConnectionError("stream closed by host")
            self.ready.clear()
            self.conn.send(A_WRTE, self.local, self.remote, data[i:i + self.conn.max_payload])
            if not self.ready.wait(30) or self.conn.dead:
                raise ConnectionError("no OKAY from host")

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.inbox.get(timeout=30)
            if chunk is None:
                raise ConnectionError("stream closed by host")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.conn.send(A_CLSE, self.local, self.remote)
            self.conn.streams.pop(self.local, None)


class _Connection:
    def __init__(self, device: "FakeAdbDevice", sock: socket.socket):
        self.device, self.sock = device, sock
        self.lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_payload = 4096
        self.dead = False

    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        if self.dead:
            raise ConnectionError("connection dropped")
        with self.lock:
            self.sock.sendall(_header(cmd, arg0, arg1, data) + data)

    def _recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("host closed")
            out += chunk
        return out

    def drop(self) -> None:
        self.dead = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for s in list(self.streams.values()):
            s.closed = True
            s.ready.set()
            s.inbox.put(None)

    def serve(self) -> None:
        try:
            while not self.dead:
                cmd, arg0, arg1, length, _check, magic = struct.unpack("<6I", self._recv_exact(24))
                if magic != cmd ^ 0xFFFFFFFF:
                    raise ConnectionError(f"bad magic {magic:#x}")
                data = self._recv_exact(length) if length else b""
                self._dispatch(cmd, arg0, arg1, data)
        except (ConnectionError, OSError):
            pass
        finally:
            if not self.dead:
                self.drop()

    def _dispatch(self, cmd: int, arg0: int, arg1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self.max_payload = min(arg1, MAX_PAYLOAD)
            props = ";".join(f"{k}={self.device.props[k]}" for k in
                             ("ro.product.name", "ro.product.model", "ro.product.device"))
            features = "shell_v2,cmd" if self.device.shell_v2 else ""
            self.send(A_CNXN, A_VERSION, MAX_PAYLOAD, f"device::{props};features={features}".encode())
        elif cmd == A_OPEN:
            local = self.next_id
            self.next_id += 1
            stream = _Stream(self, local, arg0)
            self.streams[local] = stream
            self.send(A_OKAY, local, arg0)
            service = data.rstrip(b"\0").decode()
            threading.Thread(target=self.device._service, args=(self, stream, service), daemon=True).start()
        elif cmd == A_OKAY:
            s = self.streams.get(arg1)
            if s:
                s.ready.set()
        elif cmd == A_WRTE:
            s = self.streams.get(arg1)
            if s:
                s.inbox.put(data)
                self.send(A_OKAY, arg1, arg0)
        elif cmd == A_CLSE:
            s = self.streams.pop(arg1, None)
            if s:
                s.closed = True
                s.ready.set()
                s.inbox.put(None)


class FakeAdbDevice:
    """`with FakeAdbDevice(tmp) as dev:` listens on 127.0.0.1:dev.port; its `/` is tmp/root."""

    def __init__(self, tmp: Path, *, free_kb: int = 8 * 2**20, props: dict | None = None,
                 apps: tuple[str, ...] = (APP_PKG, MINIBENCH_PKG), temp_c: float = 38.0,
                 shell_v2: bool = True, app_classpath: str | None = None):
        self.root = Path(tmp) / "root"
        self.shell_v2 = shell_v2  # advertise the shell protocol v2 (exit codes, stderr apart)
        self.app_classpath = app_classpath  # the compiled qa-core + FakePhoneMain (tests/kotlin_build.py)
        self.services: list[str] = []  # every service opened (shell:..., shell,v2,raw:..., sync:)
        self.logcat: list[tuple[float, str, str, str]] = []  # (time, level, tag, message): `logcat -d`
        self.app_procs: list[subprocess.Popen] = []  # the app's JVM processes (killed at close)
        self._bridge: socket.socket | None = None  # the app's model calls (model_bridge)
        self.props = {**DEFAULT_PROPS, **(props or {})}
        self.free_kb = free_kb
        self.apps = set(apps)
        self.debuggable = set(apps)  # run-as works for these (debug builds)
        self.app_reads_tmp = True  # False: SELinux keeps apps out of /data/local/tmp (some devices)
        self.drop_on: str | None = None  # close the connection when a shell command contains this
        self.drop_skip = 0  # ... after letting this many matching commands through
        self.drop_after_s = 0.0  # ... that many seconds after it arrived
        self.log: list[str] = []  # every shell command line received
        self.errors: list[str] = []  # services that failed (for debugging a test)
        self.running: dict[str, threading.Thread] = {}  # package -> its benchmark thread
        self.pids: dict[int, subprocess.Popen] = {}
        self.conns: list[_Connection] = []
        self._make_fs(temp_c)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.serial = f"127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        if self._bridge is not None:
            self._bridge.close()
        for c in self.conns:
            c.drop()
        for p in [*self.pids.values(), *self.app_procs]:
            if p.poll() is None:
                p.kill()

    def _accept(self) -> None:
        while not self._stop:
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return
            conn = _Connection(self, sock)
            self.conns.append(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    # ---- the fake file system -------------------------------------------------------------------
    def path(self, device_path: str) -> Path:
        """Host path of a device path (absolute device paths only)."""
        return self.root / device_path.lstrip("/")

    def _make_fs(self, temp_c: float) -> None:
        cpus = [(0, 1800000), (1, 1800000), (2, 1800000), (3, 1800000), (4, 2800000), (5, 2800000),
                (6, 2800000), (7, 3200000)]
        w = self._write
        w("/sys/devices/system/cpu/possible", "0-7\n")
        w("/sys/devices/system/cpu/present", "0-7\n")
        w("/proc/loadavg", "1.25 1.10 0.90 2/1234 5678\n")
        cpuinfo = []
        for i, maxf in cpus:
            base = f"/sys/devices/system/cpu/cpu{i}/cpufreq"
            w(f"{base}/cpuinfo_max_freq", f"{maxf}\n")
            w(f"{base}/scaling_max_freq", f"{maxf}\n")
            w(f"{base}/scaling_cur_freq", f"{maxf // 2}\n")
            w(f"{base}/scaling_governor", "schedutil\n")
            part = "0xd46" if maxf < 2e6 else ("0xd4d" if maxf < 3e6 else "0xd4e")
            cpuinfo.append(f"processor\t: {i}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd aes crc32 atomics "
                           f"fphp asimdhp asimddp i8mm bf16\nCPU implementer\t: 0x41\nCPU part\t: {part}\n")
        w("/proc/cpuinfo", "\n".join(cpuinfo))
        w("/proc/meminfo", "MemTotal:       11534336 kB\nMemAvailable:    5242880 kB\n")
        for i, (kind, t) in enumerate([("cpu-0-0", temp_c), ("cpu-1-0", temp_c + 2), ("battery", 31.0)]):
            w(f"/sys/class/thermal/thermal_zone{i}/type", kind + "\n")
            w(f"/sys/class/thermal/thermal_zone{i}/temp", f"{int(t * 1000)}\n")
        (self.root / "data/local/tmp").mkdir(parents=True, exist_ok=True)
        for pkg in self.apps:
            (self.root / f"data/data/{pkg}/files").mkdir(parents=True, exist_ok=True)

    def _write(self, device_path: str, text: str) -> None:
        p = self.path(device_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def set_temperature(self, temp_c: float) -> None:
        for i in (0, 1):
            self._write(f"/sys/class/thermal/thermal_zone{i}/temp", f"{int((temp_c + 2 * i) * 1000)}\n")

    def set_max_freq(self, cpu: int, khz: int) -> None:
        self._write(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_max_freq", f"{khz}\n")

    def used_kb(self) -> int:
        return sum(f.stat().st_size for f in (self.root / "data").rglob("*") if f.is_file()) // 1024

    # ---- services -------------------------------------------------------------------------------
    def _service(self, conn: _Connection, stream: _Stream, service: str) -> None:
        self.services.append(service)
        try:
            head, _, rest = service.partition(":")
            if head.startswith("shell,") and "v2" in head.split(","):  # shell,v2[,TERM=..][,raw|pty]:CMD
                self._shell_v2(conn, stream, rest)
            elif service.startswith("shell:") or service.startswith("exec:"):
                cmd = service.split(":", 1)[1]
                self.log.append(cmd)
                if self.drop_on and self.drop_on in cmd and self._skip_drop():
                    if self.drop_after_s:
                        time.sleep(self.drop_after_s)
                    conn.drop()
                    return
                try:
                    out = _Shell(self).run(cmd)
                except Exception as e:  # noqa: BLE001 - a bug in the fake shell: say so, never hang the client
                    out = f"fake shell: {type(e).__name__}: {e}\n"
                    self.errors.append(f"{cmd[:60]}: {out.strip()}")
                stream.write(out.encode())
            elif service.startswith("sync:"):
                self._sync(stream)
            else:
                stream.write(b"FAIL" + f"{len(service):04x}".encode())
        except (ConnectionError, OSError, queue.Empty) as e:
            self.errors.append(f"{service[:60]}: {type(e).__name__}: {e}")
            return
        stream.close()

    def _shell_v2(self, conn: _Connection, stream: _Stream, cmd: str) -> None:
        """Shell protocol v2: stdout (id 1), stderr (id 2) and the exit code (id 3) as packets."""
        def packet(kind: int, data: bytes) -> bytes:
            return struct.pack("<BI", kind, len(data)) + data

        self.log.append(cmd)
        if self.drop_on and self.drop_on in cmd and self._skip_drop():
            if self.drop_after_s:
                time.sleep(self.drop_after_s)
            conn.drop()
            return
        sh = _Shell(self, split_stderr=True)
        try:
            out = sh.run(cmd)
        except Exception as e:  # noqa: BLE001 - a bug in the fake shell: say so, never hang the client
            out, sh.status = "", 255
            sh.stderr.append(f"fake shell: {type(e).__name__}: {e}\n")
            self.errors.append(f"{cmd[:60]}: {sh.stderr[-1].strip()}")
        data = b""
        if out:
            data += packet(1, out.encode())
        if sh.stderr:
            data += packet(2, "".join(sh.stderr).encode())
        stream.write(data + packet(3, bytes([sh.status & 0xFF])))

    def _skip_drop(self) -> bool:
        """True when this matching command is the one to drop on (after `drop_skip` earlier ones)."""
        if self.drop_skip > 0:
            self.drop_skip -= 1
            return False
        self.drop_on = None
        return True

    def _sync(self, s: _Stream) -> None:
        while True:
            ident, length = struct.unpack("<4sI", s.read(8))
            if ident == b"QUIT":
                return
            arg = s.read(length).decode()
            if ident == b"STAT":
                p = self.path(arg)
                if p.is_dir():
                    st = (0o40755, 4096, int(p.stat().st_mtime))
                elif p.is_file():
                    st = (0o100644, p.stat().st_size, int(p.stat().st_mtime))
                else:
                    st = (0, 0, 0)
                s.write(b"STAT" + struct.pack("<3I", *st))
            elif ident == b"SEND":
                path, _, mode = arg.rpartition(",")
                data = b""
                while True:
                    kind, n = struct.unpack("<4sI", s.read(8))
                    if kind == b"DONE":
                        break
                    data += s.read(n)
                target = self.path(path)
                if self.used_kb() + len(data) // 1024 > self.free_kb:
                    msg = f"write failed: No space left on device".encode()
                    s.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                    return
                if not target.parent.is_dir():
                    msg = f"secure_mkdirs failed: {path}".encode()
                    s.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                    return
                target.write_bytes(data)
                target.chmod(int(mode) & 0o777 if mode.isdigit() else 0o644)
                s.write(b"OKAY" + struct.pack("<I", 0))
            elif ident == b"RECV":
                p = self.path(arg)
                if not p.is_file():
                    msg = b"No such file or directory"
                    s.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                    continue
                data = p.read_bytes()
                for i in range(0, len(data), 64 * 1024):
                    chunk = data[i:i + 64 * 1024]
                    s.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                s.write(b"DONE" + struct.pack("<I", 0))
            else:
                msg = f"unknown sync request {ident!r}".encode()
                s.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                return

    # ---- the apps -------------------------------------------------------------------------------
    def start_activity(self, component: str, extras: dict) -> str:
        pkg, _, activity = component.partition("/")
        if pkg not in self.apps:
            return (f"Starting: Intent {{ cmp={component} (has extras) }}\n"
                    f"Error type 3\nError: Activity class {{{component}}} does not exist.\n")
        if pkg == MINIBENCH_PKG:
            target = self._run_minibench
        elif activity == ".GameLoopActivity":  # Firebase Test Lab's game loop: no extras
            target = lambda _extras: run_demo_benchmark(self, {}, mode="gameloop")  # noqa: E731
        else:
            target = self._run_demo_app
        t = threading.Thread(target=self._guard, args=(pkg, target, extras), daemon=True)
        self.running[pkg] = t
        t.start()
        return (f"Starting: Intent {{ cmp={component} (has extras) }}\nStatus: ok\nLaunchState: COLD\n"
                f"Activity: {component}\nTotalTime: 250\nWaitTime: 260\nComplete\n")

    def _guard(self, pkg: str, fn, extras: dict) -> None:
        try:
            fn(extras)
        except Exception as e:  # noqa: BLE001 - the app "crashes": no result file
            self._write(f"/data/data/{pkg}/files/crash.txt", f"{type(e).__name__}: {e}\n")
        finally:
            self.running.pop(pkg, None)

    def _load_pte(self, device_path: str):
        from executorch.runtime import Runtime

        t0 = time.perf_counter()
        method = Runtime.get().load_program(self.path(device_path)).load_method("forward")
        return method, (time.perf_counter() - t0) * 1e3

    def model_bridge(self) -> str:
        """HOST:PORT where the app's JVM gets its model calls run (FakePhoneMain.kt's BridgeModel):
        {"model": path} loads the .pte, then each {"inputs": [[ids], ...]} runs `forward`; the fake
        ai.onnxruntime's sessions (tests/fake_ort): {"onnx": path, "intra_op_num_threads": n} opens
        one, then each {"feeds": [{name, dtype, shape, data}]} runs it."""
        if self._bridge is None:
            self._bridge = socket.create_server(("127.0.0.1", 0))
            threading.Thread(target=self._bridge_accept, daemon=True).start()
        return f"127.0.0.1:{self._bridge.getsockname()[1]}"

    def _bridge_accept(self) -> None:
        while not self._stop:
            try:
                sock, _ = self._bridge.accept()
            except OSError:
                return
            threading.Thread(target=self._bridge_serve, args=(sock,), daemon=True).start()

    def _bridge_serve(self, sock: socket.socket) -> None:
        import torch
        from executorch.runtime import Runtime

        method = session = None
        with sock, sock.makefile("rw", encoding="utf-8") as f:
            for line in f:
                req = json.loads(line)
                try:
                    if "model" in req:
                        method = Runtime.get().load_program(Path(req["model"])).load_method("forward")
                        reply = {"ready": True}
                    elif "onnx" in req:  # the fake ai.onnxruntime's OrtSession (tests/fake_ort)
                        session = self._ort_session(req["onnx"], int(req.get("intra_op_num_threads") or 0))
                        reply = {"inputs": [i.name for i in session.get_inputs()],
                                 "outputs": [o.name for o in session.get_outputs()]}
                    elif "feeds" in req:
                        reply = {"outputs": self._ort_run(session, req["feeds"])}
                    else:
                        out = method.execute([torch.tensor([ids], dtype=torch.long) for ids in req["inputs"]])
                        reply = {"start": out[0].reshape(-1).tolist(), "end": out[1].reshape(-1).tolist()}
                except Exception as e:  # noqa: BLE001 - the app sees the error, as from the runtime
                    reply = {"error": f"{type(e).__name__}: {e}"}
                f.write(json.dumps(reply) + "\n")
                f.flush()

    @staticmethod
    def _ort_session(model_path: str, threads: int):
        """What onnxruntime-android makes of the app's SessionOptions: a CPU session, intra-op
        threads as set (0: ONNX Runtime's default), graph optimizations at the default (all)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        return ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])

    @staticmethod
    def _ort_run(session, feeds: list[dict]) -> list[dict]:
        """One OrtSession.run: each input by the name, element type and shape the app gave it (ONNX
        Runtime refuses a wrong name, type or shape, as on the phone); every output back."""
        import numpy as np

        arrays = {f["name"]: np.asarray(f["data"], dtype=f["dtype"]).reshape(f["shape"]) for f in feeds}
        outs = session.run(None, arrays)
        return [{"name": o.name, "shape": list(v.shape), "data": v.reshape(-1).astype(float).tolist()}
                for o, v in zip(session.get_outputs(), outs)]

    def _run_minibench(self, extras: dict) -> None:
        import torch

        model_dir = self.path(extras["model_dir"])
        pte = next(p for p in sorted(model_dir.iterdir()) if p.name.endswith(".pte"))
        method, load_ms = self._load_pte(str(Path(extras["model_dir"]) / pte.name))
        meta = method.metadata
        inputs = [torch.ones(tuple(meta.input_tensor_meta(i).sizes()), dtype=torch.long)
                  for i in range(meta.num_inputs())]
        for _ in range(int(extras.get("num_warm_up_iter", 10))):
            method.execute(inputs)
        lat = []
        for _ in range(int(extras.get("num_iter", 50))):
            t0 = time.perf_counter_ns()
            method.execute(inputs)
            lat.append((time.perf_counter_ns() - t0) * 1e-6)
        lat.sort()
        trimmed = lat[len(lat) // 10: len(lat) * 9 // 10] or lat
        name = pte.name.removesuffix(".pte")
        parts = name.split("_")
        model = ({"name": "_".join(parts[:-2]), "backend": parts[-2], "quantization": parts[-1]}
                 if len(parts) >= 3 else {"name": name, "backend": "", "quantization": ""})
        dev = {"device": self.props["ro.product.brand"], "arch": self.props["ro.product.model"],
               "os": f"Android {self.props['ro.build.version.release']}", "totalMem": 0, "availMem": 0}
        metrics = [("avg_inference_latency(ms)", sum(lat) / len(lat)),
                   ("trimmean_inference_latency(ms)", sum(trimmed) / len(trimmed)),
                   ("model_load_time(ms)", load_ms), ("load_status", 0.0), ("ram_pss_usage(mb)", 42.5)]
        out = [{"benchmarkModel": model, "metric": m, "actualValue": v, "targetValue": 0.0, "deviceInfo": dev}
               for m, v in metrics]
        self._write(f"/data/data/{MINIBENCH_PKG}/files/benchmark_results.json", json.dumps(out))

    def _run_demo_app(self, extras: dict) -> None:
        (self.demo_app or run_demo_benchmark)(self, extras)

    demo_app = None  # a test may replace the app's behaviour: fn(device, extras)


APP_EXTERNAL = f"/sdcard/Android/data/{APP_PKG}/files"  # getExternalFilesDir(null)


def run_demo_benchmark(dev: FakeAdbDevice, extras: dict, mode: str = "intent") -> None:
    """The demo app's benchmark intent (android_demo/BENCHMARK_PROTOCOL.md), run by the app's own
    code: qa-core's BenchLaunch on the JVM (FakePhoneMain.kt) over this phone's file system, with
    the model call handed back to this process (FakeAdbDevice.model_bridge: ExecuTorch's Python
    runtime). Like the app, it writes its record (ok or failed) to files/bench/RESULT; a JVM crash
    leaves no record."""
    if not dev.app_classpath:
        raise RuntimeError("the fake phone's app needs the compiled qa-core: pass app_classpath "
                           "(the kotlin_build fixture's classpath())")
    machine = {"device": "adb", "hostname": dev.props["ro.product.device"], "model": dev.props["ro.product.model"],
               "manufacturer": dev.props["ro.product.manufacturer"], "os": "Android "
               f"{dev.props['ro.build.version.release']} (API {dev.props['ro.build.version.sdk']})"}
    from importlib.metadata import version

    # Honest labels: the model runs in the host's Python ExecuTorch / onnxruntime (the releases the
    # app's AARs are pinned to), not in the Android AARs, and the record says so.
    versions = {"executorch-python": version("executorch"), "onnxruntime-python": version("onnxruntime"),
                "app": "qa-core on the JVM (fake phone)",
                "model_runtime": "the host's Python runtime via the fake phone's model bridge, not the Android AAR"}
    env = {**os.environ, "POCKETBERT_FAKE_DENY": "" if dev.app_reads_tmp else "/data/local/tmp"}
    proc = subprocess.Popen(["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", dev.app_classpath,
                             "org.pocketbert.qa.FakePhoneMainKt", mode, str(dev.root), f"/data/data/{APP_PKG}/files",
                             APP_EXTERNAL,
                             json.dumps(extras), json.dumps(machine), json.dumps(versions), dev.model_bridge()],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    dev.app_procs.append(proc)
    out, _ = proc.communicate(timeout=300)
    dev.logcat.extend((time.time(), "I", "PocketbertBench", line) for line in out.splitlines())
    if proc.returncode != 0:
        raise RuntimeError(f"the app crashed (exit {proc.returncode}): {out[-2000:]}")


class _Shell:
    """Just enough of Android's /system/bin/sh for what pocketbert sends."""

    def __init__(self, device: FakeAdbDevice, cwd: str = "/", split_stderr: bool = False):
        self.dev = device
        self.cwd = cwd  # `run-as PKG` runs in the app's data dir
        self.status = 0
        self.split_stderr = split_stderr  # shell v2: stderr kept apart (self.stderr), else merged
        self.stderr: list[str] = []

    def _p(self, path: str) -> Path:
        return self.dev.path(path if path.startswith("/") else f"{self.cwd}/{path}")

    def run(self, line: str) -> str:
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lex.whitespace_split = True
        tokens = list(lex)
        out, cmd, op = [], [], ";"
        for tok in tokens + [";"]:
            if tok in (";", "&&", "||"):
                if cmd and (op == ";" or (op == "&&" and self.status == 0) or (op == "||" and self.status != 0)):
                    out.append(self._simple(cmd))
                cmd, op = [], tok
            else:
                cmd.append(tok)
        return "".join(out)

    def _simple(self, argv: list[str]) -> str:
        redirect = None
        words: list[str] = []
        i = 0
        while i < len(argv):
            tok = argv[i]
            if tok == "2" and argv[i + 1:i + 2] == [">"]:  # the lexer splits 2>/dev/null into 2 > /dev/null
                i += 1
                tok = "2>"
            if tok in (">", "2>") and i + 1 < len(argv):
                redirect = (tok, argv[i + 1])
                i += 2
                continue
            tok = tok.replace("$?", str(self.status))
            if any(c in tok for c in "*?[") and tok.startswith("/"):
                matches = sorted(glob.glob(str(self.dev.path(tok))))
                if matches:
                    words += ["/" + str(Path(m).relative_to(self.dev.root)) for m in matches]
                    i += 1
                    continue
            words.append(tok)
            i += 1
        out, err, self.status = self._exec(words)
        if redirect and redirect[0] == "2>":
            err = ""
        elif redirect and redirect[0] == ">":
            if redirect[1] != "/dev/null":
                self.dev.path(redirect[1]).write_text(out)
            out = ""
        if self.split_stderr:
            self.stderr.append(err)
            return out
        return out + err

    def _exec(self, argv: list[str]) -> tuple[str, str, int]:
        if not argv:
            return "", "", 0
        name, args = argv[0], argv[1:]
        fn = getattr(self, "_cmd_" + name.replace("-", "_"), None)
        if fn is not None:
            return fn(args)
        if name.startswith("/") and self.dev.path(name).is_file():
            return self._exec_file(name, args)
        return "", f"/system/bin/sh: {name}: inaccessible or not found\n", 127

    def _cmd_echo(self, args):
        return " ".join(args) + "\n", "", 0

    def _cmd_true(self, args):
        return "", "", 0

    def _cmd_false(self, args):
        return "", "", 1

    def _cmd_getprop(self, args):
        if args:
            return self.dev.props.get(args[0], "") + "\n", "", 0
        return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(self.dev.props.items())), "", 0

    def _cmd_cat(self, args):
        out, err, status = [], [], 0
        for a in args:
            p = self._p(a)
            if p.is_file():
                out.append(p.read_text(errors="replace"))
            else:
                err.append(f"cat: {a}: No such file or directory\n")
                status = 1
        return "".join(out), "".join(err), status

    def _cmd_grep(self, args):
        flags = [a for a in args if a.startswith("-")]
        rest = [a for a in args if not a.startswith("-")]
        pattern, files = rest[0], rest[1:]
        out, err, found = [], [], False
        for f in files:
            p = self._p(f)
            if not p.is_file():
                if "-s" not in flags:
                    err.append(f"grep: {f}: No such file or directory\n")
                continue
            for line in p.read_text(errors="replace").splitlines():
                if pattern in line:
                    found = True
                    out.append(f"{f}:{line}\n" if "-H" in flags else line + "\n")
        return "".join(out), "".join(err), 0 if found else 1

    def _cmd_ls(self, args):
        paths = [a for a in args if not a.startswith("-")]
        out, status = [], 0
        for a in paths:
            p = self._p(a)
            if p.is_dir():
                out += [c.name + "\n" for c in sorted(p.iterdir())]
            elif p.is_file():
                out.append(a + "\n")
            else:
                return "", f"ls: {a}: No such file or directory\n", 1
        return "".join(out), "", status

    def _cmd_df(self, args):
        path = next((a for a in args if not a.startswith("-")), "/data")
        used = self.dev.used_kb()
        free = max(self.dev.free_kb - used, 0)
        total = used + free + 1024
        return (f"Filesystem      1K-blocks    Used Available Use% Mounted on\n"
                f"/dev/block/dm-5 {total} {used} {free} {100 * used // total}% /data\n"), "", 0 if path else 1

    def _cmd_mkdir(self, args):
        for a in args:
            if not a.startswith("-"):
                self._p(a).mkdir(parents=True, exist_ok=True)
        return "", "", 0

    def _cmd_rm(self, args):
        import shutil

        for a in args:
            if a.startswith("-"):
                continue
            p = self._p(a)
            if p.is_dir() and "-r" in " ".join(args):
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        return "", "", 0

    def _cmd_chmod(self, args):
        mode, files = args[0], args[1:]
        for f in files:
            p = self._p(f)
            if not p.exists():
                return "", f"chmod: {f}: No such file or directory\n", 1
            p.chmod(int(mode, 8) if mode.isdigit() else 0o755)
        return "", "", 0

    def _cmd_pm(self, args):
        if args[:1] == ["path"] and len(args) > 1:
            if args[1] in self.dev.apps:
                return f"package:/data/app/~~x/{args[1]}-1/base.apk\n", "", 0
            return "", "", 1
        return "", "pm: unsupported\n", 1

    def _cmd_am(self, args):
        if args[:1] == ["force-stop"]:
            self.dev.running.pop(args[1], None)  # the thread finishes, its result no longer matters
            if args[1] == APP_PKG:  # the app's process dies
                for proc in self.dev.app_procs:
                    if proc.poll() is None:
                        proc.kill()
            return "", "", 0
        if args[:1] != ["start"]:
            return "", "am: unsupported\n", 1
        component, extras, i = None, {}, 1
        while i < len(args):
            a = args[i]
            if a == "-n":
                component = args[i + 1]
                i += 2
            elif a in ("--es", "--ei", "--ez", "--ef"):
                key, value = args[i + 1], args[i + 2]
                extras[key] = int(value) if a == "--ei" else value
                i += 3
            else:
                i += 1  # -W, -S
        if component is None:
            return "", "am: no component\n", 1
        return self.dev.start_activity(component, extras), "", 0

    def _cmd_run_as(self, args):
        pkg, argv = args[0], args[1:]
        if pkg not in self.dev.apps:
            return "", f"run-as: unknown package: {pkg}\n", 1
        if pkg not in self.dev.debuggable:
            return "", f"run-as: package not debuggable: {pkg}\n", 1
        inner = _Shell(self.dev, cwd=f"/data/data/{pkg}", split_stderr=self.split_stderr)
        if argv[:2] == ["sh", "-c"] and len(argv) == 3:
            out = inner.run(argv[2])
            return out, "".join(inner.stderr), inner.status
        return inner._exec(argv)

    def _cmd_cp(self, args):
        import shutil

        paths = [a for a in args if not a.startswith("-")]
        src, dst = self._p(paths[0]), self._p(paths[1])
        if not src.exists():
            return "", f"cp: {paths[0]}: No such file or directory\n", 1
        if src.is_dir():
            shutil.copytree(src, dst / src.name if dst.is_dir() and not paths[0].endswith("/.") else dst,
                            dirs_exist_ok=True)
        else:
            shutil.copy(src, dst)
        return "", "", 0

    def _cmd_dumpsys(self, args):
        if args[:1] == ["battery"]:
            return ("Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
                    "  Wireless powered: false\n  status: 2\n  health: 2\n  present: true\n  level: 87\n"
                    "  scale: 100\n  voltage: 4120\n  temperature: 312\n  technology: Li-ion\n"), "", 0
        return "", "", 0

    def _cmd_pidof(self, args):
        pids = [str(pid) for pid, p in self.dev.pids.items() if p.poll() is None and Path(p.args[1]).name == args[0]]
        if args and args[0] in self.dev.running:
            pids.append("4242")
        return (" ".join(pids) + "\n", "", 0) if pids else ("", "", 1)

    def _cmd_kill(self, args):
        for a in args:
            if a.lstrip("-").isdigit() and int(a) in self.dev.pids:
                self.dev.pids[int(a)].kill()
        return "", "", 0

    def _cmd_date(self, args):
        return (f"{int(time.time())}\n" if args == ["+%s"] else time.strftime("%a %b %d %H:%M:%S UTC %Y\n")), "", 0

    def _cmd_logcat(self, args):
        """`logcat -c` clears; `logcat -d [-v raw] [-s TAG...] [-T EPOCH.mmm]` prints the buffer."""
        if "-c" in args:
            self.dev.logcat.clear()
            return "", "", 0
        tags, since, raw, i = set(), 0.0, False, 0
        while i < len(args):
            a = args[i]
            if a == "-s":
                while i + 1 < len(args) and not args[i + 1].startswith("-"):
                    tags.add(args[i + 1].split(":")[0])
                    i += 1
            elif a == "-T":
                since = float(args[i + 1])
                i += 1
            elif a == "-v":
                raw = args[i + 1] == "raw"
                i += 1
            i += 1
        lines = [msg if raw else f"{lvl} {tag}: {msg}" for t, lvl, tag, msg in self.dev.logcat
                 if t >= since and (not tags or tag in tags)]
        return "".join(line + "\n" for line in lines), "", 0

    def _exec_file(self, name: str, args: list[str]):
        """Run a pushed executable: host scripts stand in for arm64 binaries; device paths are mapped.
        What the script appends to the file named by $FAKE_LOGCAT goes to logcat, tag ExecuTorch
        (as __android_log_print in a runner built with ExecuTorch's android preset)."""
        host = self.dev.path(name)
        if not os.access(host, os.X_OK):
            return "", f"/system/bin/sh: {name}: can't execute: Permission denied\n", 126
        mapped = [str(self.dev.path(a)) if a.startswith("/data/") else
                  (a.split("=", 1)[0] + "=" + str(self.dev.path(a.split("=", 1)[1]))
                   if "=/data/" in a else a) for a in args]
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "logcat"
            log.touch()
            proc = subprocess.Popen([sys.executable, str(host), *mapped], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, env={**os.environ, "FAKE_LOGCAT": str(log)})
            self.dev.pids[proc.pid] = proc
            out, _ = proc.communicate(timeout=120)
            self.dev.pids.pop(proc.pid, None)
            self.dev.logcat.extend((time.time(), "I", "ExecuTorch", line) for line in log.read_text().splitlines())
        return out, "", proc.returncode

