"""Generate the pages of docs/ that are made from data: the benchmarks, the retrieval quality and the CLI.

    python docs/generate.py [all|benchmarks|quality|cli|readme|card] [--check]
    findling eval DATASET --json | python docs/generate.py record-eval

- ``docs/benchmarks.md`` from ``docs/bench-results.json``, the file ``make bench`` writes: one run, its header
  (machine, CPU flags, date, commit) and every target with its peer and the ratio.
- ``docs/quality.md`` from ``docs/eval-results/*.json``: one ``findling eval --json`` report per file, stamped
  with the date, machine and commit of the run by ``record-eval``; one table of data set x ranking mode.
- ``docs/cli.md`` from the ``findling`` argument parser: every command's ``--help`` text.
- README.md's "Figures" block (between ``README_START`` and ``README_END``): the default ranking against its
  baselines on each recorded data set, and the benchmark targets, from the same two inputs.
- The "Scores" block of every bundled model card, ``assets/models/<name>/README.md`` (between
  ``findling.training.card.SCORES_START`` and ``SCORES_END``), from the ``docs/eval-results/`` runs whose
  ``model`` is that folder's name (``findling/<name>``, a path ending in it, or the name itself): per data set
  each mode's nDCG@10 and Recall@100, the run's stamp, precision and vector format, and the command that
  reproduces it. The rest of the card is hand-written (or written at export) and stays as it is.

Contracts: a page shows only figures found in its input; with no input it says "No run recorded yet." The
readers take what they know and pass over what they do not: rows or modes added later appear, fields that are
missing show as a dash, a file that cannot be read is named on the page instead of failing the whole page.
Rendering is deterministic (sorted inputs, fixed help width), so regenerating unchanged inputs gives the same
bytes; ``--check`` exits 1 and names the pages that differ from what the generator would write.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BENCH_JSON = DOCS / "bench-results.json"
EVAL_DIR = DOCS / "eval-results"
NO_RUN = "No run recorded yet."
DASH = "–"
HELP_WIDTH = 100
"""Columns of the help text in docs/cli.md (argparse reads ``COLUMNS``), so the page does not depend on the
terminal it was generated in."""

MODE_ORDER = ("bm25", "maxsim", "dense", "hybrid")
"""Ranking modes in the order the quality tables show them; modes not named here follow, sorted."""

PAGES = ("benchmarks", "quality", "cli", "readme", "card")
README = ROOT / "README.md"
README_START = "<!-- figures:start"
README_END = "<!-- figures:end -->"
README_BENCH_ROWS = 8
"""Most benchmark targets the README shows; docs/benchmarks.md has them all."""
README_KEY_ROWS = ("indexing, end to end (CPU)", "encoder vs floor (bf16 products, 1 thread)", "ours vs OpenVINO bf16",
                   "search p50, hybrid", "search p95", "exact MaxSim 1M tok vs matmul floor", "bytes per token",
                   "long chunks: encode tokens/s at 32k")
"""Name fragments of the benchmark rows the README shows first, in order."""

BENCH_ROW_FIELDS = ("module", "name", "value", "unit", "peer", "peer_value", "ratio", "target", "ok")
HEADER_ALIASES = {
    "machine": ("machine", "machine_summary", "host", "cpu", "cpu_model"),
    "cpu_flags": ("cpu_flags", "flags", "cpu_flags_selected"),
    "date": ("date", "datetime", "time", "timestamp", "started", "when"),
    "commit": ("commit", "git_commit", "revision", "git"),
}
HEADER_LABELS = {"machine": "Machine", "cpu_flags": "CPU flags", "date": "Date", "commit": "Commit"}


# ------------------------------------------------------------------------------------------ formatting
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
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


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
                lines.append(f"- {HEADER_LABELS[key]}: {_header_value(header[alias])}")
                used.add(alias)
                break
        else:
            lines.append(f"- {HEADER_LABELS[key]}: {DASH} (not recorded)")
    for key, value in header.items():
        if key not in used and key not in {a for aliases in HEADER_ALIASES.values() for a in aliases}:
            lines.append(f"- {key.replace('_', ' ')}: {_header_value(value)}")
    return lines


def _header_value(value) -> str:
    if isinstance(value, str) and "\n" in value:
        return "; ".join(line.strip() for line in value.splitlines() if line.strip())
    return cell(value)


# ------------------------------------------------------------------------------------------ benchmarks
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


def _bench_row(row: Mapping) -> list[str]:
    unit = row.get("unit") or ""

    def with_unit(value) -> str:
        shown = number(value)
        return f"{shown} {unit}".strip() if shown != DASH else DASH

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
                       ([cell(r.get("module"))] * by_module + _bench_row(r) for r in rows))
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
    path = BENCH_JSON if path is None else path
    source = _shown(path)
    if not path.is_file():
        return render_benchmarks(source, None, None)
    try:
        header, rows = read_bench(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return render_benchmarks(source, None, None, problem=f"{source} could not be read: {exc}")
    return render_benchmarks(source, header, rows)


# ------------------------------------------------------------------------------------------ quality
def read_eval(data) -> dict:
    """One recorded evaluation as a flat dict: the ``findling eval --json`` report, with the stamp that
    ``record-eval`` puts under ``header`` (date, machine, commit) merged in. A bare report is taken as is."""
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    report = data.get("result") if isinstance(data.get("result"), Mapping) else data
    out = {k: v for k, v in report.items()}
    if isinstance(data.get("header"), Mapping):
        for key, value in data["header"].items():
            out.setdefault(key, value)
    if not isinstance(out.get("modes"), Mapping):
        raise ValueError("no \"modes\" object: not a findling eval report")
    return out


def ordered_modes(runs: Iterable[Mapping]) -> list[str]:
    seen = {m for r in runs for m in r.get("modes", {})}
    return [m for m in MODE_ORDER if m in seen] + sorted(seen - set(MODE_ORDER))


def _metric(run: Mapping, mode: str, name: str) -> str:
    values = run.get("modes", {}).get(mode)
    return metric(values.get(name)) if isinstance(values, Mapping) else DASH


def _stamp(run: Mapping, key: str) -> str:
    for alias in HEADER_ALIASES[key]:
        if run.get(alias) not in (None, ""):
            return _header_value(run[alias])
    return DASH


def render_quality(runs: list[Mapping], *, problems: Iterable[str] = (), source: str = "docs/eval-results/") -> str:
    """docs/quality.md: nDCG@10 for every data set x mode, then Recall@100 and MRR@10, then speed and size."""
    lines = ["# Retrieval quality", "",
             f"Generated by `python docs/generate.py quality` from `{source}`: one `findling eval DATASET --json` "
             "run per data set and model, recorded with `findling eval DATASET --json | python docs/generate.py "
             "record-eval`. Do not edit by hand.", ""]
    problems = list(problems)
    if not runs:
        lines.append(NO_RUN)
    else:
        runs = sorted(runs, key=lambda r: (str(r.get("dataset")), str(r.get("model")), str(r.get("split"))))
        modes = ordered_modes(runs)
        lines += ["## nDCG@10", ""]
        lines += table(["data set", "model", "docs", "queries", *modes, "date", "machine", "commit"],
                       ([cell(r.get("dataset")), cell(r.get("model")), number(r.get("n_docs")),
                         number(r.get("n_queries")), *(_metric(r, m, "ndcg@10") for m in modes),
                         _stamp(r, "date"), _stamp(r, "machine"), _stamp(r, "commit")] for r in runs))
        for title, key in (("Recall@100", "recall@100"), ("MRR@10", "mrr@10")):
            lines += ["", f"## {title}", ""]
            lines += table(["data set", "model", *modes],
                           ([cell(r.get("dataset")), cell(r.get("model")), *(_metric(r, m, key) for m in modes)]
                            for r in runs))
        lines += ["", "## Speed and size", ""]
        lines += table(["data set", "model", "encode tokens/s", "precision", "query p50 ms", "query p95 ms",
                        "bytes/token", "vector format"],
                       ([cell(r.get("dataset")), cell(r.get("model")), number(r.get("encode_tokens_per_s")),
                         cell(r.get("precision")), number(r.get("query_ms_p50")), number(r.get("query_ms_p95")),
                         number(r.get("bytes_per_token")), cell(r.get("vector_format"))] for r in runs))
    if problems:
        lines += ["", "Not shown (could not be read):", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines + [""])


def quality_page(folder: Path | None = None) -> str:
    folder = EVAL_DIR if folder is None else folder
    runs, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            runs.append(read_eval(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            problems.append(f"{_shown(path)}: {cell(str(exc))}")
    return render_quality(runs, problems=problems, source=_shown(folder) + "/")


def run_stamp() -> dict:
    """Date (UTC), machine and commit of a run recorded now."""
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
            "commit": commit()}


def machine() -> str:
    """The CPU model, its logical CPU count and the operating system, in one line."""
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                      if line.split(":", 1)[0].strip() == "Model name"), "")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"


def commit() -> str:
    """The checked-out commit (short hash, ``-dirty`` when tracked files differ from it), or "unknown"."""
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty else "")


def record_eval(text: str, folder: Path | None = None, *, stamp: Mapping | None = None) -> Path:
    """Store one ``findling eval --json`` report with its stamp as ``folder/<dataset>--<model>.json`` (a later
    run of the same data set, model and split replaces it); ``ValueError`` when ``text`` is not such a report."""
    report = read_eval(json.loads(text))
    folder = EVAL_DIR if folder is None else folder
    name = "--".join(_slug(str(report.get(k) or "")) for k in ("dataset", "model"))
    if report.get("split") not in (None, "test"):
        name += f"--{_slug(str(report['split']))}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"header": dict(stamp or run_stamp()), "result": json.loads(text)}, indent=1,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.rsplit("/", 1)[-1]).strip("-") or "unnamed"


# ------------------------------------------------------------------------------------------ CLI
@contextmanager
def _help_width(columns: int):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) \
        -> list[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every command under ``parser``, depth first: (words after ``findling``, its parser, its one-line help)."""
    found = [(path, parser, parser.description or "")] if not path else []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                found.append(((*path, name), child, summaries.get(name) or child.description or ""))
                found += commands(child, (*path, name))
    return found


