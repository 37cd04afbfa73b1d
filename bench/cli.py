"""Benchmark models x runtimes x precisions over a workload; one JSON record per run, then a report.

With no arguments (the main job): the distilbert-base preset at seq 384 (the SQuAD window) on the
embedded synthetic workload (real lengths ~160 tokens, as SQuAD questions), fixed and real length,
all physical cores: PyTorch fp32 (the reference), ONNX Runtime fp32 + int8, ExecuTorch int8 (and CoreML
int8 on macOS). --runtime / --precision run every runtime x precision named (the other flag's default:
all runtimes, fp32 + int8). Exports are cached under OUT/bundles.

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

from bench.devices import device_schemes, open_device
from bench.config import SHAPES, BenchConfig
from bench.harness import run_bench
from bench.paper import run_paper
from bench.records import load_records
from bench.report import render_report
from bench.workloads import check_workload
from pocketbert import argtypes as t
from pocketbert.backends import all_precisions, main_job, plain_suffixes, runtime_names
from pocketbert.claims import claim
from pocketbert.common import UsageError, lookup
from pocketbert.models import PRESETS
from pocketbert.tasks import task_names


def _device_url(value: str) -> None:
    scheme, sep, rest = value.partition("://")
    if sep and not rest:
        raise UsageError(f"nothing after '{scheme}://'")
    lookup({s: s for s in device_schemes()}, scheme, "device kind")


EXPORT_KNOBS = ("onnx_optimize",)  # ExportConfig switches the bench passes on to its exports (BenchConfig fields too)
workload_spec = t.data_spec(check_workload, "synthetic")
device_url = t.data_spec(_device_url, "local")


def workload_file(kind: str):
    """A data file for workload `kind` (e.g. --stsb PATH), read and checked now."""
    return t.checked_file(lambda value: check_workload(f"{kind}:{value}"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = BenchConfig()  # every default below is the config's own
    runtimes = runtime_names()
    pairs = ", ".join(f"{r} {p}" for r, p in main_job())
    p.add_argument("--model", nargs="+", default=d.models, metavar="SPEC", type=t.model,
                   help=f"presets ({', '.join(PRESETS)}) or HF folders")
    p.add_argument("--bundle", nargs="+", type=t.existing_path, default=[], metavar="PATH",
                   help="time existing bundles (a bundle or an export --out folder) instead of --model, and "
                        f"plain model files next to them: a {' or '.join(plain_suffixes())} file, or a folder of them "
                        "(optimum-cli's output); inputs, task and precision are read from the file")
    p.add_argument("--task", type=t.choice(task_names, "task"), default=None,
                   help="task of plain model files whose outputs do not tell it "
                        f"({', '.join(task_names())}; default: read from the outputs)")
    p.add_argument("--runtime", nargs="+", default=None, metavar="NAME",
                   type=t.choice(runtime_names, "runtime"),
                   help=f"runtimes (default: all: {' '.join(runtimes)}); with --runtime or --precision every "
                        "runtime x precision runs")
    p.add_argument("--precision", nargs="+", default=None, metavar="P",
                   type=t.choice(all_precisions, "precision"),
                   help=f"any of {' '.join(all_precisions())} (default: fp32 int8). With neither flag: the main "
                        f"job's pairs, {pairs}")
    p.add_argument("--workload", nargs="+", default=d.workloads, metavar="SPEC", type=workload_spec,
                   help="synthetic | stsb:PATH | squad:PATH (default synthetic)")
    p.add_argument("--shape", nargs="+", default=d.shapes, choices=SHAPES,
                   help="fixed: pad to --seq-len; dynamic: real length (default both)")
    p.add_argument("--seq-len", type=t.int_range(16, 512), default=d.seq_len,
                   help="max tokens per input, 16..512 (default 384, the SQuAD window)")
    p.add_argument("--threads", type=t.positive_int, default=d.threads,
                   help="threads for every runtime (default: physical cores)")
    p.add_argument("--warmup", type=t.nonneg_int, default=d.warmup,
                   help=f"untimed runs after the first inference (default {d.warmup})")
    p.add_argument("--limit", type=t.positive_int, default=d.limit, help="first N items of each workload")
    p.add_argument("--tokenizer", type=t.tokenizer, default=None,
                   help="vocab.txt or folder for presets (real token lengths)")
    p.add_argument("--out", type=t.output_root, default=d.out, help="results root (default results/)")
    p.add_argument("--run-id", type=t.safe_name, default=d.run_id,
                   help="folder name under --out (default: UTC timestamp)")
    p.add_argument("--bundle-cache", type=t.output_root, default=d.bundle_cache, help="export cache (default OUT/bundles)")
    for knob in EXPORT_KNOBS:  # passed on to the exports the bench makes: the export flag's own help
        p.add_argument(f"--{knob.replace('_', '-')}", action="store_true",
                       help=f"export with `pocketbert export --{knob.replace('_', '-')}`")
    p.add_argument("--overhead-check", action="store_true", help="also time a bare loop (harness overhead)")
    p.add_argument("--profile", action="store_true",
                   help="each record also carries a per-operator profile from the runtime's own profiler "
                        "(one more pass after the timed loop; the latency excludes it)")
    p.add_argument("--timeout", type=t.positive_float, default=d.timeout_s,
                   help="seconds per run before it is recorded as failed")
    p.add_argument("--rounds", type=t.positive_int, default=d.rounds,
                   help=f"visit the runs this many times in rotated order; records keep the median (default {d.rounds})")
    p.add_argument("--strict", action="store_true",
                   help="a noisy record (machine shared during the run) fails the run: exit 1 after retries")
    p.add_argument("--retries", type=t.nonneg_int, default=None,
                   help="re-run a noisy worker up to N times (default 2 with --strict, else 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="add to an existing --run-id folder, replacing its records of the same runs "
                        "(without it an existing --run-id is refused)")
    p.add_argument("--no-report", action="store_true", help="write records only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--device", nargs="+", default=["local"], metavar="URL", type=device_url,
                   help="where to run: local, ssh://[user@]host[:port][?python=PATH&key=PATH], "
                        "adb://SERIAL[?via=app|minibench|runner] "
                        "(several: one run folder, one report; default local)")
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
    t.only_with(p, "--model", "neither --bundle nor --paper", lambda a: not a.paper and not a.bundle, ("--paper",), (),
                example=("bert-tiny",))
    for flag, example in (("--bundle", "{folder}"), ("--workload", "{squad}"), ("--seq-len", "128")):
        t.only_with(p, flag, "no --paper (paper mode runs its own)", plain, ("--paper",), (), example=(example,))
    t.only_with(p, "--task", "--bundle", lambda a: bool(a.bundle), (), ("--bundle", "{folder}"),
                example=("question-answering",))
    for flag, example in (("--stsb", "{stsb_file}"), ("--squad", "{squad_file}")):
        t.only_with(p, flag, "--paper (else use --workload KIND:PATH)", lambda a: a.paper, (), ("--paper",),
                    example=(example,))


def config_from_args(args) -> BenchConfig:
    return BenchConfig(models=args.model, runtimes=args.runtime, precisions=args.precision,
                       workloads=args.workload, shapes=args.shape, seq_len=args.seq_len,
                       threads=args.threads, warmup=args.warmup, limit=args.limit, tokenizer=args.tokenizer,
                       out=args.out, run_id=args.run_id, bundle_cache=args.bundle_cache, bundles=args.bundle,
                       task=args.task,
                       onnx_optimize=args.onnx_optimize, overhead_check=args.overhead_check, profile=args.profile,
                       timeout_s=args.timeout, report=not args.no_report, quiet=args.quiet,
                       rounds=args.rounds, overwrite=args.overwrite,
                       retries=args.retries if args.retries is not None else (2 if args.strict else 0))


def run(args) -> int:
    cfg = config_from_args(args)  # flags were validated by their argparse types (pocketbert.argtypes)
    devices = [open_device(url) for url in args.device]  # bad URLs fail before any work
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
    if args.strict:
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
