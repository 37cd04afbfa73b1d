"""Markdown tables, one way: tabulate's pipe format (GitHub Markdown), columns padded to their width.
Cells come preformatted (units and precision are the caller's), so tabulate never re-reads them as
numbers. Every table the tools print or write goes through here (export summary, bench report,
paper study, profile section)."""

from __future__ import annotations

from typing import Any, Sequence

from tabulate import tabulate


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A Markdown table of `rows` under `headers`; `align` gives one letter per column, l(eft) or
    r(ight) (columns past its end: left)."""
    colalign = tuple("right" if a == "r" else "left" for a in align.ljust(len(headers), "l"))
    return tabulate([[str(c) for c in row] for row in rows], headers=list(headers), tablefmt="pipe",
                    disable_numparse=True, colalign=colalign)
