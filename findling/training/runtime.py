"""Where training runs: the device and thread count come from the environment, never from code changes.

* ``FINDLING_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides the automatic choice (a GPU when torch
  sees one, else the CPU).
* On the CPU, torch uses one thread per core unless ``FINDLING_THREADS`` or ``OMP_NUM_THREADS`` says otherwise.
* Under ``accelerate launch`` or ``torchrun`` (several GPUs or machines), ``LOCAL_RANK``/``WORLD_SIZE`` are set:
  each process takes the GPU of its ``LOCAL_RANK`` (``FINDLING_DEVICE=cuda`` included), and ``findling.training.fit``
  trains one head over all of them (see ``findling.training.distributed``).
"""
from __future__ import annotations

import os


def pick_device() -> str:
    wanted = os.environ.get("FINDLING_DEVICE")
    local_rank = os.environ.get("LOCAL_RANK")
    if wanted == "cuda" and local_rank is not None and world_size() > 1:
        return f"cuda:{local_rank}"  # one GPU per process, not every process on the first
    if wanted:
        return wanted
    import torch

    if torch.cuda.is_available():
        return f"cuda:{local_rank}" if local_rank is not None else "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def configure_threads() -> int:
    """Set torch's CPU thread count from the environment (default: all cores) and return it."""
    import torch

    wanted = os.environ.get("FINDLING_THREADS") or os.environ.get("OMP_NUM_THREADS")
    threads = int(wanted) if wanted and wanted.isdigit() and int(wanted) > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


def world_size() -> int:
    """How many processes the launcher started (``WORLD_SIZE``; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
