"""The in-memory token matrix that exact MaxSim runs over, kept in step with the store.

All stored token vectors sit back to back in one float32 array (``MATRIX_DTYPE``); ``starts[c]``/``lengths[c]``
locate chunk ``c``. The store keeps float16; the matrix widens each vector once, on load, because the BLAS
product MaxSim runs on is fastest on float32, and widening float16 at every query costs more than the product itself
(twice the memory: 192 bytes per token at 48 dims). ``refresh()`` is cheap when nothing changed (one meta read); otherwise it loads only the chunks
added since, and marks removed ones dead. Dead rows are compacted away once they pass a third of the
matrix. Chunk ids are never reused by the store, which makes this diff exact.
"""
from __future__ import annotations

import logging

import numpy as np

from findling.engine.store.codec import FP16
from findling.engine.store.dense_codec import decode_dense_many
from findling.engine.store.store import Store, decode_vectors

log = logging.getLogger(__name__)

MATRIX_DTYPE = np.float32


def mark_changes(chunk_ids: np.ndarray, alive: np.ndarray, in_db: np.ndarray) -> tuple[int, np.ndarray]:
    """Bring a matrix's chunk list in step with the ids the store holds now (``in_db``, ascending): chunks no
    longer there are marked dead in ``alive`` (in place). Returns how many died and the ids to load."""
    gone = np.setdiff1d(chunk_ids[alive], in_db, assume_unique=True)
    if len(gone):
        alive[np.isin(chunk_ids, gone)] = False
    return len(gone), np.setdiff1d(in_db, chunk_ids, assume_unique=True)


