"""One benchmark run in a fresh process: `python -m bench.worker SPEC.json RESULT.json`.

A fresh process per (runtime, precision, shape) keeps runtimes from sharing thread pools or
allocator state, and makes its peak RSS that runtime's alone. The worker:
  read the spec (with its items) -> baseline RSS -> load runtime (timed) -> first inference (timed apart) -> warm-up
  -> [CPU snapshot, 2 GEMM probes] -> timed loop (model time, post-processing time per item)
  -> [2 GEMM probes, CPU snapshot] (again, up to spec.remeasure times, while only the pace moved)
  -> [bare loop] -> peak RSS -> result.
The probes and snapshots around the loop are the record's trust evidence (bench.trust judges it):
the probe runs the precision's GEMM (fp32, or the int8 integer GEMM) in the library the runtime
already loaded, so the peak is measured in the same process, at the same threads, at the same moment.
Library output (warnings, C++ logging) goes to RESULT.log and comes back in the result's `log`, so
the console shows only the tool's lines; the progress bar still goes to the original stderr.
It writes RESULT.json (a `pocketbert.contracts.WorkerResult`: the samples, or the error) when it
ends; on Ctrl-C it exits 130 without writing anything.
SPEC.json is a `pocketbert.contracts.WorkerSpec`, read once: it carries the items it times. Beyond
the stdlib the run path needs numpy, the runtime, pydantic (the spec) and psutil (CPU and memory
accounting) alone (bench.devices.board.WORKER_REQUIRES), so the same file runs on a board's Python.
"""

from __future__ import annotations

import importlib
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import cpu_snapshot, cpu_window, gemm_probe
from bench.trust import judge
from bench.workloads import postprocess
from pocketbert.backends import LoadRequest, get_runtime
from pocketbert.common import UsageError, fds_redirected, write_text_atomic
from pocketbert.contracts import Profile, WorkerResult, WorkerSpec
from pocketbert.inputs import pad_inputs
from pocketbert.profile import profile_run


def _rss_mb() -> float:
    """This process's resident memory now."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    """This process's peak RSS. On Linux and Android VmHWM of /proc/self/status (psutil does not give
    it), not ru_maxrss: ru_maxrss survives fork+exec, so a worker would inherit the parent's peak (the
    harness holds models and tokenizers)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


_PROGRESS = None  # the original stderr, kept for the progress bar while library output goes to the log
# tasks whose per-item answers come back (short strings: a span, a pair's cosine, labels per word) to be scored
ANSWERED_TASKS = ("question-answering", "feature-extraction", "token-classification")
LOG_TAIL_CHARS = 20000  # how much of the worker's library output comes back in its result


def read_log(log_path: Path) -> str:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        return log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""


def timed_loop(runner, items, feeds, task: str, spec, post: bool = True):
    """The measured loop: per item, model time over its windows, then post-processing time."""
    try:
        from tqdm import tqdm
    except ImportError:  # a board's Python may lack tqdm: no bar, same loop
        def tqdm(it, **_):
            return it

    latency_ms, post_ms, answers = [], [], []
    clock = time.perf_counter
    loop_t0 = clock()
    for item, item_feeds in zip(tqdm(items, desc=spec.label, unit="item", mininterval=1.0, leave=False,
                                     file=_PROGRESS or sys.stderr, disable=spec.quiet), feeds):
        t0 = clock()
        outputs = [runner(f) for f in item_feeds]
        t1 = clock()
        if post:
            answers.append(postprocess(task, outputs, item.post))
        t2 = clock()
        latency_ms.append((t1 - t0) * 1e3)
        post_ms.append((t2 - t1) * 1e3)
    return latency_ms, post_ms, answers, clock() - loop_t0


