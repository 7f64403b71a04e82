"""Exact MaxSim (late interaction) over one contiguous token matrix.

A corpus of C chunks is held as ``tokens`` ``[N, d]`` (all chunks' token vectors back to back) and
``starts`` ``[C]`` (the row where each chunk begins, ascending, ``starts[0] == 0``). For a query ``Q``
``[m, d]`` the score of chunk c is

    score(c) = sum_i max_{j in c} <Q_i, D_j>

>>> import numpy as np
>>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
>>> d = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
>>> maxsim_scores(q, d, np.array([0, 2]))   # chunk 0 = rows 0-1, chunk 1 = row 2
array([1.8, 1. ], dtype=float32)
"""
from __future__ import annotations

import numpy as np

DEFAULT_BLOCK_ROWS = 1 << 16


def maxsim_scores(query: np.ndarray, tokens: np.ndarray, starts: np.ndarray, *,
                  block_rows: int = DEFAULT_BLOCK_ROWS) -> np.ndarray:
    """MaxSim score of every chunk: float32 ``[C]``. ``tokens`` may be float16 or float32.

    Works through the matrix in blocks of about ``block_rows`` rows cut at chunk boundaries, so memory
    stays at ``block_rows * m`` floats whatever the corpus size.
    """
    n_chunks = len(starts)
    out = np.zeros(n_chunks, dtype=np.float32)
    if n_chunks == 0 or len(query) == 0:
        return out
    q_t = np.ascontiguousarray(query, dtype=np.float32).T
    ends = np.append(starts[1:], len(tokens))
    c0 = 0
    while c0 < n_chunks:
        # last chunk whose end fits in this block (at least one chunk per block)
        limit = starts[c0] + block_rows
        c1 = max(c0 + 1, int(np.searchsorted(ends, limit, side="right")))
        lo, hi = int(starts[c0]), int(ends[c1 - 1])
        sims = np.asarray(tokens[lo:hi], dtype=np.float32) @ q_t  # [rows, m]
        best = np.maximum.reduceat(sims, starts[c0:c1] - lo, axis=0)  # [chunks, m]
        out[c0:c1] = best.sum(axis=1)
        c0 = c1
    return out


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
