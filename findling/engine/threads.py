"""Thread counts in the query path: what a search may use while an indexer shares the cores.

A query is small work that must answer quickly while the indexer keeps every core busy encoding. Both
numeric libraries default to one thread per core and synchronise their threads at every operation, so a
search that uses them that way stalls whenever one of its threads is waiting for a core (numpy's OpenBLAS
on cores shared with an encoder runs many times slower than single-threaded). The search path
therefore runs every library call on one thread and parallelises itself, over independent blocks that a
free core picks up (``findling.engine.search.maxsim``):

* ``single_threaded_blas()``: numpy's BLAS limited to one thread for the duration of a block of calls;
* ``torch_threads(n)``: torch's intra-op threads of the calling thread set to ``n`` for a block of calls
  (query encoding), then put back. Nothing is imported: if torch is not loaded there is nothing to limit.
  Threads that already ran torch code (an indexer that loaded its model) keep their own count; but torch
  fixes a thread's count at its first parallel operation from a process-wide value, which is ``n`` during
  the block, so a thread whose first torch operation falls inside a query's encoding starts with ``n``.

``default_threads()`` is how many cores this process may run on.

Indexing runs in its own process (``findling.engine.index.service``) at the lowest priority the platform
offers, so the operating system, not this module, keeps searches ahead of it.
"""
from __future__ import annotations

import ctypes
import functools
import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

def default_threads() -> int:
    """Cores this process may run on (its CPU affinity where the platform says, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _BlasLimit:
    """One thread for the BLAS libraries while any caller is inside ``single_threaded_blas``; put back after
    the last one leaves, whichever thread that is. ``libs`` holds a ``(get, set)`` pair per library."""

    def __init__(self, libs: list[tuple[Callable[[], int], Callable[[int], object]]]) -> None:
        self._libs = libs
        self._guard = threading.Lock()
        self._users = 0
        self._before: list[int] = []

    def enter(self) -> None:
        with self._guard:
            self._users += 1
            if self._users == 1:
                self._before = [get() for get, _ in self._libs]
                for _, set_threads in self._libs:
                    set_threads(1)

    def exit(self) -> None:
        with self._guard:
            self._users -= 1
            if self._users == 0:
                for (_, set_threads), n in zip(self._libs, self._before):
                    set_threads(n)


@functools.lru_cache(maxsize=1)
def _blas_limit() -> _BlasLimit | None:
    """The limit over the BLAS libraries loaded now (numpy's), or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # an optional speed-up: without it BLAS keeps its own thread count
        log.debug("threadpoolctl is not installed; BLAS keeps its own thread count")
        return None
    libs = []
    loaded = ThreadpoolController().select(user_api="blas").lib_controllers
    # numpy's own BLAS (its wheel bundles one); another loaded later (scipy's, say) is not ours to change
    for lib in [lib for lib in loaded if "numpy" in lib.filepath] or loaded:
        pair = _openblas_calls(lib.filepath) if lib.internal_api == "openblas" else None
        # OpenBLAS through its own symbols: threadpoolctl lets only one thread change it (its "controlling
        # thread"), and the thread that leaves last here need not be the one that came first
        libs.append(pair or (lambda lib=lib: lib.num_threads, lib.set_num_threads))
    return _BlasLimit(libs)


def _openblas_calls(path: str):
    """``(get, set)`` thread-count functions of the OpenBLAS at ``path`` (any symbol affix), or None."""
    dll = ctypes.CDLL(path)
    for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
        get = getattr(dll, f"{prefix}openblas_get_num_threads{suffix}", None)
        set_threads = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
        if get is not None and set_threads is not None:
            set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
            return get, set_threads
    return None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """numpy's BLAS on one thread inside the block; nested and overlapping blocks (any threads) restore it
    once, when the last one ends.

    The limit is process-wide (OpenBLAS with its own threads has one thread count): other numpy code running
    meanwhile is slowed at worst, never given other results.
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
