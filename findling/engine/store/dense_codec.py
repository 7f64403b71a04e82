"""The byte layout of a chunk's dense vector (table ``dense``, the dense lane's one vector per chunk).

``DENSE_LAYOUT`` says what a BLOB holds: 4-bit levels, two per byte. Only a vector's direction is kept, so
decoding gives unit rows and the dense lane ranks by cosine alone. The token vectors' formats are
``findling.engine.store.codec``'s job; this module knows nothing of the index.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

DENSE_LAYOUT = ("4-bit levels -7..7 (stored +8), two per byte, low nibble first, [ceil(dim/2)] bytes; "
                "a vector's levels are its components over 2.5x their RMS, times 7, rounded and clipped")
DENSE_CLIP = 2.5  # RMS multiples mapped to the top level: the few larger components are clipped
DENSE_LEVELS = 7


def encode_dense(vector: np.ndarray) -> bytes:
    """One chunk's dense vector as ``ceil(dim / 2)`` bytes of 4-bit levels (``DENSE_LAYOUT``).

    Only the direction is kept (``decode_dense`` re-normalises), so no scale is stored. An odd ``dim`` is
    padded with one zero level, which decodes as a trailing zero component: it adds nothing to any cosine.
    Cosine of a decoded 384-dim vector with its original: about 0.99; the dense lane ranks by cosine alone.

    >>> v = np.array([0.6, -0.8, 0.0], dtype=np.float32)
    >>> blob = encode_dense(v)
    >>> len(blob), [round(float(c), 3) for c in decode_dense(blob)]
    (2, [0.6, -0.8, 0.0, 0.0])
    """
    x = np.asarray(vector, dtype=np.float32).ravel()
    if len(x) % 2:
        x = np.concatenate([x, np.zeros(1, np.float32)])
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    scaled = x * (DENSE_LEVELS / (DENSE_CLIP * rms)) if rms > 0 else x
    levels = (np.clip(np.rint(scaled), -DENSE_LEVELS, DENSE_LEVELS) + 8).astype(np.uint8)
    return (levels[0::2] | (levels[1::2] << 4)).astype(np.uint8).tobytes()


def decode_dense(blob: bytes) -> np.ndarray:
    """The unit float32 vector of an ``encode_dense`` BLOB (all zeros stays zeros)."""
    return decode_dense_many([blob])[0]


def decode_dense_many(blobs: Sequence[bytes]) -> np.ndarray:
    """float32 ``[n, 2 * bytes]`` unit rows of ``encode_dense`` BLOBs of one dimension."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    packed = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), -1)
    x = np.empty((len(blobs), 2 * packed.shape[1]), dtype=np.float32)
    x[:, 0::2] = packed & 0x0F
    x[:, 1::2] = packed >> 4
    x -= 8.0
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def dense_width(dim: int) -> int:
    """Components of a decoded dense vector of a ``dim``-dimensional model (odd dims gain one zero)."""
    return dim + dim % 2


def dense_from_int8(blob: bytes) -> bytes:
    """An ``encode_dense`` BLOB for a vector stored in the int8 layout of schema versions 4-6 (one byte a dimension)."""
    return encode_dense(np.frombuffer(blob, dtype=np.int8).astype(np.float32))
