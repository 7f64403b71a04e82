"""Every benchmark module runs in its smoke mode (``--quick``) and prints nothing but its JSON list of results on
standard output; ``bench/run.py`` writes its results file.

The modules run as ``bench/run.py`` runs them (``python bench/NAME.py --json --quick``, a process each), two at
a time, on the tiny test model (``--model``) and with the smallest sizes their options allow, so that a broken
module fails here rather than in a benchmark run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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
        "candidates": ["--work", str(work / "candidates"), "--tokens", "80000", "--queries", "3"],
    }
    if name == "candidates":  # past the 300 records' tokens, so chunks are spliced; a model with a dense lane
        model = pooled_copy(model, work / "tiny-pooled")
    model_args = [] if name == "long_chunks" else ["--model", str(model)]
    return [*sizes[name], *model_args]


def pooled_copy(model: Path, folder: Path) -> Path:
    """``model`` declaring mean pooling, so that it gives dense vectors and hybrid searches run the dense lane."""
    if not folder.is_dir():
        shutil.copytree(model, folder)
        (folder / "dense_pooling.json").write_text(json.dumps({"pooling": "mean", "normalize": True}))
    return folder


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


@pytest.mark.slow
def test_candidates_times_the_default_ranking_with_its_dense_lane(smoke_runs):
    """The hybrid rows name the dense lane as run, and the same searches without it are reported beside them."""
    rows = {r["name"]: r for r in json.loads(smoke_runs["candidates"].stdout)}
    hybrid = [n for n in rows if n.startswith("search p50, hybrid (default")]
    assert hybrid == ["search p50, hybrid (default: MaxSim + BM25 + dense), 0.0802M tok"], list(rows)
    versus = rows["search p50, hybrid with dense lane vs without, 0.0802M tok"]
    assert versus["value"] == rows[hybrid[0]]["value"] and versus["peer_value"] > 0
    assert any(n.startswith("search p95, hybrid (default: MaxSim + BM25 + dense)") for n in rows)
    assert "dense_lane: true" in smoke_runs["candidates"].stderr


def test_candidates_index_gives_every_chunk_its_dense_vector(tmp_path):
    """Records and spliced chunks each get a dense vector made from the rows they hold, stored through the store;
    an index cached without dense vectors is rebuilt with them."""
    from bench.candidates import DenseVectors, cached_index
    from bench.storage import synthetic_set
    from findling.engine.store.dense_codec import decode_dense
    from findling.engine.store.store import Store
    from tests.fakes import FakeEncoder

    info = FakeEncoder(dim=48).info
    data = synthetic_set(records=120, queries=4, dim=info.dim)
    tokens = data.n_tokens + 20_000
    old = cached_index(tmp_path, data, tokens=tokens, info=info, synthetic=True)
    with Store(old) as store:
        assert len(store.dense_chunk_ids()) == 0 and len(store.chunk_ids()) > len(data.texts)
    dense = DenseVectors(data, 24)
    path = cached_index(tmp_path, data, tokens=tokens, info=info, synthetic=True, dense=dense)
    assert path == old
    with Store(path) as store:
        ids = store.chunk_ids()
        assert np.array_equal(store.dense_chunk_ids(), ids) and store.token_count() >= tokens
        rows = store.chunk_rows(ids.tolist())
        vectors = {cid: decode_dense(blob) for cid, _fid, blob in store.read_dense()}
    records = {int(r.path.name): cid for cid, r in rows.items() if not r.path.name.startswith("splice-")}
    assert sorted(records) == list(range(len(data.texts)))
    for i, cid in records.items():
        assert rows[cid].text == data.texts[i]
        n = len(data.doc(i))
        assert float(vectors[cid] @ dense.of([(i, 0, n)])) > 0.97
    spliced = np.stack([vectors[cid] for cid in ids if cid not in set(records.values())])
    assert len(spliced) > 10 and np.allclose(np.linalg.norm(spliced, axis=1), 1.0, atol=1e-5)
    cosines = spliced @ spliced.T
    assert cosines[~np.eye(len(spliced), dtype=bool)].mean() < 0.5  # apart, not one direction for all


def test_dense_vectors_are_the_mean_of_backbone_states_where_the_probe_has_them(tmp_path):
    """With the records' backbone states at the dense width, a chunk's vector is their normalised mean over the
    rows it holds; states of other records, or of another width, are not used."""
    from bench.candidates import DenseVectors
    from bench.storage import synthetic_set
    from findling.training.features import FeatureSet

    data = synthetic_set(records=20, queries=2, dim=48)
    rng = np.random.default_rng(1)
    states = rng.standard_normal((data.n_tokens, 12)).astype(np.float16)
    FeatureSet(states, np.asarray(data.offsets)).save(tmp_path / "probe", "corpus")
    dense = DenseVectors(data, 12, probe=tmp_path / "probe")
    assert dense.source == "backbone states"
    a, b = int(data.offsets[3]), int(data.offsets[7])
    expected = states[a + 2:a + 9].astype(np.float64).sum(0) + states[b:b + 4].astype(np.float64).sum(0)
    expected /= np.linalg.norm(expected)
    assert np.allclose(dense.of([(3, 2, 9), (7, 0, 4)]), expected, atol=1e-5)
    assert DenseVectors(data, 16, probe=tmp_path / "probe").source == "projected token vectors"
    FeatureSet(states, np.asarray(data.offsets) // 2).save(tmp_path / "other", "corpus")
    assert DenseVectors(data, 12, probe=tmp_path / "other").source == "projected token vectors"


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
