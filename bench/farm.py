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
farm device as its own machine next to local and adb runs. Read only when asked: `pocketbert report
--farm ARTIFACTS...` (bench.records.load_records(farm=True)), or a .zip given by name; a plain
record load never opens a zip.
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


def find_farm_records(paths: list[Path], warn=None) -> list[Record]:
    """Every pocketbert-bench/1 record under `paths` (folders, zips), validated, farm identity attached
    to its machine, located (`Record.source`: the artifact path, zip!member)."""
    import sys

    warn = warn or (lambda msg: print(f"pocketbert report: {msg}", file=sys.stderr))

    records, seen = [], set()
    for root in map(Path, paths):
        if not root.exists():
            raise UsageError(f"{root} not found: pass farm artifact folders or zips")
        for where, data in _walk(root):
            rec = _record(where, data, warn)
            if rec is None:
                continue
            key = json.dumps([rec.run_id, rec.model, rec.runtime, rec.precision, rec.workload, rec.shape,
                              rec.created_utc, rec.item_ids, rec.machine.hostname])
            if key in seen:
                continue  # the same record, e.g. in a zip and in its unpacked copy
            seen.add(key)
            records.append(_with_identity(rec, farm_identity(where)).model_copy(update={"source": where}))
    return records


def _record(where: str, data: bytes, warn) -> Record | None:
    """The record in a candidate file; None for anything else (other JSON, text), and for a record with
    our schema tag that is unusable (said why through `warn`)."""
    if data.lstrip()[:1] != b"{":
        return None
    try:
        text = data.decode("utf-8")
        tagged = json.loads(text) if json_depth_ok(text) else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(tagged, dict) or tagged.get("schema") != SCHEMA:
        return None
    try:
        return Record.from_dict(tagged, "record")
    except UsageError as e:
        warn(f"skipped {where}: {str(e).removeprefix('record: ')}")
        return None


def _with_identity(rec: Record, ident: dict[str, Any]) -> Record:
    """A known farm's layout said on the record's machine (a plain folder: as it is)."""
    if ident["provider"] == "farm":
        return rec
    machine = rec.machine
    update = {"farm": ident}
    if machine.device in (None, "", "adb", "local"):
        update["device"] = ident["provider"]
    if not machine.hostname:
        update["hostname"] = ident.get("model_id") or ident.get("device_dir") or "?"
    return rec.replace(machine=machine.model_copy(update=update))
