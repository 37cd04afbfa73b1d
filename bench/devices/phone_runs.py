"""What runs on a phone for one bench run, over the adb transport (bench/devices/adb.py), one function
per `via`: the pocketbert demo app's benchmark activity (via=app), ExecuTorch's minibench app
(via=minibench) or a runner binary (via=runner). Each returns the record the phone made of the run
(WorkerResult.record); a failure is a one-line AdbError. `dev` is the AdbDevice: its shell, put,
send_bundle and stop_quietly."""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

from bench.devices import minibench
from bench.devices.remote import RemoteError as AdbError
from bench.devices.remote import last_line
from export.bundle import read_manifest
from pocketbert.common import UsageError
from pocketbert.contracts import Item, Record, WorkerSpec

APP_PACKAGE = "org.pocketbert.demo"
APP_COMPONENT = f"{APP_PACKAGE}/.BenchmarkActivity"
APP_INSTALL_HINT = "install the demo app: `cd android_demo && ./gradlew installDebug` (a debuggable build: run-as)"
REMOTE_ROOT = "/data/local/tmp/pocketbert"
POLL_S = 0.5  # how often a finished result file is looked for


def wait_file(dev, pkg: str, rel: str, deadline: float, what: str, timeout_s: float) -> str:
    """Poll `run-as pkg cat rel` until it holds JSON; the app dying without it is an error."""
    gone = 0
    while True:
        status, text = dev.shell(f"run-as {pkg} cat {shlex.quote(rel)}", check=False)
        if status != 0 and re.search(r"run-as: .*(not debuggable|unknown package|Could not set capabilities)",
                                     text):
            raise AdbError(f"{dev.name}: cannot read {pkg}'s results ({last_line(text)}): "
                           "install its debug build (run-as needs a debuggable app)")
        if status == 0 and text.strip():
            try:
                json.loads(text)
                return text
            except json.JSONDecodeError:
                pass  # still being written
        if time.monotonic() > deadline:
            raise AdbError(f"{dev.name}: {what} timed out after {timeout_s:.0f} s (no result yet)")
        status, _ = dev.shell(f"pidof {pkg}", check=False)
        gone = gone + 1 if status != 0 else 0
        if gone >= 3:  # not running for three polls in a row, and no result
            raise AdbError(f"{dev.name}: {pkg} stopped without a result (crashed? "
                           f"`adb -s {dev.serial} logcat -d | tail -50`)")
        time.sleep(POLL_S)


def run_app(dev, spec: WorkerSpec, deadline: float, timeout_s: float) -> dict[str, Any]:  # the device's record
    ok, why = dev.available(spec.runtime)
    if not ok:
        raise AdbError(why)
    if spec.task != "question-answering":
        raise AdbError(f"the demo app's benchmark mode runs question-answering workloads, not {spec.task} "
                       "(use via=minibench or via=runner to time the model alone)")
    model_path = spec.model_path
    manifest = read_manifest(Path(model_path).parent, verify=False)  # verified when the run was planned
    remote = dev.send_bundle(model_path, ["manifest.json", "vocab.txt", manifest.model_file])
    workload = app_workload(spec.items, Path(model_path).parent / "vocab.txt", spec.task)
    name = f"workload-{uuid.uuid4().hex[:8]}.json"
    dev.put({name: json.dumps(workload).encode()}, f"{REMOTE_ROOT}/workloads")
    remote_wl = f"{REMOTE_ROOT}/workloads/{name}"
    dev.shell(f"chmod -R a+rX {shlex.quote(REMOTE_ROOT)}", check=False)
    if not dev.copied_in:
        rec = launch_app(dev, remote, remote_wl, spec, deadline, timeout_s)
    if dev.copied_in or (rec.status != "ok" and _unreadable_tmp(rec.reason)):
        # SELinux keeps this phone's apps out of /data/local/tmp: copy the inputs into the app's
        # own files folder, pass paths relative to it (BENCHMARK_PROTOCOL.md), and keep doing so.
        dev.copied_in = True
        dev.shell(f"run-as {APP_PACKAGE} sh -c " + shlex.quote(
            f"mkdir -p files/in/bundles files/in/workloads && cp -r {shlex.quote(remote)} files/in/bundles/ "
            f"&& cp {shlex.quote(remote_wl)} files/in/workloads/"))
        rec = launch_app(dev, _in_app(remote), _in_app(remote_wl), spec, deadline, timeout_s)
        dev.shell(f"run-as {APP_PACKAGE} rm -f {shlex.quote('files/' + _in_app(remote_wl))}", check=False)
    if not dev.gone:
        dev.shell(f"rm -f {shlex.quote(remote_wl)}", check=False)
    if rec.status != "ok":
        raise AdbError(f"the app: {rec.reason or rec.status}")
    return rec.replace(notes={"source": f"{APP_PACKAGE} BenchmarkActivity", **rec.notes}).to_dict()


