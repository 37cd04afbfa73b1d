"""A record built once from its rounds' worker results (or merged from a record the device made
itself); statistics derived once (bench.records.derive)."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any

from bench.flops import forward_flops
from bench.prepare import Prepared
from bench.records import derive
from bench.trust import robust_cv
from bench.workloads import answer_quality
from pocketbert.contracts import Record, WorkerResult


@dataclass
class Round:
    """One timed visit of a run: its worker result (judged) and where it fell in the rotation."""

    result: WorkerResult
    round: int
    position: int


def build_record(prepared: Prepared, rounds: list[Round], items: list | None = None) -> Record:
    """The record of a run from its rounds' worker results, built once: per item, the median over the
    rounds (each round's raw samples kept); trust from every round (one round: its own verdict; more:
    the merge, judged once); statistics derived once and stored (bench.records.derive)."""
    results = [r.result for r in rounds]
    first, base = results[0], prepared.record
    latency = [median(col) for col in zip(*(r.latency_ms for r in results))]
    trust = _merged_trust(rounds)
    trust["cv"] = robust_cv([lat / f for lat, f in zip(latency, prepared.item_flops) if f])  # latency per FLOP
    imports = [r.import_ms for r in results if r.import_ms is not None]  # boards' older workers: none
    loop = ({"timed_loop_s": first.loop_s, "postprocess_s": sum(first.postprocess_ms) / 1e3,
             "timed_model_s": sum(first.latency_ms) / 1e3, "bare_loop_s": first.bare_loop_s,
             "null_loop_s": first.null_loop_s} if first.bare_loop_s else None)
    warnings = []
    if base.threads != first.threads_effective:
        warnings.append(f"warning: asked {base.threads} threads, runtime reports {first.threads_effective}")
    if (first.device_state or {}).get("warnings"):
        warnings.append("warning: " + "; ".join(first.device_state["warnings"]))
    return derive(base.replace(
        threads_effective=first.threads_effective, model_file_bytes=base.model_file_bytes or first.model_bytes,
        import_ms=median(imports) if imports else None, load_ms=median([r.load_ms for r in results]),
        first_inference_ms=median([r.first_inference_ms for r in results]),
        latency_ms=latency, postprocess_ms=[median(col) for col in zip(*(r.postprocess_ms for r in results))],
        rounds_latency_ms=[r.latency_ms for r in results] if len(results) > 1 else [],
        peak_rss_mb=max(r.peak_rss_mb for r in results), baseline_rss_mb=first.baseline_rss_mb,
        runtime_rss_mb=max(r.peak_rss_mb - r.baseline_rss_mb for r in results), harness_overhead=loop,
        answers_sample=first.answers_sample, answers=first.answers,
        answer_quality=answer_quality(items, first.answers) if items else None,
        device_state=first.device_state,  # remote devices: governor/temperatures before and after
        profile=first.profile,  # --profile: the first round's per-operator profile
        trust=trust, gemm_peak_gflops=trust.get("gemm_peak_gflops"), gemm_peak_kind=trust.get("peak_kind") or "",
        reason="; ".join(warnings)))


def _merged_trust(rounds: list[Round]) -> dict[str, Any]:
    """The trust evidence of a record: its one round's (verdict included), or every round's under
    "rounds" with their spread and the worst of each measure (judged once, by derive)."""
    trusts = [r.result.trust for r in rounds]
    if len(rounds) == 1:
        return dict(trusts[0])
    totals = [sum(r.result.latency_ms) for r in rounds]
    peaks = [t["gemm_peak_gflops"] for t in trusts if t.get("gemm_peak_gflops")]
    return {"rounds": [{**t, "round": r.round, "position": r.position} for t, r in zip(trusts, rounds)],
            "rounds_spread": (max(totals) - min(totals)) / median(totals) if median(totals) else None,
            "load_before": trusts[0].get("load_before"), "load_after": trusts[-1].get("load_after"),
            "other_cpu_cores_max": max((t.get("other_cpu_cores") or 0 for t in trusts), default=None),
            "steal_pct_max": max((t.get("steal_pct") or 0 for t in trusts), default=None),
            "gemm_peak_gflops": max(peaks) if peaks else None, "peak_kind": trusts[0].get("peak_kind"),
            "gemm_library": trusts[0].get("gemm_library")}


# What a device-made record decides; the host keeps identity and provenance (model, machine, versions...).
DEVICE_FIELDS = ("shape", "seq_len", "warmup", "threads_effective", "item_ids", "latency_ms", "tokenize_ms",
                 "postprocess_ms", "load_ms", "first_inference_ms", "n_items", "n_model_calls", "tokens",
                 "peak_rss_mb", "baseline_rss_mb", "runtime_rss_mb", "answers_sample", "notes")


def device_record(prepared: Prepared, result: WorkerResult, config: dict) -> Record:
    """Merge a record made on the device (samples, its own tokenization, what it could not measure)
    into the host's; statistics derived once."""
    rec, dev = prepared.record, result.record
    changes = {k: dev[k] for k in DEVICE_FIELDS if k in dev}
    if dev.get("workload") not in (None, "host-items"):  # e.g. minibench's all-ones inputs, not the host's items
        changes.update(workload=dev["workload"], workload_source=dev.get("workload_source", ""))
    changes["versions"] = {**rec.versions, **dev.get("versions", {})}
    state = result.device_state or {}
    notes = changes.get("notes", rec.notes)  # the device's own, else the host's
    changes["notes"] = {**notes, "device_state": state} if state else notes
    changes["reason"] = "; ".join(x for x in (dev.get("reason"), *state.get("warnings", [])) if x)
    rec = rec.replace(**changes)
    calls, fed = rec.n_model_calls, rec.tokens.fed or 0
    if calls and fed:  # from the mean window length: the device reports totals, not every window
        flops = forward_flops(config, round(fed / calls), rec.task) * calls
        rec = rec.replace(flops_total=flops, flops_per_item_mean=flops / max(rec.n_items or 1, 1))
    return derive(rec)
