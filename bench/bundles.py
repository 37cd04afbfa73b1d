"""Bundles for the benchmark: reuse a cached export, or run `export.pipeline.run_export` once.

Cache layout: <cache>/<model>-<task>-s<seq_len>[-ortopt]/<target>-<precision>/ (a normal bundle).
A cached bundle is reused only when its manifest says it was made from the same model, tokenizer
and settings by the same exporter (git revision); otherwise it is exported again. It is
verified (sha256) once per bench run, when the harness opens it, before any timing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from bench.machine import PROBE_N, probe_program_path
from export.bundle import MANIFEST, read_manifest, verify_files
from export.pipeline import ExportConfig, run_export
from export.targets import get_target
from pocketbert import replace
from pocketbert.backends import get_runtime
from pocketbert.claims import claim, refuse_if_in_use
from pocketbert.common import UsageError, clean_leftovers, git_revision, install_signal_handlers
from pocketbert.contracts import Manifest


def bundle_dir(cache: Path, model: str, task: str, target: str, precision: str, seq_len: int,
               onnx_optimize: bool = False) -> Path:
    """Where the cached bundle for this combination lives."""
    safe = model.replace("/", "_").strip("._") or "model"
    knobs = {"onnx_optimize": onnx_optimize}  # the export knobs the bench passes through
    opt = "".join(f"-{tag}" for knob, tag in get_target(target).cache_tags.items() if knobs.get(knob))
    return Path(cache) / f"{safe}-{task}-s{seq_len}{opt}" / f"{target}-{precision}"


def ensure_bundle(cache: Path, model: str, task: str, target: str, precision: str, seq_len: int,
                  tokenizer: str | None, onnx_optimize: bool = False, log=print) -> Path:
    """The bundle for (model, task, target, precision, seq_len), exported (parity-checked) if missing."""
    out = bundle_dir(cache, model, task, target, precision, seq_len, onnx_optimize)
    stale = cache_state(out, model, task, seq_len, tokenizer, onnx_optimize)
    if not stale:
        return out
    with claim(out, "--bundle-cache", wait=True):  # a second bench exporting the same bundle waits, then reuses it
        replace.recover(out, log)  # an export killed mid-swap: finished or undone first
        stale = cache_state(out, model, task, seq_len, tokenizer, onnx_optimize)
        if not stale:
            return out
        if stale != "missing":
            refuse_if_in_use(out, "--bundle-cache")  # another bench is timing the stale bundle
            log(f"cached bundle {out} is stale ({stale}): exporting again")
        for prefix in (".export-", ".tmp-.export-"):  # left by a killed earlier export (owner pid gone)
            clean_leftovers(out.parent, prefix, log)
        staging = Path(tempfile.mkdtemp(prefix=f".export-{os.getpid()}-", dir=out.parent))
        try:
            cfg = ExportConfig(model=model, out=staging / "export", task=task, targets=[target], precisions=[precision],
                               seq_len=seq_len, tokenizer=tokenizer, onnx_optimize=onnx_optimize,
                               int8_mode="dynamic")  # auto would build and time both int8 modes: +100 s of a main job
            log(f"exporting {model} ({task}) -> {target}-{precision} at seq {seq_len}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # exporter deprecation chatter would bury the bench's own lines
                made = run_export(cfg, log=lambda msg: None)
            replace.swap_in(made[0], out, log)  # the old (stale) bundle stays until the new one is in place
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out


def cache_state(out: Path, model: str, task: str, seq_len: int, tokenizer: str | None,
                onnx_optimize: bool) -> str:
    """'' when `out` holds a usable cached bundle for the request, 'missing', or why it is stale."""
    if not (out / MANIFEST).is_file():
        return "missing"
    try:
        manifest = read_manifest(out, verify=False)
    except UsageError as e:  # a killed or older export's manifest: made again
        return f"unreadable ({e})"
    return stale_reason(manifest, model=model, task=task, seq_len=seq_len, tokenizer=tokenizer,
                        onnx_optimize=onnx_optimize)


def read_cached(out: Path, want: dict) -> Manifest | None:
    """The manifest of the cached bundle `out` when it serves the export `want` (ensure_bundle's
    arguments): read, validated and its files verified, once; None when it is missing or stale. A bad
    manifest or file is a UsageError naming it."""
    if not (out / MANIFEST).is_file():
        return None
    manifest = read_manifest(out, verify=False)
    if stale_reason(manifest, model=want["model"], task=want["task"], seq_len=want["seq_len"],
                    tokenizer=want.get("tokenizer"), onnx_optimize=want.get("onnx_optimize", False)):
        return None
    verify_files(out, manifest.files)
    return manifest


def open_bundle(cache: Path, want: dict, log=print) -> Manifest:
    """The manifest of the bundle `want` asks for (ensure_bundle's arguments), read and verified
    once: the cached one, else exported here first (an export that failed in export_missing fails
    here again, with its reason)."""
    out = bundle_dir(cache, want["model"], want["task"], want["target"], want["precision"], want["seq_len"],
                     want.get("onnx_optimize", False))
    manifest = read_cached(out, want)
    if manifest is None:
        t0 = time.perf_counter()
        ensure_bundle(cache, log=log, **want)
        if time.perf_counter() - t0 > 1:
            log(f"  exported {out} in {time.perf_counter() - t0:.0f} s")
        manifest = read_manifest(out, verify=True)
    return manifest


def stale_reason(manifest: Manifest, **wanted) -> str:
    """Why a cached bundle's manifest does not match the request ('' when it does)."""
    config = manifest.config  # the export's config, as it resolved it
    def same(key, a, b):
        if key == "tokenizer" and a and b:  # the same file, however the path was spelled
            return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
        return a == b

    for key, value in wanted.items():
        if not same(key, config.get(key), value):
            return f"{key} {config.get(key)!r} != {value!r}"
    if manifest.git_revision != git_revision():
        return f"made by exporter revision {manifest.git_revision}"
    return ""


# ------------------------------------------------------------------ missing bundles, in parallel

def export_missing(cache: Path, wanted: list[dict], jobs: int, log_path: Path | None = None,
                   log=print, progress: bool = True, meanwhile=None) -> None:
    """Export the bundles in `wanted` (ensure_bundle keyword arguments) that are not cached yet, up to
    `jobs` at a time, each in its own process (an export is mostly one busy core: on 2 cores the main
    job's four exports take the time of two). Timing starts only after every export is done.

    A failed export is left to the caller's own ensure_bundle, which fails that run with the reason.
    `meanwhile()`, if given, runs once in this process right after the first exports start (the
    caller's light work, e.g. tokenizing the workload, overlaps them); with nothing to export it
    simply runs.
    Ctrl-C/SIGTERM: the export processes are stopped and their staging folders cleaned by the next run."""
    from tqdm import tqdm

    missing = [w for w in wanted if _missing(cache, w)]
    if not missing:
        if meanwhile:
            meanwhile()
        return
    jobs = max(1, min(jobs, len(missing)))
    bundles = sum("probe" not in w for w in missing)
    probes = f" and {len(missing) - bundles} GEMM probe program(s)" if bundles < len(missing) else ""
    log(f"exporting {bundles} bundle(s){probes}, {jobs} at a time (cached under {cache} for later runs)")
    out = open(log_path, "a") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    started: list[subprocess.Popen] = []
    stopping = threading.Lock()  # held while a job starts its process, and by the stop below
    stopped = False

    def export_one(w: dict) -> int:
        """One export job in its own `python -m bench.bundles` process; the bundles it made."""
        with stopping:
            if stopped:
                return 0
            p = subprocess.Popen([sys.executable, "-m", "bench.bundles", json.dumps({**w, "cache": str(cache)})],
                                 stdout=out, stderr=out, stdin=subprocess.DEVNULL)
            started.append(p)
        p.wait()
        return len(w.get("probe", [None]))

    bar = tqdm(total=len(missing), desc="export", unit="bundle", leave=False, disable=not progress,
               mininterval=1.0)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="export")  # a thread waits on each process
    try:
        pending = {pool.submit(export_one, w) for w in export_jobs(missing)}  # started in this order
        if meanwhile:  # once, with the first exports running
            meanwhile()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            bar.update(sum(f.result() for f in done))
    finally:
        bar.close()
        with stopping:  # interrupted: nothing keeps exporting behind the user's back (an export holds
            stopped = True  # signals until its lowering step ends; its staging folder names its pid)
            for p in started:
                if p.poll() is None:
                    p.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        if log_path:
            out.close()


