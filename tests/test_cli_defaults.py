"""One source of defaults: a command's flags left out give exactly its config dataclass's defaults
(the flags read them from the dataclass; this fails when a flag or the mapping to config drifts)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.cli import config_from_args as bench_config
from bench.config import BenchConfig
from export.cli import config_from_args as export_config
from export.pipeline import ExportConfig
from pocketbert.cli import build_parser


def test_bench_flags_default_to_bench_config():
    args = build_parser().parse_args(["bench"])
    assert bench_config(args) == BenchConfig()


def test_export_flags_default_to_export_config(tmp_path):
    out = tmp_path / "b"
    args = build_parser().parse_args(["export", "--model", "bert-tiny", "--out", str(out)])
    assert export_config(args) == ExportConfig(model="bert-tiny", out=Path(out))


def test_every_export_config_field_has_a_flag():
    """A config knob with no flag would have its default written in one place and be unreachable."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["export"]
    dests = {a.dest for a in sub._actions}
    flagless = {f.name for f in dataclasses.fields(ExportConfig)} - dests
    assert flagless == set(), flagless  # each flag's dest is its field's name


def test_distill_flags_default_to_their_configs(tmp_path):
    from distill.cli import _given
    from distill.config import DistillConfig
    from distill.task import TaskConfig

    text, out = tmp_path / "t.txt", str(tmp_path / "run")
    text.write_text("a plain text line\n")
    args = build_parser().parse_args(["distill", "pretrain", "--teacher", "bert-tiny", "--data", str(text), "--out", out])
    assert DistillConfig(**_given(args, DistillConfig)) == DistillConfig(teacher="bert-tiny", data=[str(text)], out=out)
    args = build_parser().parse_args(["distill", "task", "--task", "regression", "--teacher", "bert-tiny",
                                      "--train-file", str(text), "--out", out])
    assert TaskConfig(**_given(args, TaskConfig)) == TaskConfig(task="regression", teacher="bert-tiny",
                                                                train_file=str(text), out=out)


def test_report_and_android_flags_default_to_their_settings(tmp_path):
    from android_demo.cli import AppSettings
    from bench.report_cli import ReportSettings
    from pocketbert.knobs import config_from_args

    assert config_from_args(ReportSettings, build_parser().parse_args(["report", str(tmp_path)])) == ReportSettings()
    for argv in (["android", "bundle", str(tmp_path)], ["android", "install"]):
        assert config_from_args(AppSettings, build_parser().parse_args(argv)) == AppSettings()
