"""Thread counts in the query path: what a search may use while an indexer shares the cores.

A query is small work that must answer quickly while the indexer keeps every core busy encoding. Both
numeric libraries default to one thread per core and synchronise their threads at every operation, so a
search that uses them that way stalls whenever one of its threads is waiting for a core (numpy's OpenBLAS
on 2 cores shared with an encoder: a 16k-row product took 40x longer than single-threaded). The search path
therefore runs every library call on one thread and parallelises itself, over independent blocks that a
free core picks up (``engine.maxsim``):

* ``single_threaded_blas()``: numpy's BLAS limited to one thread for the duration of a block of calls;
* ``torch_threads(n)``: torch's intra-op threads of the calling thread set to ``n`` for a block of calls
  (query encoding), then put back. Nothing is imported: if torch is not loaded there is nothing to limit.

``default_threads()`` is how many cores this process may run on.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

def default_threads() -> int:
    """Cores this process may run on (its CPU affinity where the platform says, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _BlasLimit:
    """One thread for numpy's BLAS while any caller is inside ``single_threaded_blas``; put back after the last."""

    def __init__(self, controller) -> None:
        self._controller = controller
        self._guard = threading.Lock()
        self._users = 0
        self._limiter = None

    def enter(self) -> None:
        with self._guard:
            self._users += 1
            if self._users == 1:
                self._limiter = self._controller.limit(limits=1)

    def exit(self) -> None:
        with self._guard:
            self._users -= 1
            if self._users == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


@functools.lru_cache(maxsize=1)
def _blas_limit() -> _BlasLimit | None:
    """The limit over the BLAS libraries loaded now (numpy's), or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # an optional speed-up: without it BLAS keeps its own thread count
        log.debug("threadpoolctl is not installed; BLAS keeps its own thread count")
        return None
    return _BlasLimit(ThreadpoolController().select(user_api="blas"))


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """numpy's BLAS on one thread inside the block; nested and concurrent blocks restore it once, at the end.

    The limit is process-wide (OpenBLAS has one thread count); it only ever lowers a thread count, so a
    concurrent caller is slowed at worst, never given wrong results.
    """
    limit = _blas_limit()
    if limit is None:
        yield
        return
    limit.enter()
    try:
        yield
    finally:
        limit.exit()


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads of the calling thread set to ``n`` inside the block (no-op without torch)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)
