"""`SshDevice` against a real OpenSSH server on 127.0.0.1 (the "board" is this machine, its Python
the venv's): a tiny ONNX bundle benchmarked end to end through the harness, odd file names, a board
without the runtime, a timeout, a dropped connection and a full disk; nothing left running there.
The opt-in `arm` test runs the same bundle on an emulated aarch64 root (scripts/build_arm_root.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench.devices.ssh import SshDevice, parse_state, parse_url, throttle_warnings
from pocketbert.machine import parse_cpuinfo
from pocketbert.common import UsageError
from pocketbert.contracts import WorkerSpec

sys.path.insert(0, str(Path(__file__).parent))
from sshd import skip_reason, start_sshd  # noqa: E402

SEQ = 32
ODD = "odd dir; $(touch PWNED) `x`"  # a space, a `;`, a command substitution and backquotes


# ------------------------------------------------------------------ pure parsing (no sshd)

def test_url_options_and_bad_urls(monkeypatch, tmp_path):
    monkeypatch.delenv("POCKETBERT_SSH_KEY", raising=False)
    key = tmp_path / "k ey"
    key.write_text("x")
    t = parse_url(f"ssh://pi@raspberrypi.local:2222?python=~/venv/bin/python3&key={key}&emulated=1")
    assert (t.user, t.host, t.port, t.python, t.key, t.emulated) == (
        "pi", "raspberrypi.local", 2222, "~/venv/bin/python3", str(key), True)
    assert t.url == "ssh://pi@raspberrypi.local:2222?python=~/venv/bin/python3"  # its name: no key path
    assert parse_url("ssh://board").user is None and parse_url("ssh://board").python == "python3"
    monkeypatch.setenv("POCKETBERT_SSH_KEY", str(key))
    assert parse_url("ssh://board").key == str(key)
    with pytest.raises(UsageError, match="valid: python, key, known_hosts, tmp, emulated"):
        parse_url("ssh://board?pyhton=/usr/bin/python3")
    with pytest.raises(UsageError, match="port must be a number"):
        parse_url("ssh://board:22x")
    with pytest.raises(UsageError, match="use ssh://"):
        parse_url("ssh:///nohost")
    with pytest.raises(UsageError, match="not found"):
        parse_url(f"ssh://board?key={tmp_path / 'missing'}")


RPI4_CPUINFO = """processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41\nCPU part\t: 0xd08\n
processor\t: 1\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n
Hardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4"""


def test_identity_and_throttle_parsing():
    cpu = parse_cpuinfo(RPI4_CPUINFO)
    assert cpu["cpu_model"] == "2x Cortex-A72" and cpu["soc"] == "BCM2835" and cpu["processors"] == 2
    assert cpu["isa_flags"] == ["asimd"]
    cpus = "/sys/devices/system/cpu/cpu{}/cpufreq/{}:{}"
    text = "\n".join([cpus.format(0, "scaling_governor", "ondemand"), cpus.format(1, "scaling_governor", "ondemand"),
                      cpus.format(0, "cpuinfo_max_freq", 1800000), cpus.format(0, "scaling_max_freq", 1800000),
                      "/sys/class/thermal/thermal_zone0/type:cpu-thermal", "/sys/class/thermal/thermal_zone0/temp:61855",
                      "/proc/loadavg:0.52 0.40 0.31 1/123 4567", "time_utc:2026-01-01T00:00:00Z", "throttled=0x0"])
    before = parse_state(text)  # bench.devices.remote: one reader for boards and phones (STATE_SH's output)
    assert before["governor"] == "ondemand" and before["temperature_c"] == {"thermal_zone0:cpu-thermal": 61.9}
    assert before["cores"]["0"] == {"governor": "ondemand", "max_mhz": 1800, "cap_mhz": 1800}
    assert before["load_avg_1m"] == 0.52 and before["soc_temperature_c"] == 61.9
    assert throttle_warnings(before, before) == []
    hot = parse_state(text.replace(":61855", ":84000").replace("=0x0", "=0x20002")
                      .replace("scaling_max_freq:1800000", "scaling_max_freq:1500000"))
    warnings = " | ".join(throttle_warnings(before, hot))
    assert "get_throttled 0x0 -> 0x20002" in warnings and "cpu0 max frequency fell from 1800 to 1500 MHz" in warnings
    assert "hot: SoC at 84 °C" in warnings  # pocketbert.machine.heat_warnings: one rule for boards and phones


# ------------------------------------------------------------------ against a real sshd

@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    why = skip_reason()
    if why:
        pytest.skip(why)
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except (RuntimeError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot start a test sshd here: {e}")
    probe = subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o",
                            f"UserKnownHostsFile={server.known_hosts}", "-i", str(server.key), "-p", str(server.port),
                            f"{server.user}@127.0.0.1", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        server.stop()
        pytest.skip(f"test sshd runs but a key login fails here: {probe.stderr.strip()[-200:]}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny bert-tiny QA ONNX bundle, in a folder whose name needs quoting."""
    from export.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("export") / ODD
    made = run_export(ExportConfig(model="bert-tiny", out=out, targets=["onnx"], precisions=["fp32"],
                                   seq_len=SEQ, parity_samples=2), log=lambda *a: None)
    return made[0]


