"""Exact MaxSim (late interaction) over one contiguous token matrix.

A corpus of C chunks is held as ``tokens`` ``[N, d]`` (all chunks' token vectors back to back) and
``starts`` ``[C]`` (the row where each chunk begins, ascending, ``starts[0] == 0``, every chunk at least one
row). For a query ``Q`` ``[m, d]`` the score of chunk c is

    score(c) = sum_i max_{j in c} <Q_i, D_j>

>>> import numpy as np
>>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
>>> d = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
>>> maxsim_scores(q, d, np.array([0, 2]))   # chunk 0 = rows 0-1, chunk 1 = row 2
array([1.8, 1. ], dtype=float32)

How it is fast: the matrix is cut into blocks of about ``block_rows`` rows at chunk boundaries, small enough
that a block and its similarities ``[m, rows]`` stay in the core's cache. Per block one single-threaded
BLAS product ``Q @ block.T`` (float32, as the BLAS is fastest on it) gives the similarities with query
tokens as rows, so each chunk's maximum is a contiguous run that ``np.maximum.reduceat`` reduces along the
row in one vectorised pass; no Python loop touches a chunk. Blocks are independent: ``threads`` workers
take them as they come free, so a core that another process is busy on simply does fewer blocks, instead of
stalling the others at a barrier the way a multi-threaded BLAS call does (see ``findling.engine.threads``).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from findling.engine.threads import single_threaded_blas

DEFAULT_BLOCK_ROWS = 4096
TASKS_PER_THREAD = 4


def maxsim_scores(query: np.ndarray, tokens: np.ndarray, starts: np.ndarray, *,
                  block_rows: int = DEFAULT_BLOCK_ROWS, threads: int = 1) -> np.ndarray:
    """MaxSim score of every chunk: float32 ``[C]``, float32 accumulation.

    ``query`` ``[m, d]``; ``tokens`` ``[N, d]`` float32 (fastest) or float16 (converted block by block);
    ``starts`` ``[C]``. Memory stays at about ``block_rows * (m + d)`` floats per worker, whatever ``N``.
    ``threads`` workers share the blocks; every BLAS call inside runs on one thread.
    """
    n_chunks = len(starts)
    out = np.zeros(n_chunks, dtype=np.float32)
    if n_chunks == 0 or len(query) == 0:
        return out
    q = np.ascontiguousarray(query, dtype=np.float32)
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.append(starts[1:], len(tokens))
    blocks = _blocks(starts, ends, block_rows)
    tasks = _group(blocks, max(1, threads) * TASKS_PER_THREAD)

    def run(task: list[tuple[int, int]]) -> None:
        for c0, c1 in task:
            out[c0:c1] = _block_scores(q, tokens, starts, c0, c1, int(ends[c1 - 1]))

    with single_threaded_blas():
        if threads <= 1 or len(tasks) == 1:
            for task in tasks:
                run(task)
        else:
            with ThreadPoolExecutor(max_workers=min(threads, len(tasks)), thread_name_prefix="maxsim") as pool:
                for done in [pool.submit(run, task) for task in tasks]:
                    done.result()
    return out


def _blocks(starts: np.ndarray, ends: np.ndarray, block_rows: int) -> list[tuple[int, int]]:
    """Chunk ranges ``[c0, c1)`` of about ``block_rows`` rows each (a longer chunk is a block of its own)."""
    blocks = []
    c0, n = 0, len(starts)
    while c0 < n:
        limit = starts[c0] + block_rows
        c1 = max(c0 + 1, int(np.searchsorted(ends, limit, side="right")))
        blocks.append((c0, c1))
        c0 = c1
    return blocks


def _group(blocks: list[tuple[int, int]], n_tasks: int) -> list[list[tuple[int, int]]]:
    """``blocks`` in at most ``n_tasks`` runs of neighbours (fewer hand-overs to the workers)."""
    per = -(-len(blocks) // n_tasks)
    return [blocks[i : i + per] for i in range(0, len(blocks), per)]


def _block_scores(q: np.ndarray, tokens: np.ndarray, starts: np.ndarray, c0: int, c1: int, hi: int) -> np.ndarray:
    """Scores of chunks ``c0..c1-1``, whose rows are ``lo..hi-1``: float32 ``[c1 - c0]``."""
    lo = int(starts[c0])
    block = tokens[lo:hi]
    if block.dtype != np.float32:
        block = block.astype(np.float32)
    sims = q @ block.T  # [m, rows]: each chunk is a contiguous run of every row
    best = np.maximum.reduceat(sims, starts[c0:c1] - lo, axis=1)  # [m, chunks]
    return best.sum(axis=0)


def maxsim_alignment(query: np.ndarray, doc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query token, the index of its best document token and that similarity.

    Returns ``(best_index [m] int64, best_sim [m] float32)``; ``best_sim.sum()`` is the MaxSim score.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> d = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    >>> idx, sim = maxsim_alignment(q, d)
    >>> idx.tolist(), [round(float(s), 2) for s in sim]
    ([0, 1], [1.0, 0.8])
    """
    sims = np.asarray(doc, dtype=np.float32) @ np.asarray(query, dtype=np.float32).T  # [n, m]
    idx = sims.argmax(axis=0)
    return idx, sims[idx, np.arange(sims.shape[1])]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first (ties broken by lower index)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]
