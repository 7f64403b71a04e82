"""The encoder seam: token vectors for queries and documents.

``Encoder`` is the narrow interface the rest of the engine sees. PyLate sits behind ``PyLateEncoder`` (PyLate's
own ``encode``, fp32: the reference); ``DirectEncoder`` (``engine/fast_encoder.py``, the default) runs the same
model directly, with its head folded into one matrix and int8 or bf16 arithmetic where chosen. A faster runtime
or a test fake is a new class, never a flag.

Row contract (what the store and the MaxSim alignment rely on):
  * ``encode_documents(texts)[i]`` is float32 ``[n_i, dim]``, one row per kept document token, and
    ``encoder.tokenizer.document_spans(texts[i])`` returns exactly ``n_i`` character spans in the same order
    (``(-1, -1)`` for marker tokens such as [CLS], [D], [SEP]).
  * ``encode_queries(texts)[i]`` is float32 ``[m_i, dim]`` and ``tokenizer.query_labels(texts[i])`` returns
    ``m_i`` display strings ("[Q]", "csv", "[MASK]", ...).
Vectors are L2-normalised, so a dot product is a cosine similarity.

Dense pooling (optional, ``ModelInfo.dense_dim`` > 0): an encoder whose model declares a sentence embedding
of its backbone (``dense_pooling.json`` in the model folder: mean over the text's attended tokens, then L2
normalisation, as sentence-transformers pools) returns its token vectors as ``TokenVectors`` whose ``pooled``
is that float32 ``[dense_dim]`` unit vector, taken from the same forward pass. A query's pooled vector is the
backbone's embedding of the raw query text (no query prefix or expansion tokens: computed in a pass of its
own where the model frames queries otherwise). ``dense_dim == 0``: no pooled vectors, and no dense lane.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from findling.engine.records import ModelInfo  # the seam's record; kept with the engine's other records

__all__ = ["Encoder", "ModelInfo", "Tokenizer", "TokenVectors", "mean_pool", "pooled_of"]


class TokenVectors(np.ndarray):
    """float32 ``[n, dim]`` token vectors of one text, carrying ``pooled``: the text's dense vector (float32
    ``[dense_dim]``, unit length) or None. Arrays derived from it (slices, arithmetic) carry None: a pooled
    vector belongs to the whole text only."""

    pooled: np.ndarray | None

    def __new__(cls, rows: np.ndarray, pooled: np.ndarray | None = None) -> "TokenVectors":
        obj = np.ascontiguousarray(rows, dtype=np.float32).view(cls)
        obj.pooled = None if pooled is None else np.ascontiguousarray(pooled, dtype=np.float32)
        return obj

    def __array_finalize__(self, obj) -> None:
        self.pooled = None

    def __reduce__(self):  # pickles (the indexer's child process) keep the pooled vector
        return (TokenVectors, (np.asarray(self), self.pooled))


def pooled_of(vectors: np.ndarray) -> np.ndarray | None:
    """The dense vector an encoder attached to ``vectors`` (``TokenVectors.pooled``), or None."""
    return getattr(vectors, "pooled", None)


def mean_pool(states: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of a text's ``[n, hidden]`` backbone states: the dense vector's definition.

    >>> v = mean_pool(np.array([[3.0, 0.0], [1.0, 0.0]]))
    >>> v.tolist()
    [1.0, 0.0]
    """
    mean = np.asarray(states, dtype=np.float64).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


@runtime_checkable
class Tokenizer(Protocol):
    """The model's own tokenizer, as the chunker and the alignment need it."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the content tokens of ``text`` (no special or marker tokens)."""
        ...

    def document_spans(self, text: str) -> list[tuple[int, int]]:
        """One character span per row of ``encode_documents([text])[0]``; ``(-1, -1)`` for markers."""
        ...

    def document_spans_many(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """``document_spans`` of each text."""
        ...

    def query_labels(self, text: str) -> list[str]:
        """One display string per row of ``encode_queries([text])[0]``."""
        ...


@runtime_checkable
class Encoder(Protocol):
    """Turns queries and documents into L2-normalised token vectors."""

    info: ModelInfo
    tokenizer: Tokenizer

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """float32 ``[m_i, dim]`` per query (query prefix, query length and expansion as the model says)."""
        ...

    def encode_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        """float32 ``[n_i, dim]`` per document (document prefix, skiplist applied)."""
        ...
