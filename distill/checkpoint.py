"""Atomic checkpoints: write a temp file, fsync, os.replace, then move the `latest.json` pointer;
older checkpoints are pruned only after the new one is complete, so a kill or a full disk at any
moment leaves the last good checkpoint in place."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

from pocketbert.common import UsageError, write_json

from pocketbert.outputs import check_output_dir, mark_output


def latest_checkpoint(ckdir: Path) -> Path | None:
    pointer = Path(ckdir) / "latest.json"
    if not pointer.exists():
        return None
    try:
        return Path(ckdir) / json.loads(pointer.read_text())["file"]
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"checkpoint pointer {pointer} is corrupt ({e}): pass --resume "
                         "PATH to a ckpt-*.pt file") from None


def save_checkpoint(ckdir: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    import torch

    ckdir = Path(ckdir)
    ckdir.mkdir(parents=True, exist_ok=True)
    final = ckdir / f"ckpt-{step:07d}.pt"
    tmp = ckdir / f".{final.name}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        write_json(ckdir / "latest.json", {"step": step, "file": final.name})
    except OSError as e:
        tmp.unlink(missing_ok=True)
        (ckdir / ".latest.json.tmp").unlink(missing_ok=True)
        last = latest_checkpoint(ckdir)
        raise UsageError(f"could not write checkpoint {final.name} ({e.strerror or e}; out of "
                         f"disk?): the last good checkpoint {last or 'none'} is kept") from None
    old = sorted(ckdir.glob("ckpt-*.pt"))
    for p in old[:-keep] if keep > 0 else []:
        if p != final:
            p.unlink(missing_ok=True)
    return final


def _numpy_rng_types() -> list:
    """What numpy's RNG state (in every checkpoint's `rng`) unpickles through; nothing else is allowed."""
    import numpy as np

    return [np.dtype, np.ndarray, np._core.multiarray._reconstruct, type(np.dtype(np.uint32))]


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} not found")
    try:
        with torch.serialization.safe_globals(_numpy_rng_types()):
            state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    except pickle.UnpicklingError as e:  # something beyond them: a pickle that would run code is never run
        raise UsageError(f"checkpoint {path} holds more than tensors and plain data "
                         f"({' '.join(str(e).split())[:160]}): not loaded") from None
    except Exception as e:  # noqa: BLE001 - truncated/corrupt files raise many types
        raise UsageError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}): "
                         "resume from an earlier ckpt-*.pt with --resume PATH") from None
    if not isinstance(state, dict) or "student" not in state or "step" not in state:
        raise UsageError(f"{path} is not a pocketbert distill checkpoint")
    return state


def check_fingerprint(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """A resume must use the same teacher, student, data and batch layout to continue exactly."""
    diff = [k for k in current if saved.get(k) != current[k]]
    if diff:
        detail = "; ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {current[k]!r}" for k in diff)
        raise UsageError(f"checkpoint {path} does not match this run ({detail}): use the same "
                         "settings or a new --out")


def resume_path(out: Path, ckdir: Path, resume: str) -> Path:
    """`--resume` (or `--resume CKPT`): the checkpoint a run continues from."""
    path = Path(resume) if resume != "latest" else latest_checkpoint(ckdir)
    if path is None:
        raise UsageError(f"nothing to resume in {out}: no checkpoints/latest.json (run "
                         "without --resume first)")
    return path


def prepare_run_dir(out: Path, ckdir: Path, resume: str | None, overwrite: bool,
                    stale: tuple[str, ...] = ("metrics.jsonl", "summary.json")) -> Path | None:
    """A training run's folder: on resume, the checkpoint to continue from; else a fresh (or
    --overwrite'n) folder marked as ours, with no stale checkpoints or results in it."""
    if resume:
        return resume_path(out, ckdir, resume)
    check_output_dir(out, overwrite, replaces=False)  # a fresh run removes only its own stale files, never the folder
    if overwrite:  # a fresh run: no stale checkpoints or metrics from an earlier one
        shutil.rmtree(ckdir, ignore_errors=True)
        for name in stale:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out)  # ours: --overwrite may replace it later
    return None
