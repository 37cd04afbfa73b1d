"""Why is ExecuTorch XNNPACK slower than ONNX Runtime? Thread settings first, then the graph.

Times model files side by side at one fixed shape (batch 1), each in a fresh process, rounds
interleaved so machine noise hits every file alike (the best round's median is kept), at each
thread count, and records the thread count each runtime reports using. `--et-default-pool` adds
ExecuTorch runs that leave its XNNPACK threadpool at its default (no _unsafe_reset_threadpool).

  python scripts/bench_et_vs_ort.py \
      ort=results/bundles/distilbert-base-question-answering-s384/onnx-fp32/model.onnx \
      et=results/bundles/distilbert-base-question-answering-s384/executorch-fp32/model.pte \
      --threads 1 2 --et-default-pool --out results/et_vs_ort.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time, numpy as np
target, path, threads, reset, seq, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5]), int(sys.argv[6])
from pocketbert.backends import open_runner as load_runner
feeds = {"input_ids": np.ones((1, seq), np.int64), "attention_mask": np.ones((1, seq), np.int64)}
runner = load_runner(target, path, list(feeds), threads if reset else None)
eff = threads
if target == "executorch":
    from executorch.extension.pybindings import portable_lib
    eff = portable_lib._threadpool_get_thread_count()
for _ in range(3): runner(feeds)
ts = []
for _ in range(n):
    t = time.perf_counter(); runner(feeds); ts.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median_ms": float(np.median(ts)), "threads_effective": eff}))
"""


def time_file(path: Path, threads: int, reset: bool, seq: int, n: int) -> dict:
    target = "onnx" if path.suffix == ".onnx" else "executorch"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, target, str(path), str(threads), "1" if reset else "0",
                          str(seq), str(n)], capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", help="LABEL=PATH (.onnx: ONNX Runtime, .pte: ExecuTorch); first is the baseline")
    ap.add_argument("--seq", type=int, default=384)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--et-default-pool", action="store_true", help="also run .pte files without resetting the pool")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    files = [(label, Path(p)) for label, _, p in (f.partition("=") for f in args.files)]
    rows = []
    for threads in args.threads:
        runs = [(label, path, True) for label, path in files]
        if args.et_default_pool:
            runs += [(f"{label}[default pool]", path, False) for label, path in files if path.suffix == ".pte"]
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for label, path, reset in runs:
                r = time_file(path, threads, reset, args.seq, args.n)
                if label not in best or r["median_ms"] < best[label]["median_ms"]:
                    best[label] = r
        base = best[files[0][0]]["median_ms"]
        for label, r in best.items():
            row = {"threads": threads, "file": label, "median_ms": round(r["median_ms"], 1),
                   "threads_effective": r["threads_effective"], "vs_baseline": round(r["median_ms"] / base, 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"load_avg": os.getloadavg(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
