"""Where the generated pages and their inputs live in the repository, and how a page names a file.

Every path is absolute, derived from this file's place in the checkout (``docs/pages/``), so the pages come out
the same whatever the working directory.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
BENCH_JSON = DOCS / "bench-results.json"
EVAL_DIR = DOCS / "eval-results"
README = ROOT / "README.md"
MODELS_DIR = ROOT / "assets" / "models"


def shown(path: Path) -> str:
    """``path`` as a page shows it: relative to the repository root in ``/`` form, or as it is when outside."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)
