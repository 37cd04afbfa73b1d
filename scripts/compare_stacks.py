"""Two software stacks side by side: the same model's ExecuTorch bundles, each exported and run in its
own virtualenv (today's pins against newer releases), timed on real SQuAD questions.

Each (stack, bundle) is timed in a fresh process of its own stack's python, `--rounds` times, the
order rotated every round so machine noise and drift hit every stack alike. The questions are
tokenized once (by the first stack, with the first bundle's tokenizer) and every worker reads the same
token ids; a question's time is the sum of its windows' calls (dynamic shape, real lengths).
Writes raw samples (samples.jsonl), the answers' agreement between stacks and a table (table.md,
summary.json): median ms/question per stack and bundle, and each stack's ratio to the first.

  python scripts/compare_stacks.py \\
      --stack pins=/work/main/.venv/bin/python:/tmp/exports/main/teacher \\
      --stack next=/work/venv-next/bin/python:/tmp/exports/next/teacher \\
      --bundles executorch-fp32 executorch-int8 \\
      --squad /work/shared/data/squad/dev-v1.1-articles13-24.json --limit 100 --rounds 6 --threads 2 \\
      --out results/compare_stacks

Time it only on a quiet machine. A stack's folder holds its export run's bundles (`pocketbert export
--out`); --bundles names the sub-folders to time in every stack.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One (stack, bundle) run in that stack's python: loads the .pte on the ExecuTorch runtime at
# `threads`, warms up, then each question once (every window, real length); prints one JSON line.
WORKER = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from bench.workloads import read_items
from export.bundle import read_manifest
from pocketbert.backends import LoadRequest, get_runtime
bundle, items_path, threads, warmup = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
manifest = read_manifest(bundle)
names = manifest.input_names
items = read_items(Path(items_path))
calls = [[{n: np.asarray([f[n]], dtype=np.int64) for n in names} for f in item.features] for item in items]
rt = get_runtime(manifest.target)
for m in rt.runtime_modules:
    __import__(m)
runner, facts = rt.load(LoadRequest(names, threads, bundle / manifest.model_file))
for i in range(warmup):
    runner(calls[i % len(calls)][0])
ms, answers = [], []
for item_calls in calls:
    t0 = time.perf_counter()
    outs = [runner(c) for c in item_calls]
    ms.append((time.perf_counter() - t0) * 1e3)
    best = max(outs, key=lambda o: float(o[0].max() + o[1].max()))  # the window with the surest span
    answers.append([int(best[0].argmax()), int(best[1].argmax())])
import executorch.version, torch
print(json.dumps({"ms": ms, "answers": answers, "threads_effective": facts.get("threads_effective"),
                  "executorch": executorch.version.__version__, "torch": torch.__version__,
                  "manifest_versions": manifest.versions}))
"""

TOKENIZE = r"""
import sys
from pathlib import Path
from bench.workloads import load_workload, save_items
from pocketbert.models import load_tokenizer
bundle, spec, seq_len, limit, out = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
save_items(load_workload(spec, load_tokenizer(bundle), seq_len, limit).items, out)
"""


