"""Run the performance benchmarks end to end and print every target with its peer.

    python bench/run.py [--json] [--quick] [--only NAME ...]

Modules: see ``MODULES``; each runs as ``python bench/NAME.py --json [--quick]`` in a process of its own, one
after the other, so that none inherits another's threads, memory or CPU priority: torch keeps a team of worker
threads for every thread that ran parallel operations (and its workers stop spinning once there are two), the
allocator keeps what a module freed, and the indexing benchmark's threads run at the indexing priority. The
modules' own progress lines go to stderr as they come. ``--quick`` shrinks the sizes for a smoke run (the
figures are then not the ones docs/measurements.md reports). The machine summary goes to stderr with ``--json`` so that
standard output stays one JSON list.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CHILD, Result, machine_summary, print_json, print_table  # noqa: E402

MODULES = ["indexing", "long_chunks", "search", "storage", "candidates"]
HERE = Path(__file__).resolve().parent


def run_module(name: str, *, quick: bool) -> list[Result]:
    """``bench/NAME.py --json`` in a new process: its results (its stderr passes through); raises
    ``RuntimeError`` when it fails or prints no JSON list."""
    command = [sys.executable, str(HERE / f"{name}.py"), "--json", *(["--quick"] if quick else [])]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env={**os.environ, CHILD: "1"},
                          cwd=HERE.parent)
    if done.returncode != 0:
        raise RuntimeError(f"bench/{name}.py exited with status {done.returncode}")
    try:
        return [Result(**record) for record in json.loads(done.stdout)]
    except (ValueError, TypeError) as exc:
        raise RuntimeError(f"bench/{name}.py printed no list of results: {exc}") from exc


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
        print(f"[{name}] running ...", file=out_info, flush=True)
        try:
            results.extend(run_module(name, quick=args.quick))
        except RuntimeError as exc:  # a benchmark that breaks is reported, the others still run
            print(f"[{name}] {exc}", file=sys.stderr, flush=True)
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
