"""docs/benchmarks.md from ``docs/bench-results.json``, the file ``make bench`` writes.

The page shows one run: its header (machine, CPU flags, date, commit, then any other field, each benchmark
module's own run) and every target with its peer, the ratio and whether it was met. Contracts: the reader takes
every shape the benchmark runner writes or has written; row fields it does not know get a table of their own
("More figures"); a file that is missing or cannot be read gives a page that says so and shows no figure.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from .markdown import DASH, HEADER_ALIASES, NO_RUN, cell, header_value, number, table
from .paths import BENCH_JSON, shown

BENCH_ROW_FIELDS = ("module", "name", "value", "unit", "peer", "peer_value", "ratio", "target", "ok")
"""The row fields the targets table shows; any other field of a row goes to "More figures"."""
HEADER_LABELS = {"machine": "Machine", "cpu_flags": "CPU flags", "date": "Date", "commit": "Commit"}


def _header_lines(header: Mapping) -> list[str]:
    """The run's header as a bullet list: the known fields first (machine, CPU flags, date, commit), then the
    rest in their own order. A machine given as an object shows its CPU model and count; its ``flags`` stand
    for the CPU flags when the header has none of its own."""
    header = dict(header)
    machine_info = header.get("machine")
    if isinstance(machine_info, Mapping):
        info = dict(machine_info)
        flags = info.pop("flags", None)
        if flags is not None and not any(header.get(a) for a in HEADER_ALIASES["cpu_flags"]):
            header["cpu_flags"] = flags if flags else "none of those checked"
        model = info.pop("model", None) or info.pop("cpu", None) or info.pop("name", None)
        cpus = info.pop("cpus", None) or info.pop("cpu_count", None)
        parts = [str(model) if model else "", f"{cpus} CPUs" if cpus else ""]
        parts += [f"{k}: {cell(v)}" for k, v in info.items()]
        header["machine"] = ", ".join(p for p in parts if p) or None
    lines, used = [], set()
    for key, aliases in HEADER_ALIASES.items():
        for alias in aliases:
            if alias in header and header[alias] not in (None, ""):
                lines.append(f"- {HEADER_LABELS[key]}: {header_value(header[alias])}")
                used.add(alias)
                break
        else:
            lines.append(f"- {HEADER_LABELS[key]}: {DASH} (not recorded)")
    for key, value in header.items():
        if key not in used and key not in {a for aliases in HEADER_ALIASES.values() for a in aliases}:
            lines.append(f"- {key.replace('_', ' ')}: {header_value(value)}")
    return lines


def read_bench(data) -> tuple[dict, list[dict]]:
    """The header and the result rows of a parsed ``bench-results.json``.

    Takes the shapes the benchmark runner writes or has written: a list of rows (no header), a list whose
    header is the one object without ``name``, or an object with the rows under ``results`` (or ``rows``,
    ``benchmarks``, else its first list of objects) and the header under ``header`` (or ``meta``,
    ``machine_info``), else in its other fields (``bench/run.py``: ``machine``, ``date``, ``commit``, ``quick``
    and ``modules``, each module's own date and commit)."""
    header: dict = {}
    rows: list = []
    if isinstance(data, list):
        rows = [r for r in data if isinstance(r, Mapping) and "name" in r]
        for extra in (r for r in data if isinstance(r, Mapping) and "name" not in r):
            header.update(extra.get("header", extra) if isinstance(extra.get("header"), Mapping) else extra)
    elif isinstance(data, Mapping):
        for key in ("header", "meta", "machine_info", "run"):
            if isinstance(data.get(key), Mapping):
                header = dict(data[key])
                break
        for key in ("results", "rows", "benchmarks", "targets"):
            if isinstance(data.get(key), list):
                rows = data[key]
                break
        else:
            rows = next((v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], Mapping)), [])
        if not header:
            header = {k: v for k, v in data.items() if v is not rows}
    else:
        raise ValueError(f"expected a JSON list or object, found {type(data).__name__}")
    return header, [dict(r) for r in rows if isinstance(r, Mapping)]