def _board_dir(tmp_path: Path) -> Path:
    d = tmp_path / ODD / "board tmp"  # where the device's temp folders go (?tmp=)
    d.mkdir(parents=True)
    return d


def _procs_under(folder: Path) -> list[str]:
    """Processes on the "board" whose working folder is inside `folder` (i.e. our workers)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cwd = os.readlink(d / "cwd")
            except OSError:
                continue
            if cwd.startswith(str(folder)):
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{d.name} {cmd[:120]}")
    return found


def _wait_none_under(folder: Path, seconds: float = 20) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := _procs_under(folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="module")
def run_spec(bundle, tmp_path_factory):
    """A worker spec for the bundle over 3 synthetic items (the harness's own contract: the items in it)."""
    from bench.workloads import load_workload
    from export.bundle import read_manifest
    from pocketbert.contracts import WorkerSpec
    from pocketbert.models import load_tokenizer

    m = read_manifest(bundle)
    return WorkerSpec(runtime="onnx", precision="fp32", model="bert-tiny", task="question-answering",
                      items=load_workload("synthetic", load_tokenizer(bundle), SEQ, 3).items,
                      model_path=str(bundle / m.model_file), input_names=m.input_names, shape="fixed", seq_len=SEQ,
                      threads=1, warmup=1, quiet=True, label="ssh test")


@pytest.fixture(scope="module")
def cli_run(sshd, bundle, tmp_path_factory):
    """`pocketbert bench --bundle B --device local ssh://...`: fixed and real length on both."""
    from pocketbert.cli import main

    root = tmp_path_factory.mktemp("cli")
    board = _board_dir(root)
    url = sshd.url(python=sys.executable, tmp=str(board))
    rc = main(["bench", "--bundle", str(bundle), "--device", "local", url, "--seq-len", str(SEQ), "--threads", "1",
               "--warmup", "1", "--limit", "3", "--out", str(root / "results"), "--run-id", "two", "--quiet"])
    return dict(rc=rc, root=root, board=board, out=root / "results" / "two", url=url)


@pytest.mark.heavy
def test_bench_over_ssh_end_to_end(cli_run, sshd, bundle):
    from bench.records import load_records

    assert " " in str(bundle) and ";" in str(bundle)
    assert cli_run["rc"] == 0
    name = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}?python={sys.executable}"
    records = [r.to_dict() for r in load_records([cli_run["out"]])]
    by = {(r["machine"]["device"], r["shape"]): r for r in records}
    assert sorted(by) == [("local", "dynamic"), ("local", "fixed"), (name, "dynamic"), (name, "fixed")]
    for shape in ("fixed", "dynamic"):
        r = by[(name, shape)]
        assert r["status"] == "ok", r["reason"]
        assert r["machine"]["emulated"] is False and r["machine"]["arch"] == "x86_64"
        assert r["machine"]["python"] and r["machine"]["runtime_versions"]["onnxruntime"]
        assert len(r["latency_ms"]) == r["n_items"] == 3 and r["stats"]["latency_ms"]["p50"] > 0
        assert ODD in r["bundle"]
        state = r["device_state"]  # read on the board just before and after the worker
        assert state["before"]["time_utc"] <= state["after"]["time_utc"] and state["warnings"] == []
        assert by[("local", shape)]["device_state"] is None
        # The board ran the same bundle on the same items: the same answers as here.
        assert r["answers_sample"] == by[("local", shape)]["answers_sample"] and r["answers_sample"]
    # One report over both devices, each with its own table.
    report = (cli_run["out"] / "report.md").read_text()
    assert f"## {name}:" in report and "## local:" in report
    # Quoting held (nothing ran from the odd names); the board's temp folder is gone, nothing runs there.
    assert not list(Path(bundle).parent.parent.rglob("PWNED")) and not list(cli_run["board"].parent.rglob("PWNED"))
    assert list(cli_run["board"].iterdir()) == [] and _procs_under(cli_run["board"]) == []


