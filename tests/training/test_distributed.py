"""Data-parallel head fitting with two real CPU processes (gloo), launched by torchrun as a user would.

One launch runs every job (the start-up of three Python processes is most of the cost); the tests then
compare what each rank ended with against each other and against the same fit in this one process.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from findling.training import distributed
from findling.training.fit import FitSettings, fit
from findling.training.head import Head

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TUPLE = {"batch": 8, "lr": 3e-3, "warmup": 0.0, "checkpoint_every": 2}
JOBS = [
    # 4 steps, then the same folder resumed to 8: the ranks' fresh heads must take rank 0's checkpoint
    {"name": "tuple", "seed": 0, "steps": [4, 8], "settings": TUPLE},
    {"name": "tuple_ce_linear", "seed": 3, "steps": [6], "head": {"kind": "linear"},
     "settings": {**TUPLE, "ce_weight": 1.0, "batch": 7}},  # 7 tuples: shards of 4 and 3
    {"name": "in_batch", "seed": 5, "steps": [24],
     "settings": {"batch": 8, "lr": 3e-3, "warmup": 0.0, "checkpoint_every": 24, "candidates": "batch",
                  "token_weight": 1.0}},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_module(arguments: list[str], *, processes: int = 2) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node N -m MODULE ARGS`` on the CPU, on a free port."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env.update(PYTHONPATH=str(ROOT), FINDLING_DEVICE="cpu", OMP_NUM_THREADS="1", FINDLING_DIST_TIMEOUT="2")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", *arguments]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def two_ranks(toy_set, tmp_path_factory):
    """Every job run by two processes; ``{job: [rank 0 result, rank 1 result]}`` plus the data."""
    tuples, q, p = toy_set
    root = tmp_path_factory.mktemp("ddp")
    data = (tuples.split("train"), q, p)
    torch.save(data, root / "data.pt")
    (root / "results").mkdir()
    jobs = [{**job, "out": str(root / "fit" / job["name"])} for job in JOBS]
    spec = root / "spec.json"
    spec.write_text(json.dumps({"data": str(root / "data.pt"), "results": str(root / "results"), "jobs": jobs}))
    done = launch_module(["tests.training.ddp_worker", str(spec)])
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    results = {job["name"]: [torch.load(root / "results" / f"{job['name']}.rank{r}.pt", weights_only=False)
                             for r in range(2)] for job in JOBS}
    return results, data, root


def one_process(job: dict, data: tuple, out: Path) -> list[dict]:
    """The same job in this process, with rank 0's starting head: what the two ranks should have matched."""
    train, q, p = data
    phases, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs: the same float summation order in the matrix products
    try:
        for steps in job["steps"]:
            torch.manual_seed(job["seed"])  # rank 0's seed (the worker adds 1000 per rank)
            spec = job.get("head", {})
            head = Head(q.vectors.shape[1], spec.get("dim", 16), kind=spec.get("kind", "ffn"),
                        mid=spec.get("mid", 32))
            fit(head, train, q, p, out, FitSettings(**{**job["settings"], "steps": steps}), log=lambda *_: None)
            phases.append(head.state_dict())
    finally:
        torch.set_num_threads(threads)
    return phases


def history(root: Path, name: str) -> list[float]:
    return torch.load(root / "fit" / name / "checkpoint.pt", weights_only=False)["history"]


@pytest.mark.parametrize("name", [job["name"] for job in JOBS])
def test_both_ranks_end_with_the_same_head(two_ranks, name):
    results, _, _ = two_ranks
    first, second = results[name]
    for phase0, phase1 in zip(first["phases"], second["phases"], strict=True):
        for key in phase0:
            assert torch.equal(phase0[key], phase1[key]), f"{name}: {key} differs between the ranks"


def test_the_ranks_did_not_start_alike(two_ranks):
    """The check above means something: each rank built its own, different head before ``fit`` broadcast."""
    torch.manual_seed(0)
    a = Head(32, 16, mid=32).state_dict()
    torch.manual_seed(1000)
    b = Head(32, 16, mid=32).state_dict()
    assert not torch.equal(a["up.weight"], b["up.weight"])


@pytest.mark.parametrize("name", ["tuple", "tuple_ce_linear"])
def test_two_processes_follow_one_process_on_the_same_global_batch(two_ranks, tmp_path, name):
    results, data, root = two_ranks
    job = next(j for j in JOBS if j["name"] == name)
    expected = one_process(job, data, tmp_path / name)
    for got, want in zip(results[name][0]["phases"], expected, strict=True):
        for key in want:
            np.testing.assert_allclose(got[key].numpy(), want[key].numpy(), rtol=0, atol=1e-5, err_msg=key)
    alone = torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["history"]
    np.testing.assert_allclose(history(root, name), alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["tuple", "in_batch"])
