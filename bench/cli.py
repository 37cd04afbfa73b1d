"""Benchmark models x runtimes x precisions over a workload; one JSON record per run, then a report.

With no arguments (the main job): the {model} preset at seq {seq_len} ({seq_why}) on the
embedded synthetic workload (real lengths ~160 tokens, as SQuAD questions), fixed and real length,
all physical cores: PyTorch fp32 (the reference), ONNX Runtime fp32 + int8, ExecuTorch int8 (and CoreML
int8 on macOS). --runtime / --precision run every runtime x precision named (the other flag's default:
all runtimes, {precisions}). Exports are cached under OUT/bundles.

Examples:
  pocketbert bench
  pocketbert bench --model bert-base distilbert-base --workload stsb:../shared/data/stsb/dev.tsv \\
      --tokenizer ../shared/data/vocab/vocab.txt --shape dynamic
  pocketbert bench --workload squad:../shared/data/squad/dev-v1.1-first12.json --seq-len 384 --limit 200
  pocketbert bench --bundle out/            # time existing bundles (sha256-verified)
  pocketbert bench --bundle out/ optimum-onnx/ peer/model.pte --rounds 3   # ours next to plain files
  pocketbert bench --bundle out/ --device local 'ssh://pi@raspberrypi.local?python=~/pb/bin/python3'
  pocketbert bench --paper --stsb ../shared/data/stsb/dev.tsv --squad ../shared/data/squad/dev-v1.1-first12.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import datetime, timezone
from pathlib import Path

from bench.config import DEFAULT_PRECISIONS, BenchConfig
from bench.devices import open_device
from bench.harness import run_bench
from bench.paper import run_paper
from bench.records import load_records
from bench.report import render_report
from bench.workloads import check_workload
from export.config import ExportConfig
from pocketbert import argtypes as t
from pocketbert.backends import all_precisions, main_job, plain_suffixes, runtime_names
from pocketbert.claims import claim
from pocketbert.common import UsageError
from pocketbert.knobs import add_knob, add_knobs, config_field, flag_of, knob_of
from pocketbert.knobs import config_from_args as knob_config
from pocketbert.models import PRESETS
from pocketbert.tasks import task_names

# the defaults the description names: the config's own
__doc__ = __doc__.format(model=BenchConfig().models[0], seq_len=BenchConfig().seq_len,
                         seq_why=knob_of(config_field(BenchConfig, "seq_len")).why,
                         precisions=" + ".join(DEFAULT_PRECISIONS))


def workload_file(kind: str):
    """A data file for workload `kind` (e.g. --stsb PATH), read and checked now."""
    return t.checked_file(lambda value: check_workload(f"{kind}:{value}"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag but paper mode's is generated from its BenchConfig field (default, choices, range)."""
    pairs = ", ".join(f"{r} {p}" for r, p in main_job())
    add_knob(p, BenchConfig, "models", f"presets ({', '.join(PRESETS)}) or HF folders", nargs="+", metavar="SPEC")
    add_knob(p, BenchConfig, "bundles", "time existing bundles (a bundle or an export --out folder) instead of "
             f"--model, and plain model files next to them: a {' or '.join(plain_suffixes())} file, or a folder of "
             "them (optimum-cli's output); inputs, task and precision are read from the file",
             nargs="+", metavar="PATH")
    add_knob(p, BenchConfig, "task", f"task of plain model files whose outputs do not tell it ({', '.join(task_names())})")
    add_knob(p, BenchConfig, "runtimes", f"any of {' '.join(runtime_names())}; with --runtime or --precision every "
             "runtime x precision runs", nargs="+", metavar="NAME")
    add_knob(p, BenchConfig, "precisions", f"any of {' '.join(all_precisions())}. With neither flag: the main job's "
             f"pairs, {pairs}", nargs="+", metavar="P")
    add_knob(p, BenchConfig, "workloads", "synthetic | stsb:PATH | squad:PATH", nargs="+", metavar="SPEC")
    add_knob(p, BenchConfig, "shapes", "fixed: pad to --seq-len; dynamic: real length", nargs="+")
    add_knobs(p, BenchConfig, {
        "seq_len": "max tokens per input",
        "threads": "threads for every runtime",
        "warmup": "untimed runs after the first inference",
        "limit": "first N items of each workload",
        "tokenizer": "vocab.txt or folder for presets (real token lengths)",
        "out": "results root",
        "run_id": "folder name under --out",
        "bundle_cache": "export cache",
        "onnx_optimize": f"export with `pocketbert export {flag_of(config_field(ExportConfig, 'onnx_optimize'))}`",
        "overhead_check": "also time a bare loop (harness overhead)",
        "profile": "each record also carries a per-operator profile from the runtime's own profiler "
                   "(one more pass after the timed loop; the latency excludes it)",
        "timeout_s": "seconds per run before it is recorded as failed",
        "rounds": "visit the runs this many times in rotated order; records keep the median",
        "strict": "a noisy record (machine shared during the run) fails the run: exit 1 after retries",
        "retries": "re-run a noisy worker up to N times",
        "overwrite": "add to an existing --run-id folder, replacing its records of the same runs "
                     "(without it an existing --run-id is refused)",
        "report": "write records only",
        "quiet": "no progress bars",
    })
    add_knob(p, BenchConfig, "devices", "where to run: local, ssh://[user@]host[:port][?python=PATH&key=PATH], "
             "adb://SERIAL[?via=app|minibench|runner] (several: one run folder, one report)", nargs="+", metavar="URL")
    # paper mode: run_paper's own inputs (it chooses its models, workloads and lengths), not BenchConfig's
    p.add_argument("--paper", action="store_true",
                   help="paper mode: BERT-base vs DistilBERT, Table 3 (STS-B) + the QA per-question study")
    p.add_argument("--stsb", type=workload_file("stsb"), default=None,
                   help="paper mode: STS-B dev.tsv (default: synthetic stand-in)")
    p.add_argument("--squad", type=workload_file("squad"), default=None,
                   help="paper mode: SQuAD v1.1 JSON (default: synthetic stand-in)")
    add_scopes(p)


