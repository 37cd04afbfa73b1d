"""Typed argparse validators: every value a user can give a pocketbert flag goes through one.

Each validator is an argparse `type=` callable that returns the parsed value or raises
`argparse.ArgumentTypeError` with a short reason; the CLI's parser prints it as ONE line naming the
flag (`pocketbert bench: error: argument --limit: must be at least 1, got 0`) and exits 2 before
any work starts, so a bad value never creates a file. Each carries a `kind` (see `KINDS`), which the
tests read to feed every flag the invalid values its kind implies: a new flag is covered the day
it is added, and a flag without a validator fails that test.

stdlib only, and nothing above the foundation: a validator that needs a command's own module (a
workload, an eval-data spec, a device URL) is built here from `data_spec` / `checked_file` and lives
in that command's cli.py. Registries are looked up when a value is parsed, not when the parser is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from pocketbert.outputs import is_cwd_or_parent, writable_dir
from pocketbert.models import PRESETS

# kind -> what the walker test feeds it (see tests/test_hardening.py)
KINDS = ("int", "float", "choice", "name", "existing_file", "text_file", "existing_dir",
         "existing_path", "output_dir", "output_root", "model", "tokenizer", "spec", "text")


def _validator(kind: str, name: str, fn: Callable[[str], Any], **facts: Any) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            return fn(value)
        except argparse.ArgumentTypeError:
            raise
        except Exception as e:  # noqa: BLE001 - a reader's UsageError/OSError: one line, the flag named
            raise argparse.ArgumentTypeError(_one_line(e)) from None

    parse.kind = kind  # type: ignore[attr-defined]
    parse.facts = facts  # type: ignore[attr-defined]
    parse.__name__ = name  # argparse names the type in some messages
    return parse


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def _fail(msg: str) -> None:
    raise argparse.ArgumentTypeError(msg)


# ------------------------------------------------------------------------------------ numbers

def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer in [lo, hi] (either bound may be open)."""
    def parse(value: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            _fail(f"expected an integer, got {value!r}")
        if lo is not None and n < lo:
            _fail(f"must be at least {lo}, got {n}" if hi is None else f"must be {lo}..{hi}, got {n}")
        if hi is not None and n > hi:
            _fail(f"must be at most {hi}, got {n}" if lo is None else f"must be {lo}..{hi}, got {n}")
        return n
    return _validator("int", "integer", parse, lo=lo, hi=hi)


positive_int = int_range(1)
nonneg_int = int_range(0)


def float_range(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                hi_open: bool = False) -> Callable[[str], float]:
    """A finite float in the interval (bounds open or closed; None: unbounded)."""
    def parse(value: str) -> float:
        try:
            x = float(value.strip())
        except ValueError:
            _fail(f"expected a number, got {value!r}")
        if not math.isfinite(x):
            _fail(f"must be a finite number, got {value.strip()}")
        if lo is not None and (x <= lo if lo_open else x < lo):
            _fail(f"must be {'greater than' if lo_open else 'at least'} {lo:g}, got {x:g}")
        if hi is not None and (x >= hi if hi_open else x > hi):
            _fail(f"must be {'less than' if hi_open else 'at most'} {hi:g}, got {x:g}")
        return x
    return _validator("float", "number", parse, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)


positive_float = float_range(0.0, lo_open=True)
nonneg_float = float_range(0.0)
fraction = float_range(0.0, 1.0)  # [0, 1]


# ------------------------------------------------------------------------------------ choices

def choice(names: Iterable[str] | Callable[[], Iterable[str]], what: str) -> Callable[[str], str]:
    """One of a registry's names (a callable is asked when a value is parsed: registries load lazily)."""
    def parse(value: str) -> str:
        valid = sorted(names() if callable(names) else names)
        if value not in valid:
            _fail(f"unknown {what} '{value}': choose one of {', '.join(valid)}")
        return value
    return _validator("choice", what, parse, names=names)


def _safe_name(value: str) -> str:
    """A single folder name (no separators, no '..', not absolute): stays inside its parent."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or os.sep in value \
            or value.startswith("~") or "\0" in value:
        _fail(f"must be a plain folder name (no '/', '..' or absolute path), got {value!r}")
    return value


safe_name = _validator("name", "name", _safe_name)


def _text(value: str) -> str:
    """Any non-empty string."""
    if not value.strip():
        _fail("must not be empty")
    return value


text = _validator("text", "text", _text)


# ------------------------------------------------------------------------------------ paths

def _existing_file(value: str) -> Path:
    p = Path(value).expanduser()
    if p.is_dir():
        _fail(f"{value} is a folder, expected a file")
    if not p.is_file():
        _fail(f"file {value} not found")
    return p


def check_text_file(p: Path, value: str) -> None:
    """Non-empty UTF-8 text (no NUL bytes in the first 64 KiB)."""
    with open(p, "rb") as f:
        head = f.read(65536)
    if not head.strip():
        _fail(f"{value} is empty: expected a text file")
    if b"\0" in head:
        _fail(f"{value} looks binary (NUL bytes): expected UTF-8 text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte char cut by the probe is fine
            _fail(f"{value} is not UTF-8 text (bad byte at {e.start})")


def _text_file(value: str) -> Path:
    p = _existing_file(value)
    check_text_file(p, value)
    return p


def _existing_dir(value: str) -> Path:
    p = Path(value).expanduser()
    if p.exists() and not p.is_dir():
        _fail(f"{value} is a file, expected a folder")
    if not p.is_dir():
        _fail(f"folder {value} not found")
    return p


def _existing_path(value: str) -> Path:
    p = Path(value).expanduser()
    if not p.exists():
        _fail(f"{value} not found")
    return p


existing_file = _validator("existing_file", "file", _existing_file)
text_file = _validator("text_file", "text file", _text_file)
existing_dir = _validator("existing_dir", "folder", _existing_dir)
existing_path = _validator("existing_path", "path", _existing_path)


def _check_writable_target(value: str) -> Path:
    if not value.strip():
        _fail("must not be empty")
    p = Path(value).expanduser()
    if p.exists() and not p.is_dir():
        _fail(f"{value} exists and is not a folder")
    probe = p.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        _fail(f"{probe} is a file, so {value} cannot be a folder")
    if not writable_dir(probe):
        _fail(f"cannot write to {probe}: choose a writable folder")
    return p


def _output_dir(value: str) -> Path:
    p = _check_writable_target(value)
    if is_cwd_or_parent(p):
        _fail(f"{value} is the working directory or a parent of it: name a new folder")
    return p


output_dir = _validator("output_dir", "folder", _output_dir)  # a folder we create (or replace)
output_root = _validator("output_root", "folder", _check_writable_target)  # a folder we write into


def as_text(validator: Callable[[str], Any]) -> Callable[[str], str]:
    """The same checks, but the value stays the string the user typed (configs that hold str)."""
    def parse(value: str) -> str:
        validator(value)
        return value
    return _validator(validator.kind, validator.__name__, parse, **validator.facts)


# ------------------------------------------------------------------------------------ domain

def _layer_map(value: str) -> str:
    """'reference', 'every-other' or comma-separated layer indices (checked against the teacher later)."""
    v = value.strip()
    if v in ("reference", "every-other"):
        return v
    parts = [x.strip() for x in v.split(",")]
    if not v or not all(x.isdigit() for x in parts):
        _fail(f"expected 'reference', 'every-other' or layer indices like 0,2,4, got {value!r}")
    if len(set(parts)) != len(parts):
        _fail(f"layer indices repeat in {value!r}")
    return v


layer_map = _validator("text", "layers", _layer_map)


def _checkpoint(value: str) -> str:
    """'latest' or an existing checkpoint file."""
    if value != "latest":
        _existing_file(value)
    return value


checkpoint = _validator("existing_file", "checkpoint", _checkpoint)


def _model(value: str) -> str:
    """A preset, a local folder or a hub id; a path-like value must be an existing folder."""
    v = value.strip()
    if not v:
        _fail("must not be empty")
    p = Path(v).expanduser()
    looks_like_path = v.startswith((".", "/", "~")) or v.count("/") > 1
    if p.exists() and not p.is_dir():
        _fail(f"{value} is a file: pass a model folder, a hub id or a preset")
    if looks_like_path and not p.is_dir():
        _fail(f"model folder {value} not found: pass a Hugging Face folder, a hub id or a preset "
              f"({', '.join(PRESETS)})")
    return v


model = _validator("model", "model", _model)


def _tokenizer(value: str) -> str:
    """A tokenizer folder, or a vocab.txt (non-empty UTF-8 text)."""
    p = Path(value).expanduser()
    if p.is_dir():
        return value
    if not p.exists():
        _fail(f"tokenizer {value} not found: pass a folder with tokenizer.json/vocab.txt or a vocab.txt")
    check_text_file(p, value)
    return value


tokenizer = _validator("tokenizer", "tokenizer", _tokenizer)


def data_spec(check: Callable[[str], None], example: str) -> Callable[[str], str]:
    """'KIND[:PATH]' specs (workloads, eval data), checked by `check` (which reads the file)."""
    def parse(value: str) -> str:
        check(value)
        return value
    return _validator("spec", "spec", parse, example=example)


def checked_file(check: Callable[[str], None]) -> Callable[[str], str]:
    """An existing file that `check` reads and validates now (e.g. a workload's data file)."""
    def parse(value: str) -> str:
        _existing_file(value)
        check(value)
        return value
    return _validator("existing_file", "file", parse)


def validator_kind(action: argparse.Action) -> str | None:
    """The registered kind of a flag's validator, or None when it has none (a test fails then)."""
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return "choice"
    return getattr(action.type, "kind", None)


# ------------------------------------------------------------------------------- mode scopes

@dataclasses.dataclass(frozen=True)
class Scope:
    """A flag that means something only in some modes of its command. Given (set away from its
    default) outside them it would be silently ignored, so the parse refuses it in one line. The
    walker test reads `outside` (arguments that leave the mode) and `inside` (ones that enter it)
    to try every scoped flag, so a scope declared tomorrow is tested without a new test."""
    needs: str  # the mode, for the message: "--target coreml"
    holds: Callable[[argparse.Namespace], bool]
    outside: tuple[str, ...]  # arguments that leave the mode (with the command's defaults otherwise)
    inside: tuple[str, ...]  # arguments that enter it
    example: tuple[str, ...] = ()  # a valid value away from the default (switches: none)


def only_with(parser: argparse.ArgumentParser, flag: str, needs: str, holds: Callable[[argparse.Namespace], bool],
              outside: Iterable[str], inside: Iterable[str], example: Iterable[str] = ()) -> None:
    """Declare that `flag` (already added to `parser`) applies only when `holds(args)`."""
    action = parser._option_string_actions[flag]
    action.scope = Scope(needs, holds, tuple(outside), tuple(inside), tuple(example))  # type: ignore[attr-defined]


def scoped_flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if getattr(a, "scope", None)]


def chosen_parsers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.ArgumentParser]:
    """The parser and the (nested) subcommand parsers these args went through."""
    chain = [parser]
    while True:
        sub = next((a for a in chain[-1]._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or getattr(args, sub.dest, None) not in sub.choices:
            return chain
        chain.append(sub.choices[getattr(args, sub.dest)])


def check_scopes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The first scoped flag set away from its default outside its mode ends the parse: one line
    (`argument --X: applies with MODE only ...`), exit 2, before any work."""
    for p in chosen_parsers(parser, args):
        for action in scoped_flags(p):
            if getattr(args, action.dest, action.default) != action.default and not action.scope.holds(args):
                p.error(f"argument {'/'.join(action.option_strings)}: applies with {action.scope.needs} "
                        "only (here it would be ignored)")