def test_the_loss_fell(two_ranks, name):
    _, _, root = two_ranks
    losses = history(root, name)
    job = next(j for j in JOBS if j["name"] == name)
    assert len(losses) == job["steps"][-1]
    k = max(2, len(losses) // 4)
    assert np.mean(losses[-k:]) < np.mean(losses[:k]), losses


def test_only_rank_0_writes_and_logs(two_ranks):
    results, _, root = two_ranks
    for job in JOBS:
        written = sorted(p.relative_to(root / "fit" / job["name"]).as_posix()
                         for p in (root / "fit" / job["name"]).rglob("*"))
        assert written == ["checkpoint.pt"], written
    first, second = results["tuple"]
    assert second["logs"] == []
    assert any("2 processes share each batch of 8 tuples" in line for line in first["logs"])
    assert any("resuming at step 4/8" in line for line in first["logs"]), first["logs"]


def test_the_shards_are_disjoint_and_cover_the_batch():
    batch = list(range(7))
    shards = [distributed.shard(batch, distributed.Group(rank, 3, rank)) for rank in range(3)]
    assert sorted(x for s in shards for x in s) == batch
    assert [len(s) for s in shards] == [3, 2, 2]
    with pytest.raises(SystemExit, match="at least 3"):
        distributed.shard([1, 2], distributed.Group(0, 3, 0))


def test_a_launch_without_the_launcher_variables_says_what_is_missing(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in distributed.LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit, match="LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not set"):
        with distributed.group("cpu"):
            pass


def test_more_processes_than_gpus_is_an_error_that_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    distributed.check_device("cuda:1", 1, 4)
    with pytest.raises(SystemExit, match="LOCAL_RANK 2 wants GPU 2, but torch sees 2 GPUs"):
        distributed.check_device("cuda:2", 2, 4)
    with pytest.raises(SystemExit, match="CUDA .nccl. or the CPU .gloo."):
        distributed.check_device("mps", 0, 2)


def test_one_process_needs_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed.group("cpu") as g:
        assert g == distributed.SINGLE and not g.active
    assert not torch.distributed.is_initialized()


def test_a_recipe_runs_under_torchrun_with_rank_0_preparing_and_exporting(tiny_model_dir, tmp_path):
    """``torchrun -m findling.training run``: one set of prepared files, one checkpoint, one model, one progress log."""
    from tests.training.conftest import toy_pairs

    rows = [{"query": pair.query, "passage": pair.passage, "title": ""} for pair in toy_pairs(24)]
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    recipe = {"name": "toy", "description": "toy", "start": str(tiny_model_dir), "out": str(tmp_path / "model"),
              "layout": "full", "seed": 0, "data": [{"kind": "jsonl", "path": "pairs.jsonl"}], "negatives": 4,
              "teacher": "wide-maxsim", "head": {"kind": "linear", "dim": 16, "warm_start": "none"},
              "fit": {"steps": 6, "batch": 6, "lr": 0.003, "checkpoint_every": 2}}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    done = launch_module(["findling.training", "run", str(tmp_path / "recipe.json"), "--work", str(tmp_path / "work")])
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    for line in ("1/6 pairs", "4/6 fit", "5/6 export", "2 processes share each batch of 6 tuples"):
        assert done.stdout.count(line) == 1, (line, done.stdout)
    assert "rank 0 of 2 processes" in done.stdout
    assert sorted(p.name for p in (tmp_path / "work" / "fit").iterdir()) == ["checkpoint.pt"]
    assert (tmp_path / "work" / "head.pt").is_file() and (tmp_path / "model" / "modules.json").is_file()
    assert not list(tmp_path.glob(".model*")), "a second export was left half done"
    assert len(torch.load(tmp_path / "work" / "fit" / "checkpoint.pt", weights_only=False)["history"]) == 6


def test_a_rank_that_cannot_see_the_prepared_work_folder_says_why(tmp_path):
    from findling.training.recipe import _prepared_by_rank_0

    with pytest.raises(SystemExit, match="rank 1: .* must be one they all see"):
        _prepared_by_rank_0({"start": str(tmp_path), "_base": str(tmp_path)}, tmp_path / "work", 1)


def test_each_process_takes_the_gpu_of_its_local_rank(monkeypatch):
    from findling.training.runtime import pick_device

    monkeypatch.setenv("FINDLING_DEVICE", "cuda")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert pick_device() == "cuda:3"
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert pick_device() == "cuda"  # one process: exactly what was asked for, as before
    monkeypatch.setenv("FINDLING_DEVICE", "cpu")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert pick_device() == "cpu"
