"""One rule per knob: every flag of every command (read from the argparse definitions, so a flag
added tomorrow is covered) is its command's config field's: the same default, the same choices and
the same range. Ranges are probed at their bounds: a value the flag accepts the config accepts, and
the other way round. A flag with no config field is listed below with its reason, so a new flag
fails here until it is mapped."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from android_demo.cli import AppSettings
from bench.config import BenchConfig, validate_config
from bench.report_cli import ReportSettings
from distill.config import DistillConfig
from distill.task import TaskConfig
from export.config import ExportConfig
from pocketbert import argtypes
from pocketbert.cli import build_parser
from pocketbert.common import UsageError
from pocketbert.knobs import check_knobs, choices_of, config_field, default_text, field_default, knob_of

# command -> its config: the one place its flags' defaults, choices and ranges live
SETTINGS = {"bench": BenchConfig, "export": ExportConfig, "distill pretrain": DistillConfig,
            "distill task": TaskConfig, "report": ReportSettings, "android bundle": AppSettings,
            "android install": AppSettings}

# flags with no config field, each with why
UNMAPPED = {
    "bench --paper": "paper mode: run_paper chooses its own models, workloads and lengths; not a BenchConfig run",
    "bench --stsb": "paper mode's STS-B file: an argument of run_paper",
    "bench --squad": "paper mode's SQuAD file: an argument of run_paper",
    "distill pretrain --overwrite": "how distill() treats an existing --out (pocketbert.outputs), not a training knob",
    "distill pretrain --resume": "which checkpoint distill() continues from; the run's knobs come from its config.json",
    "distill task --overwrite": "how distill_task() treats an existing --out (pocketbert.outputs), not a training knob",
    "distill task --resume": "which checkpoint distill_task() continues from; the knobs come from its config.json",
    "report results": "the records to read: a required input, no default",
    "android bundle bundles": "the bundles to copy: a required input, no default",
}

# config fields with no flag, each with why (their rule still holds: check_knobs checks them)
RECIPE = "a constant of the reference recipe, saved in config.json; a library call may change it"
CONFIG_ONLY = {
    (BenchConfig, "pace_retries"): "re-timing after a quiet machine's pace moved: set by its measured reason",
    **{(DistillConfig, name): RECIPE for name in ("mlm_smoothing", "weight_decay", "adam_eps", "max_grad_norm")},
    (DistillConfig, "log_every"): "how often metrics.jsonl gets a line: bookkeeping, not a training knob",
    **{(TaskConfig, name): RECIPE for name in ("weight_decay", "max_grad_norm")},
}

# flags whose default is None for "not given": required unless --resume (which keeps the saved value),
# so the config's default (for programmatic use and tests) must not stand in for them
NOT_GIVEN = {"distill pretrain --teacher", "distill pretrain --out", "distill task --task", "distill task --teacher",
             "distill task --train-file", "distill task --out"}

# what "the config accepts a value" means: the check each pipeline runs before any work
CHECK = {BenchConfig: validate_config, ExportConfig: ExportConfig.validate, DistillConfig: DistillConfig.validate,
         TaskConfig: TaskConfig.validate, ReportSettings: check_knobs, AppSettings: check_knobs}
# each config's required fields, and others set so that no rule between fields decides a probe
# (--coreml-seq-lens at most --seq-len: probe it below the longest --seq-len)
REQUIRED = {ExportConfig: {"model": "bert-tiny", "out": Path("o"), "seq_len": 4096},
            TaskConfig: {"train_file": "train.tsv"}}


def walk_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from walk_parsers(sub, path + (name,))


def flags(parser: argparse.ArgumentParser):
    """(command, flag name, action) for every argument of every command that has no subcommands."""
    for path, sub in walk_parsers(parser):
        if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            continue
        for a in sub._actions:
            if not isinstance(a, argparse._HelpAction):
                yield " ".join(path), (a.option_strings[-1] if a.option_strings else a.dest), a


def unmapped_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Flags neither generated from their command's config field nor listed in UNMAPPED."""
    out = []
    for cmd, name, a in flags(parser):
        cls, field = getattr(a, "knob", (None, None))
        if f"{cmd} {name}" not in UNMAPPED and (cls is not SETTINGS.get(cmd) or a.dest != field):
            out.append(f"{cmd} {name}")
    return out


MAPPED = [(cmd, name, a) for cmd, name, a in flags(build_parser()) if f"{cmd} {name}" not in UNMAPPED]
IDS = [f"{cmd} {name}" for cmd, name, _ in MAPPED]


def test_every_command_with_flags_has_settings():
    assert {cmd for cmd, _, _ in flags(build_parser())} == set(SETTINGS)


def test_every_flag_comes_from_its_config_field():
    missing = unmapped_flags(build_parser())
    assert not missing, f"flags not generated from their config field (pocketbert.knobs.add_knob): {missing}"
    stale = set(UNMAPPED) - {f"{cmd} {name}" for cmd, name, _ in flags(build_parser())}
    assert not stale, f"UNMAPPED lists flags that no longer exist: {stale}"


def test_every_config_field_has_a_flag_or_a_reason():
    """A field with neither would hold a default nobody can change from the command line unnoticed."""
    reachable = {a.knob for _, _, a in flags(build_parser()) if hasattr(a, "knob")}
    flagless = {(cls, f.name) for cls in set(SETTINGS.values()) for f in dataclasses.fields(cls)} - reachable
    assert flagless == set(CONFIG_ONLY), {(c.__name__, n) for c, n in flagless ^ set(CONFIG_ONLY)}


