"""Data-parallel head fitting over several processes, set up from the launcher's environment alone.

``torchrun --nproc_per_node N`` and ``accelerate launch`` start N copies of the same command with ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. When ``WORLD_SIZE`` > 1 the fit joins
them in one ``torch.distributed`` group (``nccl`` on CUDA, ``gloo`` on the CPU) and every rank trains on its
own share of each global batch; with ``WORLD_SIZE`` unset or 1 nothing here does anything, so a single process
runs exactly the code it ran before.

The gradients are averaged by one explicit all-reduce per step (rather than by wrapping the head in
``DistributedDataParallel``): the head is called several times per step (queries, then documents), its
``state_dict`` keeps its own keys for checkpoints and export, and one flat all-reduce of a head this small
costs less than DDP's bucketing machinery saves.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator, Sequence

import torch

from findling.training.runtime import world_size

LAUNCH_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def timeout() -> timedelta:
    """How long a rank waits at a collective before giving up (``FINDLING_DIST_TIMEOUT`` minutes, default 180).

    Long on purpose: under ``run`` the other ranks wait at a barrier while rank 0 computes the backbone
    features, which takes tens of minutes on a CPU. A rank that fails makes the launcher stop the others, so a
    long timeout does not leave orphans behind.
    """
    wanted = os.environ.get("FINDLING_DIST_TIMEOUT", "")
    return timedelta(minutes=float(wanted) if wanted.replace(".", "", 1).isdigit() else 180.0)


@dataclass(frozen=True)
class Group:
    """This process's place in the run: ``rank`` of ``world`` (``world`` 1: a single process, no group)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 is the one that writes checkpoints, logs and exports."""
        return self.rank == 0


SINGLE = Group()


def quiet(*_args) -> None:
    """The log of the ranks other than 0: one progress report per run, not one per process."""


def _check_environment(world: int) -> tuple[int, int]:
    missing = [name for name in LAUNCH_VARIABLES if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"WORLD_SIZE is {world} but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                         "not set: start several processes with torchrun or accelerate launch, which set them all, "
                         "or unset WORLD_SIZE for one process")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if not 0 <= rank < world:
        raise SystemExit(f"RANK {rank} is outside 0..{world - 1} (WORLD_SIZE {world})")
    return rank, local_rank


def check_device(device: str, local_rank: int, world: int) -> None:
    """Fail early, with the reason, where the device cannot serve this rank."""
    kind = torch.device(device).type
    if kind == "cuda":
        count = torch.cuda.device_count()
        index = torch.device(device).index
        index = local_rank if index is None else index
        if count <= index:
            raise SystemExit(f"WORLD_SIZE is {world} and LOCAL_RANK {local_rank} wants GPU {index}, but torch sees "
                             f"{count} GPU{'' if count == 1 else 's'} on this machine: start at most {count} "
                             "processes per machine (--nproc_per_node), or set FINDLING_DEVICE=cpu to use the CPU")
    elif kind != "cpu":
        raise SystemExit(f"fitting over several processes runs on CUDA (nccl) or the CPU (gloo), not on {device!r}: "
                         "set FINDLING_DEVICE=cpu or start one process")


def _backend(device: str) -> str:
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@contextmanager
def group(device: str) -> Iterator[Group]:
    """The process group of this launch, joined on entry; ``SINGLE`` (and no group) with one process.

    A group that is already there (made by an outer ``group`` or by the caller) is used as it is and left for
    its owner to destroy; one made here is destroyed on exit.
    """
    world = world_size()
    if world <= 1:
        yield SINGLE
        return
    rank, local_rank = _check_environment(world)
    check_device(device, local_rank, world)
    import torch.distributed as dist

    if dist.is_initialized():
        if dist.get_world_size() != world:
            raise SystemExit(f"a process group of {dist.get_world_size()} ranks is already set up, but WORLD_SIZE "
                             f"is {world}")
        yield Group(dist.get_rank(), world, local_rank)
        return
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(_backend(device), timeout=timeout())
    try:
        yield Group(dist.get_rank(), world, local_rank)
    finally:
        dist.destroy_process_group()


def barrier(g: Group) -> None:
    if g.active:
        import torch.distributed as dist

        dist.barrier()


def shard(batch: Sequence, g: Group) -> list:
    """This rank's share of a global batch: every ``world``-th item from ``rank`` on, so shards are disjoint,
    cover the batch, and differ in size by at most one."""
    if len(batch) < g.world:
        raise SystemExit(f"a global batch of {len(batch)} tuples cannot be shared by {g.world} processes: set the "
                         f"fit's batch to at least {g.world} (it is the global batch, split across processes)")
    return list(batch[g.rank::g.world])


@torch.no_grad()
def broadcast_parameters(module: torch.nn.Module, g: Group) -> None:
    """Give every rank rank 0's weights, so all start from the same head however each made its own."""
    if not g.active:
        return
    import torch.distributed as dist

    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def broadcast_object(obj: Any, g: Group) -> Any:
    """Rank 0's ``obj`` on every rank (a checkpoint read by rank 0 only, so no shared disk is needed)."""
    if not g.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@torch.no_grad()
def reduce_gradients(parameters: Sequence[torch.nn.Parameter], loss: torch.Tensor, share: float,
                     g: Group) -> float:
    """Turn each rank's gradients into the gradient of the global batch's loss; returns that loss.

    Each rank's loss is a mean over its shard, so the global batch's mean is the sum of the ranks' losses
    weighted by their shares of the batch (``share`` = shard size / global batch size; 1/world for equal
    shards, i.e. the plain average). The gradients and the loss go in one flat all-reduce.
    """
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([t.reshape(-1) for t in grads] + [loss.detach().reshape(1).to(grads[0].dtype)]) * share
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    pos = 0
    for p, grad in zip(parameters, grads):
        n = grad.numel()
        p.grad = flat[pos:pos + n].view_as(grad).clone()
        pos += n
    return float(flat[-1])
