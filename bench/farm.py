"""Benchmark records from device-farm artifacts: AWS Device Farm and Firebase Test Lab.

A farm run of the demo app's benchmark mode leaves its record files (`files/bench/*.json`, or
copies on /sdcard) among the artifacts the farm hands back:
  * Firebase Test Lab (`gcloud firebase test android run ... --directories-to-pull /sdcard/...`):
    a results folder per device, `<model>-<api>-<locale>-<orientation>/artifacts/sdcard/...`, e.g.
    `oriole-33-en-portrait/artifacts/sdcard/pocketbert/record.json`.
  * AWS Device Farm: per job (= device) a "Customer Artifacts" zip (`aws devicefarm list-artifacts
    --type FILE` -> CUSTOMER_ARTIFACT), usually saved as `<device name>/Customer Artifacts.zip` or
    with a prefix (`00012_Customer_Artifacts.zip`).
Files may be renamed or prefixed (`1_record.json`, `record.json.txt`) and zips may nest. Every file
that parses as a `pocketbert-bench/1` record is taken; other JSON is ignored; a record that fails
the schema is reported with its path and skipped. The farm and the device folder are attached to
the record's `machine` (`farm`, `device` = `firebase`/`aws-devicefarm`), so the report shows each
farm device as its own machine next to local and adb runs.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from pocketbert.common import UsageError
from pocketbert.contracts import Record
from pocketbert.readers import json_depth_ok

SCHEMA = "pocketbert-bench/1"
MAX_BYTES = 64 * 2**20  # a record with every raw sample of a big run stays far below this
MAX_ZIP_DEPTH = 3
FIREBASE_DIR = re.compile(r"^(?P<model>[A-Za-z0-9_.]+)-(?P<api>\d+)-(?P<locale>[a-z]{2}(?:[_-][A-Za-z]{2,})?)-"
                          r"(?P<orientation>portrait|landscape)$")
AWS_HINT = re.compile(r"customer[ _]artifacts|devicefarm|device[ _]farm", re.I)


def _candidate(name: str) -> bool:
    """A file that could be a (renamed) record: .json anywhere in the name, or .txt / no extension."""
    base = PurePosixPath(name).name.lower()
    if base.startswith(".") or base.startswith("__macosx"):
        return False
    suffix = PurePosixPath(base).suffix
    return ".json" in base or suffix in ("", ".txt")


def _walk(root: Path) -> Iterator[tuple[str, bytes]]:
    """(location, bytes) of every candidate file under a folder or in a zip, nested zips opened."""
    if root.is_file():
        yield from _file(root.name, root.read_bytes if root.stat().st_size <= MAX_BYTES else None,
                         str(root), depth=0)
        return
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.stat().st_size <= MAX_BYTES:
            yield from _file(p.name, p.read_bytes, str(p), depth=0)


def _file(name: str, read, where: str, depth: int) -> Iterator[tuple[str, bytes]]:
    if read is None:
        return
    if name.lower().endswith(".zip"):
        yield from _zip(read(), where, depth)
    elif _candidate(name):
        data = read()
        if data[:2] == b"PK" and zipfile.is_zipfile(io.BytesIO(data)):  # a zip renamed
            yield from _zip(data, where, depth)
        else:
            yield where, data


def _zip(data: bytes, where: str, depth: int) -> Iterator[tuple[str, bytes]]:
    if depth >= MAX_ZIP_DEPTH:
        return
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir() or info.file_size > MAX_BYTES:
                continue
            yield from _file(PurePosixPath(info.filename).name, lambda i=info: zf.read(i),
                             f"{where}!{info.filename}", depth + 1)


def farm_identity(location: str) -> dict[str, Any]:
    """The farm and the device folder a record came from, read off its artifact path."""
    parts = re.split(r"[/\\!]", location)
    for part in parts:
        m = FIREBASE_DIR.match(part)
        if m:
            return {"provider": "firebase", "device_dir": part, "model_id": m["model"], "api_level": int(m["api"]),
                    "locale": m["locale"], "orientation": m["orientation"]}
    for i, part in enumerate(parts):
        if AWS_HINT.search(part):
            label = parts[i - 1] if i > 0 else ""
            return {"provider": "aws-devicefarm", "device_dir": label, "artifact": part}
    return {"provider": "farm", "device_dir": parts[-2] if len(parts) > 1 else ""}


def find_farm_records(paths: list[Path], warn=None) -> list[dict[str, Any]]:
    """Every pocketbert-bench/1 record under `paths` (folders, zips), validated, farm identity attached."""
    import sys

    warn = warn or (lambda msg: print(f"pocketbert report: {msg}", file=sys.stderr))

    records, seen = [], set()
    for root in map(Path, paths):
        if not root.exists():
            raise UsageError(f"{root} not found: pass farm artifact folders or zips")
        for where, data in _walk(root):
            if data.lstrip()[:1] != b"{":
                continue
            try:
                text = data.decode("utf-8")
                rec = json.loads(text) if json_depth_ok(text) else None
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                continue
            if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
                continue
            problem = _problem(rec)
            if problem:
                warn(f"skipped {where}: {problem}")
                continue
            rec = {**Record.from_dict(rec, where).to_dict(), **rec}  # missing optional fields: their defaults
            key = json.dumps([rec.get(k) for k in ("run_id", "model", "runtime", "precision", "workload", "shape",
                                                   "created_utc", "item_ids")]
                             + [rec["machine"].get("hostname")], default=str)
            if key in seen:
                continue  # the same record, e.g. in a zip and in its unpacked copy
            seen.add(key)
            ident = farm_identity(where)
            machine = rec.setdefault("machine", {})
            if ident["provider"] != "farm":  # a known farm's layout: say so (a plain folder: as it is)
                machine["farm"] = ident
                if machine.get("device") in (None, "", "adb", "local"):
                    machine["device"] = ident["provider"]
                if not machine.get("hostname"):
                    machine["hostname"] = ident.get("model_id") or ident.get("device_dir") or "?"
            rec["_path"] = where
            records.append(rec)
    return records


def _problem(rec: dict[str, Any]) -> str:
    """Why a record with our schema tag is unusable ('' when it is fine)."""
    try:
        Record.from_dict(rec, "record")
    except UsageError as e:
        return str(e).removeprefix("record: ")
    return ""