def add_scopes(p: argparse.ArgumentParser) -> None:
    """Flags one mode reads and another would ignore: refused by the parse where they would be ignored
    (paper mode chooses its own models, workloads and lengths; --bundle replaces --model)."""
    plain = lambda a: not a.paper  # noqa: E731
    t.only_with(p, "--model", "neither --bundle nor --paper", lambda a: not a.paper and not a.bundles, ("--paper",), (),
                example=("bert-tiny",))
    for flag, example in (("--bundle", "{folder}"), ("--workload", "{squad}"), ("--seq-len", "128")):
        t.only_with(p, flag, "no --paper (paper mode runs its own)", plain, ("--paper",), (), example=(example,))
    t.only_with(p, "--task", "--bundle", lambda a: bool(a.bundles), (), ("--bundle", "{folder}"),
                example=("question-answering",))
    for flag, example in (("--stsb", "{stsb_file}"), ("--squad", "{squad_file}")):
        t.only_with(p, flag, "--paper (else use --workload KIND:PATH)", lambda a: a.paper, (), ("--paper",),
                    example=(example,))


def config_from_args(args) -> BenchConfig:
    return knob_config(BenchConfig, args)


def run(args) -> int:
    cfg = config_from_args(args)  # flags were validated by their argparse types (pocketbert.argtypes)
    devices = [open_device(url) for url in cfg.devices]  # bad URLs fail before any work
    if args.paper and len(devices) > 1:
        raise UsageError("--paper runs on one --device at a time")
    outcome: list[tuple[str, str]] = []  # (status, reason) of every record this invocation writes
    try:  # Ctrl-C / SIGTERM: pocketbert.cli stops cleanly (exit 130/143); records already written stay
        if args.paper:
            out = run_paper(cfg, stsb=args.stsb, squad=args.squad, device=devices[0])
        else:
            out = run_on_devices(cfg, devices, outcome=outcome)
    finally:
        for d in devices:
            d.close()  # nothing left running or lying around on a device
    if every_run_failed(out) if args.paper else nothing_measured(out, outcome):
        return 1
    if cfg.strict:
        return strict_check(out, cfg.retries)
    return 0


def nothing_measured(out: Path, outcome: list[tuple[str, str]]) -> bool:
    """True (and one stderr line) when none of this invocation's runs measured anything: all failed
    or skipped, or none could run here. Records of earlier runs in the same folder do not count."""
    statuses = [status for status, _ in outcome]
    if "ok" in statuses:
        return False
    if not outcome:
        why = "nothing could be measured here (no run matched the bundles and workloads given)"
    else:
        failed, skipped = statuses.count("failed"), statuses.count("skipped")
        first = " ".join(outcome[0][1].split())[:200]
        why = (f"every run failed ({failed} run(s) of this invocation); the first: {first}" if failed == len(outcome)
               else f"none of this invocation's {len(outcome)} run(s) measured anything ({failed} failed, "
                    f"{skipped} skipped); the first: {first}")
    print(f"pocketbert bench: {why}", file=sys.stderr)
    return True


def every_run_failed(out: Path) -> bool:
    """True (and one stderr line) when the run folder holds records and every one of them failed:
    a run that measured nothing does not exit 0."""
    if not any(Path(out).rglob("*.json")):
        return False
    records = load_records([out])
    if not records or any(r.status != "failed" for r in records):
        return False
    print(f"pocketbert bench: every run failed ({len(records)} record(s) in {out}); the first: "
          f"{' '.join(records[0].reason.split())[:200]}", file=sys.stderr)
    return True


def strict_check(out: Path, retries: int) -> int:
    """--strict: exit 1 (one line) when a record is still noisy after its retries."""
    noisy = [r for r in load_records([out]) if r.trust.noisy] if any(Path(out).rglob("*.json")) else []
    if noisy:
        names = ", ".join(f"{r.runtime}-{r.precision} {r.shape}" for r in noisy)
        print(f"pocketbert bench: --strict: {len(noisy)} noisy record(s) after {retries} retries "
              f"({names}); the machine was shared, see the records' trust.reasons", file=sys.stderr)
        return 1
    return 0


def run_on_devices(cfg, devices, log=print, outcome: list[tuple[str, str]] | None = None) -> Path:
    """run_bench on every device into one run folder (record names carry a remote device's name),
    then one report over all of them."""
    want_report = cfg.report
    cfg = dataclasses.replace(cfg, run_id=cfg.run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
                              report=cfg.report and len(devices) == 1)
    with claim(Path(cfg.out) / cfg.run_id, "--run-id"):  # held across the devices: one run
        for i, device in enumerate(devices):
            if len(devices) > 1:
                log(f"== {device.name}")
            out = run_bench(cfg if i == 0 else dataclasses.replace(cfg, overwrite=True), device=device, log=log,
                            outcome=outcome)
    if len(devices) > 1 and want_report and any(out.glob("*.json")):
        render_report([out], out)
        log(f"report: {out / 'report.md'}")
    return out
