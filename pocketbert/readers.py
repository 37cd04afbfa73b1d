"""Bounded readers: every file pocketbert reads is first checked to be a regular file of bounded
size (a FIFO named `x.json` would block a reader forever, a folder named `x.json` or a 10 GB file
would end in a traceback or fill memory), and every malformed one is a one-line UsageError naming
the file (and the field, where the caller knows it). stdlib only.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from pocketbert.errors import UsageError

# One source of the limits, with their reasons.
JSON_LIMIT_BYTES = 64 << 20  # the largest JSON we write (a bench record with raw samples) is a few MB
TEXT_LIMIT_BYTES = 64 << 20  # vocab.txt / merges / TSV data files: tens of MB at most
JSON_MAX_DEPTH = 64  # our contracts nest 4-5 levels; deeper is not ours (and would hit Python's recursion limit)


def check_regular_file(path: Path, limit: int, what: str = "file") -> int:
    """The size of `path` when it is a regular file of at most `limit` bytes; else a one-line
    UsageError naming it (checked before opening: a FIFO or device is never opened)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"{what} {path} not found") from None
    except OSError as e:
        raise UsageError(f"cannot read {what} {path} ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{what} {path} is not a regular file (a pipe, socket or device): refusing to read it")
    if st.st_size > limit:
        raise UsageError(f"{what} {path} is {st.st_size / 1e6:.1f} MB, more than the {limit / 1e6:.0f} MB such a "
                         "file can be: not one pocketbert wrote")
    return st.st_size


def read_bytes_bounded(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (re-checked on the open descriptor, so
    a file swapped for a FIFO in between is not read either)."""
    check_regular_file(path, limit, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise UsageError(f"cannot read {what} {path} ({e.strerror or e})") from None
    with open(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{what} {path} is not a regular file: refusing to read it")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UsageError(f"{what} {path} grew past {limit / 1e6:.0f} MB while being read")
    return data


def read_text_bounded(path: Path, limit: int = TEXT_LIMIT_BYTES, what: str = "file") -> str:
    data = read_bytes_bounded(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text") from None


def json_depth_ok(text: str, max_depth: int = JSON_MAX_DEPTH) -> bool:
    """Whether the JSON text nests at most `max_depth` arrays/objects (checked before parsing)."""
    depth, in_str, esc = 0, False, False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_json(text: str, where: str) -> Any:
    """JSON from `text`, or a one-line UsageError naming `where` (bad syntax, too deep). A contract's
    file is parsed by its model (pocketbert.contract_base) with the same two checks."""
    check_json_depth(text, where)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise json_error(e, where) from None


def check_json_depth(text: str, where: str) -> None:
    """A one-line UsageError naming `where` when the JSON text nests too deep to be ours."""
    if not json_depth_ok(text):
        raise UsageError(f"{where} nests deeper than {JSON_MAX_DEPTH} levels: not a file pocketbert wrote")


def json_error(e: Exception, where: str) -> UsageError:
    """A JSON syntax error (or RecursionError) as one line naming `where`."""
    return UsageError(f"{where} is not valid JSON ({str(e).splitlines()[0][:100]})")


def read_json_bounded(path: Path, limit: int = JSON_LIMIT_BYTES, what: str = "JSON file") -> Any:
    """Parsed JSON of a bounded regular file, or a one-line UsageError naming it."""
    return parse_json(read_text_bounded(path, limit, what), str(path))


def field(data: Any, name: str, where: str, kind: type | tuple[type, ...] = object) -> Any:
    """`data[name]` of the expected kind, or a one-line UsageError naming the file and the field."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object")
    if name not in data:
        raise UsageError(f"{where}: lacks the field {name!r}")
    value = data[name]
    if kind is not object and (not isinstance(value, kind) or (isinstance(value, bool) and bool not in
                                                                 (kind if isinstance(kind, tuple) else (kind,)))):
        raise UsageError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
    return value
