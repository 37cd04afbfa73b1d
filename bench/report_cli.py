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
from pathlib import Path

from bench.paper import write_paper_report
from bench.report import render_report
from pocketbert import argtypes as t
from pocketbert.common import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=t.existing_path, help="result folders or record files")
    p.add_argument("--out", type=t.output_root, default=None,
                   help="where to write (default: the first results folder)")
    p.add_argument("--paper", action="store_true", help="a paper-mode folder: also write paper.md")
    p.add_argument("--farm", action="store_true",
                   help="the results are device-farm artifacts (Firebase Test Lab folders, AWS Device Farm zips, "
                        "renamed or zipped record files): read the records out of their layouts (bench/farm.py); "
                        "a .zip given is read so without it")


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