def render_cli(parser: argparse.ArgumentParser) -> str:
    """docs/cli.md: a list of the commands, then each one's ``--help`` text at ``HELP_WIDTH`` columns."""
    lines = ["# The `findling` command line", "",
             "Generated by `python docs/generate.py cli` from the argument parser; `findling COMMAND --help` prints "
             "the same text. Do not edit by hand.", "", "| command | what it does |", "|---|---|"]
    listed = [(path, p, summary) for path, p, summary in commands(parser) if path]
    for path, _, summary in listed:
        name = " ".join(("findling", *path))
        lines.append(f"| [`{name}`](#{_anchor(name)}) | {cell(summary)} |")
    with _help_width(HELP_WIDTH):
        for path, p, _ in [((), parser, "")] + listed:
            name = " ".join(("findling", *path))
            lines += ["", f"## {name}", "", "```text", p.format_help().rstrip(), "```"]
    return "\n".join(lines + [""])


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def cli_page() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from findling.cli.main import _parser

    return render_cli(_parser())


# ------------------------------------------------------------------------------------------ README
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
                       ([cell(r.get("dataset")), cell(r.get("model")), _metric(r, "hybrid", "ndcg@10"),
                         *(_metric(r, m, "ndcg@10") for m in baselines), _stamp(r, "date"), _stamp(r, "commit")]
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
            machine_text = _stamp(header, "machine")
        stamp = {"machine": machine_text, "date": _stamp(header, "date"), "commit": str(_stamp(header, "commit"))[:12]}
        where = ", ".join(f"{k} {v}" for k, v in stamp.items() if v and v != DASH)
        lines += ([""] if lines else []) + [
            f"Speed (`make bench`{'; ' + where if where else ''}; all rows in [docs/benchmarks.md](docs/benchmarks.md)):",
            ""]
        lines += table(["benchmark", "ours", "peer", "peer's", "ratio", "target", "met"],
                       (_bench_row(r) for r in targets))
    return lines or [NO_RUN]


def readme_page() -> str:
    """README.md with its figures block regenerated (the rest untouched); README.md as it is without one."""
    text = README.read_text(encoding="utf-8")
    start = text.find(README_START)
    end = text.find(README_END, start)
    if start < 0 or end < 0:
        return text
    start = text.index("\n", start) + 1
    header, rows = None, None
    if BENCH_JSON.is_file():
        try:
            header, rows = read_bench(json.loads(BENCH_JSON.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
    runs = []
    for path in sorted(EVAL_DIR.glob("*.json")) if EVAL_DIR.is_dir() else []:
        try:
            runs.append(read_eval(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue
    return text[:start] + "\n".join(render_figures(runs, header, rows)) + "\n" + text[end:]


# ------------------------------------------------------------------------------------------ model cards
MODELS_DIR = ROOT / "assets" / "models"
DATA_SHOWN = "../shared/data"
"""Where the commands on model cards find the data sets: the shared data folder beside the checkout."""
BUNDLED_PREFIX = "findling/"
"""How ``findling eval`` names a bundled model (``findling/<folder name>``): one it runs without ``--model``."""
CARD_MODES = {"hybrid": "hybrid (the default ranking)", "bm25": "bm25 (keywords alone)",
              "maxsim": "maxsim (token vectors alone)",
              "dense": "dense (baseline: all-MiniLM-L6-v2's sentence embedding, exact cosine)",
              "dense_lane": "dense_lane (the index's per-chunk dense vectors alone)"}
"""How a model card names each ranking mode of ``findling eval``; modes not named here show as they are."""
FUSION_FLAGS = (("method", "--fusion"), ("weight", "--fusion-weight"), ("dense", "--fusion-dense"),
                ("decay", "--fusion-decay"), ("keyword_decay", "--fusion-keyword-decay"))
"""The run's recorded fusion field and the ``findling eval`` option that sets it."""


def _card_module():
    """``findling.training.card``, which owns the card's markers and its text for a model with no run."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from findling.training import card

    return card


def run_model_name(run: Mapping) -> str:
    """The folder name a run's ``model`` field ends in (``findling/x``, ``/path/to/x`` and ``x`` all give x)."""
    return str(run.get("model") or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def reproduce_command(run: Mapping) -> str:
    """The ``findling eval`` command line that measures ``run`` again and records it: every setting the run
    recorded is spelled out (precision, vector format, chunk size, fusion), so the command does not depend on
    the defaults of a later version. A bundled model is run without ``--model``; any other by its recorded
    name or path."""
    words = []
    if run.get("precision"):
        words.append(f"FINDLING_PRECISION={run['precision']}")
    words += ["findling", "eval", f"{DATA_SHOWN}/{run.get('dataset')}"]
    model = str(run.get("model") or "")
    if model and not model.startswith(BUNDLED_PREFIX):
        words += ["--model", model]
    if run.get("split") not in (None, "", "test"):
        words += ["--split", str(run["split"])]
    for key, flag in (("max_docs", "--max-docs"), ("max_queries", "--max-queries"),
                      ("chunk_tokens", "--chunk-tokens"), ("vector_format", "--codec")):
        if run.get(key) not in (None, ""):
            words += [flag, _flag(run[key])]
    fusion = run.get("fusion") if isinstance(run.get("fusion"), Mapping) else {}
    for key, flag in FUSION_FLAGS:
        if fusion.get(key) not in (None, ""):
            words += [flag, _flag(fusion[key])]
    return " ".join(words + ["--json", "|", "python", "docs/generate.py", "record-eval"])


def _flag(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_card_scores(runs: list[Mapping], *, problems: Iterable[str] = ()) -> list[str]:
    """The lines inside a card's scores block: one section per data set (and split) with each mode's nDCG@10
    (and Recall@100 where the run has it), the run's stamp and the command that reproduces it; the card
    module's ``NO_SCORES`` when no run is recorded."""
    problems = list(problems)
    lines: list[str] = []
    if not runs:
        lines.append(_card_module().NO_SCORES)
    else:
        runs = sorted(runs, key=lambda r: (str(r.get("dataset")), str(r.get("split"))))
        lines.append("Measured by `findling eval` on each data set, one recorded run per data set "
                     f"(`{_shown(EVAL_DIR)}/`); hybrid is Findling's default ranking.")
        if any(str(r.get("model") or "").startswith(BUNDLED_PREFIX) for r in runs):
            lines += ["", "Commands without `--model` run the bundled model: Findling uses it when no model is set "
                          "(`--model`, `FINDLING_MODEL`, `findling model use`) and the target model is not in the "
                          "Hugging Face cache."]
        for run in runs:
            modes = ordered_modes([run])
            modes = [m for m in modes if m == "hybrid"] + [m for m in modes if m != "hybrid"]
            recall = any(isinstance(v, Mapping) and "recall@100" in v for v in run["modes"].values())
            split = f"{run.get('split')} split" if run.get("split") else "split not recorded"
            size = ", ".join(f"{number(run[k])} {label}" for k, label in (("n_docs", "documents"),
                                                                         ("n_queries", "queries"))
                             if isinstance(run.get(k), int))
            lines += ["", f"### {cell(run.get('dataset'))} ({split}{': ' + size if size else ''})", ""]
            lines += table(["mode", "nDCG@10"] + ["Recall@100"] * recall,
                           ([CARD_MODES.get(m, cell(m)), _metric(run, m, "ndcg@10")]
                            + [_metric(run, m, "recall@100")] * recall for m in modes))
            reused = bool(run.get("reused_index"))
            stamp = (f"- Run: {_stamp(run, 'date')}; machine {_stamp(run, 'machine')}; commit {_stamp(run, 'commit')}; "
                     f"{'query ' if reused else ''}encoder precision {cell(run.get('precision'))}; "
                     f"vectors {cell(run.get('vector_format'))}")
            if reused:
                stamp += "; searched an index that an earlier run of the same corpus and model kept (and encoded)"
            lines += ["", stamp + ".", f"- Reproduce: `{reproduce_command(run)}`"]
    if problems:
        lines += ["", "Not shown (could not be read):", ""] + [f"- {p}" for p in problems]
    return lines


def card_text(text: str, name: str, runs: Iterable[Mapping], *, problems: Iterable[str] = ()) -> str:
    """``text`` (a model card for the model folder ``name``) with its scores block regenerated from the runs of
    that model among ``runs``; everything outside the block, the marker lines included, is kept byte for byte.
    A card without the markers is returned as it is."""
    card = _card_module()
    start = text.find(card.SCORES_START)
    end = text.find(card.SCORES_END, start)
    if start < 0 or end < 0:
        return text
    start = text.find("\n", start) + 1
    if start <= 0 or start > end:
        return text
    mine = [r for r in runs if run_model_name(r) == name]
    return text[:start] + "\n".join(render_card_scores(mine, problems=problems)) + "\n" + text[end:]


def card_pages(models_dir: Path | None = None, folder: Path | None = None) -> dict[Path, str]:
    """Every model card under ``models_dir`` (``<name>/README.md``) with its scores block regenerated from the
    runs recorded in ``folder``. A file there that cannot be read is named on the card of the model its name
    ends in (``record-eval`` names them ``<data set>--<model>[--<split>].json``)."""
    models_dir = MODELS_DIR if models_dir is None else models_dir
    folder = EVAL_DIR if folder is None else folder
    runs, unread = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            runs.append(read_eval(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            unread.append((path, f"{_shown(path)}: {cell(str(exc))}"))
    pages = {}
    for readme in sorted(models_dir.glob("*/README.md")) if models_dir.is_dir() else []:
        name = readme.parent.name
        problems = [p for path, p in unread if _slug(name) in path.stem.split("--")[1:]]
        pages[readme] = card_text(readme.read_text(encoding="utf-8"), name, runs, problems=problems)
    return pages


def cards_without_scores_block(pages: Mapping[Path, str]) -> list[Path]:
    """The cards among ``pages`` that have no scores block, so the generator leaves their scores alone."""
    card = _card_module()
    return [path for path, text in pages.items() if card.SCORES_START not in text or card.SCORES_END not in text]


# ------------------------------------------------------------------------------------------ main
PAGE_FILES = {"benchmarks": DOCS / "benchmarks.md", "quality": DOCS / "quality.md", "cli": DOCS / "cli.md",
              "readme": README}
PAGE_MAKERS = {"benchmarks": benchmarks_page, "quality": quality_page, "cli": cli_page, "readme": readme_page}
MULTI_PAGES = {"card": card_pages}
"""Pages made of several files: the page's maker returns {file: its text}."""


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/generate.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="all", choices=["all", *PAGES, "record-eval"],
                        help="the page to regenerate (default: all), or record-eval: store the findling eval "
                             "--json report read from standard input, then regenerate docs/quality.md")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is not current")
    args = parser.parse_args(argv)
    if args.what == "record-eval":
        try:
            path = record_eval(sys.stdin.read())
        except ValueError as exc:
            print(f"generate.py: standard input is not a findling eval --json report ({exc})", file=sys.stderr)
            return 2
        print(f"recorded {_shown(path)}", file=sys.stderr)
        args.what = "quality"
    stale = []
    for page in PAGES if args.what == "all" else (args.what,):
        outputs = MULTI_PAGES[page]() if page in MULTI_PAGES else {PAGE_FILES[page]: PAGE_MAKERS[page]()}
        if page == "card":
            for path in cards_without_scores_block(outputs):
                print(f"{_shown(path)} has no scores block ({_card_module().SCORES_START} ... "
                      f"{_card_module().SCORES_END}); its scores are not generated", file=sys.stderr)
        for target, text in outputs.items():
            current = target.read_text(encoding="utf-8") if target.is_file() else None
            if current == text:
                continue
            if args.check:
                stale.append(_shown(target))
            else:
                target.write_text(text, encoding="utf-8")
                print(f"wrote {_shown(target)}", file=sys.stderr)
    if stale:
        print(f"not current: {', '.join(stale)}; run `python docs/generate.py` to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