def launch_app(dev, bundle: str, workload: str, spec: WorkerSpec, deadline: float, timeout_s: float) -> Record:
    """One `am start` of the app's benchmark activity; its record (whatever its status), read through
    the Record model: a result that is no pocketbert-bench record is one line naming the phone."""
    result_name = f"pb-{uuid.uuid4().hex[:12]}.json"
    result_rel = shlex.quote(f"files/bench/{result_name}")
    dev.shell(f"run-as {APP_PACKAGE} rm -f {result_rel}", check=False)
    extras = [("--es", "bundle", bundle), ("--es", "workload", workload), ("--ei", "iterations", "1"),
              ("--ei", "warmup", str(spec.warmup or 0)), ("--ei", "threads", str(spec.threads or 0)),
              ("--es", "shape", spec.shape or "dynamic"), ("--ei", "seq_len", str(spec.seq_len)),
              ("--es", "run_id", spec.label or "pocketbert"), ("--es", "result", result_name)]
    try:
        am_start(dev, APP_COMPONENT, extras)
        text = wait_file(dev, APP_PACKAGE, f"files/bench/{result_name}", deadline, "the demo app", timeout_s)
    finally:
        dev.stop_quietly()
        if not dev.gone:
            dev.shell(f"run-as {APP_PACKAGE} rm -f {result_rel}", check=False)
    try:
        return Record.from_json(text, f"{dev.name}: the app's result")
    except UsageError as e:
        raise AdbError(str(e)) from None


def am_start(dev, component: str, extras: list[tuple[str, str, str]]) -> None:
    args = " ".join(f"{flag} {shlex.quote(k)} {shlex.quote(v)}" for flag, k, v in extras)
    _, out = dev.shell(f"am start -S -W -n {shlex.quote(component)} {args}", timeout=120)
    if re.search(r"^Error|Exception|does not exist", out, flags=re.M):
        raise AdbError(f"{dev.name}: am start {component}: {last_line(out)}")


def run_minibench(dev, spec: WorkerSpec, deadline: float, timeout_s: float) -> dict[str, Any]:  # the device's record
    ok, why = dev.available(spec.runtime)
    if not ok:
        raise AdbError(why)
    if spec.shape == "dynamic":
        raise AdbError("via=minibench feeds fixed-shape all-ones inputs: run it with --shape fixed")
    model_path = Path(spec.model_path)
    items = len(spec.items)
    name = minibench.minibench_model_name(spec.model or model_path.parent.name, spec.precision or "fp32")
    remote = dev.send_bundle(str(model_path), [model_path.name], rename={model_path.name: name})
    num_iter, warmup = max(items, 1), int(spec.warmup or 0)
    launches = []
    for _ in range(dev.opts.launches):
        dev.shell(f"run-as {minibench.PACKAGE} rm -f {minibench.RESULT_FILE}", check=False)
        try:
            am_start(dev, minibench.COMPONENT, [("--es", "model_dir", remote), ("--ei", "num_iter", str(num_iter)),
                                                 ("--ei", "num_warm_up_iter", str(warmup))])
            text = wait_file(dev, minibench.PACKAGE, minibench.RESULT_FILE, deadline, "minibench", timeout_s)
        finally:
            dev.stop_quietly()
        try:
            launches.append(minibench.parse_results(text))
        except ValueError as e:
            raise AdbError(f"{dev.name}: {e}") from None
    try:
        rec = minibench.launches_to_record(launches, num_iter, warmup)
    except ValueError as e:
        raise AdbError(f"{dev.name}: {e}") from None
    if rec["status"] != "ok":
        raise AdbError(rec["reason"])
    seq = int(spec.seq_len or 0)
    rec["tokens"] = {"real": seq * rec["n_model_calls"], "fed": seq * rec["n_model_calls"]}
    return rec


