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
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from findling.engine.records import ModelInfo  # the seam's record; kept with the engine's other records

__all__ = ["Encoder", "ModelInfo", "Tokenizer"]


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
