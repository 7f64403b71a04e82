"""Thread counts in the query path: what a search may use while an indexer shares the cores.

A query is small work that must answer quickly while the indexer keeps every core busy encoding. Both
numeric libraries default to one thread per core and synchronise their threads at every operation, so a
search that uses them that way stalls whenever one of its threads is waiting for a core (numpy's OpenBLAS
on 2 cores shared with an encoder: a 16k-row product took 40x longer than single-threaded). The search path
therefore runs every library call on one thread and parallelises itself, over independent blocks that a
free core picks up (``findling.engine.search.maxsim``):

* ``single_threaded_blas()``: numpy's BLAS limited to one thread for the duration of a block of calls;
* ``torch_threads(n)``: torch's intra-op threads of the calling thread set to ``n`` for a block of calls
  (query encoding), then put back. Nothing is imported: if torch is not loaded there is nothing to limit.
  Threads that already ran torch code (an indexer that loaded its model) keep their own count; but torch
  fixes a thread's count at its first parallel operation from a process-wide value, which is ``n`` during
  the block, so a thread whose first torch operation falls inside a query's encoding starts with ``n``.

``default_threads()`` is how many cores this process may run on.

The other side of it: ``lower_thread_priority(nice)`` puts the indexing thread (and the threads it starts from
then on: its read-ahead reader, its OpenMP workers) at a lower CPU priority, so that on cores it shares with
a search the scheduler serves the search first. An idle machine still gives the indexer every core. The
priority cannot help with the GIL, though: the indexer's reader thread runs Python (pypdf, the HTML parser,
the chunker) and a search thread waits up to the interpreter's switch interval (5 ms) for every turn it
needs, so ``short_gil_turns()`` brings that interval down to ``GIL_SWITCH_INTERVAL`` while a process indexes.

Nor does a short switch interval make the GIL a search's: a search is mostly Python and numpy, so it holds the
GIL much of its time, and every background thread that asks for it takes it from the search after one
interval, whatever its niceness (py-spy with ``--gil`` during ``bench/search.py``'s busy blocks: the search
thread held it 70% of the samples, the two encoder workers and the reader the rest; every phase of the search,
from decoding codes to the hits' tokenisation, took about twice its idle time). So the background gives way:
a thread that ``lower_thread_priority`` marked as background calls ``yield_to_searches()`` at its pause points
(each module call of the encoder's network, each text of its attention, each file the reader starts) and,
while any ``search_running()`` block is open in the process, waits there until it closes. What a background
thread is doing when a search starts runs on to its next pause point (a torch operation lets go of the GIL
and runs at the lower CPU priority meanwhile).
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


def lower_thread_priority(nice: int) -> bool:
    """Put the calling thread in the background: it yields to searches at its pause points
    (``yield_to_searches``) and, on Linux (where niceness is per thread; elsewhere it is per process and would
    slow the whole app), runs at CPU priority ``nice``. Threads it starts afterwards inherit the niceness,
    threads it started before keep theirs; a thread started here yields too if it calls
    ``mark_background(is_background())`` with this one's answer. Never raises a priority (an unprivileged
    process could not lower it again); ``nice <= 0`` does nothing. Returns whether the thread now runs at
    ``nice`` or lower."""
    if nice <= 0:
        return False
    mark_background()
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        return True
    except (OSError, AttributeError) as exc:  # a sandbox that forbids it: indexing runs at the usual priority
        log.debug("could not lower the indexing thread's priority: %s", exc)
        return False


GIL_SWITCH_INTERVAL = 0.001
"""Seconds a thread holding the GIL may run before a waiting thread gets it, in a process that indexes.
``bench/search.py`` (search p95 while a real indexer runs, 1M tokens, 2 cores): 113.2 ms against 79.9 idle
(1.42x) at Python's default 5 ms, 74.2 against 64.1 (1.16x) at 1 ms."""


def short_gil_turns(interval: float = GIL_SWITCH_INTERVAL) -> None:
    """Shorten the interpreter's GIL switch interval to ``interval`` (process-wide; never lengthens it)."""
    if sys.getswitchinterval() > interval:
        sys.setswitchinterval(interval)


# ---------------------------------------------------------------- searches first
SEARCH_HOLD_LIMIT = 2.0
"""Seconds a background thread waits at one pause point for searches to end: searches end far sooner (tens
of milliseconds), so this only bounds the wait should searches follow each other without a gap."""

class _Flags(threading.local):
    on = False  # this thread is background work: it waits at its pause points while a search runs


_background = _Flags()
_searches_lock = threading.Lock()
_searches = 0
_no_search = threading.Event()
_no_search.set()


def mark_background(on: bool = True) -> None:
    """Mark the calling thread as background work (it waits at ``yield_to_searches``) or, with ``on=False``,
    not."""
    _background.on = on


def is_background() -> bool:
    """Whether the calling thread is marked as background work."""
    return _background.on


@contextmanager
def without_pauses() -> Iterator[None]:
    """Inside the block the calling thread's pause points return at once: for work that holds a lock a search
    may need (waiting there for the search would hold the search up until ``SEARCH_HOLD_LIMIT``)."""
    before = _background.on
    _background.on = False
    try:
        yield
    finally:
        _background.on = before


@contextmanager
def search_running() -> Iterator[None]:
    """While the block runs, background threads of this process wait at their pause points (blocks on several
    threads may overlap: they wait until the last ends). The searching thread itself runs ``without_pauses``:
    one that indexed and then searches (``findling eval``) must not wait for its own search."""
    global _searches
    with _searches_lock:
        _searches += 1
        _no_search.clear()
    try:
        with without_pauses():
            yield
    finally:
        with _searches_lock:
            _searches -= 1
            if not _searches:
                _no_search.set()


def searches_running() -> int:
    """How many ``search_running`` blocks are open now."""
    return _searches


def yield_to_searches(limit: float = SEARCH_HOLD_LIMIT) -> bool:
    """A pause point: on a background thread, wait while a search runs (at most ``limit`` seconds); elsewhere
    (inside ``without_pauses`` and ``search_running`` too), or with no search running, return at once. Returns
    whether it waited."""
    if not _searches or not _background.on:
        return False
    _no_search.wait(limit)
    return True


def _yield_hook(_module, _args) -> None:
    yield_to_searches()


def add_pause_points(model) -> int:
    """Make the call of every module inside ``model``'s repeated blocks (the members of each ``ModuleList``: a
    transformer's layers, with their attention and feed-forward parts) a pause point, by a forward pre-hook that
    returns at once on a thread that is not background. Returns how many modules got one."""
    import torch

    hooked = {id(m): m for lists in model.modules() if isinstance(lists, torch.nn.ModuleList)
              for block in lists for m in block.modules()}
    for module in hooked.values():
        module.register_forward_pre_hook(_yield_hook)
    return len(hooked)
