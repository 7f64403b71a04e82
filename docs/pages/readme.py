"""README.md's figures block (between ``README_START`` and ``README_END``) from the recorded runs.

The block shows nDCG@10 of the default ranking (``hybrid``) beside each baseline per recorded data set, then
the benchmark targets, the headline rows (``README_KEY_ROWS``) first. Contracts: only the lines between the
marker lines change, the markers and everything else in README.md are kept byte for byte; a README without the
markers comes back as it is; inputs that are missing or cannot be read are left out of the block (their pages,
docs/quality.md and docs/benchmarks.md, say why), and with none the block says ``NO_RUN``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from .benchmarks import bench_row, read_bench
from .markdown import DASH, NO_RUN, cell, stamp, table
from .paths import BENCH_JSON, EVAL_DIR, README
from .runs import ordered_modes, read_runs, run_metric

README_START = "<!-- figures:start"
README_END = "<!-- figures:end -->"
README_BENCH_ROWS = 8
"""Most benchmark targets the README shows; docs/benchmarks.md has them all."""
README_KEY_ROWS = ("indexing, end to end (CPU)", "encoder vs floor (bf16 products, 1 thread)", "ours vs OpenVINO bf16",
                   "search p50, hybrid", "search p95", "exact MaxSim 1M tok vs matmul floor", "bytes per token",
                   "long chunks: encode tokens/s at 32k")
"""Name fragments of the benchmark rows the README shows first, in order."""


def render_figures(runs: list[Mapping], header: Mapping | None, rows: list[Mapping] | None) -> list[str]:
    """The lines of README.md's figures block: nDCG@10 of the default ranking (``hybrid``) beside each
    baseline per data set, then the benchmark rows that have a target (at most ``README_BENCH_ROWS``)."""
    lines: list[str] = []
    if runs:
        runs = sorted(runs, key=lambda r: (str(r.get("dataset")), str(r.get("model"))))
        modes = ordered_modes(runs)
        baselines = [m for m in modes if m != "hybrid"]
        lines += ["nDCG@10 (`findling eval`; details in [docs/quality.md](docs/quality.md)):", ""]
        lines += table(["data set", "model", "default (hybrid)", *baselines, "date", "commit"],
                       ([cell(r.get("dataset")), cell(r.get("model")), run_metric(r, "hybrid", "ndcg@10"),
                         *(run_metric(r, m, "ndcg@10") for m in baselines), stamp(r, "date"), stamp(r, "commit")]
                        for r in runs))
    candidates = [r for r in rows or [] if r.get("target") and r.get("target") != "reported"]
    targets = []
    for key in README_KEY_ROWS:  # the headline rows first, in this order, then any other target
        found = next((r for r in candidates if key in str(r.get("name", "")) and r not in targets), None)
        if found is not None:
            targets.append(found)
    targets += [r for r in candidates if r not in targets and not str(r.get("name", "")).startswith(
        ("lever:", "peers:", "encode breakdown", "long chunks: max"))]
    targets = targets[:README_BENCH_ROWS]
    if targets:
        header = header or {}
        machine_info = header.get("machine")
        if isinstance(machine_info, Mapping):
            flags = machine_info.get("flags") or ()
            machine_text = ", ".join(filter(None, (str(machine_info.get("model") or ""),
                                                   f"{machine_info.get('cpus')} CPUs" if machine_info.get("cpus") else "",
                                                   " ".join(map(str, flags)))))
        else:
            machine_text = stamp(header, "machine")
        stamped = {"machine": machine_text, "date": stamp(header, "date"), "commit": str(stamp(header, "commit"))[:12]}
        where = ", ".join(f"{k} {v}" for k, v in stamped.items() if v and v != DASH)
        lines += ([""] if lines else []) + [
            f"Speed (`make bench`{'; ' + where if where else ''}; all rows in [docs/benchmarks.md](docs/benchmarks.md)):",
            ""]
        lines += table(["benchmark", "ours", "peer", "peer's", "ratio", "target", "met"],
                       (bench_row(r) for r in targets))
    return lines or [NO_RUN]


def readme_page(readme: Path | None = None, bench: Path | None = None, folder: Path | None = None) -> str:
    """``readme`` (default: README.md) with its figures block regenerated (the rest untouched) from the run in
    ``bench`` (default: ``docs/bench-results.json``) and the runs recorded in ``folder`` (default:
    ``docs/eval-results/``); the text as it is without a block."""
    readme = README if readme is None else readme
    bench = BENCH_JSON if bench is None else bench
    folder = EVAL_DIR if folder is None else folder
    text = readme.read_text(encoding="utf-8")
    start = text.find(README_START)
    end = text.find(README_END, start)
    if start < 0 or end < 0:
        return text
    start = text.index("\n", start) + 1
    header, rows = None, None
    if bench.is_file():
        try:
            header, rows = read_bench(json.loads(bench.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
    runs, _ = read_runs(folder)
    return text[:start] + "\n".join(render_figures(runs, header, rows)) + "\n" + text[end:]