def test_a_new_hand_written_flag_fails_until_mapped():
    parser = build_parser()
    sub = dict(walk_parsers(parser))[("bench",)]
    sub.add_argument("--new-knob", type=argtypes.positive_int, default=3)
    assert unmapped_flags(parser) == ["bench --new-knob"]


def _field(a: argparse.Action) -> dataclasses.Field:
    return config_field(*a.knob)


@pytest.mark.parametrize("cmd, name, a", MAPPED, ids=IDS)
def test_flag_default_is_the_config_default(cmd, name, a):
    f = _field(a)
    default = field_default(f)
    if f"{cmd} {name}" in NOT_GIVEN:
        assert a.default is None and default is not dataclasses.MISSING, name
    elif default is dataclasses.MISSING:
        assert a.required, f"{name}: the config has no default, so the flag must be required"
    else:
        assert a.default == default, f"{name}: flag default {a.default!r}, config default {default!r}"
        shown = default_text(f)
        if shown:  # the help shows it, generated from the field, not retyped
            assert f"default: {shown}".replace("%", "%%") in a.help, a.help


@pytest.mark.parametrize("cmd, name, a", MAPPED, ids=IDS)
def test_flag_choices_are_the_config_choices(cmd, name, a):
    flag_choices = tuple(sorted(a.choices)) if a.choices is not None else choices_of(a.type)
    assert flag_choices == choices_of(knob_of(_field(a)).rule), name
    for value in (*(flag_choices or ()), "no-such-choice"):
        if flag_choices is not None:
            assert _flag_accepts(a, value) == _config_accepts(a, value), f"{name} {value}"


def _flag_accepts(a: argparse.Action, value: str) -> bool:
    try:
        parsed = a.type(value) if a.type else value
    except (argparse.ArgumentTypeError, ValueError):
        return False
    return a.choices is None or parsed in a.choices


def _config_accepts(a: argparse.Action, value) -> bool:
    cls, name = a.knob
    cfg = cls(**REQUIRED.get(cls, {}))
    f = config_field(cls, name)
    setattr(cfg, name, [value] if isinstance(field_default(f), list) or a.nargs in ("+", "*") else value)
    try:
        CHECK[cls](cfg)
    except UsageError:
        return False
    return True


def _probes(kind: str, *facts: dict) -> list:
    """Values at and around every bound either side names, around 0 and 1, and far out (a check
    written in only one of the two places, where the other names no bound, shows there)."""
    bounds = {0, 1, 100, 1000, 10**6, -10**6} | {b for f in facts for b in (f.get("lo"), f.get("hi")) if b is not None}
    if kind == "int":
        return sorted({int(b) + d for b in bounds for d in (-1, 0, 1)})
    return sorted({float(b) + d for b in bounds for d in (-0.5, -1e-6, 0.0, 1e-6, 0.5)})


NUMERIC = [(cmd, name, a) for cmd, name, a in MAPPED if argtypes.validator_kind(a) in ("int", "float")]


def test_the_range_walker_covers_every_command_with_numbers():
    assert {cmd for cmd, _, _ in NUMERIC} == {"bench", "export", "distill pretrain", "distill task"}
    assert len(NUMERIC) >= 60, len(NUMERIC)


@pytest.mark.parametrize("cmd, name, a", NUMERIC, ids=[f"{c} {n}" for c, n, _ in NUMERIC])
def test_flag_range_is_the_config_range(cmd, name, a):
    rule = knob_of(_field(a)).rule
    assert argtypes.validator_kind(a) == getattr(rule, "kind", None), f"{name}: flag and config differ in kind"
    disagree = [v for v in _probes(a.type.kind, a.type.facts, rule.facts)
                if _flag_accepts(a, repr(v) if isinstance(v, float) else str(v)) != _config_accepts(a, v)]
    assert not disagree, f"{name}: flag and config disagree on {disagree}"


@pytest.mark.parametrize("value", ["0", "0.15", "0.999", "1.0", "1.5", "-0.1"])
def test_mlm_prob_flag_and_config_agree(value):
    """The case that started it: --mlm-prob took 1.0, which DistillConfig.validate refuses."""
    a = next(a for cmd, name, a in MAPPED if cmd == "distill pretrain" and name == "--mlm-prob")
    assert _flag_accepts(a, value) == _config_accepts(a, float(value)), value


def test_a_config_value_out_of_range_is_one_line_naming_the_flag():
    with pytest.raises(UsageError, match=r"^--seq-len: must be 16\.\.512, got 600$"):
        validate_config(BenchConfig(seq_len=600))
    with pytest.raises(UsageError, match=r"^--keep-checkpoints: must be at least 0, got -1$"):
        DistillConfig(keep_checkpoints=-1).validate()
    with pytest.raises(UsageError, match=r"^--min-identical-answers: must be at most 1, got 1\.5$"):
        ExportConfig(model="bert-tiny", out=Path("o"), min_identical_answers=1.5).validate()
    with pytest.raises(UsageError, match=r"^--epochs must be an integer, got 2\.5$"):
        TaskConfig(train_file="t.tsv", epochs=2.5).validate()
