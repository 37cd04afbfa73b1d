"""Where the time goes: the report's view of the per-operator profiles that `bench --profile` puts in
records (pocketbert/profile.py). A table (per record: ms per call and share of each class, the profiled
pass's own wall time) and profile_classes.png, one stacked bar per runtime, precision and shape."""

from __future__ import annotations

import os
from pathlib import Path

from pocketbert.contracts import Record
from pocketbert.escape import markdown as md
from pocketbert.escape import plot_label
from pocketbert.profile import CLASSES
from pocketbert.tables import markdown_table

PNG = "profile_classes.png"


def _key(r: Record) -> tuple:
    return (r.model, r.workload, r.runtime, r.precision, r.shape)


def _profiled(records: list[Record]) -> list[Record]:
    return sorted((r for r in records if r.status == "ok" and r.profile is not None), key=_key)


def markdown_lines(records: list[Record]) -> list[str]:
    """The "Where the time goes" section ([] when no record has a profile)."""
    rows = _profiled(records)
    if not rows:
        return []
    table = []
    for r in rows:
        p = r.profile
        head = [md(r.model), md(r.runtime), md(r.precision), md(r.shape)]
        if p.status != "ok":
            table.append([*head, md(p.tool), "–", "–", *["–"] * (len(CLASSES) - 1), md(p.why)])
            continue
        n = p.calls or 1
        level = " (delegate calls)" if p.level == "delegate" else ""
        table.append([*head, md(p.tool) + level, p.calls, f"{p.wall_ms / n:.2f}",
                      *[f"{p.classes_ms.get(c, 0) / n:.2f} ({p.classes_pct.get(c, 0):.0f}%)" for c in CLASSES]])
    lines = ["## Where the time goes (per-operator profiles)", "",
             markdown_table(["model", "runtime", "precision", "shape", "profiler", "calls", "profiled ms/call",
                             *[f"{c} ms (%)" for c in CLASSES]], table, "lllllrr" + "r" * len(CLASSES))]
    lines += ["", "Each profile is one more pass over the record's calls under the runtime's own profiler, after "
              "its timed loop (the latency above excludes it); ms are per model call; shares are of the time "
              "the profiler attributed to operators (profiled ms/call also holds the runtime's own overhead "
              "and the profiler's). Classes are the same for every runtime (pocketbert/profile.py).", ""]
    return lines


def plot(records: list[Record], out: Path) -> list[Path]:
    """profile_classes.png: ms per call of each class, one stacked bar per record with a profile
    (written atomically); [] when none has one."""
    rows = [r for r in _profiled(records) if r.profile.status == "ok"]
    if not rows:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 3), 5))
    labels = [plot_label(f"{r.model}\n{r.runtime}-{r.precision}\n{r.shape}") for r in rows]
    bottom = [0.0] * len(rows)
    for c in CLASSES:
        heights = [r.profile.classes_ms.get(c, 0) / (r.profile.calls or 1) for r in rows]
        ax.bar(range(len(rows)), heights, bottom=bottom, label=c)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("ms per model call (profiled pass)")
    ax.set_title("Where the time goes, by operator class")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path = Path(out) / PNG
    tmp = path.with_name(f".{PNG}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)  # a reader never sees half a picture
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return [path]
