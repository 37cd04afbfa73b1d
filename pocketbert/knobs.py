"""One rule per knob: a config dataclass field holds its default and the reason for it, its rule
(choices or numeric range: a `pocketbert.argtypes` validator) and what a None default means; the
command's flag is generated from that field and the config checks a value by the same rule.

    seq_len: int = knob(384, rule=t.int_range(16, 512), why="the SQuAD window")

    add_knob(parser, BenchConfig, "seq_len", "max tokens per input")
        # --seq-len SEQ_LEN  max tokens per input (16..512; default: 384, the SQuAD window)
    check_knobs(cfg)  # every field's value by its rule: `--seq-len: must be 16..512, got 600`

A flag so generated has `dest` = the field's name (so `config_from_args` is one line) and carries
`action.knob = (config class, field name)`; tests/test_knob_rules.py walks every flag of every
command against its field. Foundation: the standard library and pocketbert.common only.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable

from pocketbert.common import UsageError


@dataclasses.dataclass(frozen=True)
class Knob:
    rule: Callable[[str], Any] | None = None  # an argtypes validator: its kind and facts are the rule
    flag: str | None = None  # when the flag is not --field-name (or --no-field-name for a True switch)
    none: str | None = None  # what a None default means, for the help ("all physical cores")
    why: str | None = None  # the reason for the default, shown in the help beside it


def knob(default: Any = dataclasses.MISSING, *, rule: Callable[[str], Any] | None = None, flag: str | None = None,
         none: str | None = None, why: str | None = None,
         factory: Callable[[], Any] | Any = dataclasses.MISSING) -> Any:
    """A dataclass field carrying its knob rule (`factory`: a mutable default, as default_factory)."""
    return dataclasses.field(default=default, default_factory=factory,
                             metadata={"knob": Knob(rule=rule, flag=flag, none=none, why=why)})


def knob_of(f: dataclasses.Field) -> Knob:
    return f.metadata.get("knob") or Knob()


def config_field(cls, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def field_default(f: dataclasses.Field) -> Any:
    """The field's default (a fresh one for a factory); MISSING when the field has none."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def flag_of(f: dataclasses.Field) -> str:
    """The field's command-line flag: --field-name, --no-field-name for a switch that defaults on."""
    k = knob_of(f)
    if k.flag:
        return k.flag
    return ("--no-" if f.default is True else "--") + f.name.replace("_", "-")


def choices_of(validator: Callable[[str], Any] | None) -> tuple[str, ...] | None:
    """The names a choice validator accepts (asked now: registries load lazily), else None."""
    names = getattr(validator, "facts", {}).get("names")
    if names is None:
        return None
    return tuple(sorted(names() if callable(names) else names))


def default_text(f: dataclasses.Field) -> str | None:
    """How the help shows the field's default: from the field itself, never retyped."""
    value, k = field_default(f), knob_of(f)
    if value is dataclasses.MISSING or isinstance(value, bool):
        return None
    if value is None or value == "" or value == []:
        text = k.none
    elif isinstance(value, (list, tuple)):
        text = " ".join(map(str, value))
    else:
        text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text}, {k.why}" if text and k.why else text


def range_text(rule: Callable[[str], Any] | None) -> str | None:
    """A range bounded on both sides, as the help shows it: 16..512, [0, 1), (0, 1)."""
    facts = getattr(rule, "facts", {})
    lo, hi = facts.get("lo"), facts.get("hi")
    if lo is None or hi is None:
        return None
    if getattr(rule, "kind", None) == "int":
        return f"{lo}..{hi}"
    return f"{'(' if facts['lo_open'] else '['}{lo:g}, {hi:g}{')' if facts['hi_open'] else ']'}"


def add_knob(parser, cls, name: str, help: str, **kw: Any) -> argparse.Action:
    """Add the flag of `cls.name`: its default, validator (choices, range) and the default in its help
    all from the field. `kw`: what only the flag knows (nargs, metavar, required)."""
    f = config_field(cls, name)
    k, default = knob_of(f), field_default(f)
    shown = None if "default" in kw or kw.get("required") else default_text(f)  # a flag's own default: "not given"
    notes = [n for n in (range_text(k.rule), shown and f"default: {shown}") if n]
    text = help + (f" ({'; '.join(notes)})" if notes else "")
    args: dict[str, Any] = {"dest": name, "help": text.replace("%", "%%")}
    if isinstance(default, bool):
        args["action"] = "store_false" if default else "store_true"
    else:
        if default is not dataclasses.MISSING:
            args["default"] = default
        if k.rule is not None:
            args["type"] = k.rule
        names = choices_of(k.rule)
        if names is not None and not callable(k.rule.facts["names"]):
            args["metavar"] = "{" + ",".join(names) + "}"
        else:
            args["metavar"] = flag_of(f).lstrip("-").replace("-", "_").upper()
    action = parser.add_argument(flag_of(f), **{**args, **kw})
    action.knob = (cls, name)  # type: ignore[attr-defined]
    return action


def add_knobs(parser, cls, helps: dict[str, str], **kw: Any) -> None:
    """add_knob for several fields, in order (`kw` applies to each)."""
    for name, help in helps.items():
        add_knob(parser, cls, name, help, **kw)


def config_from_args(cls, args: argparse.Namespace):
    """The config from the parsed flags of its fields (those the parser has; the rest keep their default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})


def check_knobs(cfg: Any) -> None:
    """Check every field of `cfg` whose knob has a choice or number rule: the value (each item of a
    list) must pass the very validator its flag uses. A None value passes where the default is None.
    Raises a one-line UsageError naming the flag: `--seq-len: must be 16..512, got 600`."""
    for f in dataclasses.fields(cfg):
        rule = knob_of(f).rule
        kind = getattr(rule, "kind", None)
        if kind not in ("int", "float", "choice"):
            continue  # paths, models, specs: checked where they are read
        value = getattr(cfg, f.name)
        if value is None and field_default(f) is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            check_value(flag_of(f), rule, item)


def check_value(flag: str, rule: Callable[[str], Any], value: Any) -> None:
    """`value` (already parsed) by its flag's rule: a one-line UsageError naming the flag."""
    kind = getattr(rule, "kind", None)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int" and not (numeric and isinstance(value, int)):
        raise UsageError(f"{flag} must be an integer, got {value!r}")
    if kind == "float" and not numeric:
        raise UsageError(f"{flag} must be a finite number, got {value!r}")
    if kind == "choice" and not isinstance(value, str):
        raise UsageError(f"{flag} must be one of {', '.join(choices_of(rule) or ())}, got {value!r}")
    try:
        rule(repr(float(value)) if kind == "float" else str(value))
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"{flag}: {e}") from None
