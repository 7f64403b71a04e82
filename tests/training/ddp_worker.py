"""One rank of the data-parallel fitting test: ``torchrun --nproc_per_node 2 -m tests.training.ddp_worker SPEC``.

``SPEC`` is a JSON file naming the toy data (a ``torch.save`` of the train tuples and both feature sets) and
the jobs to run. Each job is one or more ``fit`` calls into the same output folder (a later call with more
steps resumes from the checkpoint the earlier wrote), every call on a head built from a seed that differs
per rank, so the ranks only agree afterwards if ``fit`` gives them rank 0's weights. The worker holds the
process group itself around all jobs (``fit`` then uses it rather than making its own) and writes what each
rank ended with to ``results/JOB.rankR.pt``, beside (never inside) the fit's output folder.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from findling.training.distributed import group
from findling.training.fit import FitSettings, fit
from findling.training.head import Head


def make_head(width: int, spec: dict, seed: int) -> Head:
    torch.manual_seed(seed)
    return Head(width, spec.get("dim", 16), kind=spec.get("kind", "ffn"), mid=spec.get("mid", 32))


def run_job(job: dict, data: tuple, rank: int, results: Path) -> None:
    train, q, p = data
    logs: list[str] = []
    phases = []
    for steps in job["steps"]:
        head = make_head(q.vectors.shape[1], job.get("head", {}), job["seed"] + 1000 * rank)
        settings = FitSettings(**{**job["settings"], "steps": steps})
        fit(head, train, q, p, Path(job["out"]), settings, log=logs.append)
        phases.append({k: v.detach().clone() for k, v in head.state_dict().items()})
    torch.save({"phases": phases, "logs": logs}, results / f"{job['name']}.rank{rank}.pt")


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(1)
    data = torch.load(spec["data"], weights_only=False)
    results = Path(spec["results"])
    rank = int(os.environ["RANK"])
    with group("cpu"):
        for job in spec["jobs"]:
            run_job(job, data, rank, results)


if __name__ == "__main__":
    main(sys.argv[1])
