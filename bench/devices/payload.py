"""The self-contained runner a remote device runs: a zip of the project's pure-Python code.

`PYTHONPATH=payload.zip python3 -m bench.worker SPEC.json RESULT.json` on the device runs the very
worker code the local bench runs (zipimport), with nothing installed there but python3, the
runtime (numpy + onnxruntime) and the worker's own modules (board.WORKER_REQUIRES: pydantic, psutil). The zip is deterministic (fixed timestamps, sorted names), so its
sha256 names it and a device that already holds it is not sent it again.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path

PACKAGES = ("bench", "pocketbert", "export")  # the worker, its runners and their shared code
ROOT = Path(__file__).resolve().parents[2]


def payload_files(root: Path = ROOT) -> list[Path]:
    """The .py files packed: every module of PACKAGES (no tests, no caches, no data)."""
    files = []
    for pkg in PACKAGES:
        files += [p for p in (root / pkg).rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(files)


@lru_cache(maxsize=1)
def build_payload(root: Path = ROOT) -> tuple[bytes, str]:
    """(zip bytes, sha256 hex) of the runner payload."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in payload_files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, path.read_bytes())
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()
