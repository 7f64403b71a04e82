"""Run the performance benchmarks end to end and print every target with its peer.

    python bench/run.py [--json] [--quick] [--only NAME ...] [--model DIR] [--out FILE]

Modules: see ``MODULES``; each runs as ``python bench/NAME.py --json [--quick]`` in a process of its own, one
after the other, so that none inherits another's threads, memory or CPU priority: torch keeps a team of worker
threads for every thread that ran parallel operations (and its workers stop spinning once there are two), the
allocator keeps what a module freed, and the indexing benchmark's threads run at the indexing priority. The
modules' own progress lines go to stderr as they come. ``--quick`` shrinks the sizes for a smoke run (its
figures only show that the modules run). The machine summary goes to stderr with ``--json`` so that
standard output stays one JSON list.

The results are also written to ``--out`` (default ``docs/bench-results.json``; a ``--quick`` run writes no file
unless ``--out`` names one): one JSON object with the machine (``lscpu``'s model and CPU count, the CPU flags
that matter here), the date (UTC, ISO 8601), the git commit and every result row, each with its module. A run
of some modules (``--only``) keeps the rows of the others from the file when it was written on the same machine
and in the same mode (full or quick); each module's entry says when and at which commit it ran.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CHILD, Result, machine_summary, print_json, print_table  # noqa: E402

MODULES = ["indexing", "floor", "peers", "long_chunks", "search", "storage", "candidates"]
ENCODING = {"indexing", "floor", "peers", "search", "storage", "candidates"}  # the modules that take --model
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "docs" / "bench-results.json"
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def run_module(name: str, *, quick: bool, model: str | None = None) -> list[Result]:
    """``bench/NAME.py --json`` in a new process: its results (its stderr passes through); raises
    ``RuntimeError`` when it fails or prints no JSON list."""
    command = [sys.executable, str(HERE / f"{name}.py"), "--json", *(["--quick"] if quick else []),
               *(["--model", str(model)] if model and name in ENCODING else [])]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env={**os.environ, CHILD: "1"},
                          cwd=HERE.parent)
    if done.returncode != 0:
        raise RuntimeError(f"bench/{name}.py exited with status {done.returncode}")
    try:
        return [Result(**record) for record in json.loads(done.stdout)]
    except (ValueError, TypeError) as exc:
        raise RuntimeError(f"bench/{name}.py printed no list of results: {exc}") from exc


def machine() -> dict:
    """The CPU this runs on: ``lscpu``'s model name and CPU count, and which of ``FLAGS`` it has."""
    out = {"model": None, "cpus": os.cpu_count(), "flags": []}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            out["model"] = value.strip()
        elif key.strip() == "Flags":
            present = set(value.split())
            out["flags"] = [f for f in FLAGS if f in present]
    return out


def git_commit() -> str | None:
    """The checkout's commit, with "-dirty" when tracked files differ from it; None outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE.parent,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=HERE.parent, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def write_results(path: Path, ran: dict[str, list[Result]], *, quick: bool, failed: list[str]) -> dict:
    """Write ``ran`` (module -> its rows) to ``path`` as one JSON object (see the module docstring); the rows of
    modules not run now are kept from the file when it comes from the same machine and mode. Returns what was
    written."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    header = {"machine": machine(), "date": now, "commit": git_commit(), "quick": quick}
    modules: dict[str, dict] = {}
    try:
        old = json.loads(Path(path).read_text())
        if old.get("machine") == header["machine"] and old.get("quick") == quick:
            modules = {m["module"]: m for m in old.get("modules", []) if m.get("module") not in ran}
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    for name, rows in ran.items():
        modules[name] = {"module": name, "date": now, "commit": header["commit"], "failed": name in failed}
    order = [m for m in MODULES if m in modules] + sorted(set(modules) - set(MODULES))
    results = []
    for name in order:
        rows = [r.as_dict() for r in ran[name]] if name in ran else old_rows(path, name)
        results += [{"module": name, **row} for row in rows]
    document = {**header, "modules": [modules[n] for n in order], "results": results}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    tmp.replace(path)
    return document


def old_rows(path: Path, module: str) -> list[dict]:
    """The rows of ``module`` in the results file at ``path`` (without their module key)."""
    try:
        rows = json.loads(Path(path).read_text()).get("results", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [{k: v for k, v in r.items() if k != "module"} for r in rows if r.get("module") == module]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON list of result objects")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", choices=MODULES, help="run only these modules")
    parser.add_argument("--model", help="model folder for the modules that encode (default: the engine's choice)")
    parser.add_argument("--out", type=Path, help=f"results file (default {DEFAULT_OUT.relative_to(HERE.parent)}; "
                                                  "a --quick run writes one only when this is given)")
    args = parser.parse_args(argv)
    out_info = sys.stderr if args.json else sys.stdout
    print(machine_summary(), file=out_info, flush=True)
    results: list[Result] = []
    ran: dict[str, list[Result]] = {}
    failed = []
    for name in args.only or MODULES:
        print(f"[{name}] running ...", file=out_info, flush=True)
        try:
            ran[name] = run_module(name, quick=args.quick, model=args.model)
            results.extend(ran[name])
        except RuntimeError as exc:  # a benchmark that breaks is reported, the others still run
            print(f"[{name}] {exc}", file=sys.stderr, flush=True)
            ran[name] = []
            failed.append(name)
    out_file = args.out or (None if args.quick else DEFAULT_OUT)
    if out_file is not None:
        write_results(out_file, ran, quick=args.quick, failed=failed)
        print(f"results written to {out_file}", file=out_info, flush=True)
    if args.json:
        print_json(results)
    else:
        print_table(results)
    if failed:
        print(f"modules that did not run: {', '.join(failed)}", file=out_info)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
