"""Markdown for the generated pages: table cells, figures, scores, tables, and the stamp of a recorded run.

Contracts: every value becomes one table cell on one line (pipes escaped); nothing, an empty string or a
figure that is not finite shows as ``DASH``; a page with no input says ``NO_RUN``. Formatting depends only on
the value, never on the locale or the terminal, so the same input gives the same bytes.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

NO_RUN = "No run recorded yet."
DASH = "–"

HEADER_ALIASES = {
    "machine": ("machine", "machine_summary", "host", "cpu", "cpu_model"),
    "cpu_flags": ("cpu_flags", "flags", "cpu_flags_selected"),
    "date": ("date", "datetime", "time", "timestamp", "started", "when"),
    "commit": ("commit", "git_commit", "revision", "git"),
}
"""The names under which a run's inputs have recorded each stamp field, the preferred one first."""


def cell(value) -> str:
    """``value`` as one Markdown table cell: a dash for nothing, pipes escaped, one line."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (list, tuple)):
        return cell(" ".join(str(v) for v in value))
    if isinstance(value, Mapping):
        return cell("; ".join(f"{k}: {v}" for k, v in value.items()))
    text = " ".join(str(value).split())
    return text.replace("|", "\\|") or DASH


def number(value, digits: int = 4) -> str:
    """A figure with ``digits`` significant digits (whole and thousands separated from 1,000 up); a dash for
    nothing."""
    if value is None:
        return DASH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return cell(value)
    if isinstance(value, float) and not math.isfinite(value):
        return DASH
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def metric(value) -> str:
    """A retrieval score (0 to 1) with four decimals, a dash for nothing."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.4f}"
    return DASH if value is None else cell(value)


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    """The lines of a Markdown table with ``header`` over ``rows`` (cells already formatted)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def header_value(value) -> str:
    """A stamp field as one cell; a text of several lines becomes one line, its lines joined by ``; ``."""
    if isinstance(value, str) and "\n" in value:
        return "; ".join(line.strip() for line in value.splitlines() if line.strip())
    return cell(value)


def stamp(run: Mapping, key: str) -> str:
    """The stamp field ``key`` (one of ``HEADER_ALIASES``) of ``run`` under the first of its names that holds a
    value; a dash when none does."""
    for alias in HEADER_ALIASES[key]:
        if run.get(alias) not in (None, ""):
            return header_value(run[alias])
    return DASH
