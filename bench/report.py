"""Reports rendered from records only: report.md (Markdown table), results.csv, and PNG plots
(latency distribution per runtime; model size vs latency). Every figure is the record's own
(its stored statistics and trust verdict, bench.records): nothing is recomputed here. Records from several machines or
devices merge into one report: the `machine` column tells them apart."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Callable

from tabulate import tabulate

from bench import profile_report
from bench.records import load_records
from export.coverage import delegated_label
from pocketbert import escape
from pocketbert.backends import all_runtimes
from pocketbert.common import write_text_atomic
from pocketbert.contracts import Record

# (column, how to get it from a Record, format)
COLUMNS: list[tuple[str, Callable[[Record], Any], str]] = [
    ("machine", lambda r: r.machine.label, "{}"),
    ("model", lambda r: r.model, "{}"),
    ("runtime", lambda r: r.runtime, "{}"),
    ("precision", lambda r: r.precision, "{}"),
    ("workload", lambda r: r.workload, "{}"),
    ("shape", lambda r: r.shape, "{}"),
    ("seq_len", lambda r: r.seq_len, "{}"),
    ("threads", lambda r: r.threads, "{}"),
    ("params_M", lambda r: r.parameters.total / 1e6, "{:.1f}"),
    ("non_embedding_params_M", lambda r: r.parameters.non_embedding / 1e6, "{:.1f}"),
    ("file_MB", lambda r: r.model_file_bytes / 1e6 if r.model_file_bytes else None, "{:.1f}"),
    ("delegated", lambda r: delegated_label({"delegated_pct": r.delegated_pct, "partitions": r.delegate_partitions})
     if r.delegated_pct is not None else None, "{}"),
    ("items", lambda r: r.n_items, "{}"),
    ("EM", lambda r: r.answer_quality.exact_match, "{:.2f}"),
    ("F1", lambda r: r.answer_quality.f1, "{:.2f}"),
    ("load_ms", lambda r: r.load_ms, "{:.0f}"),
    ("first_inference_ms", lambda r: r.first_inference_ms, "{:.1f}"),
    ("latency_p50_ms", lambda r: r.stats.latency_ms.p50, "{:.2f}"),
    ("latency_p90_ms", lambda r: r.stats.latency_ms.p90, "{:.2f}"),
    ("latency_p99_ms", lambda r: r.stats.latency_ms.p99, "{:.2f}"),
    ("latency_mean_ms", lambda r: r.stats.latency_ms.mean, "{:.2f}"),
    ("latency_trimmed_mean_ms", lambda r: r.stats.latency_ms.trimmed_mean, "{:.2f}"),
    ("total_model_s", lambda r: r.total_model_s, "{:.2f}"),
    ("total_end_to_end_s", lambda r: r.total_end_to_end_s, "{:.2f}"),
    ("tokenize_p50_ms", lambda r: r.stats.tokenize_ms.p50, "{:.3f}"),
    ("postprocess_p50_ms", lambda r: r.stats.postprocess_ms.p50, "{:.3f}"),
    ("items_per_s", lambda r: r.throughput_items_per_s, "{:.2f}"),
    ("GFLOP_per_s", lambda r: r.achieved_gflops, "{:.1f}"),
    ("fraction_of_gemm_peak", lambda r: r.fraction_of_peak, "{:.0%}"),
    ("gemm_peak_kind", lambda r: r.gemm_peak_kind or None, "{}"),
    ("gemm_peak_GFLOP_per_s", lambda r: r.gemm_peak_gflops, "{:.0f}"),
    ("rounds", lambda r: r.rounds, "{}"),
    ("trust", lambda r: ("noisy" if r.trust.noisy else "ok") if r.trust.judged else None, "{}"),
    ("other_cpu_cores", lambda r: r.trust.other_cores(), "{:.2f}"),
    ("steal_pct", lambda r: r.trust.steal(), "{:.1f}"),
    ("gemm_before_GFLOP_per_s", lambda r: r.trust.gemm_before_gflops, "{:.0f}"),
    ("gemm_after_GFLOP_per_s", lambda r: r.trust.gemm_after_gflops, "{:.0f}"),
    ("latency_cv", lambda r: r.trust.cv, "{:.1%}"),
    ("noisy_reasons", lambda r: "; ".join(r.trust.reasons) or None, "{}"),
    ("peak_rss_MB", lambda r: r.peak_rss_mb, "{:.0f}"),
    ("runtime_rss_MB", lambda r: r.runtime_rss_mb, "{:.0f}"),
    ("padding_waste", lambda r: r.tokens.padding_waste, "{:.0%}"),
]
FORMATS = {name: fmt for name, _, fmt in COLUMNS}
GETTERS = {name: get for name, get, _ in COLUMNS}
# The columns the Markdown table shows (the CSV has all of them).
MD_COLUMNS = ("model", "runtime", "precision", "workload", "shape", "trust", "params_M", "file_MB", "delegated", "F1",
              "load_ms",
              "first_inference_ms", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
              "latency_trimmed_mean_ms", "total_model_s", "tokenize_p50_ms", "postprocess_p50_ms",
              "GFLOP_per_s", "fraction_of_gemm_peak", "gemm_peak_kind", "other_cpu_cores", "latency_cv",
              "peak_rss_MB", "padding_waste")


def _name(runtime: str) -> str:
    backend = all_runtimes().get(runtime)
    return (backend.label or runtime) if backend else runtime


def headline(records: list[Record], e: Callable[[Any], str] = str) -> list[str]:
    """The three lines a user reads first, from trusted records only (noisy ones are kept out):
    the fastest runtime and precision, the real-length gain, and int8 vs fp32 size and latency.
    `e` escapes a record's text for where the lines go (Markdown)."""
    ok = [r for r in records if r.status == "ok"]
    trusted = [r for r in ok if not r.trust.noisy]
    lines = []
    if len(trusted) < len(ok):
        lines.append(f"**{len(ok) - len(trusted)} of {len(ok)} records are noisy** (other processes used the "
                     "CPU, or its pace changed, while they ran; see *Noisy records* for which): they are kept out of the lines below.")
    if not trusted:
        lines.append("No trusted record: every measured run was noisy. Re-run on a quiet machine "
                     "(or with `--rounds 3 --retries 2`).")
        trade = speed_at_quality(ok, e)  # answer quality does not depend on the noise; the speed-up does
        if trade:
            lines.append(trade.replace("**Speed at answer quality:**",
                                       "**Speed at answer quality (from noisy records, indicative only):**"))
        return lines
    best = min(trusted, key=lambda r: r.stats.latency_ms.p50)
    shape = "real length" if best.shape == "dynamic" else f"padded to {best.seq_len}"
    lines.append(f"**Fastest:** {e(_name(best.runtime))} {e(best.precision)}, {shape}: "
                 f"p50 {best.stats.latency_ms.p50:.1f} ms per item ({e(best.model)}, {e(best.workload)}, "
                 f"seq {best.seq_len}, {best.threads} threads).")
    by = {(r.machine.hostname, r.model, r.workload, r.runtime, r.precision, r.shape): r for r in trusted}
    gains = []
    for (h, m, w, rt, p, shape), r in by.items():
        fixed = by.get((h, m, w, rt, p, "fixed")) if shape == "dynamic" else None
        if fixed:
            gains.append((fixed.total_model_s / r.total_model_s, rt, p, fixed, r))
    if gains:
        g = next((x for x in gains if (x[1], x[2]) == (best.runtime, best.precision)), max(gains, key=lambda x: x[0]))
        ratio, rt, p, fixed, real_len = g
        real, fed = real_len.tokens.real, fixed.tokens.fed
        counts = (f"; {real / len(real_len.latency_ms):.0f} real tokens per item on average, "
                  f"{fed / len(fixed.latency_ms):.0f} padded" if real is not None and fed is not None else "")
        lines.append(f"**Real length vs padded to {fixed.seq_len}:** {ratio:.1f}x faster with "
                     f"{e(_name(rt))} {e(p)} (p50 {fixed.stats.latency_ms.p50:.1f} -> "
                     f"{real_len.stats.latency_ms.p50:.1f} ms{counts}); "
                     f"{min(x[0] for x in gains):.1f}-{max(x[0] for x in gains):.1f}x over "
                     f"{len(gains)} runtime/precision pairs.")
    else:
        lines.append("**Real length vs padded:** not measured (needs trusted `fixed` and `dynamic` records).")
    parts = []
    for rt in sorted({r.runtime for r in trusted}):
        for shape in ("dynamic", "fixed"):
            hit = [by.get((best.machine.hostname, best.model, best.workload, rt, p, shape)) for p in ("fp32", "int8")]
            if all(hit):
                f32, i8 = hit
                size = (f"{f32.model_file_bytes / i8.model_file_bytes:.1f}x smaller "
                        f"({i8.model_file_bytes / 1e6:.0f} vs {f32.model_file_bytes / 1e6:.0f} MB), "
                        if f32.model_file_bytes and i8.model_file_bytes else "")
                parts.append(f"{e(_name(rt))} {size}{f32.total_model_s / i8.total_model_s:.1f}x faster")
                break
    lines.append("**int8 vs fp32:** " + ("; ".join(parts) + " (same items and shape)." if parts
                                           else "not measured (needs trusted fp32 and int8 records)."))
    trade = speed_at_quality(trusted, e)
    if trade:
        lines.append(trade)
    return lines


