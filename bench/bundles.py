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
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from bench.machine import PROBE_N, probe_program_path
from bench.model_probe import UnreadableModel, read_plain_facts
from export.bundle import MANIFEST, read_manifest, verify_files
from export.pipeline import ExportConfig, run_export
from export.targets import get_target
from pocketbert import replace
from pocketbert.backends import get_runtime, plain_suffixes
from pocketbert.claims import claim, refuse_if_in_use
from pocketbert.common import UsageError, clean_leftovers, git_revision, install_signal_handlers, sha256_file
from pocketbert.inputs import FEATURES
from pocketbert.models import config_parameters
from pocketbert.tasks import task_names


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
    return stale_reason(json.loads((out / MANIFEST).read_text()), model=model, task=task, seq_len=seq_len,
                        tokenizer=tokenizer, onnx_optimize=onnx_optimize)


def read_cached(out: Path, want: dict) -> dict | None:
    """The manifest of the cached bundle `out` when it serves the export `want` (ensure_bundle's
    arguments): read, validated and its files verified, once; None when it is missing or stale. A bad
    manifest or file is a UsageError naming it."""
    if not (out / MANIFEST).is_file():
        return None
    manifest = read_manifest(out, verify=False)
    if stale_reason(manifest, model=want["model"], task=want["task"], seq_len=want["seq_len"],
                    tokenizer=want.get("tokenizer"), onnx_optimize=want.get("onnx_optimize", False)):
        return None
    verify_files(out, manifest)
    return manifest


def open_bundle(cache: Path, want: dict, log=print) -> dict:
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


def stale_reason(manifest: dict, **wanted) -> str:
    """Why a cached bundle's manifest does not match the request ('' when it does)."""
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


# ------------------------------------------------------------------------- plain model files (peers)
#
# A model file the user already has (an optimum-cli ONNX folder or file, an optimum-executorch .pte,
# any .onnx/.pte) has no manifest. `read_plain_file` derives what the harness needs from the file
# itself and hands back a manifest-shaped dict (plus a "peer" entry), so a peer runs through exactly
# the same plan, worker and record as a bundle.

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
def is_plain_file(path: Path) -> bool:
    return Path(path).is_file() and Path(path).suffix in plain_suffixes()


def find_plain_files(root: Path) -> list[Path]:
    """Model files at `root` (a file, or a folder holding .onnx/.pte files, e.g. optimum-cli's
    output), else in its direct subfolders that have no manifest.json."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    here = sorted(p for p in root.iterdir() if is_plain_file(p))
    if here:
        return here
    return sorted(p for d in sorted(root.iterdir()) if d.is_dir() and not (d / "manifest.json").exists()
                  for p in d.iterdir() if is_plain_file(p))


def plain_file_error(path: Path) -> str:
    """The one line for a path that is neither a bundle nor a model file we can time."""
    kinds = ", ".join(f"a {s} file" for s in plain_suffixes())
    what = (f"{path} ({Path(path).suffix or 'no suffix'})" if Path(path).is_file()
            else f"folder {path}" if Path(path).is_dir() else f"{path} not found")
    return (f"{what}: expected a pocketbert bundle (manifest.json), an export --out folder, {kinds}, "
            "or a folder holding one (e.g. optimum-cli's output)")


def feature_for(name: str) -> str | None:
    """Which tokenizer output feeds a file's input called `name` (None: not one we know)."""
    n = name.lower()
    if n in FEATURES:
        return n
    if "type" in n or "segment" in n:
        return "token_type_ids"
    if "mask" in n:
        return "attention_mask"
    if n in ("ids", "input", "inputs", "tokens", "x") or "input_id" in n or "token_id" in n:
        return "input_ids"
    return None


def map_inputs(path: Path, names: list[str]) -> list[str]:
    """The tokenizer feature of each input (one-line UsageError naming what it expected)."""
    features = [feature_for(n) for n in names]
    unknown = [n for n, f in zip(names, features) if f is None]
    if unknown or len(set(features)) != len(features):
        problem = (f"cannot map input(s) {', '.join(unknown)}" if unknown
                   else f"two inputs map to the same feature ({', '.join(names)})")
        raise UsageError(f"{path}: {problem}: expected inputs named like {', '.join(FEATURES)} "
                         "(ids / mask / type or segment)")
    return features


