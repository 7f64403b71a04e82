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
import sys
from pathlib import Path

# the pages are imported as ``docs.pages``, so the repository root must be on the path (as a script, only docs/ is)
if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docs.pages.benchmarks import benchmarks_page  # noqa: E402
from docs.pages.cards import card_module, card_pages, cards_without_scores_block  # noqa: E402
from docs.pages.cli import cli_page  # noqa: E402
from docs.pages.paths import DOCS, EVAL_DIR, README, shown  # noqa: E402
from docs.pages.quality import quality_page  # noqa: E402
from docs.pages.readme import readme_page  # noqa: E402
from docs.pages.runs import record_eval  # noqa: E402

PAGES = ("benchmarks", "quality", "cli", "readme", "card")
PAGE_FILES = {"benchmarks": DOCS / "benchmarks.md", "quality": DOCS / "quality.md", "cli": DOCS / "cli.md",
              "readme": README}
PAGE_MAKERS = {"benchmarks": benchmarks_page, "quality": quality_page, "cli": cli_page, "readme": readme_page}
MULTI_PAGES = {"card": card_pages}
"""Pages made of several files: the page's maker returns {file: its text}."""


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
            path = record_eval(sys.stdin.read(), EVAL_DIR)
        except ValueError as exc:
            print(f"generate.py: standard input is not a findling eval --json report ({exc})", file=sys.stderr)
            return 2
        print(f"recorded {shown(path)}", file=sys.stderr)
        args.what = "quality"
    stale = []
    for page in PAGES if args.what == "all" else (args.what,):
        outputs = MULTI_PAGES[page]() if page in MULTI_PAGES else {PAGE_FILES[page]: PAGE_MAKERS[page]()}
        if page == "card":
            for path in cards_without_scores_block(outputs):
                print(f"{shown(path)} has no scores block ({card_module().SCORES_START} ... "
                      f"{card_module().SCORES_END}); its scores are not generated", file=sys.stderr)
        for target, text in outputs.items():
            current = target.read_text(encoding="utf-8") if target.is_file() else None
            if current == text:
                continue
            if args.check:
                stale.append(shown(target))
            else:
                target.write_text(text, encoding="utf-8")
                print(f"wrote {shown(target)}", file=sys.stderr)
    if stale:
        print(f"not current: {', '.join(stale)}; run `python docs/generate.py` to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
