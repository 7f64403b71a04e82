"""Token-vector codecs: how a chunk's token vectors are written into its ``vectors.data`` BLOB.

Three formats, named in the store's ``meta.vector_codec`` (an index without that key is ``fp16``):

* ``fp16``: float16 little-endian, row-major ``[n, dim]``; 2 bytes per dimension (96 per token at 48).
* ``residual`` (the default once an index is big enough): each token is its nearest centroid (one of ``K``
  k-means centroids over the index's own token vectors, ``uint16``) plus its residual ``x - c``
  product-quantised: the ``dim`` dimensions are cut into ``M`` groups and each group's residual is the
  nearest of 256 codewords (one byte). At 48 dims ``M = 16`` (3 dimensions per byte, 8/3 bits per
  dimension), so a token costs 2 + 16 = 18 bytes. (``M = 12``, 14 bytes, was the default before: with the
  same centroids, trained on the same sample, it lost 0.0056 nDCG@10 on SciFact against float16 where 16 groups
  lose nothing measurable, -0.0004; ``bench/storage.py``. The file stays well under 32 bytes a token.)
* ``compact``: the same with ``M = 6`` (8 dimensions per byte, 1 bit a dimension): 2 + 6 = 8 bytes per token.

A compressed BLOB is ``[n] uint16`` centroid ids, then ``[n, M] uint8`` codes (``layout`` below). Decoding
adds the centroid and the codewords and re-normalises, so every decoded vector has unit length like the
encoder's own output. The centroid ids double as the inverted lists' input (``engine.ivf``): candidate
search needs no second copy of them.

Training (``train``) runs spherical k-means for the centroids, then, per group, k-means over the residuals
for the codewords, all on a sample, in numpy on the CPU: about a minute on 2 busy cores for the defaults.
Before grouping, dimensions are reordered so that each group gets a similar share of the residual variance
(a learned head orders its outputs roughly by variance; equal bits for unequal groups waste them). The
order is part of the codec and is undone on decoding. The k-means and nearest-point kernels are
``findling.engine.store.clustering``'s.

The dense lane's one vector per chunk has a layout of its own, ``findling.engine.store.dense_codec``.

>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((4000, 8)).astype(np.float32)
>>> x /= np.linalg.norm(x, axis=1, keepdims=True)
>>> codec = train(x, spec=CodecSpec("residual", centroids=16, groups=4), seed=0)
>>> blob = codec.encode(x[:3])
>>> len(blob) == 3 * codec.bytes_per_token == 3 * (2 + 4)
True
>>> bool((np.sum(codec.decode(blob, 3) * x[:3], axis=1) > 0.9).all())
True
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from findling.engine.store.clustering import balanced_order, kmeans_l2, nearest, nearest_l2, spherical_kmeans

log = logging.getLogger(__name__)

FP16 = "fp16"
RESIDUAL = "residual"
COMPACT = "compact"
NAMES: tuple[str, ...] = (FP16, RESIDUAL, COMPACT)
CHOICES: tuple[str, ...] = ("auto",) + NAMES  # what an index may ask for: auto compresses once big enough
CODEWORDS = 256  # per group: one byte
LAYOUTS = {
    FP16: "float16-le row-major [n_tokens, dim]",
    RESIDUAL: "uint16-le centroid ids [n_tokens], then uint8 codes row-major [n_tokens, groups]",
}
LAYOUTS[COMPACT] = LAYOUTS[RESIDUAL]
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CodecSpec:
    """What to train: a codec name, the number of centroids and of one-byte residual groups."""

    name: str
    centroids: int = 0
    groups: int = 0

    @classmethod
    def named(cls, name: str, dim: int) -> "CodecSpec":
        """The defaults for ``name`` at ``dim`` dimensions (``residual``: 8/3 bits a dimension, ``compact``: 1)."""
        if name == FP16:
            return cls(FP16)
        if name == RESIDUAL:
            return cls(RESIDUAL, centroids=DEFAULT_CENTROIDS, groups=_divisor_near(dim, dim // 3))
        if name == COMPACT:
            return cls(COMPACT, centroids=DEFAULT_CENTROIDS, groups=_divisor_near(dim, max(1, dim // 8)))
        raise ValueError(f"unknown vector codec {name!r}; use one of {', '.join(NAMES)}")


DEFAULT_CENTROIDS = 4096
SAMPLE_PER_CENTROID = 32


def sample_size(spec: CodecSpec) -> int:
    """Token vectors to train ``spec`` on: 32 per centroid (131,072 for the defaults)."""
    return SAMPLE_PER_CENTROID * max(spec.centroids, CODEWORDS)


def _divisor_near(dim: int, want: int) -> int:
    """The divisor of ``dim`` closest to ``want`` (groups must cut ``dim`` evenly)."""
    return min((g for g in range(1, dim + 1) if dim % g == 0), key=lambda g: (abs(g - want), g))


class Fp16Codec:
    """The original format: float16 vectors as they are."""

    name = FP16

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.bytes_per_token = 2 * dim

    def encode(self, vectors: np.ndarray) -> bytes:
        return np.ascontiguousarray(vectors, dtype="<f2").tobytes()

    def encode_many(self, parts: Sequence[np.ndarray]) -> list[bytes]:
        return [self.encode(p) for p in parts]

    def decode(self, blob: bytes, n: int) -> np.ndarray:
        """float32 ``[n, dim]``."""
        return np.frombuffer(blob, dtype="<f2").reshape(n, -1).astype(np.float32)

    def centroid_ids(self, blob: bytes, n: int) -> None:
        return None

    def describe(self) -> dict:
        return {"name": FP16, "dim": self.dim, "layout": LAYOUTS[FP16]}


class ResidualCodec:
    """Centroid id plus a product-quantised residual per token (``residual`` and ``compact``).

    ``centroids`` ``[K, dim]`` float32, unit rows; ``codebooks`` ``[M, 256, dim / M]`` float32 in the
    reordered space; ``order`` ``[dim]``: dimension ``order[j]`` of a vector is dimension ``j`` of that space.
    """

    def __init__(self, name: str, centroids: np.ndarray, codebooks: np.ndarray, order: np.ndarray) -> None:
        self.name = name
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.codebooks = np.ascontiguousarray(codebooks, dtype=np.float32)
        self.order = np.asarray(order, dtype=np.int64)
        self.inverse = np.argsort(self.order)
        self.dim = self.centroids.shape[1]
        self.groups = self.codebooks.shape[0]
        self.sub = self.codebooks.shape[2]
        self.bytes_per_token = 2 + self.groups
        # centroids in the reordered space, so decoding adds residuals and undoes the order once
        self._centroids_ordered = self.centroids[:, self.order]
        # each codeword as one opaque element of sub * 4 bytes: a 1-D take of those is 4x faster than fancy
        # indexing rows of a 2-D array, and decoding is most of candidate search's re-ranking
        self._book_rows = self.codebooks.reshape(self.groups * CODEWORDS, self.sub).view(f"V{4 * self.sub}").ravel()
        self._book_base = (np.arange(self.groups) * CODEWORDS).astype(np.intp)

    # ------------------------------------------------------------ encoding
    def assign(self, vectors: np.ndarray, *, block: int = 4096) -> np.ndarray:
        """Nearest centroid (largest dot product: the centroids have unit length) of each row: ``[n]`` uint16."""
        x = np.asarray(vectors, dtype=np.float32)
        return nearest(x, self.centroids, block=block).astype(np.uint16)

    def codes(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """``[n, M]`` uint8 codes of the residuals of ``vectors`` against centroids ``ids``."""
        x = np.asarray(vectors, dtype=np.float32)
        residual = (x - self.centroids[ids])[:, self.order].reshape(len(x), self.groups, self.sub)
        out = np.empty((len(x), self.groups), dtype=np.uint8)
        for g in range(self.groups):
            out[:, g] = nearest_l2(residual[:, g], self.codebooks[g])
        return out

    def encode(self, vectors: np.ndarray) -> bytes:
        return self.encode_many([vectors])[0]

    def encode_many(self, parts: Sequence[np.ndarray]) -> list[bytes]:
        """One BLOB per ``[n_i, dim]`` array; the arithmetic runs once over all of them."""
        parts = [np.asarray(p, dtype=np.float32).reshape(-1, self.dim) for p in parts]
        if not parts:
            return []
        x = np.concatenate(parts)
        ids = self.assign(x)
        codes = self.codes(x, ids)
        out, lo = [], 0
        for p in parts:
            hi = lo + len(p)
            out.append(self.pack(ids[lo:hi], codes[lo:hi]))
            lo = hi
        return out

    @staticmethod
    def pack(ids: np.ndarray, codes: np.ndarray) -> bytes:
        return np.ascontiguousarray(ids, dtype="<u2").tobytes() + np.ascontiguousarray(codes, dtype=np.uint8).tobytes()

    # ------------------------------------------------------------ decoding
    def centroid_ids(self, blob: bytes, n: int) -> np.ndarray:
        """The ``[n]`` centroid ids of a BLOB (a view, no copy)."""
        return np.frombuffer(blob, dtype="<u2", count=n)

    def split(self, blob: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
        return (np.frombuffer(blob, dtype="<u2", count=n),
                np.frombuffer(blob, dtype=np.uint8, offset=2 * n).reshape(n, self.groups))

    def decode(self, blob: bytes, n: int) -> np.ndarray:
        """float32 ``[n, dim]``, unit rows."""
        return self.decode_codes(*self.split(blob, n))

    def decode_codes(self, ids: np.ndarray, codes: np.ndarray, *, ordered: bool = False) -> np.ndarray:
        """float32 ``[n, dim]`` unit rows from centroid ids and codes; ``ordered``: leave the dimensions in
        the codec's order (``vectors[:, order]``), which saves a copy when the query is reordered instead."""
        n = len(ids)
        rows = codes.astype(np.intp)
        rows += self._book_base
        x = np.take(self._book_rows, rows).view(np.float32).reshape(n, self.dim)
        x += np.take(self._centroids_ordered, ids, axis=0)
        x /= np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x)), 1e-12)[:, None]
        return x if ordered else x[:, self.inverse]

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim, "centroids": len(self.centroids), "groups": self.groups,
                "layout": LAYOUTS[self.name], "version": FORMAT_VERSION}

    # ----------------------------------------------------- saved form
    def arrays(self) -> dict[str, bytes]:
        """The codec's arrays as little-endian bytes (shapes follow from ``describe()``)."""
        return {"centroids": self.centroids.astype("<f4").tobytes(),
                "codebooks": self.codebooks.astype("<f4").tobytes(),
                "order": self.order.astype("<i4").tobytes()}

    @classmethod
    def from_arrays(cls, description: dict, arrays: dict[str, bytes]) -> "ResidualCodec":
        dim, k, m = int(description["dim"]), int(description["centroids"]), int(description["groups"])
        return cls(description["name"],
                   np.frombuffer(arrays["centroids"], dtype="<f4").reshape(k, dim),
                   np.frombuffer(arrays["codebooks"], dtype="<f4").reshape(m, CODEWORDS, dim // m),
                   np.frombuffer(arrays["order"], dtype="<i4"))


Codec = Fp16Codec | ResidualCodec


def load(description: dict | str | None, arrays: dict[str, bytes], *, dim: int) -> Codec:
    """The codec a store's ``meta.vector_codec`` (JSON, or None for an index from before codecs) describes."""
    if isinstance(description, str):
        description = json.loads(description)
    if not description or description.get("name") == FP16:
        return Fp16Codec(dim)
    if description.get("name") not in (RESIDUAL, COMPACT) or int(description.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(f"vector format {description!r} is newer than this Findling; update Findling")
    return ResidualCodec.from_arrays(description, arrays)


# ---------------------------------------------------------------- training
def train(sample: np.ndarray, *, spec: CodecSpec, seed: int = 0, iters: int = 8) -> Codec:
    """A codec for ``spec`` fitted on ``sample`` (float ``[n, dim]`` token vectors, ideally unit rows).

    Deterministic: every random choice (starting rows, restarts of empty clusters) comes from numpy's PCG64
    seeded with ``seed``, blocks of the assignment are independent of how many threads run them, and cluster
    sums are taken in float64 in a fixed order, so the same sample and seed give the same arrays bit for bit
    (``Store.sample_vectors`` draws the sample with the same seed from the chunks in id order: the same index
    gives the same sample). What can still differ between machines is float32 rounding inside the BLAS
    products, which decides only exact near-ties of the nearest centroid.
    """
    x = np.ascontiguousarray(sample, dtype=np.float32)
    dim = x.shape[1]
    if spec.name == FP16:
        return Fp16Codec(dim)
    if dim % spec.groups:
        raise ValueError(f"{spec.groups} groups do not cut {dim} dimensions evenly")
    k = min(spec.centroids, max(1, len(x) // 4), 65536)
    centroids = spherical_kmeans(x, k, iters=iters, seed=seed)
    residual = x - centroids[nearest(x, centroids)]
    order = balanced_order(residual.var(axis=0), spec.groups)
    sub = dim // spec.groups
    grouped = residual[:, order].reshape(len(x), spec.groups, sub)
    rng = np.random.default_rng(seed + 1)
    books = np.stack([kmeans_l2(grouped[:, g], CODEWORDS, iters=iters, rng=rng) for g in range(spec.groups)])
    log.info("trained a %s codec: %d centroids, %d groups of %d dims, on %d tokens", spec.name, k,
             spec.groups, sub, len(x))
    return ResidualCodec(spec.name, centroids, books, order)