def read_plain_file(path: Path, task: str | None = None, labels: dict[Path, str] | None = None,
                    seq_len: int = 384) -> dict:
    """A manifest-shaped dict for a plain .onnx/.pte file: backend from the suffix, inputs (names,
    dtypes, fixed or dynamic length) and outputs read from the file, task from the outputs (or the
    `task` hint), precision from the graph (.onnx) or the name (.pte), tokenizer and config.json
    from its folder, and its sha256 (re-checked before it is timed)."""
    path = Path(path)
    runtime = plain_suffixes().get(path.suffix)
    if runtime is None:
        raise UsageError(plain_file_error(path))
    try:
        facts = read_plain_facts(runtime, path, seq_len)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt file: one line, not a traceback
        raise UnreadableModel(f"{path}: cannot read it as {runtime.plain_file.what} "
                         f"({type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''})")
    features = map_inputs(path, facts["input_names"])
    derived = _task_from_outputs(facts["outputs"])
    if not (task or derived):
        shapes = "; ".join(f"{o['name']} {o['shape']}" for o in facts["outputs"])
        raise UsageError(f"{path}: cannot tell its task from its outputs ({shapes}): pass --task "
                         f"({' | '.join(task_names())})")
    folder = path.parent
    config = _config_beside(folder)
    size = path.stat().st_size
    tokenizer = folder if any((folder / f).is_file() for f in TOKENIZER_FILES) else None
    label = (labels or {}).get(path, path.name)
    return {
        "target": runtime.name, "precision": facts["precision"], "task": task or derived,
        "model_type": config.get("model_type", ""), "source": label, "model_file": path.name,
        "seq_len": facts["seq_len"] or seq_len, "dynamic_seq": facts["seq_len"] is None,
        "inputs": [{"name": n, "feature": f, "dtype": d, "shape": s} for n, f, d, s in
                   zip(facts["input_names"], features, facts["dtypes"], facts["shapes"])],
        "outputs": facts["outputs"], "files": {path.name: {"bytes": size, "sha256": sha256_file(path)}},
        "parameters": _parameters(config, task or derived, facts.get("parameters")), "config": config,
        "peer": {"file": str(path), "label": label, "precision_from": facts["precision_from"],
                 "task_from": "--task" if task else "outputs", "tokenizer": str(tokenizer) if tokenizer else None,
                 "config_json": bool(config)},
    }


GENERIC_STEMS = ("model", "model_quantized")  # optimum-cli's file names: the folder says which one it is


def peer_labels(paths: list[Path]) -> dict[Path, str]:
    """Each file's record label: its name, or parent-name when the name says little (optimum-cli
    writes model.onnx / model_quantized.onnx into every folder) or two files share it."""
    count = Counter(p.name for p in paths)
    return {p: p.name if count[p.name] == 1 and p.stem not in GENERIC_STEMS else f"{p.parent.name}-{p.name}"
            for p in paths}


def verify_plain_file(manifest: dict) -> None:
    """The file is still the one read at the start (sha256), or a one-line UsageError."""
    path = Path(manifest["peer"]["file"])
    meta = manifest["files"][manifest["model_file"]]
    if not path.is_file() or path.stat().st_size != meta["bytes"] or sha256_file(path) != meta["sha256"]:
        raise UsageError(f"{path} changed since the run started (sha256): not timing another file")


def _task_from_outputs(outputs: list[dict]) -> str | None:
    names = [o["name"].lower() for o in outputs]
    if len(outputs) == 2 and ("start_logits" in names or all(len(o["shape"]) == 2 for o in outputs)):
        return "question-answering"
    if len(outputs) == 1 and names[0] in ("sentence_embedding", "last_hidden_state"):
        return "feature-extraction"  # ours (pooled) or a bare encoder's token states (pooled after the call)
    if len(outputs) == 1 and len(outputs[0]["shape"]) == 2:
        return "sequence-classification"
    if len(outputs) == 1 and len(outputs[0]["shape"]) == 3:
        return "fill-mask"
    return None


def _config_beside(folder: Path) -> dict:
    p = Path(folder) / "config.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else {}
    except (OSError, ValueError):
        return {}


def _parameters(config: dict, task: str, counted: dict | None) -> dict[str, int]:
    """From config.json (the HF model built on the meta device: what our bundles report), else
    the file's own weight count, else zeros (a .pte with no config.json beside it)."""
    return ((config.get("model_type") and config_parameters(config, task)) or counted
            or {"total": 0, "non_embedding": 0})