def export_jobs(missing: list[dict]) -> list[dict]:
    """The export processes to start, longest first (export_cost): a runtime's probe programs share
    one process (one exporter import, ~10 s, instead of two)."""
    runtimes = dict.fromkeys(w["runtime"] for w in missing if "probe" in w)
    jobs = [w for w in missing if "probe" not in w] + [
        {"probe": [w["probe"] for w in missing if w.get("runtime") == r and "probe" in w], "runtime": r}
        for r in runtimes]
    return sorted(jobs, key=export_cost, reverse=True)


def export_cost(w: dict) -> float:
    """The rough time of one export job of export_jobs (ExportTarget.export_seconds, GemmProbe's),
    for scheduling; unknown pairs in the middle. Started longest first (probe, ExecuTorch fp32, probe,
    ExecuTorch int8, ONNX), the main job's exports took 195 s on 2 vCPUs, the longest lowering
    (~100 s, single-threaded Python) overlapping everything else."""
    if "probe" in w:
        return get_runtime(w["runtime"]).probe.export_seconds + 5 * (len(w["probe"]) - 1)
    return get_target(w["target"]).export_seconds.get(w["precision"], 30)


def _missing(cache: Path, w: dict) -> bool:
    if "probe" in w:
        return not probe_program_path(cache, w["runtime"], w["probe"]).is_file()
    optimize = w.get("onnx_optimize", False)
    out = bundle_dir(cache, w["model"], w["task"], w["target"], w["precision"], w["seq_len"], optimize)
    return bool(cache_state(out, w["model"], w["task"], w["seq_len"], w.get("tokenizer"), optimize))


if __name__ == "__main__":  # one export of export_missing: python -m bench.bundles '{"cache": ..., ...}'
    install_signal_handlers()  # SIGTERM from the parent: staging cleaned like Ctrl-C
    kw = json.loads(sys.argv[1])
    cache = Path(kw.pop("cache"))
    if "probe" in kw:  # a runtime's GEMM probe programs (export_jobs: a list of kinds), built by its target
        runtime = get_runtime(kw["runtime"])
        for kind in kw["probe"]:
            get_target(runtime.bundle_target).build_probe(kind, PROBE_N, probe_program_path(cache, runtime.name, kind))
    else:
        ensure_bundle(cache, log=lambda msg: None, **kw)
