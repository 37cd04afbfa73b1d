"""Bundles for the benchmark: reuse a cached export, or run `export.pipeline.run_export` once.

Cache layout: <cache>/<model>-<task>-s<seq_len>[-ortopt]/<target>-<precision>/ (a normal bundle).
A cached bundle is reused only when its manifest says it was made from the same model, tokenizer
and settings by the same exporter (git revision); otherwise it is exported again. It is
re-verified (sha256) by the worker's caller before every run.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path


def bundle_dir(cache: Path, model: str, task: str, target: str, precision: str, seq_len: int,
               onnx_optimize: bool = False) -> Path:
    """Where the cached bundle for this combination lives."""
    safe = model.replace("/", "_").strip("._") or "model"
    opt = "-ortopt" if onnx_optimize and target == "onnx" else ""
    return Path(cache) / f"{safe}-{task}-s{seq_len}{opt}" / f"{target}-{precision}"


def ensure_bundle(cache: Path, model: str, task: str, target: str, precision: str, seq_len: int,
                  tokenizer: str | None, onnx_optimize: bool = False, log=print) -> Path:
    """The bundle for (model, task, target, precision, seq_len), exported (parity-checked) if missing."""
    from export.bundle import MANIFEST
    from export.pipeline import ExportConfig, run_export

    out = bundle_dir(cache, model, task, target, precision, seq_len, onnx_optimize)
    if (out / MANIFEST).is_file():
        stale = _stale(out / MANIFEST, model=model, task=task, seq_len=seq_len,
                       tokenizer=tokenizer, onnx_optimize=onnx_optimize)
        if not stale:
            return out
        log(f"cached bundle {out} is stale ({stale}): exporting again")
        shutil.rmtree(out)
    from pocketbert.common import clean_leftovers

    for prefix in (".export-", ".tmp-.export-"):  # left by a killed earlier export (owner pid gone)
        clean_leftovers(out.parent, prefix, log)
    staging = out.parent / f".export-{os.getpid()}-{out.name}"
    cfg = ExportConfig(model=model, out=staging, task=task, targets=[target], precisions=[precision],
                       seq_len=seq_len, tokenizer=tokenizer, onnx_optimize=onnx_optimize)
    log(f"exporting {model} ({task}) -> {target}-{precision} at seq {seq_len}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation chatter would bury the bench's own lines
        made = run_export(cfg, log=lambda msg: None)
    made[0].rename(out)
    shutil.rmtree(staging, ignore_errors=True)
    return out


def _stale(manifest_path: Path, **wanted) -> str:
    """Why a cached bundle does not match the request ('' when it does)."""
    import json

    from pocketbert.common import git_revision

    manifest = json.loads(manifest_path.read_text())
    config = manifest.get("config", {})
    def same(key, a, b):
        if key == "tokenizer" and a and b:  # the same file, however the path was spelled
            return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
        return a == b

    for key, value in wanted.items():
        if not same(key, config.get(key), value):
            return f"{key} {config.get(key)!r} != {value!r}"
    if manifest.get("git_revision") != git_revision():
        return f"made by exporter revision {manifest.get('git_revision')}"
    return ""


# ------------------------------------------------------------------ missing bundles, in parallel

def export_missing(cache: Path, wanted: list[dict], jobs: int, log_path: Path | None = None,
                   log=print, progress: bool = True) -> None:
    """Export the bundles in `wanted` (ensure_bundle keyword arguments) that are not cached yet, up to
    `jobs` at a time, each in its own process (an export is mostly one busy core: on 2 cores the main
    job's four exports take the time of two). Timing starts only after every export is done.

    A failed export is left to the caller's own ensure_bundle, which fails that run with the reason.
    Ctrl-C/SIGTERM: the export processes are stopped and their staging folders cleaned by the next run."""
    import json
    import subprocess
    import sys

    from tqdm import tqdm

    missing = [w for w in wanted if _missing(cache, w)]
    if not missing:
        return
    jobs = max(1, min(jobs, len(missing)))
    bundles = sum("probe" not in w for w in missing)
    probes = f" and {len(missing) - bundles} GEMM probe program(s)" if bundles < len(missing) else ""
    log(f"exporting {bundles} bundle(s){probes}, {jobs} at a time (cached under {cache} for later runs)")
    out = open(log_path, "a") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    running: list[subprocess.Popen] = []
    queue = list(missing)
    bar = tqdm(total=len(missing), desc="export", unit="bundle", leave=False, disable=not progress,
               mininterval=1.0)
    try:
        while queue or running:
            while queue and len(running) < jobs:
                args = json.dumps({**queue.pop(0), "cache": str(cache)})
                running.append(subprocess.Popen([sys.executable, "-m", "bench.bundles", args],
                                                stdout=out, stderr=out, stdin=subprocess.DEVNULL))
            time.sleep(0.2)
            done = [p for p in running if p.poll() is not None]
            running = [p for p in running if p.poll() is None]
            bar.update(len(done))
    finally:
        bar.close()
        for p in running:  # interrupted: nothing keeps exporting behind the user's back (an export
            p.kill()       # holds signals until its lowering step ends; its staging folder names its pid)
        for p in running:
            p.wait()
        if log_path:
            out.close()


def _missing(cache: Path, w: dict) -> bool:
    from export.bundle import MANIFEST

    if "probe" in w:
        from bench.machine import probe_program_path

        return not probe_program_path(cache, w["probe"]).is_file()

    path = bundle_dir(cache, w["model"], w["task"], w["target"], w["precision"], w["seq_len"],
                      w.get("onnx_optimize", False))
    return not (path / MANIFEST).is_file() or bool(_stale(
        path / MANIFEST, model=w["model"], task=w["task"], seq_len=w["seq_len"], tokenizer=w.get("tokenizer"),
        onnx_optimize=w.get("onnx_optimize", False)))


if __name__ == "__main__":  # one export of export_missing: python -m bench.bundles '{"cache": ..., ...}'
    import json
    import sys

    from pocketbert.common import install_signal_handlers

    install_signal_handlers()  # SIGTERM from the parent: staging cleaned like Ctrl-C
    kw = json.loads(sys.argv[1])
    cache = Path(kw.pop("cache"))
    if "probe" in kw:  # the XNNPACK GEMM probe of ExecuTorch rows
        from bench.machine import PROBE_N, probe_program_path, xnnpack_probe_program

        xnnpack_probe_program(kw["probe"], PROBE_N, probe_program_path(cache, kw["probe"]))
    else:
        ensure_bundle(cache, log=lambda msg: None, **kw)