def run_py(python: str, code: str, args: list[str], timeout: float) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's pocketbert in every stack
    out = subprocess.run([python, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=timeout)
    if out.returncode:
        raise SystemExit(f"{python} failed (rc {out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


def parse_stack(spec: str) -> tuple[str, str, Path]:
    name, _, rest = spec.partition("=")
    python, _, folder = rest.partition(":")
    if not name or not python or not folder:
        raise argparse.ArgumentTypeError(f"--stack NAME=PYTHON:BUNDLES_FOLDER, got {spec!r}")
    return name, python, Path(folder)


def table(samples: list[dict], stacks: list[str], bundles: list[str], rounds: int) -> tuple[list[str], dict]:
    """Median ms/question over every sample of a (stack, bundle), the per-round medians' range, and
    the ratio to the first stack (all samples, and each round's own ratio: min-max)."""
    summary: dict = {}
    lines = ["| bundle | stack | executorch | torch | median ms/question | p90 | round medians (min-max) | "
             "vs " + stacks[0] + " | per-round ratio (min-max) |", "|" + " --- |" * 9]
    for b in bundles:
        base_rounds = {}
        for s in stacks:
            mine = [x for x in samples if x["stack"] == s and x["bundle"] == b]
            ms = [x["ms"] for x in mine]
            per_round = {r: statistics.median([x["ms"] for x in mine if x["round"] == r]) for r in range(rounds)}
            if s == stacks[0]:
                base_rounds = per_round
            med = statistics.median(ms)
            p90 = sorted(ms)[int(0.9 * (len(ms) - 1))]
            base = summary.get(b, {}).get(stacks[0], {}).get("median_ms", med)
            ratios = [per_round[r] / base_rounds[r] for r in range(rounds)]
            meta = mine[0]
            summary.setdefault(b, {})[s] = {"median_ms": round(med, 3), "p90_ms": round(p90, 3), "n": len(ms),
                                           "round_medians_ms": [round(per_round[r], 3) for r in range(rounds)],
                                           "ratio": round(med / base, 4), "round_ratios": [round(x, 4) for x in ratios],
                                           "executorch": meta["executorch"], "torch": meta["torch"]}
            lines.append(f"| {b} | {s} | {meta['executorch']} | {meta['torch']} | {med:.2f} | {p90:.2f} | "
                         f"{min(per_round.values()):.2f}-{max(per_round.values()):.2f} | {med / base:.3f} | "
                         f"{min(ratios):.3f}-{max(ratios):.3f} |")
    return lines, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", action="append", type=parse_stack, required=True,
                    help="NAME=PYTHON:BUNDLES_FOLDER (repeat; the first is the baseline)")
    ap.add_argument("--bundles", nargs="+", default=["executorch-fp32", "executorch-int8"])
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=100, help="first N questions")
    ap.add_argument("--seq-len", type=int, default=384)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=300, help="seconds per worker")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    stacks = args.stack
    if len({s[0] for s in stacks}) != len(stacks):
        raise SystemExit("stack names must differ")
    for _, _, folder in stacks:
        for b in args.bundles:
            if not (folder / b / "manifest.json").is_file():
                raise SystemExit(f"{folder / b}: no bundle there")
    args.out.mkdir(parents=True, exist_ok=True)
    items = args.out / "items.json"
    _, py0, folder0 = stacks[0]
    run_py(py0, TOKENIZE, [folder0 / args.bundles[0], f"squad:{args.squad}", args.seq_len, args.limit, items],
           args.timeout)

    jobs = [(s, b) for s in stacks for b in args.bundles]
    samples, answers, runs = [], {}, []
    t_start = time.time()
    with open(args.out / "samples.jsonl", "w") as raw:
        for r in range(args.rounds):
            k = r % len(jobs)
            for pos, ((name, python, folder), b) in enumerate(jobs[k:] + jobs[:k]):
                line = [ln for ln in run_py(python, WORKER, [folder / b, items, args.threads, args.warmup],
                                            args.timeout).splitlines() if ln.startswith("{")][-1]
                res = json.loads(line)
                runs.append({"round": r, "position": pos, "stack": name, "bundle": b,
                             "threads_effective": res["threads_effective"], "executorch": res["executorch"],
                             "torch": res["torch"], "median_ms": statistics.median(res["ms"])})
                answers[(name, b)] = res["answers"]
                for q, ms in enumerate(res["ms"]):
                    rec = {"round": r, "position": pos, "stack": name, "bundle": b, "question": q, "ms": ms,
                           "executorch": res["executorch"], "torch": res["torch"]}
                    samples.append(rec)
                    raw.write(json.dumps(rec) + "\n")
                print(f"round {r} {name:>8} {b:<18} median {runs[-1]['median_ms']:.2f} ms/question "
                      f"(threads {res['threads_effective']})", flush=True)
    names = [s[0] for s in stacks]
    lines, summary = table(samples, names, args.bundles, args.rounds)
    agree = {b: {s: sum(a == c for a, c in zip(answers[(names[0], b)], answers[(s, b)])) / len(answers[(s, b)])
                 for s in names[1:]} for b in args.bundles}
    header = [f"# Stacks side by side: {args.limit} SQuAD questions ({args.squad.name}), {args.rounds} rounds "
              f"(order rotated), {args.threads} threads, dynamic shape, {time.time() - t_start:.0f} s", "",
              f"load average at the end: {os.getloadavg()[0]:.2f}", ""]
    agreement = ["", "Same answer span as " + names[0] + " (share of questions): " +
                 "; ".join(f"{b} {s}: {v:.3f}" for b, d in agree.items() for s, v in d.items())]
    (args.out / "table.md").write_text("\n".join(header + lines + agreement) + "\n")
    (args.out / "summary.json").write_text(json.dumps({"summary": summary, "agreement": agree, "runs": runs,
                                                       "argv": sys.argv}, indent=1))
    print("\n".join(header + lines + agreement))
    return 0


if __name__ == "__main__":
    sys.exit(main())
