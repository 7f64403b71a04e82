"""Held-out evaluation of a head on pseudo-queries: nDCG@10 and Recall@100 before and after training.

The held-out split holds whole files (groups) that training never saw, not even as negatives. Each held-out
query is ranked against every passage of the tuple set (train and held-out files alike, the passages a search
over those files would see), by MaxSim through each head on the cached backbone vectors, and by BM25 over
the same passages for reference. The relevant passage is the one the query was made from.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from findling.training.features import FeatureSet
from findling.training.metrics import maxsim_matrix, ndcg_at_k, recall_at_k
from findling.training.pairs import TupleSet, bm25_rank_scores


def evaluate_heads(tuples: TupleSet, queries: FeatureSet, passages: FeatureSet,
                   heads: dict[str, Callable[[np.ndarray], np.ndarray]], *, limit: int | None = None) -> dict:
    test = tuples.split("test")[:limit] if limit else tuples.split("test")
    if not test:
        raise SystemExit("no held-out tuples: give the recipe a held_out share (for example 0.2)")
    relevant = [{t["positive"]: 1} for t in test]
    results = {"queries": len(test), "passages": len(tuples.passages)}
    for name, project in heads.items():
        qv = [project(np.asarray(queries.text(t["query_index"]))) for t in test]
        scores = maxsim_matrix(qv, passages, project=project)
        results[name] = {"ndcg@10": round(ndcg_at_k(scores, relevant, 10), 4),
                         "recall@100": round(recall_at_k(scores, relevant, 100), 4)}
    scores = bm25_rank_scores(tuples.passages, [t["query"] for t in test])
    results["bm25"] = {"ndcg@10": round(ndcg_at_k(scores, relevant, 10), 4),
                       "recall@100": round(recall_at_k(scores, relevant, 100), 4)}
    return results
