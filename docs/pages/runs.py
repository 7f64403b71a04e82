"""The recorded ``findling eval`` runs in ``docs/eval-results/``: reading them, and recording a new one.

A recorded run is one JSON file, ``<data set>--<model>[--<split>].json``, holding the ``findling eval --json``
report under ``result`` and its stamp (date, machine, commit) under ``header``. Contracts: a later run of the
same data set, model and split replaces the earlier file; ``record_eval`` refuses (``ValueError``) what is not
such a report before writing anything; a file that cannot be read is passed over with its reason, never a
failure of the whole folder. Files are read in name order, so the pages made from them are deterministic.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from .markdown import DASH, cell, metric
from .paths import EVAL_DIR, ROOT, shown

MODE_ORDER = ("bm25", "maxsim", "dense", "hybrid")
"""Ranking modes in the order the quality tables show them; modes not named here follow, sorted."""


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


def read_runs(folder: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    """Every run recorded in ``folder`` (none when it does not exist), and for each file that cannot be read,
    the file and a line naming it with the reason."""
    runs, unread = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            runs.append(read_eval(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            unread.append((path, f"{shown(path)}: {cell(str(exc))}"))
    return runs, unread


def ordered_modes(runs: Iterable[Mapping]) -> list[str]:
    """The ranking modes measured in any of ``runs``: those of ``MODE_ORDER`` in its order, then the rest, sorted."""
    seen = {m for r in runs for m in r.get("modes", {})}
    return [m for m in MODE_ORDER if m in seen] + sorted(seen - set(MODE_ORDER))


def run_metric(run: Mapping, mode: str, name: str) -> str:
    """The score ``name`` (``ndcg@10``, ``recall@100``, ...) of ``mode`` in ``run`` as a cell; a dash when the run
    did not measure it."""
    values = run.get("modes", {}).get(mode)
    return metric(values.get(name)) if isinstance(values, Mapping) else DASH


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
    name = "--".join(slug(str(report.get(k) or "")) for k in ("dataset", "model"))
    if report.get("split") not in (None, "test"):
        name += f"--{slug(str(report['split']))}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"header": dict(stamp or run_stamp()), "result": json.loads(text)}, indent=1,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def slug(text: str) -> str:
    """The part of a recorded file's name that stands for ``text``: its last ``/`` part, other characters than
    letters, digits, ``.``, ``_`` and ``-`` replaced by ``-``; "unnamed" when nothing is left."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.rsplit("/", 1)[-1]).strip("-") or "unnamed"
