"""Ranking metrics and MaxSim over cached token vectors, for quick checks during training.

The numbers the project reports come from ``findling eval`` (the real engine path); these functions score
cached vectors directly so that a head can be compared with another in seconds.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from findling.training.features import FeatureSet


def maxsim_matrix(queries: Sequence[np.ndarray], docs: FeatureSet, *, project: Callable | None = None,
                  max_cells: int = 1 << 27) -> np.ndarray:
    """``[n_queries, n_docs]`` MaxSim scores; ``project`` maps raw cached vectors to the scored space."""
    n_docs = len(docs)
    scores = np.zeros((len(queries), n_docs), dtype=np.float32)
    q_all = np.concatenate(queries).astype(np.float32)
    q_starts = np.cumsum([0] + [len(q) for q in queries])
    lengths = docs.lengths()
    block_tokens = max(int(lengths.max(initial=1)), max_cells // max(len(q_all), 1))  # bounds the sims block
    doc = 0
    while doc < n_docs:
        end, tokens = doc, 0
        while end < n_docs and (tokens == 0 or tokens + lengths[end] <= block_tokens):
            tokens += lengths[end]
            end += 1
        block = np.asarray(docs.vectors[docs.offsets[doc]:docs.offsets[end]])
        block = project(block) if project else block.astype(np.float32)
        sims = q_all @ block.T  # [all query tokens, block tokens]
        starts = docs.offsets[doc:end] - docs.offsets[doc]
        best = np.maximum.reduceat(sims, starts, axis=1)  # [all query tokens, docs in block]
        scores[:, doc:end] = np.add.reduceat(best, q_starts[:-1], axis=0)
        doc = end
    return scores


def ndcg_at_k(scores: np.ndarray, relevant: Sequence[dict[int, int]], k: int = 10) -> float:
    """Mean nDCG@k; ``relevant[i]`` maps doc index -> grade for query ``i``."""
    total = 0.0
    for row, judged in zip(scores, relevant):
        top = np.argsort(-row, kind="stable")[:k]
        dcg = sum(judged.get(int(d), 0) / math.log2(rank + 2) for rank, d in enumerate(top))
        ideal = sorted(judged.values(), reverse=True)[:k]
        total += dcg / sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal)) if ideal else 0.0
    return total / max(len(relevant), 1)


def recall_at_k(scores: np.ndarray, relevant: Sequence[dict[int, int]], k: int = 100) -> float:
    total = 0.0
    for row, judged in zip(scores, relevant):
        top = set(np.argsort(-row, kind="stable")[:k].tolist())
        total += len(top & set(judged)) / len(judged) if judged else 0.0
    return total / max(len(relevant), 1)