class TokenMatrix:
    """Token vectors of every chunk in one contiguous array, with per-chunk offsets."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._buf = np.zeros((0, dim), dtype=MATRIX_DTYPE)
        self.rows = 0
        self.chunk_ids = np.zeros(0, dtype=np.int64)
        self.file_ids = np.zeros(0, dtype=np.int64)
        self.starts = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.generation = -1

    @property
    def tokens(self) -> np.ndarray:
        return self._buf[: self.rows]

    @property
    def live_chunks(self) -> int:
        return int(self.alive.sum())

    def refresh(self, store: Store) -> bool:
        """Catch up with the store; returns True when anything changed."""
        gen = store.generation()
        if gen == self.generation:
            return False
        gone, new = mark_changes(self.chunk_ids, self.alive, store.chunk_ids())
        if len(new):
            self._append(store, new)
        if self.rows and self.lengths[~self.alive].sum() > self.rows / 3:
            self._compact()
        self.generation = gen
        log.debug("matrix: %d chunks, %d rows (+%d, -%d)", self.live_chunks, self.rows, len(new), gone)
        return True

    def chunk_vectors(self, index: int) -> np.ndarray:
        s = int(self.starts[index])
        return self._buf[s : s + int(self.lengths[index])]

    def _append(self, store: Store, new_ids: np.ndarray) -> None:
        ids, files, starts, lengths, parts = [], [], [], [], []
        row = self.rows
        pending = 0
        source = store.iter_vectors(None if not len(self.chunk_ids) else new_ids.tolist())
        codec = store.codec
        fp16 = codec.name == FP16
        for chunk_id, file_id, blob in source:
            # float16 is widened as it is copied in; a compressed index (exact search asked for) is decoded
            vec = decode_vectors(blob, self.dim) if fp16 else codec.decode(blob, len(blob) // codec.bytes_per_token)
            ids.append(chunk_id)
            files.append(file_id)
            starts.append(row + pending)
            lengths.append(len(vec))
            parts.append(vec)
            pending += len(vec)
            if pending >= 1 << 18:
                self._write_rows(parts, pending)
                row, pending, parts = self.rows, 0, []
        self._write_rows(parts, pending)
        self.chunk_ids = np.concatenate([self.chunk_ids, np.array(ids, dtype=np.int64)])
        self.file_ids = np.concatenate([self.file_ids, np.array(files, dtype=np.int64)])
        self.starts = np.concatenate([self.starts, np.array(starts, dtype=np.int64)])
        self.lengths = np.concatenate([self.lengths, np.array(lengths, dtype=np.int64)])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])

    def _write_rows(self, parts: list[np.ndarray], n: int) -> None:
        if not n:
            return
        need = self.rows + n
        if need > len(self._buf):
            grown = np.empty((max(need, int(len(self._buf) * 1.5)), self.dim), dtype=MATRIX_DTYPE)
            grown[: self.rows] = self._buf[: self.rows]
            self._buf = grown
        np.concatenate(parts, out=self._buf[self.rows : need])
        self.rows = need

    def _compact(self) -> None:
        keep = np.flatnonzero(self.alive)
        lengths = self.lengths[keep]
        new_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        buf = np.empty((int(lengths.sum()), self.dim), dtype=MATRIX_DTYPE)
        for old_s, new_s, n in zip(self.starts[keep], new_starts, lengths):
            buf[new_s : new_s + n] = self._buf[old_s : old_s + n]
        self._buf, self.rows = buf, len(buf)
        self.chunk_ids, self.file_ids = self.chunk_ids[keep], self.file_ids[keep]
        self.starts, self.lengths, self.alive = new_starts, lengths, np.ones(len(keep), dtype=bool)


class DenseMatrix:
    """Every chunk's dense vector (``Store.read_dense``) as float32 unit rows, kept in step with the store.

    The dense lane scores all of them exactly: one matrix-vector product (a 384-dim vector per chunk is about
    1.5 KB in memory, a few ms per search at 10M tokens). ``refresh`` loads only chunks added since the last one
    and marks removed ones dead, as ``TokenMatrix`` does; dead rows are compacted once they pass a third.
    """

    def __init__(self) -> None:
        self.vectors = np.zeros((0, 0), dtype=MATRIX_DTYPE)
        self.chunk_ids = np.zeros(0, dtype=np.int64)
        self.file_ids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.generation = -1

    @property
    def live_chunks(self) -> int:
        return int(self.alive.sum())

    def refresh(self, store: Store) -> bool:
        """Catch up with the store; returns True when anything changed."""
        gen = store.generation()
        if gen == self.generation:
            return False
        _gone, new = mark_changes(self.chunk_ids, self.alive, store.dense_chunk_ids())
        if len(new):
            rows = store.read_dense(None if not len(self.chunk_ids) else new.tolist())
            vectors = decode_dense_many([r[2] for r in rows])
            if len(self.chunk_ids) and vectors.shape[1] != self.vectors.shape[1]:
                raise ValueError(f"dense vectors of {vectors.shape[1]} and {self.vectors.shape[1]} dimensions")
            self.vectors = vectors if not len(self.chunk_ids) else np.concatenate([self.vectors, vectors])
            self.chunk_ids = np.concatenate([self.chunk_ids, np.array([r[0] for r in rows], dtype=np.int64)])
            self.file_ids = np.concatenate([self.file_ids, np.array([r[1] for r in rows], dtype=np.int64)])
            self.alive = np.concatenate([self.alive, np.ones(len(rows), dtype=bool)])
        if len(self.alive) and (~self.alive).sum() > len(self.alive) / 3:
            keep = np.flatnonzero(self.alive)
            self.vectors, self.chunk_ids, self.file_ids = self.vectors[keep], self.chunk_ids[keep], self.file_ids[keep]
            self.alive = np.ones(len(keep), dtype=bool)
        self.generation = gen
        return True

    def scores(self, query: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
        """Cosine of each chunk's vector with the unit ``query`` vector; ``-inf`` for dead or not ``allowed`` ones
        (``allowed``: a boolean mask over this matrix's chunks)."""
        if not len(self.chunk_ids):
            return np.zeros(0, dtype=np.float32)
        query = np.asarray(query, dtype=MATRIX_DTYPE).ravel()
        if len(query) < self.vectors.shape[1]:  # an odd-dimensional model's vectors end in one zero component
            query = np.concatenate([query, np.zeros(self.vectors.shape[1] - len(query), dtype=MATRIX_DTYPE)])
        out = self.vectors @ query
        return np.where(self.alive if allowed is None else allowed & self.alive, out, -np.inf)
