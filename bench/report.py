"""Reports rendered from records only: report.md (Markdown table), results.csv, and PNG plots
(latency distribution per runtime; model size vs latency). Every figure is the record's own
(its stored statistics and trust verdict, bench.records): nothing is recomputed here. Records from several machines or
devices merge into one report: the `machine` column tells them apart."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from bench import profile_report
from bench.records import load_records
from bench.trust import is_noisy
from export.coverage import delegated_label
from pocketbert import escape
from pocketbert.backends import all_runtimes
from pocketbert.common import write_text_atomic

# (column, how to get it from a record, format)
COLUMNS: list[tuple[str, Any, str]] = [
    ("machine", lambda r: f"{r['machine'].get('device', 'local')}:{r['machine'].get('hostname', '?')}", "{}"),
    ("model", lambda r: r["model"], "{}"),
    ("runtime", lambda r: r["runtime"], "{}"),
    ("precision", lambda r: r["precision"], "{}"),
    ("workload", lambda r: r["workload"], "{}"),
    ("shape", lambda r: r["shape"], "{}"),
    ("seq_len", lambda r: r["seq_len"], "{}"),
    ("threads", lambda r: r["threads"], "{}"),
    ("params_M", lambda r: r["parameters"]["total"] / 1e6, "{:.1f}"),
    ("non_embedding_params_M", lambda r: r["parameters"]["non_embedding"] / 1e6, "{:.1f}"),
    ("file_MB", lambda r: r["model_file_bytes"] / 1e6 if r.get("model_file_bytes") else None, "{:.1f}"),
    ("delegated", lambda r: delegated_label({"delegated_pct": r["delegated_pct"], "partitions": r.get(
        "delegate_partitions")}) if r.get("delegated_pct") is not None else None, "{}"),
    ("items", lambda r: r["n_items"], "{}"),
    ("EM", lambda r: (r.get("answer_quality") or {}).get("exact_match"), "{:.2f}"),
    ("F1", lambda r: (r.get("answer_quality") or {}).get("f1"), "{:.2f}"),
    ("load_ms", lambda r: r["load_ms"], "{:.0f}"),
    ("first_inference_ms", lambda r: r["first_inference_ms"], "{:.1f}"),
    ("latency_p50_ms", lambda r: r["stats"]["latency_ms"]["p50"], "{:.2f}"),
    ("latency_p90_ms", lambda r: r["stats"]["latency_ms"]["p90"], "{:.2f}"),
    ("latency_p99_ms", lambda r: r["stats"]["latency_ms"]["p99"], "{:.2f}"),
    ("latency_mean_ms", lambda r: r["stats"]["latency_ms"]["mean"], "{:.2f}"),
    ("latency_trimmed_mean_ms", lambda r: r["stats"]["latency_ms"]["trimmed_mean"], "{:.2f}"),
    ("total_model_s", lambda r: r["total_model_s"], "{:.2f}"),
    ("total_end_to_end_s", lambda r: r["total_end_to_end_s"], "{:.2f}"),
    ("tokenize_p50_ms", lambda r: r["stats"]["tokenize_ms"]["p50"], "{:.3f}"),
    ("postprocess_p50_ms", lambda r: r["stats"]["postprocess_ms"]["p50"], "{:.3f}"),
    ("items_per_s", lambda r: r["throughput_items_per_s"], "{:.2f}"),
    ("GFLOP_per_s", lambda r: r.get("achieved_gflops"), "{:.1f}"),
    ("fraction_of_gemm_peak", lambda r: r.get("fraction_of_peak"), "{:.0%}"),
    ("gemm_peak_kind", lambda r: r.get("gemm_peak_kind") or None, "{}"),
    ("gemm_peak_GFLOP_per_s", lambda r: r.get("gemm_peak_gflops"), "{:.0f}"),
    ("rounds", lambda r: r.get("rounds", 1), "{}"),
    ("trust", lambda r: ("noisy" if is_noisy(r) else "ok") if r.get("trust") else None, "{}"),
    ("other_cpu_cores", lambda r: _trust(r, "other_cpu_cores", "other_cpu_cores_max"), "{:.2f}"),
    ("steal_pct", lambda r: _trust(r, "steal_pct", "steal_pct_max"), "{:.1f}"),
    ("gemm_before_GFLOP_per_s", lambda r: _trust(r, "gemm_before_gflops"), "{:.0f}"),
    ("gemm_after_GFLOP_per_s", lambda r: _trust(r, "gemm_after_gflops"), "{:.0f}"),
    ("latency_cv", lambda r: _trust(r, "cv"), "{:.1%}"),
    ("noisy_reasons", lambda r: "; ".join((r.get("trust") or {}).get("reasons", [])) or None, "{}"),
    ("peak_rss_MB", lambda r: r["peak_rss_mb"], "{:.0f}"),
    ("runtime_rss_MB", lambda r: r["runtime_rss_mb"], "{:.0f}"),
    ("padding_waste", lambda r: r["tokens"]["padding_waste"], "{:.0%}"),
]
# The columns the Markdown table shows (the CSV has all of them).
MD_COLUMNS = ("model", "runtime", "precision", "workload", "shape", "trust", "params_M", "file_MB", "delegated", "F1",
              "load_ms",
              "first_inference_ms", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
              "latency_trimmed_mean_ms", "total_model_s", "tokenize_p50_ms", "postprocess_p50_ms",
              "GFLOP_per_s", "fraction_of_gemm_peak", "gemm_peak_kind", "other_cpu_cores", "latency_cv",
              "peak_rss_MB", "padding_waste")


def _trust(r: dict, key: str, rounds_key: str | None = None):
    t = r.get("trust") or {}
    return t.get(key, t.get(rounds_key) if rounds_key else None)


def _name(runtime: str) -> str:
    backend = all_runtimes().get(runtime)
    return (backend.label or runtime) if backend else runtime


def headline(records: list[dict]) -> list[str]:
    """The three lines a user reads first, from trusted records only (noisy ones are kept out):
    the fastest runtime and precision, the real-length gain, and int8 vs fp32 size and latency."""
    ok = [r for r in records if r["status"] == "ok"]
    trusted = [r for r in ok if not is_noisy(r)]
    lines = []
    if len(trusted) < len(ok):
        lines.append(f"**{len(ok) - len(trusted)} of {len(ok)} records are noisy** (other processes used the "
                     "CPU, or its pace changed, while they ran; see *Noisy records* for which): they are kept out of the lines below.")
    if not trusted:
        lines.append("No trusted record: every measured run was noisy. Re-run on a quiet machine "
                     "(or with `--rounds 3 --retries 2`).")
        trade = speed_at_quality(ok)  # answer quality does not depend on the noise; the speed-up does
        if trade:
            lines.append(trade.replace("**Speed at answer quality:**",
                                       "**Speed at answer quality (from noisy records, indicative only):**"))
        return lines
    best = min(trusted, key=lambda r: r["stats"]["latency_ms"]["p50"])
    shape = "real length" if best["shape"] == "dynamic" else f"padded to {best['seq_len']}"
    lines.append(f"**Fastest:** {_name(best['runtime'])} {best['precision']}, {shape}: "
                 f"p50 {best['stats']['latency_ms']['p50']:.1f} ms per item ({best['model']}, {best['workload']}, "
                 f"seq {best['seq_len']}, {best['threads']} threads).")
    by = {(r["machine"].get("hostname"), r["model"], r["workload"], r["runtime"], r["precision"], r["shape"]): r
          for r in trusted}
    gains = []
    for (h, m, w, rt, p, shape), r in by.items():
        fixed = by.get((h, m, w, rt, p, "fixed")) if shape == "dynamic" else None
        if fixed:
            gains.append((fixed["total_model_s"] / r["total_model_s"], rt, p, fixed, r))
    if gains:
        g = next((x for x in gains if (x[1], x[2]) == (best["runtime"], best["precision"])), max(gains))
        real, fed = g[4]["tokens"]["real"], g[3]["tokens"]["fed"]
        lines.append(f"**Real length vs padded to {g[3]['seq_len']}:** {g[0]:.1f}x faster with "
                     f"{_name(g[1])} {g[2]} (p50 {g[3]['stats']['latency_ms']['p50']:.1f} -> "
                     f"{g[4]['stats']['latency_ms']['p50']:.1f} ms; {real / len(g[4]['latency_ms']):.0f} real "
                     f"tokens per item on average, {fed / len(g[3]['latency_ms']):.0f} padded); "
                     f"{min(x[0] for x in gains):.1f}-{max(x[0] for x in gains):.1f}x over "
                     f"{len(gains)} runtime/precision pairs.")
    else:
        lines.append("**Real length vs padded:** not measured (needs trusted `fixed` and `dynamic` records).")
    parts = []
    for rt in sorted({r["runtime"] for r in trusted}):
        for shape in ("dynamic", "fixed"):
            hit = [by.get((best["machine"].get("hostname"), best["model"], best["workload"], rt, p, shape))
                   for p in ("fp32", "int8")]
            if all(hit):
                f32, i8 = hit
                size = (f"{f32['model_file_bytes'] / i8['model_file_bytes']:.1f}x smaller "
                        f"({i8['model_file_bytes'] / 1e6:.0f} vs {f32['model_file_bytes'] / 1e6:.0f} MB), "
                        if f32.get("model_file_bytes") and i8.get("model_file_bytes") else "")
                parts.append(f"{_name(rt)} {size}{f32['total_model_s'] / i8['total_model_s']:.1f}x faster")
                break
    lines.append("**int8 vs fp32:** " + ("; ".join(parts) + " (same items and shape)." if parts
                                           else "not measured (needs trusted fp32 and int8 records)."))
    trade = speed_at_quality(trusted)
    if trade:
        lines.append(trade)
    return lines


def speed_at_quality(records: list[dict]) -> str | None:
    """The paper's on-device QA claim as measured: where several models answered the same scored
    workload on one runtime, precision and shape, each smaller model's speed-up over the largest
    (total model time over the same items) at its share of the largest's F1."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if (r.get("answer_quality") or {}).get("f1") is not None:
            key = (r["machine"].get("hostname"), r["workload"], r["runtime"], r["precision"], r["shape"],
                   tuple(r.get("item_ids") or ()))
            groups.setdefault(key, []).append(r)
    parts = []
    for (_, _, rt, p, shape, _), rs in sorted(groups.items(), key=lambda kv: kv[0][2:5]):
        if len({r["model"] for r in rs}) < 2:
            continue
        ref = max(rs, key=lambda r: r["parameters"].get("total", 0))
        for r in sorted(rs, key=lambda r: r["parameters"].get("total", 0)):
            if r is ref or not ref["answer_quality"]["f1"] or \
                    r["parameters"].get("total") == ref["parameters"].get("total"):  # the same model, another file
                continue
            speed = ref["total_model_s"] / r["total_model_s"]
            keep = 100 * r["answer_quality"]["f1"] / ref["answer_quality"]["f1"]
            parts.append(f"{r['model']} is {speed:.2f}x faster than {ref['model']} at {keep:.1f}% of its F1 "
                         f"({r['answer_quality']['f1']:.1f} vs {ref['answer_quality']['f1']:.1f}; {_name(rt)} {p}, "
                         f"{'real length' if shape == 'dynamic' else 'padded'}, {r['n_items']} questions)")
    return ("**Speed at answer quality:** " + "; ".join(parts) + ".") if parts else None


