"""pocketbert exports vs optimum-cli's files of the same weights, timed by ONE `pocketbert bench`.

Not CI (optimum needs transformers < 5, so it runs from its own virtualenv, created from PyPI on
first use):

  python scripts/compare_peers.py --work runs/peers --threads 2 --limit 16 --rounds 3
  # the ratio with its run-to-run range (one bench run's ratio moves by +-10% on a shared VM)
  python scripts/compare_peers.py --work runs/peers --workload squad:../shared/data/squad/dev-v1.1-articles13-24.json \
      --limit 120 --rounds 5 --repeat 4 --precision int8
  # the issue-33 table for a trained QA model: real SQuAD questions (ms per question at real length and
  # padded to 384), F1 and identical answers on 1000 questions of the unseen articles
  python scripts/compare_peers.py --work runs/peers-minilm --model ../shared/models/minilm-l6-squad12 \
      --workload squad:../shared/data/squad/dev-v1.1-articles13-24.json --limit 120 --rounds 5 \
      --eval squad:../shared/data/squad/dev-v1.1-articles13-24.json

Steps: the model (a preset is saved as an HF folder with the same seed as our export) -> optimum-cli
export onnx (fp32) -> optimum-cli onnxruntime quantize --avx2 or --avx512_vnni (whichever this CPU
has, or --isa), per-tensor and --per_channel -> pocketbert export (onnx + executorch, fp32 + int8)
-> one `pocketbert bench --bundle OURS PEERS... --rounds N` (every file on the same items with its
own input names, fixed = padded to --seq-len and dynamic = real length, visited in rotated order
each round; records keep the median) -> the table, from that run's records, on stdout and in
WORK/peers.md: each file's p50 with its speed-up over optimum's fastest int8 file at that shape,
this CPU's int8 features, and any of our bundles whose int8 mode was timed on another CPU. With --eval, a trained QA model's files are also scored (SQuAD F1, % answers equal
to PyTorch fp32). Every step reuses what an earlier run left in --work.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEER_PINS = ["optimum-onnx[onnxruntime]==0.1.0", "onnxruntime==1.32.0", "transformers<5"]
TORCH_PIN = "torch==2.13.0"


def ensure_venv(venv: Path) -> Path:
    """The optimum virtualenv's optimum-cli, the virtualenv created from PyPI when missing (torch
    first with the exact pin, so optimum does not pull another)."""
    cli = venv / "bin" / "optimum-cli"
    if not cli.exists():
        print(f"creating the optimum virtualenv {venv} (PyPI)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run(pip + [TORCH_PIN], check=True)
        subprocess.run(pip + PEER_PINS, check=True)
    return cli


def cpu_isas() -> list[str]:
    """optimum's quantize config for this CPU: avx512_vnni where the CPU has it, else avx2."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return ["avx512_vnni"] if "avx512_vnni" in flags else ["avx2"]


def hf_folder(model: str, tokenizer: str | None, out: Path, seed: int) -> Path:
    """A folder optimum can read: the model itself, or a preset saved with its seed."""
    if Path(model).is_dir():
        return Path(model)
    if not (out / "config.json").exists():
        from pocketbert.models import build_preset, load_tokenizer

        build_preset(model, "question-answering", seed=seed).save_pretrained(out)
        load_tokenizer(tokenizer).save_pretrained(out)
    return out


def peer_folders(cli: Path, folder: Path, work: Path, isas: list[str], task: str = "question-answering") -> list[Path]:
    """optimum-cli's fp32 export for `task` and its int8 quantizations (per-tensor and per-channel)."""
    fp32 = work / "optimum-fp32"
    if not (fp32 / "model.onnx").exists():
        subprocess.run([str(cli), "export", "onnx", "--model", str(folder), "--task",
                        task, "--opset", "18", str(fp32)], check=True)
    out = [fp32]
    for isa in isas:
        for per_channel in (False, True):
            q = work / f"optimum-{isa}{'-pc' if per_channel else ''}"
            if not (q / "model_quantized.onnx").exists():
                subprocess.run([str(cli), "onnxruntime", "quantize", "--onnx_model", str(fp32), f"--{isa}",
                                *(["--per_channel"] if per_channel else []), "-o", str(q)], check=True)
            out.append(q)
    return out


def our_bundles(model: str, tokenizer: str | None, work: Path, seed: int, seq_len: int,
                precisions: list[str], extra: list[str] = ()) -> Path:
    """pocketbert's parity-checked bundles (an export --out folder; int8 --int8-mode auto unless
    `extra` says otherwise: each int8 build timed on this CPU, the fastest that passes kept)."""
    out = work / "pocketbert"
    if not out.exists():
        cmd = [sys.executable, "-m", "pocketbert.cli", "export", "--model", model, "--target", "onnx", "executorch",
               "--precision", *precisions, "--seq-len", str(seq_len), "--seed", str(seed), "--out", str(out),
               *extra]
        subprocess.run(cmd + (["--tokenizer", tokenizer] if tokenizer else []), check=True, env=_env())
    return out


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run_bench(paths: list[Path], args, run_id: str) -> Path:
    """ONE `pocketbert bench` over ours and the peers: same items, rotated order, --rounds."""
    cmd = [sys.executable, "-m", "pocketbert.cli", "bench", "--bundle", *map(str, paths),
           "--workload", args.workload, "--seq-len", str(args.seq_len), "--threads", str(args.threads),
           "--rounds", str(args.rounds), "--out", str(args.work / "results"), "--run-id", run_id]
    cmd += (["--limit", str(args.limit)] if args.limit else []) + (["--tokenizer", args.tokenizer] if args.tokenizer else [])
    print("$ " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, env=_env())
    return args.work / "results" / run_id


