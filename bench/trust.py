"""Can a record be trusted? The worker measures (bench.machine: /proc CPU accounting, GEMM probes
right before and right after its timed loop); this module judges, in one place, against tolerances
with a reason each. A record that fails any check is `noisy`, with the reasons; the console says so
at once, reports keep noisy rows out of their ratios, and `--strict` fails the run on one.

Why these numbers (this project's 2-core AMD EPYC VM, Zen 3):
- other_cpu_cores: measured in a quiet main job here (12 workers): 0.004-0.020 cores used by other
  processes (daemons, the idle harness parent); with a second job running, 1.3-1.9 cores. A competitor at
  0.25 core on a machine whose cores all run our threads takes up to ~12% of a 2-thread run, the
  size of the differences a report ranks runtimes by. Cores our threads leave free are allowed.
- steal_pct: the hypervisor gave our vCPUs away; 0.06-0.6% in that quiet main job. 5% is a run
  stretched by 5%.
- probe_drift: under a competing load that starts or stops mid-run the 0.3 s probe moves 30-90% (the
  issue that asked for this saw 139 vs 323 GFLOP/s). Judged on the probes' MEDIAN call: six 0.3 s
  probes back to back in one quiet process (ORT int8, 2 threads) gave best calls of 229-282 GFLOP/s
  but medians of 221-236 (one thread: 158-164 either way; the second vCPU's share wanders), and a quiet
  main job judged on best calls flagged 5 of 12 records at 16-22% drift, always "after > before".
  ExecuTorch rows probe XNNPACK itself (export.targets.executorch.build_probe): torch's GEMM, a second
  thread pool in that process, moved 14-36% across quiet ExecuTorch runs.
- fraction of the GEMM peak > 100%: the model beat the machine's own GEMM ceiling, so the peak was
  measured under load (or the probe is not the runtime's fastest kernel): the ratio means nothing.
- rounds_spread: with --rounds, the per-round medians of one runtime should agree; 20% apart means
  the machine changed between rounds (the median still holds; the record says so).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerances:
    other_cpu_cores: float = 0.25  # other processes' CPU during the run, in cores beyond those our threads leave free
    steal_pct: float = 5.0  # hypervisor steal, % of all CPU time during the run
    probe_drift: float = 0.15  # |after - before| / max of the GEMM probe's best GFLOP/s
    max_fraction_of_peak: float = 1.0  # achieved / GEMM peak above this is a measurement error
    rounds_spread: float = 0.20  # (max - min) / median of the per-round median latencies


TOLERANCES = Tolerances()


def robust_cv(xs: list[float]) -> float | None:
    """Spread of samples robust to a few outliers: IQR / 1.349 / median (= std/mean for a normal)."""
    if len(xs) < 4:
        return None
    q = statistics.quantiles(xs, n=4)
    med = statistics.median(xs)
    return (q[2] - q[0]) / 1.349 / med if med > 0 else None


def judge(trust: dict, cores: int | None, threads: int | None, fraction_of_peak: float | None = None,
          tol: Tolerances = TOLERANCES) -> dict:
    """Set trust['noisy'] and trust['reasons'] from the measurements in `trust` (one worker's or the
    merge of several rounds'). Missing measurements (no /proc, no probe) are not reasons."""
    reasons = []
    other = trust.get("other_cpu_cores")
    spare = max(0, (cores or 0) - (threads or cores or 0))
    if other is not None and other > spare + tol.other_cpu_cores:
        reasons.append(f"other processes used {other:.2f} cores during the run "
                       f"(tolerance {spare + tol.other_cpu_cores:.2f})")
    steal = trust.get("steal_pct")
    if steal is not None and steal > tol.steal_pct:
        reasons.append(f"hypervisor steal {steal:.1f}% of CPU time (tolerance {tol.steal_pct:.0f}%)")
    trust["shared"] = bool(reasons)  # /proc saw others on the CPU; what follows is the pace alone
    # the probes' medians: their best call is a lucky one (measured below), the median is the machine's pace
    before = trust.get("gemm_before_median_gflops") or trust.get("gemm_before_gflops")
    after = trust.get("gemm_after_median_gflops") or trust.get("gemm_after_gflops")
    if before and after:
        drift = abs(after - before) / max(before, after)
        trust["probe_drift"] = drift
        if drift > tol.probe_drift:
            reasons.append(f"GEMM probe moved {drift:.0%} across the run ({before:.0f} -> {after:.0f} GFLOP/s)")
    if fraction_of_peak is None:
        fraction_of_peak = trust.get("fraction_of_peak")
    if fraction_of_peak is not None and fraction_of_peak > tol.max_fraction_of_peak:
        reasons.append(f"{fraction_of_peak:.0%} of the {trust.get('peak_kind', '')} GEMM peak: above 100% "
                       "is a measurement error (peak measured under load?)")
    spread = trust.get("rounds_spread")
    if spread is not None and spread > tol.rounds_spread:
        reasons.append(f"rounds disagree: per-round medians {spread:.0%} apart (tolerance {tol.rounds_spread:.0%})")
    for i, r in enumerate(trust.get("rounds") or []):  # each round's verdict, judged when it was measured
        why = r["reasons"] if "noisy" in r else judge(dict(r), cores, threads, tol=tol)["reasons"]
        reasons += [f"round {i + 1}: {w}" for w in why]
    trust["noisy"] = bool(reasons)
    trust["reasons"] = reasons
    return trust
