"""Frozen-backbone token features: encode texts once, keep every kept token's backbone vector on disk.

With the backbone frozen, a ColBERT projection head only ever sees the backbone's output token vectors, so
they are computed once (the expensive part on a CPU) and training, teacher scoring and quick evaluation all
read them from a ``FeatureSet``: one float16 array ``[tokens, width]`` plus the offsets of each text, as
``.npy`` files that are memory-mapped when read back.

Tokens are framed exactly as the engine frames them (the model's prefixes, lengths, no query expansion unless
the model asks for it); for documents, the punctuation skiplist is applied as PyLate does at encode time.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass
class FeatureSet:
    """Token vectors of many texts: ``vectors[offsets[i]:offsets[i+1]]`` belong to text ``i``."""

    vectors: np.ndarray  # [tokens, width] float16
    offsets: np.ndarray  # [texts + 1] int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def text(self, i: int) -> np.ndarray:
        return self.vectors[self.offsets[i]:self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def save(self, folder: Path, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{name}.vectors.npy", self.vectors)
        np.save(folder / f"{name}.offsets.npy", self.offsets)

    @classmethod
    def load(cls, folder: Path, name: str) -> "FeatureSet":
        return cls(np.load(folder / f"{name}.vectors.npy", mmap_mode="r"),
                   np.load(folder / f"{name}.offsets.npy"))

    @staticmethod
    def exists(folder: Path, name: str) -> bool:
        return (folder / f"{name}.vectors.npy").is_file() and (folder / f"{name}.offsets.npy").is_file()


def load_backbone_model(model_dir: Path, *, threads: int | None = None, device: str | None = None):
    """A PyLate ColBERT for ``model_dir`` (local files only); its module 0 is the backbone."""
    import torch
    from pylate import models

    from findling.training.runtime import pick_device

    if threads:
        torch.set_num_threads(threads)
    return models.ColBERT(str(model_dir), device=device or pick_device(), local_files_only=True)


def encode_features(model, texts: Sequence[str], *, is_query: bool, batch_tokens: int = 16384,
                    progress: bool = True) -> FeatureSet:
    """Backbone output vectors of ``texts``, framed as the model frames queries or documents.

    Batches group texts of similar length (longest first) under a token budget, so little is spent on padding.
    """
    import torch

    n = len(texts)
    order = sorted(range(n), key=lambda i: -len(texts[i]))
    pieces: list[np.ndarray | None] = [None] * n
    started, done_tokens, start = time.time(), 0, 0
    last_shown = started
    backbone = model[0]
    while start < n:
        # estimate the batch from the longest text's length in tokens (characters / 3 is an upper bound guess)
        first = model.tokenize([texts[order[start]]], is_query=is_query)["input_ids"].shape[1]
        size = max(1, batch_tokens // max(first, 1))
        batch = order[start:start + size]
        features = model.tokenize([texts[i] for i in batch], is_query=is_query)
        features = {k: v.to(model.device) for k, v in features.items()}
        with torch.inference_mode():
            tokens = backbone(dict(features))["token_embeddings"]
        keep = features["attention_mask"].bool()
        if is_query and model.do_query_expansion:  # PyLate keeps every query token, expansion included
            keep = torch.ones_like(keep)
        if not is_query:
            keep = keep & model.skiplist_mask(features["input_ids"], model.skiplist).to(keep.device)
        for row, i in enumerate(batch):
            pieces[i] = tokens[row][keep[row]].to(torch.float16).cpu().numpy()
        done_tokens += int(keep.sum())
        start += size
        if progress and (time.time() - last_shown > 30 or start >= n):
            last_shown = time.time()
            rate = done_tokens / max(time.time() - started, 1e-9)
            print(f"  {'queries' if is_query else 'documents'}: {min(start, n)}/{n} texts, {done_tokens} tokens, "
                  f"{rate:.0f} tokens/s", flush=True)
    lengths = np.array([len(p) for p in pieces], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    width = pieces[0].shape[1] if n else 0
    vectors = np.concatenate(pieces) if n else np.zeros((0, width), np.float16)
    return FeatureSet(vectors, offsets)


def cached_features(model, texts: Sequence[str], *, is_query: bool, folder: Path, name: str,
                    **kwargs) -> FeatureSet:
    """``encode_features`` once; later calls with the same texts read the files back (a digest guards them)."""
    import hashlib

    digest = hashlib.blake2b("\x1e".join(texts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    stamp = folder / f"{name}.json"
    if FeatureSet.exists(folder, name) and stamp.is_file():
        if json.loads(stamp.read_text()).get("digest") == digest:
            return FeatureSet.load(folder, name)
    features = encode_features(model, texts, is_query=is_query, **kwargs)
    features.save(folder, name)
    stamp.write_text(json.dumps({"digest": digest, "texts": len(texts), "is_query": is_query}))
    return FeatureSet.load(folder, name)
