"""What every benchmark in ``bench/`` shares: the result record, the machine summary and the printing.

A benchmark module exposes ``collect(args) -> list[Result]`` and a ``main`` that prints them (``run_bench``);
``bench/run.py`` runs each module in a process of its own and prints one table (or, with ``--json``, one JSON
list of result objects). Each ``Result`` is one target of the
performance issue, measured side by side with its named peer in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Result:
    """One measured figure against its peer. ``ratio`` is value / peer_value (None when there is no peer).

    ``target`` says in words what must hold (for example ">= 3x peer" or "<= 100 ms"), ``ok`` whether it held.
    """

    name: str
    value: float
    unit: str
    peer: str | None
    peer_value: float | None
    ratio: float | None
    target: str
    ok: bool

    def as_dict(self) -> dict:
        """Plain JSON types: figures computed with numpy arrive as numpy floats and bools."""
        out = asdict(self)
        for key in ("value", "peer_value", "ratio"):
            if out[key] is not None:
                out[key] = float(out[key])
        out["ok"] = bool(out["ok"])
        return out


def ratio(value: float, peer_value: float | None) -> float | None:
    if peer_value in (None, 0):
        return None
    return value / peer_value


def machine_summary() -> str:
    """The ``lscpu`` lines that matter for a CPU benchmark, plus Python, torch and thread counts."""
    lines = []
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    keep = ("Architecture", "Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "Flags")
    for line in out.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in keep:
            if key == "Flags":
                flags = set(line.split(":", 1)[1].split())
                wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
                line = f"Flags (selected): {' '.join(wanted) or 'none of avx2/avx512/amx'}"
            lines.append(" ".join(line.split()))
    try:
        import torch

        lines.append(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    except ImportError:
        pass
    lines.append(f"Python {platform.python_version()}, os.cpu_count() = {os.cpu_count()}")
    return "\n".join(lines)


def print_table(results: list[Result], *, file=sys.stdout) -> None:
    header = f"{'target':<44} {'value':>12} {'unit':<10} {'peer':<34} {'peer value':>12} {'ratio':>7}  {'goal':<20} ok"
    print(header, file=file)
    print("-" * len(header), file=file)
    for r in results:
        peer_value = "" if r.peer_value is None else f"{r.peer_value:.4g}"
        ratio_s = "" if r.ratio is None else f"{r.ratio:.2f}"
        print(f"{r.name:<44} {r.value:>12.4g} {r.unit:<10} {(r.peer or ''):<34} {peer_value:>12} {ratio_s:>7}  "
              f"{r.target:<20} {'yes' if r.ok else 'NO'}", file=file)


def print_json(results: list[Result], *, file=sys.stdout) -> None:
    json.dump([r.as_dict() for r in results], file, indent=1)
    print(file=file)


def bench_parser(doc: str | None, *, quick: str, model: bool = True) -> argparse.ArgumentParser:
    """The options every benchmark script takes: ``--json`` and ``--quick`` (``quick`` says what it shrinks), and
    ``--model`` for the modules that load an encoder (``model``)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", action="store_true", help="print one JSON list of result objects")
    if model:
        parser.add_argument("--model", help="model folder to encode with (default: the one the engine picks, "
                                            "the bundled MiniLM here); a smoke run can name a tiny test model")
    return parser


def bench_config(args, data_dir: Path, **overrides):
    """The engine's ``Config`` for a benchmark: its data in ``data_dir``, the model ``--model`` names (if any)."""
    from findling.engine.config import Config

    model = getattr(args, "model", None)
    return Config(data_dir=data_dir, **({"model": str(model)} if model else {}), **overrides)


def results_stdout():
    """Standard output for the results alone: file descriptor 1 is pointed at standard error from here on (so
    what libraries print while they load, from Python or from C, lands on stderr) and the returned file writes
    to the original standard output. Call it once, before anything that may print."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(real, "w", buffering=1)


CHILD = "FINDLING_BENCH_CHILD"  # set by bench/run.py for the module processes it starts (it prints the machine)


def run_bench(parser: argparse.ArgumentParser, collect, argv: list[str] | None) -> int:
    """Parse, print the machine (stderr), collect, print the results as a table or JSON: on standard output,
    which carries nothing else (``results_stdout``)."""
    args = parser.parse_args(argv)
    out = results_stdout()
    if not os.environ.get(CHILD):
        print(machine_summary(), file=sys.stderr, flush=True)
    results = collect(args)
    (print_json if args.json else print_table)(results, file=out)
    out.flush()
    return 0