def best_peer_int8(rows: dict[tuple, dict], shape: str) -> float | None:
    """optimum's fastest int8 file's p50 at `shape` (the bar the issue's goals are ratios to)."""
    p50s = [by[shape]["stats"]["latency_ms"]["p50"] for (model, _, precision), by in rows.items()
            if model.startswith("optimum") and precision == "int8" and by.get(shape, {}).get("status") == "ok"]
    return min(p50s, default=None)


def _rows(run: Path) -> tuple[list[dict], dict[tuple, dict]]:
    """One bench run's records, and them by (model, runtime, precision) then shape."""
    recs = [json.loads(p.read_text()) for p in sorted(run.glob("*.json"))]
    rows: dict[tuple, dict] = {}
    for r in recs:
        rows.setdefault((r["model"], r["runtime"], r["precision"]), {})[r["shape"]] = r
    return recs, rows


def table(runs: Path | list[Path], quality: dict[str, dict] | None = None) -> str:
    """One row per file: size, p50 per item padded and at real length, each as a speed-up over
    optimum's fastest int8 file at that shape, load, RSS, trust (and F1 / identical answers).

    With several bench runs (--repeat), a cell is the median p50 over the runs and the median of the
    per-run speed-ups (each run's own bar), with their range: on a shared VM one run's ratio moves
    by +-10%."""
    runs = [runs] if isinstance(runs, Path) else list(runs)
    loaded = [_rows(run) for run in runs]
    recs, rows = loaded[0]
    shapes = ("fixed", "dynamic")
    bars = [{s: best_peer_int8(by_file, s) for s in shapes} for _, by_file in loaded]
    head = ("| file | runtime | precision | MB | " + " | ".join(f"{s} p50 ms (x optimum int8)" for s in shapes)
            + " | load ms | peak RSS MB | trust |" + (" F1 | identical |" if quality else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def p50(key, shape):
        found = [(by_file.get(key, {}).get(shape), bar[shape]) for (_, by_file), bar in zip(loaded, bars)]
        found = [(r, b) for r, b in found if r]
        if not found:
            return "–"
        ok = [(r["stats"]["latency_ms"]["p50"], b) for r, b in found if r["status"] == "ok"]
        if not ok:
            return found[0][0]["status"]
        ms = statistics.median(m for m, _ in ok)
        ratios = [b / m for m, b in ok if b]
        if not ratios:
            return f"{ms:.1f}"
        spread = f", {min(ratios):.2f}-{max(ratios):.2f}" if len(ratios) > 1 else ""
        return f"{ms:.1f} ({statistics.median(ratios):.2f}x{spread})"

    for key, by in sorted(rows.items(), key=lambda kv: (kv[0][0] != "distilbert-base", kv[0])):
        model, runtime, precision = key
        ok = [r for r in by.values() if r["status"] == "ok"]
        first = ok[0] if ok else next(iter(by.values()))
        trust = ", ".join(sorted({"noisy" if r["trust"].get("noisy") else "ok" for _, by_file in loaded
                                  for r in by_file.get(key, {}).values() if r["status"] == "ok"})) or "–"
        q = (quality or {}).get(first.get("bundle") or "")
        lines.append(f"| {model} | {runtime} | {precision} | "
                     f"{(first.get('model_file_bytes') or 0) / 1e6:.1f} | "
                     + " | ".join(p50(key, s) for s in shapes)
                     + f" | {first.get('load_ms') or 0:.0f} | {max((r['peak_rss_mb'] for r in ok), default=0):.0f} "
                       f"| {trust} |"
                     + ((f" {q['f1']:.2f} | {q['identical']:.1%} |" if q else " – | – |") if quality else ""))
    r0 = next((r for r in recs if r["status"] == "ok"), recs[0])
    m = r0["machine"]
    real = next((r for r in recs if r["status"] == "ok" and r["shape"] == "dynamic"), None)
    mean = f", mean {real['tokens']['real'] / real['n_model_calls']:.0f} real tokens per call" if real else ""
    where = (f"all from one `pocketbert bench` run ({runs[0]})" if len(runs) == 1 else
             f"median over {len(runs)} `pocketbert bench` runs, speed-ups per run then their median and range "
             f"({', '.join(str(r) for r in runs)})")
    lines += ["", f"{m.get('cpu_model')}, {r0['threads']} threads; {r0['workload']} ({r0['n_items']} items{mean}); "
              f"fixed = padded to {r0['seq_len']}, dynamic = real length; p50 of per-item model time, median of "
              f"{r0.get('rounds', 1)} rounds in rotated order, {where}; "
              f"load average at start {m.get('load_avg_1m')}, after {os.getloadavg()[0]:.1f}. "
              f"Skipped/failed shapes say why in {runs[0]}/report.md.",
              f"CPU int8 features: {', '.join(f for f in m.get('isa_flags', []) if 'vnni' in f or 'amx' in f or f in ('asimddp', 'i8mm')) or 'none'}."]
    lines += [f"{r['model']} {r['runtime']} int8: {r['notes']['int8_chosen_elsewhere']}" for r in recs
              if r["shape"] == "fixed" and (r.get("notes") or {}).get("int8_chosen_elsewhere")]
    return "\n".join(lines)


def evaluate(paths: list[Path], spec: str, model: str, tokenizer: str | None, seed: int, seq_len: int,
             threads: int | None = None) -> dict:
    """SQuAD F1 and % answers identical to PyTorch fp32 of every file (a trained QA model)."""
    from bench.plain_files import PlainFile
    from bench.planning import given_bundles
    from export.pipeline import _reference_runner
    from export.task_eval import parse_eval_spec, squad_f1_gate, squad_windows
    from pocketbert.backends import open_runner
    from pocketbert.models import load_model

    loaded = load_model(model, "question-answering", tokenizer=tokenizer, seed=seed)
    _, path = parse_eval_spec(spec)
    feats, examples = squad_windows(path, loaded.tokenizer, seq_len, 1000)
    reference, cache, out = _reference_runner(loaded), {}, {}
    for folder, m in given_bundles(paths):  # a bundle's Manifest or a plain file's PlainFile
        pairs = [(i.name, getattr(i, "feature", "") or i.name) for i in m.inputs]
        run = open_runner(m.target, folder / m.model_file, [n for n, _ in pairs], threads)

        def runner(fd, _run=run, _pairs=pairs):
            import numpy as np

            ids = fd["input_ids"]
            return _run({n: fd[f] if f in fd else np.zeros_like(ids) for n, f in _pairs})

        r = squad_f1_gate(feats, examples, loaded.input_names, reference, runner, None, 100.0,
                          progress=False, cache=cache)
        key = m.peer.file if getattr(m, "peer", None) else str(folder)
        out[key] = {"f1": r["export"]["f1"], "identical": r["identical_answers"]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="distilbert-base", help="preset or HF QA folder")
    ap.add_argument("--tokenizer", default=str(ROOT.parent / "shared/data/vocab/vocab.txt"),
                    help="vocab.txt for a preset (both exports and the bench use it)")
    ap.add_argument("--work", type=Path, required=True, help="folder for the peer and pocketbert files and results")
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache/pocketbert/optimum-venv",
                    help="optimum's virtualenv (created from PyPI when missing)")
    ap.add_argument("--isa", nargs="+", default=None, help="optimum quantize configs (default: this CPU's)")
    ap.add_argument("--precision", nargs="+", default=["fp32", "int8"], help="our exports' precisions")
    ap.add_argument("--export-args", default="", help="more `pocketbert export` flags for ours, one string: e.g. "
                    "'--int8-mode dynamic' or the gate '--eval-data squad:PATH --max-f1-drop 0.5 --min-identical-answers 0.9'")
    ap.add_argument("--workload", default="synthetic", help="bench --workload (synthetic | squad:PATH)")
    ap.add_argument("--limit", type=int, default=16, help="items of the workload")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1,
                    help="whole bench runs (each --rounds rounds); the table gives the median and range of the "
                         "per-run speed-ups (on a shared VM one run's ratio moves by +-10%%)")
    ap.add_argument("--seq-len", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval", metavar="squad:PATH", help="also score F1 / identical answers (trained model)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")

    args.work.mkdir(parents=True, exist_ok=True)
    tokenizer = args.tokenizer if not Path(args.model).is_dir() else None
    args.tokenizer = tokenizer
    cli = ensure_venv(args.venv)
    folder = hf_folder(args.model, tokenizer, args.work / "hf", args.seed)
    peers = peer_folders(cli, folder, args.work, args.isa or cpu_isas())
    ours = our_bundles(args.model, tokenizer, args.work, args.seed, args.seq_len, args.precision,
                       shlex.split(args.export_args))
    stamp = datetime.now(timezone.utc).strftime("peers-%Y%m%dT%H%M%SZ")
    runs = [run_bench([ours, *peers], args, stamp if args.repeat == 1 else f"{stamp}-{i + 1}")
            for i in range(args.repeat)]
    quality = evaluate([ours, *peers], args.eval, args.model, tokenizer, args.seed, args.seq_len,
                       args.threads) if args.eval else None
    text = table(runs, quality)
    (args.work / "peers.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