@pytest.mark.heavy
def test_board_without_the_runtime_says_how_to_install(sshd, tmp_path):
    no_site = tmp_path / "python3"  # a real Python that sees no site-packages: no numpy, no onnxruntime
    no_site.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    no_site.chmod(0o755)
    with SshDevice(sshd.url(python=str(no_site))) as dev:
        ok, why = dev.available("onnx")
        assert not ok and "\n" not in why
        assert f"not installed on {dev.name}" in why
        assert f"{no_site} -m pip install onnxruntime==1.32.0 numpy" in why
        assert f"{no_site} -m pip install psutil pydantic (the worker's own" in why  # its CPU/memory accounting, its spec
        ok, why = dev.available("executorch")
        assert not ok and "must be built and installed" in why
        assert dev.info()["python"]  # the board itself is fine
    with SshDevice(sshd.url(python="/nonexistent/python3")) as dev:
        ok, why = dev.available("onnx")
        assert not ok and "no usable Python '/nonexistent/python3'" in why
        assert dev.run_worker(WorkerSpec(threads=1)).error == why


@pytest.mark.heavy
def test_profile_is_made_on_the_board_and_comes_back(run_spec, sshd, tmp_path):
    """bench --profile on a board: the worker profiles there with the runtime's own profiler and the
    profile comes back in its result, beside the plain samples; nothing is left on the board."""
    import dataclasses

    from pocketbert.contracts import Profile

    board = _board_dir(tmp_path)
    with SshDevice(sshd.url(python=sys.executable, tmp=str(board)), log=lambda m: None) as dev:
        result = dev.run_worker(run_spec.replace(profile=True))
    assert not result.error, result.error
    assert len(result.latency_ms) == 3
    p = Profile.from_dict(result.profile, "board result")
    assert p.status == "ok" and p.tool == "onnxruntime profiler" and p.calls == 3, p
    assert p.classes_ms["fp32 GEMM"] > 0 and p.classes_ms["attention"] > 0 and 0 < p.events_ms <= p.wall_ms
    assert list(board.iterdir()) == []  # the trace was written in the worker's temp folder, now gone