def run_spec(spec: WorkerSpec) -> WorkerResult:
    """Execute one WorkerSpec in this process: its samples and trust evidence."""
    import numpy as np

    items = spec.items
    if not items:
        raise UsageError(f"{spec.label or 'worker spec'}: no items to time")
    names = spec.input_names
    task = spec.task
    feeds = []
    for item in items:
        calls = [{n: np.asarray([f[n]], dtype=np.int64) for n in names} for f in item.features]
        feeds.append([pad_inputs(c, spec.seq_len) for c in calls] if spec.shape == "fixed" else calls)
    backend = get_runtime(spec.runtime)
    t0 = time.perf_counter()
    for module in backend.runtime_modules:
        importlib.import_module(module)
    import_ms = (time.perf_counter() - t0) * 1e3
    baseline_rss = _rss_mb()

    t0 = time.perf_counter()
    request = LoadRequest(names, spec.threads, Path(spec.model_path) if spec.model_path else None,
                          spec.model or None, task, spec.precision)
    runner, facts = backend.load(request)
    load_ms = (time.perf_counter() - t0) * 1e3

    t0 = time.perf_counter()
    runner(feeds[0][0])
    first_ms = (time.perf_counter() - t0) * 1e3
    for i in range(spec.warmup):
        runner(feeds[i % len(feeds)][0])

    # the runtime's own GEMM where it has a probe program (Runtime.probe), else the process's library
    probe = {"runtime": spec.runtime, "program": spec.probe_program} if spec.probe_program else {}

    def measured():  # the timed loop between its trust evidence
        snap_before = cpu_snapshot()
        probe_before = steady_probe(spec.precision, spec.threads, **probe)
        loop = timed_loop(runner, items, feeds, task, spec)
        probe_after = steady_probe(spec.precision, spec.threads, **probe)
        return loop, trust_facts(snap_before, cpu_snapshot(), probe_before, probe_after)

    (latency_ms, post_ms, answers, loop_s), trust = measured()
    remeasured = []  # the attempts set aside, raw samples and reasons kept
    while len(remeasured) < spec.remeasure and (why := pace_moved_alone(trust, spec.threads)):
        remeasured.append({"reasons": why, "latency_ms": latency_ms,
                           **{k: trust.get(k) for k in ("gemm_before_median_gflops", "gemm_after_median_gflops",
                                                        "other_cpu_cores", "steal_pct")}})
        (latency_ms, post_ms, answers, loop_s), trust = measured()
    trust["remeasured"] = remeasured

    bare_s = null_s = None
    if spec.overhead_check:
        # (a) The same calls with no timing, bookkeeping, progress bar or post-processing.
        clock = time.perf_counter
        t0 = clock()
        for item_feeds in feeds:
            for f in item_feeds:
                runner(f)
        bare_s = clock() - t0
        # (b) The timed loop around a runner that does nothing: exactly the harness's own cost
        # (clock reads, appends, progress bar), free of the run-to-run noise that (a) carries.
        null_s = timed_loop(lambda f: None, items, feeds, task, spec, post=False)[3]

    seq_lens_fed = [[int(next(iter(x.values())).shape[1]) for x in f] for f in feeds]  # any input: own names
    return WorkerResult(
        import_ms=import_ms, load_ms=load_ms, first_inference_ms=first_ms, latency_ms=latency_ms,
        postprocess_ms=post_ms, loop_s=loop_s, trust=trust, bare_loop_s=bare_s, null_loop_s=null_s,
        threads_effective=facts.get("threads_effective"), model_bytes=facts.get("model_bytes"),
        baseline_rss_mb=baseline_rss, peak_rss_mb=_peak_rss_mb(), answers_sample=[str(a)[:80] for a in answers[:5]],
        answers=[str(a) for a in answers] if task in ANSWERED_TASKS else [],
        features_per_item=[len(f) for f in feeds], tokens_fed=[sum(n) for n in seq_lens_fed], seq_lens_fed=seq_lens_fed,
        profile=_profile(spec, backend, request, runner, feeds))


def _profile(spec: WorkerSpec, backend, request, runner, feeds) -> Profile | None:
    """--profile: one more pass of the calls under the runtime's own profiler, after the plain loop and
    its peak RSS (a profiled pass costs time, and maybe a second session)."""
    if not spec.profile:
        return None
    with tempfile.TemporaryDirectory(prefix="pocketbert-profile-") as work:
        return profile_run(backend, request, runner, [f for item in feeds for f in item], Path(work))


def steady_probe(precision: str, threads: int | None, **kw) -> dict:
    """Two GEMM probes back to back, the faster (by median call) kept: on a quiet 2-vCPU VM one 0.3 s
    probe in a few came out 30-35% slow (a quiet main job: medians 238 -> 157, 80 -> 124 GFLOP/s with
    no other process running), a glitch the second probe does not share; a real change of the
    machine's pace (a competing load) slows both."""
    probes = [gemm_probe(precision, threads, **kw) for _ in range(2)]
    return max(probes, key=lambda p: p.get("median_gflops") or 0)


def pace_moved_alone(trust: dict, threads: int | None) -> list[str]:
    """The reasons a timed loop is noisy when only the machine's pace moved (bench.trust.judge; /proc
    saw no other process), else []: such a loop is worth re-timing in the same process. A shared
    machine stays shared: that is the parent's --retries, in a fresh worker."""
    verdict = judge(dict(trust), os.cpu_count(), threads)
    return verdict["reasons"] if verdict["noisy"] and not verdict["shared"] else []


def trust_facts(a: dict, b: dict, probe_before: dict, probe_after: dict) -> dict:
    """The trust evidence of one timed loop: load average before/after, other processes' CPU and
    steal over the window from the first probe to the last (>= 0.6 s, so jiffies resolve it), and
    both probes. The peak is the better probe: a fraction of it above 100% is a measurement error."""
    w = cpu_window(a, b)
    best = [p["gflops"] for p in (probe_before, probe_after) if p.get("gflops")]
    probe = probe_before or probe_after
    return {"load_before": a["load_avg_1m"], "load_after": b["load_avg_1m"], "window_s": w["wall_s"],
            "own_cpu_cores": w["own_cpu_cores"], "other_cpu_cores": w["other_cpu_cores"],
            "steal_pct": w["steal_pct"],
            "gemm_before_gflops": probe_before.get("gflops"), "gemm_after_gflops": probe_after.get("gflops"),
            "gemm_before_median_gflops": probe_before.get("median_gflops"),
            "gemm_after_median_gflops": probe_after.get("median_gflops"),
            "gemm_peak_gflops": max(best) if best else None, "peak_kind": probe.get("kind"),
            "gemm_library": probe.get("library"), "gemm_n": probe.get("n")}


def _stop_quietly(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop_quietly)  # the parent stops a worker with SIGTERM: like Ctrl-C, no traceback
    spec_path, result_path = Path(argv[0]), Path(argv[1])
    log_path = result_path.with_suffix(".log")
    global _PROGRESS
    with fds_redirected(log_path) as (_, _PROGRESS):  # library output to the log; the bar to the console
        try:
            result = run_spec(WorkerSpec.read(spec_path))
        except KeyboardInterrupt:
            return 130
        except Exception as e:  # noqa: BLE001 - reported to the parent as a failed record
            error = str(e) if isinstance(e, UsageError) else f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            import traceback

            traceback.print_exc()  # into the log: the console gets the one-line error
            result = WorkerResult(error=error)
        result.log = read_log(log_path)
        write_text_atomic(result_path, result.to_json())
        return 1 if result.error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
