"""Render report.md, results.csv and PNG plots from benchmark records.

Pass one or more result folders (or record files), e.g. from several machines or devices: their
records merge into one report.
  pocketbert report results/20261125T140000Z
  pocketbert report results/laptop results/phone --out results/merged
  pocketbert report --paper results/<paper-run>     # also paper.md (Table 3 + QA study vs the paper)
  pocketbert report --farm firebase-results/ "Customer Artifacts.zip" --out results/farm   # device farms
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench.paper import write_paper_report
from bench.report import render_report
from pocketbert import argtypes as t
from pocketbert.common import UsageError
from pocketbert.knobs import add_knob, knob


@dataclass
class ReportSettings:
    """`pocketbert report`'s settings: each flag is generated from its field (pocketbert.knobs)."""
    out: Path | None = knob(None, rule=t.output_root, none="the first results folder")  # where to write
    paper: bool = False  # a paper-mode folder: also write paper.md
    farm: bool = False  # read device-farm artifact layouts (bench/farm.py); a plain folder never is


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=t.existing_path, help="result folders or record files")
    add_knob(p, ReportSettings, "out", "where to write")
    add_knob(p, ReportSettings, "paper", "a paper-mode folder: also write paper.md")
    add_knob(p, ReportSettings, "farm", "the results are device-farm artifacts (Firebase Test Lab folders, AWS "
             "Device Farm zips, renamed or zipped record files): read the records out of their layouts "
             "(bench/farm.py); a .zip given is read so without it")


def run(args) -> int:
    out = args.out or (args.results[0] if args.results[0].is_dir() else args.results[0].parent)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is not a folder")
    if args.paper:
        print(write_paper_report(args.results[0]))
        return 0
    for path in render_report(args.results, out, farm=args.farm):
        print(path)
    return 0