def _key(r: dict) -> tuple:
    return (r["machine"].get("hostname", ""), r["workload"], r["model"], r["runtime"], r["precision"], r["shape"])


def rows(records: list[dict]) -> list[dict[str, Any]]:
    """One row of raw values per measured record (skipped/failed ones are listed apart)."""
    out = []
    for r in sorted((r for r in records if r["status"] == "ok"), key=_key):
        out.append({name: get(r) for name, get, _ in COLUMNS})
    return out


def _fmt(name: str, value: Any) -> str:
    if value is None:
        return "–"
    fmt = next(f for n, _, f in COLUMNS if n == name)
    return fmt.format(value)


def markdown(records: list[dict]) -> str:
    """The Markdown report: one table per machine, then skipped/failed runs with their reasons."""
    records = [escape.escape_strings(r, escape.markdown) for r in records]  # untrusted text: escaped
    lines = ["# pocketbert benchmark report", ""]
    lines += [line for h in headline(records) for line in (h, "")]
    measured = rows(records)
    machines = {}
    for r in records:
        m = r["machine"]
        machines[f"{m.get('device', 'local')}:{m.get('hostname', '?')}"] = r
    for name, r in machines.items():
        m = r["machine"]
        emulated = " (emulated: functional check only, its timings are not a real machine's)" if m.get("emulated") else ""
        lines += [f"## {name}{emulated}", "",
                  f"{m.get('cpu_model')} · {m.get('physical_cores')} physical cores · "
                  f"ISA {' '.join(m.get('isa_flags', []))} · {m.get('os')} · load at start {m.get('load_avg_1m')}",
                  f"threads {r['threads']} · warm-up {r['warmup']} · batch 1 · rounds {r.get('rounds', 1)} · "
                  f"git {r['git_revision']} · "
                  + " · ".join(f"{lib} {v}" for lib, v in r["versions"].items()), ""]
        mine = [row for row in measured if row["machine"] == name]
        if mine:
            lines.append("| " + " | ".join(MD_COLUMNS) + " |")
            lines.append("|" + "---|" * len(MD_COLUMNS))
            for row in mine:
                lines.append("| " + " | ".join(_fmt(c, row[c]) for c in MD_COLUMNS) + " |")
            lines.append("")
    noisy = [r for r in records if r["status"] == "ok" and is_noisy(r)]
    if noisy:
        lines += ["## Noisy records (kept out of the ratios above)", "",
                  "| model | runtime | precision | workload | shape | why |", "|---|---|---|---|---|---|"]
        for r in sorted(noisy, key=_key):
            lines.append(f"| {r['model']} | {r['runtime']} | {r['precision']} | {r['workload']} | {r['shape']} "
                         f"| {'; '.join(r['trust']['reasons'])} |")
        lines.append("")
    elsewhere = sorted({(r["model"], r["runtime"], r["precision"], r["notes"]["int8_chosen_elsewhere"])
                        for r in records if (r.get("notes") or {}).get("int8_chosen_elsewhere")})
    if elsewhere:  # the bundle's int8 mode was timed on another CPU than this one
        lines += ["## int8 chosen on another CPU", "", "| model | runtime | precision | what |", "|---|---|---|---|"]
        lines += [f"| {m} | {rt} | {p} | {why} |" for m, rt, p, why in elsewhere] + [""]
    not_run = [r for r in records if r["status"] != "ok"]
    if not_run:
        lines += ["## Not measured", "", "| model | runtime | precision | workload | shape | status | reason |",
                  "|---|---|---|---|---|---|---|"]
        for r in sorted(not_run, key=_key):
            lines.append(f"| {r['model']} | {r['runtime']} | {r['precision']} | {r['workload']} | {r['shape']} "
                         f"| {r['status']} | {r['reason']} |")
        lines.append("")
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


