"""Run the performance benchmarks end to end and print every target with its peer.

    python bench/run.py [--json] [--quick] [--only NAME ...]

Modules (each exposes ``collect(args) -> list[Result]``): see ``MODULES``. ``--quick`` shrinks the sizes for a
smoke run (the figures are then not the ones the README reports). The machine summary goes to stderr with
``--json`` so that standard output stays one JSON list.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Result, machine_summary, print_json, print_table  # noqa: E402

MODULES = ["indexing", "long_chunks", "search", "storage", "candidates"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON list of result objects")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", choices=MODULES, help="run only these modules")
    args = parser.parse_args(argv)
    out_info = sys.stderr if args.json else sys.stdout
    print(machine_summary(), file=out_info, flush=True)
    results: list[Result] = []
    failed = []
    for name in args.only or MODULES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            print(f"[{name}] not built: {exc}", file=out_info)
            failed.append(name)
            continue
        print(f"[{name}] running ...", file=out_info, flush=True)
        try:
            results.extend(module.collect(args))
        except Exception:  # a benchmark that breaks is reported, the others still run
            traceback.print_exc(file=sys.stderr)
            failed.append(name)
    if args.json:
        print_json(results)
    else:
        print_table(results)
    if failed:
        print(f"modules that did not run: {', '.join(failed)}", file=out_info)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
