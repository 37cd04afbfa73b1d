"""Escaping of untrusted text (records from other machines, farm downloads, model names) written into
files people open: Markdown, CSV and plot labels. A value can then never break a table row, inject
HTML or links, start a spreadsheet formula, or trip matplotlib's mathtext. stdlib only."""

from __future__ import annotations

import re
from typing import Any, Callable

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~!$])")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def one_line(text: Any) -> str:
    """Whitespace runs (newlines too) as one space, other control characters as U+FFFD."""
    return _CONTROL.sub("\ufffd", " ".join(str(text).split()))


def markdown(text: Any) -> str:
    """Text safe in a Markdown paragraph or table cell: one line, markup characters backslashed,
    HTML's < > & as entities."""
    s = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def csv_cell(text: Any) -> str:
    """Text safe in a CSV cell opened by a spreadsheet: one line, no leading formula character
    (the csv module quotes commas and quotes)."""
    s = one_line(text)
    return "'" + s if s.startswith(FORMULA_START) else s


def plot_label(text: Any) -> str:
    """Text safe as a matplotlib label: no mathtext ($...$)."""
    return str(text).replace("$", r"\$")


def escape_strings(value: Any, escape: Callable[[Any], str]) -> Any:
    """A copy of `value` (dicts, lists) with every string value passed through `escape` (keys kept)."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: escape_strings(v, escape) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_strings(v, escape) for v in value]
    return value
