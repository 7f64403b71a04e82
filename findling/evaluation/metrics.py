"""Retrieval metrics, by hand, over graded relevance judgements (``Qrels``).

nDCG@k (gain = grade, log2 discount, ideal from every judged grade of the query), Recall@k and MRR@k; a
document counts as relevant when its grade is above 0, and an unjudged one as grade 0. ``mean_metrics``
averages nDCG@10, Recall@100 and MRR@10 over the queries of a run, rounded to five places.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

Qrels = Mapping[str, Mapping[str, int]]  # query id -> doc id -> grade


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k: gain = grade, discount log2(rank + 1); the ideal ranking uses every judged grade."""
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents (grade > 0) found in the first ``k``."""
    relevant = {d for d, g in qrels.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within the first ``k``, else 0."""
    for i, d in enumerate(ranked[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def mean_metrics(runs: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 averaged over the queries of ``runs``."""
    rows = [(ndcg_at_k(r, qrels[q], 10), recall_at_k(r, qrels[q], 100), mrr_at_k(r, qrels[q], 10))
            for q, r in runs.items()]
    means = np.mean(rows, axis=0) if rows else np.zeros(3)
    return {"ndcg@10": round(float(means[0]), 5), "recall@100": round(float(means[1]), 5),
            "mrr@10": round(float(means[2]), 5)}

