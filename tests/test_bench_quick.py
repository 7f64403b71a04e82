"""Every benchmark module runs in its smoke mode (``--quick``) and prints nothing but its JSON list of results on
standard output; ``bench/run.py`` writes its results file.

The modules run as ``bench/run.py`` runs them (``python bench/NAME.py --json --quick``, a process each), two at
a time, on the tiny test model (``--model``) and with the smallest sizes their options allow, so that a broken
module fails here rather than in a benchmark run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.common import CHILD, Result
from bench.run import MODULES, write_results

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {"name", "value", "unit", "peer", "peer_value", "ratio", "target", "ok"}
TIMEOUT_S = 600


def extra_args(name: str, model: Path, work: Path) -> list[str]:
    """Each module's smallest smoke run: the tiny model where it encodes, its own work folder."""
    sizes = {
        "indexing": ["--files", "2", "--pdf", "none"],
        "floor": ["--files", "2"],
        "peers": ["--files", "2"],
        "long_chunks": ["--lengths", "256", "1024"],
        "search": [],
        "storage": ["--work", str(work / "storage")],
        "candidates": ["--work", str(work / "candidates"), "--tokens", "50000", "--queries", "3"],
    }
    model_args = [] if name == "long_chunks" else ["--model", str(model)]
    return [*sizes[name], *model_args]


@pytest.fixture(scope="module")
def smoke_runs(tiny_model_dir, tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every module of ``MODULES`` run once, two processes at a time (the machine has two cores)."""
    work = tmp_path_factory.mktemp("bench")
    env = {**os.environ, CHILD: "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "FINDLING_HOME": str(work / "home")}
    pending = list(MODULES)
    running: dict[str, tuple[subprocess.Popen, Path, Path, float]] = {}
    done: dict[str, subprocess.CompletedProcess] = {}
    while pending or running:
        while pending and len(running) < 2:
            name = pending.pop(0)
            out, err = work / f"{name}.out", work / f"{name}.err"
            command = [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--json", "--quick",
                       *extra_args(name, tiny_model_dir, work)]
            with open(out, "w") as fo, open(err, "w") as fe:
                proc = subprocess.Popen(command, stdout=fo, stderr=fe, cwd=ROOT, env=env)
            running[name] = (proc, out, err, time.monotonic())
        for name, (proc, out, err, started) in list(running.items()):
            if proc.poll() is None and time.monotonic() - started > TIMEOUT_S:
                proc.kill()
            if proc.poll() is not None:
                done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
                del running[name]
        time.sleep(0.2)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_module_prints_only_its_results(smoke_runs, name):
    run = smoke_runs[name]
    assert run.returncode == 0, f"bench/{name}.py failed:\n{run.stderr[-4000:]}"
    records = json.loads(run.stdout)  # stdout is the JSON list and nothing else
    assert isinstance(records, list) and records, run.stderr[-2000:]
    for record in records:
        assert set(record) == FIELDS
        Result(**record)
        assert isinstance(record["value"], float) and isinstance(record["ok"], bool)


@pytest.mark.slow
def test_peers_row_per_runtime_with_fidelity(smoke_runs):
    """The peers module compares ours with the reference and every installed runtime, or says what is missing."""
    names = [r["name"] for r in json.loads(smoke_runs["peers"].stdout)]
    assert any("PyTorch fp32 (reference)" in n for n in names)
    for runtime in ("ONNX Runtime fp32", "OpenVINO fp32"):
        assert any(runtime in n for n in names), names


@pytest.mark.slow
def test_floor_reports_fraction_and_breakdown(smoke_runs):
    rows = {r["name"]: r for r in json.loads(smoke_runs["floor"].stdout)}
    vs_floor = [r for n, r in rows.items() if n.startswith("encoder vs floor")]
    assert len(vs_floor) == 2 and all(r["value"] > 0 and r["peer_value"] > 0 for r in vs_floor)
    shares = [r["value"] for n, r in rows.items() if n.startswith("encode breakdown:")]
    assert len(shares) == 7 and abs(sum(shares) - 1.0) < 1e-6


def test_library_output_goes_to_stderr(tmp_path):
    """What a library prints while a benchmark runs, from Python or straight to file descriptor 1, stays off
    standard output."""
    script = tmp_path / "noisy.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from bench.common import Result, bench_parser, run_bench\n"
        "def collect(args):\n"
        "    print('loading weights ...')\n"
        "    os.write(1, b'a C library says hello\\n')\n"
        "    return [Result('x', 1.0, 's', None, None, None, 'reported', True)]\n"
        "raise SystemExit(run_bench(bench_parser(None, quick='-'), collect, None))\n")
    done = subprocess.run([sys.executable, str(script), "--json"], capture_output=True, text=True,
                          env={**os.environ, CHILD: "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in json.loads(done.stdout)] == ["x"]
    assert "loading weights" in done.stderr and "a C library says hello" in done.stderr


def _row(name: str, value: float) -> Result:
    return Result(name, value, "ms", None, None, None, "reported", True)


def test_results_file_has_header_and_keeps_other_modules(tmp_path):
    path = tmp_path / "bench-results.json"
    first = write_results(path, {"search": [_row("a", 1.0)], "storage": [_row("b", 2.0)]}, quick=False, failed=[])
    assert first["machine"]["cpus"] == os.cpu_count() and first["date"].endswith("+00:00")
    assert "commit" in first and first["quick"] is False
    second = write_results(path, {"search": [_row("a", 3.0)]}, quick=False, failed=[])
    on_disk = json.loads(path.read_text())
    assert on_disk == second
    assert [(r["module"], r["name"], r["value"]) for r in on_disk["results"]] == [("search", "a", 3.0),
                                                                                   ("storage", "b", 2.0)]
    # a smoke run's file does not carry the full run's rows over
    third = write_results(path, {"search": [_row("a", 4.0)]}, quick=True, failed=[])
    assert [r["module"] for r in third["results"]] == ["search"]