def speed_at_quality(records: list[Record], e: Callable[[Any], str] = str) -> str | None:
    """The paper's on-device QA claim as measured: where several models answered the same scored
    workload on one runtime, precision and shape, each smaller model's speed-up over the largest
    (total model time over the same items) at its share of the largest's F1."""
    groups: dict[tuple, list[Record]] = {}
    for r in records:
        if r.answer_quality is not None and r.answer_quality.f1 is not None:
            key = (r.machine.hostname, r.workload, r.runtime, r.precision, r.shape, tuple(r.item_ids))
            groups.setdefault(key, []).append(r)
    parts = []
    for (_, _, rt, p, shape, _), rs in sorted(groups.items(), key=lambda kv: kv[0][2:5]):
        if len({r.model for r in rs}) < 2:
            continue
        ref = max(rs, key=lambda r: r.parameters.total or 0)
        for r in sorted(rs, key=lambda r: r.parameters.total or 0):
            if r is ref or not ref.answer_quality.f1 or \
                    r.parameters.total == ref.parameters.total:  # the same model, another file
                continue
            speed = ref.total_model_s / r.total_model_s
            keep = 100 * r.answer_quality.f1 / ref.answer_quality.f1
            parts.append(f"{e(r.model)} is {speed:.2f}x faster than {e(ref.model)} at {keep:.1f}% of its F1 "
                         f"({r.answer_quality.f1:.1f} vs {ref.answer_quality.f1:.1f}; {e(_name(rt))} {e(p)}, "
                         f"{'real length' if shape == 'dynamic' else 'padded'}, {r.n_items} questions)")
    return ("**Speed at answer quality:** " + "; ".join(parts) + ".") if parts else None


