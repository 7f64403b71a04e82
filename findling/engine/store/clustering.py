"""Nearest-point search and k-means on the CPU, in numpy: the kernels a token-vector codec is trained and
encodes with (``findling.engine.store.codec``).

Contracts: every function is deterministic for the same inputs (and ``seed`` or ``rng``): random choices
come from the numpy generator given, blocks of an assignment are independent of how many threads run them,
and cluster sums are taken in float64 in a fixed order. What can still differ between machines is float32
rounding inside the BLAS products, which decides only exact near-ties. Nothing here knows about codecs,
BLOBs or the index.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from findling.engine.threads import default_threads, single_threaded_blas


def balanced_order(variance: np.ndarray, groups: int) -> np.ndarray:
    """A permutation of the dimensions: ``groups`` equal runs whose summed variances are about equal.

    Greedy: take dimensions by falling variance and give each to the open group with the least variance so far.
    """
    dim = len(variance)
    size = dim // groups
    members: list[list[int]] = [[] for _ in range(groups)]
    score = np.zeros(groups)
    for d in np.argsort(-variance, kind="stable"):
        open_ = [g for g in range(groups) if len(members[g]) < size]
        g = min(open_, key=lambda g: (score[g], g))
        members[g].append(int(d))
        score[g] += float(variance[d])
    return np.array([d for m in members for d in m], dtype=np.int64)


def nearest(x: np.ndarray, centroids: np.ndarray, *, block: int = 2048) -> np.ndarray:
    """Index of the row of ``centroids`` with the largest dot product with each row of ``x``: ``[n]`` int64."""
    return _argmax_blocks(x, np.ascontiguousarray(centroids.T), None, block)


def nearest_l2(x: np.ndarray, points: np.ndarray, *, block: int = 16384) -> np.ndarray:
    """Index of the nearest row of ``points`` (Euclidean) for each row of ``x``: ``[n]`` int64."""
    half_norms = 0.5 * np.einsum("ij,ij->i", points, points)
    return _argmax_blocks(x, np.ascontiguousarray(points.T), half_norms, block)


def _argmax_blocks(x: np.ndarray, pt: np.ndarray, offset: np.ndarray | None, block: int) -> np.ndarray:
    """``argmax(x @ pt - offset)`` per row, in blocks that workers take as cores come free.

    Every BLAS call runs on one thread (``findling.engine.threads``): on cores shared with an encoder a multi-threaded
    product waits for its slowest thread, which made training 70x slower than its CPU time on 2 busy cores.
    """
    out = np.empty(len(x), dtype=np.int64)

    def run(lo: int) -> None:
        sims = x[lo:lo + block] @ pt
        if offset is not None:
            sims -= offset
        out[lo:lo + block] = sims.argmax(axis=1)

    starts = range(0, len(x), block)
    with single_threaded_blas():
        if len(starts) <= 1 or default_threads() == 1:
            for lo in starts:
                run(lo)
        else:
            with ThreadPoolExecutor(max_workers=default_threads(), thread_name_prefix="codec") as pool:
                list(pool.map(run, starts))
    return out


def spherical_kmeans(x: np.ndarray, k: int, *, iters: int = 8, seed: int = 0) -> np.ndarray:
    """``k`` unit centroids of unit-ish rows ``x`` (cosine k-means), started from ``k`` distinct rows."""
    rng = np.random.default_rng(seed)
    centroids = _normalise(x[rng.choice(len(x), size=k, replace=False)].copy())
    for _ in range(iters):
        assign = nearest(x, centroids)
        sums, counts = _sums(x, assign, k)
        empty = counts == 0
        centroids = np.where(empty[:, None], centroids, sums)
        if empty.any():  # restart an empty cluster on a random row
            centroids[empty] = x[rng.choice(len(x), size=int(empty.sum()), replace=False)]
        centroids = _normalise(centroids)
    return centroids


def kmeans_l2(x: np.ndarray, k: int, *, iters: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` Euclidean k-means centres of ``x`` ``[n, d]`` (fewer distinct rows than ``k``: padded with copies)."""
    n = len(x)
    centres = x[rng.choice(n, size=k, replace=n < k)].copy()
    for _ in range(iters):
        assign = nearest_l2(x, centres)
        sums, counts = _sums(x, assign, k)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
        if (~filled).any():
            centres[~filled] = x[rng.choice(n, size=int((~filled).sum()), replace=n < k)]
    return centres.astype(np.float32)


def _sums(x: np.ndarray, assign: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster float64 sums of the rows of ``x`` (in a fixed order, so bit-for-bit repeatable) and counts."""
    order = np.argsort(assign, kind="stable")
    counts = np.bincount(assign, minlength=k)
    sums = np.zeros((k, x.shape[1]), dtype=np.float64)
    present = np.flatnonzero(counts)
    starts = np.concatenate([[0], np.cumsum(counts[present])[:-1]])
    sums[present] = np.add.reduceat(x[order].astype(np.float64), starts, axis=0)
    return sums.astype(np.float32), counts


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)