def run_runner(dev, spec: WorkerSpec, deadline: float, timeout_s: float) -> dict[str, Any]:  # the device's record
    if spec.shape == "dynamic":
        raise AdbError("via=runner feeds fixed-shape all-ones inputs: run it with --shape fixed")
    runner = Path(dev.opts.runner)
    model_path = Path(spec.model_path)
    remote_bin = dev.send_bundle(str(runner), [runner.name]) + "/" + runner.name
    dev.shell(f"chmod 755 {shlex.quote(remote_bin)}")
    remote = dev.send_bundle(str(model_path), [model_path.name])
    items, warmup = max(len(spec.items), 1), int(spec.warmup or 0)
    base = f"{shlex.quote(remote_bin)} --model_path={shlex.quote(remote + '/' + model_path.name)} " \
           f"--num_executions={items + warmup + 1}"
    threads = spec.threads
    budget = max(deadline - time.monotonic(), 1.0)
    _, since = dev.shell("date +%s", check=False)  # logcat -T: this run's lines only
    try:
        status, out = dev.shell(base + (f" --cpu_threads={int(threads)}" if threads else ""),
                                 timeout=budget, check=False)
        if status != 0 and threads and "cpu_threads" in out:  # an older runner without the flag
            status, out = dev.shell(base, timeout=budget, check=False)
    except AdbError as e:
        if "timed out" in str(e):
            dev.stop_quietly()
            raise AdbError(f"{dev.name}: the runner timed out after {timeout_s:.0f} s") from None
        raise
    if status != 0:
        raise AdbError(f"{dev.name}: runner exited {status}: {last_line(out) or 'no output'}")
    source = "stdout"
    if not (_ITER.search(out) or _TOTAL.search(out)) and since.strip().isdigit():
        _, log = dev.shell(f"logcat -d -v raw -s {minibench.RUNNER_LOG_TAG} -T {since.strip()}.000", check=False)
        out, source = f"{out}\n{log}", f"logcat (tag {minibench.RUNNER_LOG_TAG})"
    rec = parse_runner_output(out, warmup=warmup + 1, seq_len=int(spec.seq_len or 0))
    rec["notes"]["runner"] = runner.name
    rec["notes"]["runner_output"] = source
    return rec


def app_workload(items: list[Item], vocab: Path, task: str) -> dict[str, Any]:
    """The spec's items as the app's workload file (question/context text; one window -> max_tokens).

    The question is the item's text when the items carry it, else decoded from its input ids with
    the bundle's vocab (uncased WordPiece round-trips)."""
    words = vocab.read_text(encoding="utf-8").splitlines() if vocab.is_file() else []
    out = []
    for it in items:
        ids = _ids(it.features[0])
        question = it.post.get("question") or _decode_question(ids, words)
        item = {"id": it.id, "question": question, "context": it.post.get("context", "")}
        if len(it.features) == 1:
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
        raise AdbError(f"runner output has no timing lines ({last_line(text) or 'empty'})")
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