def _key(r: Record) -> tuple:
    return (r.machine.hostname or "", r.workload, r.model, r.runtime, r.precision, r.shape)


def _sorted_ok(records: list[Record]) -> list[Record]:
    return sorted((r for r in records if r.status == "ok"), key=_key)


def rows(records: list[Record]) -> list[dict[str, Any]]:
    """One row of raw values per measured record (skipped/failed ones are listed apart)."""
    names = [name for name, _, _ in COLUMNS]
    return [dict(zip(names, _values(r, names))) for r in _sorted_ok(records)]


def _values(r: Record, names) -> list[Any]:
    """The columns' values, each None ("-") when the record does not carry that figure (an older or a
    device's record without parameter counts, say)."""
    out = []
    for name in names:
        try:
            out.append(GETTERS[name](r))
        except (AttributeError, TypeError, ZeroDivisionError):
            out.append(None)
    return out


def _fmt(name: str, value: Any) -> str:
    """A Markdown cell: the column's format, text escaped (untrusted: records from other machines)."""
    if value is None:
        return "–"
    text = FORMATS[name].format(value)
    return escape.markdown(text) if isinstance(value, str) else text


def _table(headers: tuple[str, ...], cells: list[list[str]]) -> list[str]:
    """A Markdown table (tabulate's pipe format) of cells already formatted and escaped, and a blank line:
    text columns aligned left, figures right."""
    align = ["left" if FORMATS.get(h, "{}") == "{}" else "right" for h in headers]
    return tabulate(cells, headers=list(headers), tablefmt="pipe", disable_numparse=True,
                    colalign=align).splitlines() + [""]


