"""One JSON record per (model, runtime, precision, workload, shape) run, as a Record (pocketbert.contracts).

A record keeps the raw per-item samples (latency_ms, tokenize_ms, postprocess_ms) and everything
derived from them (`stats`), plus provenance (machine, versions, git revision). Units are in the
field names. Skipped and failed runs are records too (status + reason), so a report shows them.
Records are read here, validated once, and handed on as Record objects (the file each came from in
`Record.source`); device-farm artifact layouts (bench/farm.py) are read only when asked.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.farm import find_farm_records
from bench.stats import summarize
from bench.trust import judge
from pocketbert.common import UsageError
from pocketbert.contracts import Record
from pocketbert.readers import JSON_LIMIT_BYTES, read_text_bounded

SCHEMA = Record.SCHEMA


def record_name(rec: Record) -> str:
    """File name of a record: <model>-<runtime>-<precision>-<workload>-<shape>[@<remote device>].json."""
    model = Path(rec.model).name if "/" in rec.model else rec.model
    device = rec.machine.device or "local"
    at = "@" + re.sub(r"[^A-Za-z0-9_.-]+", "_", device.split("://", 1)[1]) if "://" in device else ""
    return f"{model}-{rec.runtime}-{rec.precision}-{rec.workload}-{rec.shape}{at}.json"


def record_line(rec: Record) -> str:
    """A record as one human line for the console (a noisy one says why, at once)."""
    head = f"{rec.runtime:<10} {rec.precision:<5} {rec.shape:<7}"
    if rec.status != "ok":
        return f"{head} {rec.status}: {rec.reason}"
    s, frac, noisy = rec.stats.latency_ms, rec.fraction_of_peak, rec.trust.summary()
    rss = f"{rec.peak_rss_mb:6.0f} MB" if rec.peak_rss_mb is not None else "     – MB"  # not every device says
    return (f"{head} p50 {s.p50:8.2f} ms  p90 {s.p90:8.2f} ms  total {rec.total_model_s:7.2f} s  "
            f"rss {rss}  {rec.achieved_gflops or 0:6.1f} GFLOP/s"
            + (f" ({frac:.0%} of {rec.gemm_peak_kind or 'fp32'} peak {rec.gemm_peak_gflops:.0f})" if frac else "")
            + (f"  !! {noisy}" if noisy else ""))


def derive(rec: Record) -> Record:
    """The record with its statistics and totals filled from its raw samples, and its trust evidence
    judged against bench.trust's tolerances unless it was judged already (a single round's verdict is
    its worker result's); checked whole. Called once, when the record is built (bench.record_build),
    or when a record that came without statistics is read (a device app's, a farm's): reports print
    what records store."""
    if rec.status != "ok":
        return rec
    lat, tok, post = rec.latency_ms, rec.tokenize_ms, rec.postprocess_ms
    e2e = [a + b + c for a, b, c in zip(lat, tok, post)]
    total = sum(lat) / 1e3
    real, fed = rec.tokens.real, rec.tokens.fed  # a record without counts: no waste figure
    waste = (1 - real / fed if fed else 0.0) if real is not None and fed is not None else None
    changes = {"stats": {"latency_ms": summarize(lat), "tokenize_ms": summarize(tok),
                         "postprocess_ms": summarize(post), "end_to_end_ms": summarize(e2e)},
               "total_model_s": total, "total_end_to_end_s": sum(e2e) / 1e3,
               "throughput_items_per_s": len(lat) / total if total else None,
               "tokens": rec.tokens.model_copy(update={"padding_waste": waste})}
    if rec.flops_total and total:
        achieved = rec.flops_total / total / 1e9
        changes.update(achieved_gflops=achieved,
                       fraction_of_peak=achieved / rec.gemm_peak_gflops if rec.gemm_peak_gflops else None)
    trust = rec.trust.to_dict()
    if trust and not rec.trust.judged:
        changes["trust"] = judge(trust, rec.machine.cores, rec.threads,
                                 changes.get("fraction_of_peak", rec.fraction_of_peak))
    loop = rec.harness_overhead
    if loop is not None:
        figures = {}
        if loop.bare_loop_s:
            # Timed loop minus post-processing (workload work) vs the bare loop: includes run-to-run noise.
            figures["timed_vs_bare"] = (loop.timed_loop_s - (loop.postprocess_s or 0.0)) / loop.bare_loop_s - 1
        if loop.null_loop_s is not None and total:
            # The harness's own cost (the timed loop around a do-nothing runner) per unit of model time.
            figures["overhead_fraction"] = loop.null_loop_s / total
        changes["harness_overhead"] = loop.model_copy(update=figures)
    return rec.replace(complete=True, **changes)


def with_statistics(rec: Record) -> Record:
    """A record read from disk as reports use it: its own stored statistics, or, for one that came
    without (a device app's or a farm's record, or one written before every summary was stored),
    derived now, once."""
    return rec if rec.status != "ok" or rec.stats.complete else derive(rec)


def load_records(paths: list[Path], farm: bool = False) -> list[Record]:
    """Records from result folders or files (several machines' runs can be merged), each validated
    once and located (`source`). Device-farm artifacts (bench/farm.py: zips, nested zips, renamed
    files, the farm's identity attached) are read from every path when `farm`, and from a .zip
    given by name; a plain folder is never searched for them."""
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists():
            raise UsageError(f"{p} not found: pass result folders or record files")
    from_farm = [p for p in paths if farm or (p.is_file() and p.suffix == ".zip")]
    records = [_read(f) for f in _record_files([p for p in paths if p not in from_farm])]
    records = [r for r in records if r is not None] + (find_farm_records(from_farm) if from_farm else [])
    if not records:
        raise UsageError(f"no benchmark records ({SCHEMA}) under {', '.join(map(str, paths))}"
                         + ("" if farm else " (device-farm artifacts: pass --farm)"))
    return [with_statistics(r) for r in records]


def _record_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():  # files only: a folder named x.json is not a record (a pipe one is named below)
            files += sorted(q for q in p.rglob("*.json") if not q.name.startswith(".")
                            and "bundles" not in q.relative_to(p).parts and not q.is_dir())
        else:
            files.append(p)
    return files


def _read(path: Path) -> Record | None:
    """The record in `path`; None for other JSON (a plan, a manifest). A file that says it is a record
    but is not a valid one (wrong version, types or missing fields) is one line naming it and the field."""
    data = Record.parse_json(read_text_bounded(path, JSON_LIMIT_BYTES, "record file"), str(path))  # bounded, not too deep
    if not (isinstance(data, dict) and str(data.get("schema", "")).startswith("pocketbert-bench/")):
        return None
    return Record.from_dict(data, str(path)).model_copy(update={"source": str(path)})
