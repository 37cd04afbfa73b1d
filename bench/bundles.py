"""Bundles for the benchmark: reuse a cached export, or run `export.pipeline.run_export` once.

Cache layout: <cache>/<model>-<task>-s<seq_len>[-ortopt]/<target>-<precision>/ (a normal bundle).
A cached bundle is reused only when its manifest says it was made from the same model, tokenizer
and settings by the same exporter (git revision); otherwise it is exported again. It is
re-verified (sha256) by the worker's caller before every run.
"""

from __future__ import annotations

import os
import shutil
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