def markdown(records: list[Record]) -> str:
    """The Markdown report: one table per machine, then skipped/failed runs with their reasons.
    Every text a record brings is escaped where it is written (pocketbert.escape)."""
    e = escape.markdown
    lines = ["# pocketbert benchmark report", ""]
    lines += [line for h in headline(records, e) for line in (h, "")]
    machines = {r.machine.label: r for r in records}
    for name, r in machines.items():
        m = r.machine
        emulated = " (emulated: functional check only, its timings are not a real machine's)" if m.emulated else ""
        lines += [f"## {e(name)}{emulated}", "",
                  f"{e(m.cpu_model)} · {m.physical_cores} physical cores · "
                  f"ISA {e(' '.join(m.isa_flags))} · {e(m.os)} · load at start {m.load_avg_1m}",
                  f"threads {r.threads} · warm-up {r.warmup} · batch 1 · rounds {r.rounds} · "
                  f"git {e(r.git_revision)} · " + " · ".join(f"{e(lib)} {e(v)}" for lib, v in r.versions.items()), ""]
        mine = [[_fmt(c, value) for c, value in zip(MD_COLUMNS, _values(r, MD_COLUMNS))]
                for r in _sorted_ok(records) if r.machine.label == name]
        lines += _table(MD_COLUMNS, mine) if mine else []
    noisy = sorted((r for r in records if r.status == "ok" and r.trust.noisy), key=_key)
    if noisy:
        lines += ["## Noisy records (kept out of the ratios above)", ""]
        lines += _table(("model", "runtime", "precision", "workload", "shape", "why"),
                        [[e(x) for x in (*_names(r), "; ".join(r.trust.reasons))] for r in noisy])
    elsewhere = sorted({(r.model, r.runtime, r.precision, r.int8_chosen_elsewhere)
                        for r in records if r.int8_chosen_elsewhere})
    if elsewhere:  # the bundle's int8 mode was timed on another CPU than this one
        lines += ["## int8 chosen on another CPU", ""]
        lines += _table(("model", "runtime", "precision", "what"), [[e(x) for x in row] for row in elsewhere])
    not_run = sorted((r for r in records if r.status != "ok"), key=_key)
    if not_run:
        lines += ["## Not measured", ""]
        lines += _table(("model", "runtime", "precision", "workload", "shape", "status", "reason"),
                        [[e(x) for x in (*_names(r), r.status, r.reason)] for r in not_run])
    lines += profile_report.markdown_lines(records)
    lines += ["Latency is model time per item (a SQuAD question sums its windows), tokenization and "
              "post-processing excluded, as in the paper; they are shown apart. GFLOP/s counts matrix "
              "products on the shapes fed (padding included); the peak is measured inside each run's worker, "
              "right before and after its timed loop, at the same threads: fp32 GEMM for fp32 rows, the "
              "integer GEMM of the int8 path for int8 rows. `trust`: *noisy* when other processes used CPU "
              "during the run, the hypervisor stole time, the GEMM probe moved, or a fraction passed 100% "
              "(bench/trust.py); `other_cpu_cores`: other processes' CPU during the run; `latency_cv`: robust "
              "spread of latency per FLOP.", ""]
    return "\n".join(lines)


def _names(r: Record) -> list[str]:
    return [r.model, r.runtime, r.precision, r.workload, r.shape]


def csv_text(records: list[Record]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[c for c, _, _ in COLUMNS])
    writer.writeheader()
    writer.writerows(escape.escape_strings(rows(records), escape.csv_cell))  # untrusted text: escaped
    return buf.getvalue()


def plots(records: list[Record], out: Path) -> list[Path]:
    """latency_distribution.png (box plot per run) and size_vs_latency.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = escape.plot_label  # no mathtext from a record
    # Emulated runs are never plotted against real ones: their timings measure the emulator.
    ok = sorted((r for r in records if r.status == "ok" and not r.machine.emulated), key=_key)
    if not ok:
        return []
    labels = [label(f"{r.model}\n{r.runtime}-{r.precision} {r.shape}\n{r.workload}") for r in ok]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(ok)), 5))
    ax.boxplot([r.latency_ms for r in ok], showfliers=True)
    ax.set_xticks(range(1, len(ok) + 1), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    p1 = _save(fig, ax, None, "latency per item (ms)", "Latency distribution per run (model time, batch 1)",
               out / "latency_distribution.png")

    fig, ax = plt.subplots(figsize=(7, 5))
    for r in ok:
        if r.model_file_bytes:
            ax.scatter(r.model_file_bytes / 1e6, r.stats.latency_ms.p50)
            ax.annotate(label(f"{r.model} {r.runtime}-{r.precision} {r.shape[:1]}"),
                        (r.model_file_bytes / 1e6, r.stats.latency_ms.p50), fontsize=6)
    p2 = _save(fig, ax, "model file size (MB)", "p50 latency (ms)", "Size vs latency",
               out / "size_vs_latency.png")
    return [p1, p2]


def _save(fig, ax, xlabel: str | None, ylabel: str, title: str, path: Path) -> Path:
    """Label, lay out, write and close one figure."""
    import matplotlib.pyplot as plt

    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_report(inputs: list[Path], out: Path, farm: bool = False) -> list[Path]:
    """Read the records under `inputs` (device-farm artifact layouts too when `farm`: bench.records),
    write report.md, results.csv and the plots into `out`."""
    return write_report(load_records(inputs, farm=farm), out)


def write_report(records: list[Record], out: Path) -> list[Path]:
    """report.md, results.csv and the plots of `records` into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("report.md", markdown(records)), ("results.csv", csv_text(records))):
        write_text_atomic(out / name, text)
        written.append(out / name)
    return written + plots(records, out) + profile_report.plot(records, out)