def bench_row(row: Mapping) -> list[str]:
    """The cells of one target: name, value, peer, peer value (with the row's unit), ratio, target, met. The
    ratio is computed from the two values when the row has none."""
    unit = row.get("unit") or ""

    def with_unit(value) -> str:
        figure = number(value)
        return f"{figure} {unit}".strip() if figure != DASH else DASH

    ratio, value, peer_value = row.get("ratio"), row.get("value"), row.get("peer_value")
    if ratio is None and isinstance(value, (int, float)) and isinstance(peer_value, (int, float)) and peer_value:
        ratio = value / peer_value
    ok = row.get("ok")
    met = DASH if ok is None else ("yes" if ok else "**no**")
    return [cell(row.get("name")), with_unit(row.get("value")), cell(row.get("peer")), with_unit(row.get("peer_value")),
            f"{number(ratio, 3)}x" if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) else DASH,
            cell(row.get("target")), met]


def render_benchmarks(source: str, header: Mapping | None, rows: list[Mapping] | None, *,
                      problem: str | None = None) -> str:
    """docs/benchmarks.md for one run (``rows`` None: no run recorded; ``problem``: why the input was not read)."""
    lines = ["# Benchmarks", "",
             f"Generated by `python docs/generate.py benchmarks` from `{source}`, which `make bench` writes. Do not "
             "edit by hand.", "",
             "Each row is one performance target measured side by side with its named peer in the same run; the "
             "ratio is value / peer value, and \"met\" says whether the target held in this run.", ""]
    if problem:
        return "\n".join(lines + [f"{NO_RUN} ({problem})", ""])
    if rows is None:
        return "\n".join(lines + [NO_RUN + " Run `make bench` to record one.", ""])
    header = dict(header or {})
    modules, quick = header.pop("modules", None), header.pop("quick", None)
    lines += ["## Run", ""] + _header_lines(header)
    if quick:
        lines += ["", "This was a `--quick` run (small sizes, a smoke test): its figures are not measurements of the "
                      "targets."]
    if isinstance(modules, list) and modules:
        lines += ["", "Each benchmark module's own run (a run of some modules keeps the others' rows):", ""]
        lines += table(["module", "date", "commit", "ran"],
                       ([cell(m.get("module")), cell(m.get("date")), cell(m.get("commit")),
                         DASH if "failed" not in m else ("**failed**" if m["failed"] else "yes")]
                        for m in modules if isinstance(m, Mapping)))
    lines += ["", "## Targets", ""]
    if not rows:
        lines.append("The run recorded no results.")
    else:
        by_module = any("module" in r for r in rows)
        lines += table(["module"] * by_module + ["benchmark", "value", "peer", "peer value", "ratio", "target", "met"],
                       ([cell(r.get("module"))] * by_module + bench_row(r) for r in rows))
        extra_keys = sorted({k for r in rows for k in r if k not in BENCH_ROW_FIELDS})
        if extra_keys:
            lines += ["", "### More figures", ""]
            lines += table(["benchmark", *extra_keys], ([cell(r.get("name"))] + [cell(r.get(k)) for k in extra_keys]
                                                         for r in rows if any(k in r for k in extra_keys)))
        missed = [r.get("name") for r in rows if r.get("ok") is False]
        lines += ["", f"{sum(1 for r in rows if r.get('ok') is True)} of {len(rows)} targets met"
                  + (f"; not met: {', '.join(cell(m) for m in missed)}." if missed else ".")]
    return "\n".join(lines + [""])


def benchmarks_page(path: Path | None = None) -> str:
    """docs/benchmarks.md from the run recorded in ``path`` (default: ``docs/bench-results.json``)."""
    path = BENCH_JSON if path is None else path
    source = shown(path)
    if not path.is_file():
        return render_benchmarks(source, None, None)
    try:
        header, rows = read_bench(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return render_benchmarks(source, None, None, problem=f"{source} could not be read: {exc}")
    return render_benchmarks(source, header, rows)