@pytest.mark.heavy
def test_timeout_and_ctrl_c_stop_the_worker_on_the_board(run_spec, sshd, tmp_path):
    import dataclasses

    board = _board_dir(tmp_path)
    spec = run_spec.replace(warmup=10**8)
    with SshDevice(sshd.url(python=sys.executable, tmp=str(board)), log=lambda m: None) as dev:
        result = dev.run_worker(spec, timeout_s=2)
        assert result.error == f"timed out after 2 s on {dev.name}; the worker there was stopped"
        assert _procs_under(board) == []  # stopped before run_worker returned
        assert list(Path(dev._session).glob("run.*")) == []
    assert list(board.iterdir()) == []
    # Ctrl-C while the board runs: the same stop, then KeyboardInterrupt goes on up. In a fresh process:
    # in the full suite, SIGINT sent to the pytest process itself (after many in-process library imports)
    # was not seen by this test once it ran after the module's other tests (alone it was).
    # SIGINT's default handler first: a suite started as a background job (`pytest &`) inherits SIGINT
    # ignored, and so would this driver (the board's worker then ran on until the test gave up)
    driver = ("import os, signal, sys, threading\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from bench.devices.ssh import SshDevice\n"
              "from pocketbert.contracts import WorkerSpec\n"
              "spec = WorkerSpec.from_json(sys.stdin.read())\n"
              "with SshDevice(sys.argv[1], log=lambda m: None) as dev:\n"
              "    threading.Timer(2, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
              "    try:\n"
              "        dev.run_worker(spec, timeout_s=120)\n"
              "    except KeyboardInterrupt:\n"
              "        print('interrupted', flush=True)\n")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", driver, sshd.url(python=sys.executable, tmp=str(board))],
                          input=spec.to_json(), capture_output=True, text=True, timeout=180, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.stdout.strip() == "interrupted", (proc.stdout, proc.stderr[-2000:])
    assert _procs_under(board) == [] and list(board.iterdir()) == []  # the worker stopped, its files gone


@pytest.mark.heavy
def test_dropped_connection_mid_run(run_spec, sshd, tmp_path):
    import dataclasses

    board = _board_dir(tmp_path)
    with SshDevice(sshd.url(python=sys.executable, tmp=str(board)), log=lambda m: None) as dev:
        def vanish_when_running():
            deadline = time.monotonic() + 60
            while not _procs_under(board) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            sshd.go_offline()  # sshd and every connection killed: no way in to clean up from here

        killer = threading.Thread(target=vanish_when_running)
        killer.start()
        try:
            result = dev.run_worker(run_spec.replace(warmup=10**8), timeout_s=120)
            killer.join()
            assert result.error.startswith(f"lost the connection to {dev.name} during the run"), result
            assert _wait_none_under(board) == []  # only the board's own watchdog can have stopped the worker
        finally:
            killer.join()
            sshd.start()  # the board is back
        again = dev.run_worker(run_spec, timeout_s=120)  # the device reconnects for the next run
        assert not again.error and len(again.latency_ms) == 3, again
        state = again.device_state  # read on the board just before and after the worker
        assert state["before"]["time_utc"] <= state["after"]["time_utc"] and state["warnings"] == []
        assert state["before"]["load_avg_1m"] is not None
        # This run's folder went with its result; the dropped run's waits for close().
        assert [p.name for p in Path(dev._session).glob("run.*")] == ["run.0001"]
    assert list(board.iterdir()) == []  # close() cleaned up what the dropped run left


@pytest.mark.heavy
def test_full_board_disk_is_a_clear_error(run_spec, sshd, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs as the board's full disk needs root")
    small = tmp_path / "small disk"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with SshDevice(sshd.url(python=sys.executable, tmp=str(small)), log=lambda m: None) as dev:
            result = dev.run_worker(run_spec, timeout_s=60)  # the runner (~90 kB) and bundle do not fit in 64 kB
            assert "the board's disk is full" in result.error and "?tmp=DIR" in result.error
            assert list(Path(dev._session).glob("run.*")) == []
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)])


# ------------------------------------------------------------------ emulated aarch64 board (opt-in)