def csv_text(records: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[c for c, _, _ in COLUMNS])
    writer.writeheader()
    writer.writerows(escape.escape_strings(rows(records), escape.csv_cell))  # untrusted text: escaped
    return buf.getvalue()


def plots(records: list[dict], out: Path) -> list[Path]:
    """latency_distribution.png (box plot per run) and size_vs_latency.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [escape.escape_strings(r, escape.plot_label) for r in records]  # no mathtext from a record
    # Emulated runs are never plotted against real ones: their timings measure the emulator.
    ok = sorted((r for r in records if r["status"] == "ok" and not r["machine"].get("emulated")), key=_key)
    if not ok:
        return []
    labels = [f"{r['model']}\n{r['runtime']}-{r['precision']} {r['shape']}\n{r['workload']}" for r in ok]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(ok)), 5))
    ax.boxplot([r["latency_ms"] for r in ok], showfliers=True)
    ax.set_xticks(range(1, len(ok) + 1), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    p1 = _save(fig, ax, None, "latency per item (ms)", "Latency distribution per run (model time, batch 1)",
               out / "latency_distribution.png")

    fig, ax = plt.subplots(figsize=(7, 5))
    for r in ok:
        if r.get("model_file_bytes"):
            ax.scatter(r["model_file_bytes"] / 1e6, r["stats"]["latency_ms"]["p50"])
            ax.annotate(f"{r['model']} {r['runtime']}-{r['precision']} {r['shape'][0]}",
                        (r["model_file_bytes"] / 1e6, r["stats"]["latency_ms"]["p50"]), fontsize=6)
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


def render_report(inputs: list[Path], out: Path) -> list[Path]:
    """Read the records under `inputs`, write report.md, results.csv and the plots into `out`."""
    records = load_records(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("report.md", markdown(records)), ("results.csv", csv_text(records))):
        write_text_atomic(out / name, text)
        written.append(out / name)
    return written + plots(records, out) + profile_report.plot(records, out)
