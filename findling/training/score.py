"""Teacher scores for training tuples.

* ``wide-maxsim``: MaxSim over the backbone's own (wide, untrained) token vectors, L2-normalised: the
  384-dim all-MiniLM-L6-v2 token vectors score 0.707 nDCG@10 on SciFact untrained, better than any 48-dim
  head fitted so far, so they teach the head what to keep.
* ``colbert``: the current ColBERT model (``--teacher-model``, through the engine's encoder).
* ``dense``: a sentence-transformers model's cosine similarity (``--teacher-model``).

Scores are stored per tuple in candidate order (positive first), the form the KL loss reads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from findling.training.features import FeatureSet


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def wide_maxsim(tuples: list[dict], queries: FeatureSet, passages: FeatureSet) -> None:
    for t in tuples:
        q = _normalise(queries.text(t["query_index"]))
        cands = [t["positive"], *t["negatives"]]
        docs = [_normalise(passages.text(p)) for p in cands]
        sims = q @ np.concatenate(docs).T
        starts = np.cumsum([0] + [len(d) for d in docs])[:-1]
        t["scores"] = np.maximum.reduceat(sims, starts, axis=1).sum(0).round(4).tolist()


def colbert(tuples: list[dict], query_texts: Sequence[str], passages: Sequence[str], model_dir: Path) -> None:
    from findling.engine.config import Config
    from findling.engine.encode.resolve import load_encoder

    encoder = load_encoder(Config(model=str(model_dir)))
    needed = sorted({p for t in tuples for p in [t["positive"], *t["negatives"]]})
    vectors = dict(zip(needed, (e for e in encoder.encode_documents([passages[p] for p in needed]))))
    qvecs = encoder.encode_queries([query_texts[t["query_index"]] for t in tuples])
    for t, q in zip(tuples, qvecs):
        t["scores"] = [round(float((q @ np.asarray(vectors[p]).T).max(1).sum()), 4)
                       for p in [t["positive"], *t["negatives"]]]


def dense(tuples: list[dict], query_texts: Sequence[str], passages: Sequence[str], model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    needed = sorted({p for t in tuples for p in [t["positive"], *t["negatives"]]})
    embedded = dict(zip(needed, model.encode([passages[p] for p in needed], normalize_embeddings=True)))
    qs = model.encode([query_texts[t["query_index"]] for t in tuples], normalize_embeddings=True)
    for t, q in zip(tuples, qs):
        # cosine in [-1, 1] is rescaled to the spread of MaxSim scores so the softmax is not flat
        t["scores"] = [round(float(q @ embedded[p]) * 20, 4) for p in [t["positive"], *t["negatives"]]]


def keyword_lists(tuples: list[dict], passages: Sequence[str], *, depth: int = 200) -> None:
    """Each tuple's ``bm25``: ``[passage, score]`` of its query's ``depth`` best passages in the pool (FTS5's
    ``-bm25()``, the engine's tokenizer), which a mixed teacher reads (``fit.fused_teacher``)."""
    from findling.training.pairs import _Bm25Pool

    pool = _Bm25Pool(passages)
    try:
        for t in tuples:
            t["bm25"] = [[pid, round(value, 4)] for pid, value in pool.scored(t["query"], depth)]
    finally:
        pool.close()