@pytest.mark.arm
def test_arm_board_matches_x86(sshd, bundle, cli_run):
    """The bundle on an aarch64 Debian root under qemu-user 10, reached over SSH: the same answers
    and start/end logits within tolerance of x86, and records labelled emulated."""
    root = os.environ.get("POCKETBERT_ARM_ROOT")
    if not root or not (Path(root) / "pocketbert-python").is_file():
        pytest.skip("no emulated ARM root: scripts/build_arm_root.sh DIR, then POCKETBERT_ARM_ROOT=DIR")
    from bench.harness import BenchConfig, run_bench
    from bench.records import load_records

    arm_python = str(Path(root) / "pocketbert-python")
    out = cli_run["root"] / "arm"
    with SshDevice(sshd.url(python=arm_python), log=lambda m: None) as dev:
        info = dev.info()
        assert info["emulated"] is True and info["arch"] == "aarch64" and info["cpu_model"].startswith("qemu-user")
        assert dev.available("onnx") == (True, "")
        run_dir = run_bench(BenchConfig(bundles=[bundle], shapes=["fixed", "dynamic"], seq_len=SEQ, threads=1,
                                        warmup=0, limit=3, quiet=True, report=False, out=out, run_id="arm"),
                            device=dev, log=print)
        arm = {r.shape: r.to_dict() for r in load_records([run_dir])}
        x86 = {r.shape: r.to_dict() for r in load_records([cli_run["out"]]) if r.machine.device == "local"}
        for shape, r in arm.items():
            assert r["status"] == "ok", r["reason"]
            assert r["machine"]["emulated"] is True and r["machine"]["arch"] == "aarch64"
            assert r["answers_sample"] == x86[shape]["answers_sample"]
        # Raw logits: the same inputs through onnxruntime on the board (aarch64) and here (x86).
        diff = _logits_diff(dev, bundle, arm_python)
        print(f"max |start/end logits aarch64 - x86| = {diff:.2e}")
        assert diff < 1e-4
    # One report over both machines' records (the emulated one labelled as such).
    from bench.report import render_report

    render_report([run_dir, cli_run["out"]], out / "merged")
    report = (out / "merged" / "report.md").read_text()
    assert report.count("(emulated: functional check only") == 1 and "## local:" in report


LOGITS_PY = """
import json, sys, numpy as np, onnxruntime as ort
feeds = {k: np.array(v, dtype=np.int64) for k, v in json.load(open(sys.argv[2])).items()}
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
print(json.dumps([o.tolist() for o in s.run(None, feeds)]))
"""


def _logits_diff(dev: SshDevice, bundle: Path, arm_python: str) -> float:
    """Run a few seeded inputs through the bundle's model on the board and here; max abs difference."""
    import onnxruntime as ort

    from export.bundle import read_manifest

    manifest = read_manifest(bundle, verify=True)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 1000, size=(4, SEQ)).astype(np.int64)  # bert-tiny: a 1024-token vocab
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feeds = {name: feeds[name] for name in manifest.input_names}
    model = bundle / manifest.model_file
    here = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, feeds)
    session = dev._ensure_session()
    remote_model = dev._send_bundle(model, session)
    dev._put_bytes(json.dumps({k: v.tolist() for k, v in feeds.items()}).encode(), f"{session}/feeds.json", "feeds")
    dev._put_bytes(LOGITS_PY.encode(), f"{session}/logits.py", "script")
    import shlex

    proc = dev._run(" ".join(shlex.quote(a) for a in [arm_python, f"{session}/logits.py", remote_model,
                                                      f"{session}/feeds.json"]), timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    there = [np.array(o) for o in json.loads(proc.stdout)]
    return max(float(np.abs(a - b).max()) for a, b in zip(here, there))


@pytest.mark.parametrize("url, message", [
    ("ftp://board", "unknown device kind 'ftp'"),
    ("ssh://board?pyhton=python3", "unknown option(s) pyhton"),
    ("ssh://board:2x", "port must be a number"),
])
def test_bad_device_is_one_line_before_any_work(url, message, tmp_path, capsys):
    from pocketbert.cli import main

    assert main(["bench", "--device", "local", url, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not any(tmp_path.iterdir())
