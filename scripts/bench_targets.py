"""The issue's five performance figures, measured by the harness itself (seq 384, batch 1).

Runs DistilBERT (all runtimes, fp32 + int8) and BERT-base (fp32 and int8 on the same runtimes) on
fixed-length 384-token synthetic inputs with the harness's overhead check on, then computes:
  1. best fp32 DistilBERT runtime's achieved GFLOP/s as a fraction of the measured fp32 GEMM peak (>= 70%)
  2. DistilBERT vs BERT-base speed-up at equal runtime and precision (>= 1.9x; paper 1.63x)
  3. best int8 DistilBERT vs PyTorch eager fp32 (>= 2.5x)
  4. ExecuTorch XNNPACK vs ONNX Runtime at the same precision and threads (<= 1.2x)
  5. harness overhead vs the bare runtime loop (< 2%)
Writes targets.md / targets.json next to the records and prints the table.

  python scripts/bench_targets.py --threads 2 --items 16 --tokenizer ../shared/data/vocab/vocab.txt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def figures(records: list) -> list[dict]:
    """The figures from Record objects (bench.records.load_records)."""
    ok = [r for r in records if r.status == "ok"]
    p50 = {(r.model, r.runtime, r.precision): r.stats.latency_ms.p50 for r in ok}
    out = []

    distil_fp32 = [r for r in ok if r.model == "distilbert-base" and r.precision == "fp32"]
    if distil_fp32:
        best = max(distil_fp32, key=lambda r: r.fraction_of_peak)
        out.append({"figure": "best fp32 DistilBERT runtime vs fp32 GEMM peak", "target": ">= 70%",
                    "value": best.fraction_of_peak, "met": best.fraction_of_peak >= 0.70,
                    "detail": f"{best.runtime}: {best.achieved_gflops:.0f} of {best.gemm_peak_gflops:.0f} GFLOP/s"})

    speedups = {(rt, p): p50[("bert-base", rt, p)] / p50[("distilbert-base", rt, p)]
                for (m, rt, p) in p50 if m == "distilbert-base" and ("bert-base", rt, p) in p50}
    if speedups:
        worst = min(speedups.values())
        out.append({"figure": "DistilBERT vs BERT-base, equal runtime and precision", "target": ">= 1.9x",
                    "value": worst, "met": worst >= 1.9,
                    "detail": ", ".join(f"{rt}-{p} {v:.2f}x" for (rt, p), v in sorted(speedups.items()))})

    int8 = {rt: v for (m, rt, p), v in p50.items() if m == "distilbert-base" and p == "int8"}
    base = p50.get(("distilbert-base", "pytorch", "fp32"))
    if int8 and base:
        rt = min(int8, key=int8.get)
        out.append({"figure": "best int8 DistilBERT vs PyTorch eager fp32", "target": ">= 2.5x",
                    "value": base / int8[rt], "met": base / int8[rt] >= 2.5,
                    "detail": f"{rt}-int8 {int8[rt]:.1f} ms vs pytorch-fp32 {base:.1f} ms"})

    for p in ("fp32", "int8"):
        et, ort = p50.get(("distilbert-base", "executorch", p)), p50.get(("distilbert-base", "onnx", p))
        if et and ort:
            out.append({"figure": f"ExecuTorch XNNPACK / ONNX Runtime, DistilBERT {p}", "target": "<= 1.2x",
                        "value": et / ort, "met": et / ort <= 1.2, "detail": f"{et:.1f} ms vs {ort:.1f} ms"})

    over = [(r.harness_overhead.overhead_fraction, r) for r in ok
            if r.harness_overhead is not None and r.harness_overhead.overhead_fraction is not None]
    if over:
        med = sorted(o for o, _ in over)[len(over) // 2]
        out.append({"figure": "harness overhead vs bare runtime loop (median over runs)", "target": "< 2%",
                    "value": med, "met": med < 0.02,
                    "detail": "per run: " + ", ".join(f"{r.model.split('-')[0]}/{r.runtime}-{r.precision} {o:+.3%}" for o, r in over)})
    return out


def markdown(rows: list[dict], load: str) -> str:
    lines = ["| figure | target | measured | met | detail |", "|---|---|---|---|---|"]
    for r in rows:
        v = r["value"]
        shown = f"{v:.0%}" if r["target"].endswith("%") else f"{v:.2f}x"
        lines.append(f"| {r['figure']} | {r['target']} | {shown} | {'yes' if r['met'] else 'NO'} | {r['detail']} |")
    return "\n".join(lines) + f"\n\n{load}\n"


def main() -> int:
    from bench.harness import BenchConfig, run_bench
    from bench.records import load_records

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--items", type=int, default=16, help="synthetic items (each padded to --seq-len)")
    ap.add_argument("--seq-len", type=int, default=384)
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--run-id", default="targets")
    ap.add_argument("--runtimes", nargs="+", default=["pytorch", "onnx", "executorch"])
    ap.add_argument("--onnx-optimize", action="store_true")
    ap.add_argument("--bert-precisions", nargs="+", default=["fp32", "int8"])
    args = ap.parse_args()

    common = dict(runtimes=args.runtimes, workloads=["synthetic"], shapes=["fixed"], seq_len=args.seq_len,
                  threads=args.threads, warmup=2, limit=args.items, tokenizer=args.tokenizer, out=args.out,
                  bundle_cache=args.out / "bundles", onnx_optimize=args.onnx_optimize, overhead_check=True,
                  report=False)
    load0 = os.getloadavg()[0]
    run_bench(BenchConfig(models=["distilbert-base"], precisions=["fp32", "int8"],
                          run_id=f"{args.run_id}/distilbert", **common))
    run_bench(BenchConfig(models=["bert-base"], precisions=args.bert_precisions,
                          run_id=f"{args.run_id}/bert", **common))
    root = args.out / args.run_id
    from bench.report import render_report

    render_report([root], root)
    rows = figures(load_records([root]))
    text = markdown(rows, f"Load average: {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end (2 cores).")
    (root / "targets.md").write_text(text)
    (root / "targets.json").write_text(json.dumps(rows, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
