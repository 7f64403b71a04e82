"""The token vectors of an index and their format: the part of ``Store`` that reads, writes and converts
the ``vectors``, ``codec`` and ``dense`` tables (``findling.engine.store.codec`` says what a BLOB holds).

``VectorTable`` is one of the parts a ``findling.engine.store.store.Store`` is made of: it gets the connection,
the ``meta`` table, and the store's writer lock and vacuum as explicit collaborators.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from findling.engine.store import codec as codecs
from findling.engine.store.index_file import explain, guarded
from findling.engine.store.meta import IndexMeta
from findling.engine.store.schema import VECTOR_LAYOUT
from findling.engine.store.sqlite_lib import Database

log = logging.getLogger(__name__)


class VectorTable:
    """Vector BLOBs by chunk id, the index's vector format, and converting between formats."""

    def __init__(self, conn: sqlite3.Connection, db: Database, path: Path, meta: IndexMeta, *,
                 lock_for_writing: Callable[[], None], vacuum: Callable[[], None]) -> None:
        """``lock_for_writing`` makes the owning store the index's only writer (before a conversion);
        ``vacuum`` gives freed pages back to the file system (after one)."""
        self.conn = conn
        self.db = db
        self.path = path
        self.meta = meta
        self.lock_for_writing = lock_for_writing
        self.vacuum = vacuum
        self._codec: tuple[str | None, codecs.Codec] | None = None  # (meta.vector_codec, its codec)

    @property
    def dim(self) -> int | None:
        return self.meta.dim()

    @property
    def codec(self) -> codecs.Codec:
        """The format of this index's vector BLOBs (``findling.engine.store.codec``); follows a change made by another
        connection. An index without ``meta.vector_codec`` is float16."""
        raw = self.meta.get("vector_codec")
        if self._codec is None or self._codec[0] != raw:
            arrays = {} if raw is None else self._codec_arrays()
            self._codec = (raw, codecs.load(raw, arrays, dim=self.dim or 0))
        return self._codec[1]

    @guarded
    def _codec_arrays(self) -> dict[str, bytes]:
        return {name: bytes(data) for name, data in self.conn.execute("SELECT name, data FROM codec")}

    @guarded
    def convert_vectors(self, new: codecs.Codec, *, batch: int = 256) -> int:
        """Rewrite every chunk's vectors in the format ``new``, in one transaction; returns the tokens rewritten.

        Nothing is encoded by the model again: each BLOB is decoded and encoded. From a compressed format the
        decoded vectors are what the index already held, so going back to float16 does not restore the
        model's full precision (``findling index --reencode`` does).
        """
        self.lock_for_writing()
        old = self.codec
        tokens, last = 0, -1
        with self.db.atomic():
            while True:
                rows = self.conn.execute("SELECT chunk_id, n_tokens, data FROM vectors WHERE chunk_id > ?"
                                         " ORDER BY chunk_id LIMIT ?", (last, batch)).fetchall()
                if not rows:
                    break
                blobs = new.encode_many([old.decode(r[2], r[1]) for r in rows])
                self.conn.executemany("UPDATE vectors SET data = ? WHERE chunk_id = ?",
                                      [(b, r[0]) for b, r in zip(blobs, rows)])
                tokens += sum(r[1] for r in rows)
                last = rows[-1][0]
            self.conn.execute("DELETE FROM codec")
            if new.name == codecs.FP16:
                self.meta.delete("vector_codec")
            else:
                self.conn.executemany("INSERT INTO codec(name, data) VALUES (?, ?)", list(new.arrays().items()))
                self.meta.set("vector_codec", json.dumps(new.describe(), sort_keys=True))
            self.meta.set("vector_layout", codecs.LAYOUTS[new.name])
            self.meta.bump()
        self._codec = None
        log.info("vectors of %s rewritten as %s (%d tokens)", self.path, new.name, tokens)
        return tokens

    @guarded
    def sample_vectors(self, n: int, *, seed: int = 0) -> np.ndarray:
        """About ``n`` decoded token vectors (float32 ``[<= n, dim]``): whole random chunks, then random rows."""
        rng = np.random.default_rng(seed)
        rows = np.array(self.conn.execute("SELECT chunk_id, n_tokens FROM vectors ORDER BY chunk_id").fetchall(),
                        dtype=np.int64)  # a fixed order: the same index and seed give the same sample
        if not len(rows):
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        rows = rows[rng.permutation(len(rows))]
        picked = rows[: int(np.searchsorted(np.cumsum(rows[:, 1]), 2 * n)) + 1, 0]
        codec = self.codec
        parts = [codec.decode(blob, nt) for _c, nt, blob in self._blobs(picked.tolist())]
        x = np.concatenate(parts)
        return x[np.sort(rng.choice(len(x), size=n, replace=False))] if len(x) > n else x

    def _blobs(self, chunk_ids: Sequence[int], *, batch: int = 900) -> Iterator[tuple[int, int, bytes]]:
        yield from self._by_chunk_ids("SELECT chunk_id, n_tokens, data FROM vectors", "chunk_id", chunk_ids, batch)

    def _by_chunk_ids(self, sql: str, column: str, chunk_ids: Sequence[int], batch: int) -> Iterator[tuple]:
        """Rows of ``sql`` for the given chunk ids in ascending order, ``batch`` ids a statement (SQLite's limit
        on bound parameters)."""
        ids = sorted(int(i) for i in chunk_ids)
        for i in range(0, len(ids), batch):
            part = ids[i : i + batch]
            yield from self.conn.execute(f"{sql} WHERE {column} IN ({','.join('?' * len(part))}) ORDER BY {column}",
                                         part)

    @guarded
    def read_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Decoded float32 ``[n, dim]`` vectors of the given chunks (missing ones are left out), one row each."""
        codec = self.codec
        return {cid: codec.decode(blob, n) for cid, n, blob in self._blobs(chunk_ids)}

    @guarded
    def read_codes(self, chunk_ids: Sequence[int]) -> list[tuple[int, int, bytes]]:
        """``(chunk_id, n_tokens, blob)`` of the given chunks in chunk-id order, as stored."""
        return list(self._blobs(chunk_ids))

    @guarded
    def vector_bytes(self) -> int:
        """Bytes of the stored vector payload: every BLOB plus the codec's arrays."""
        data = self.conn.execute("SELECT COALESCE(SUM(length(data)), 0) FROM vectors").fetchone()[0]
        return data + self.conn.execute("SELECT COALESCE(SUM(length(data)), 0) FROM codec").fetchone()[0]

    def dense_bytes(self) -> int:
        """Bytes the ``dense`` table takes in the file: its pages where SQLite can count them (``dbstat``), else
        its BLOBs plus the row ids."""
        try:
            return int(self.conn.execute("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = 'dense'"
                                         ).fetchone()[0])
        except sqlite3.OperationalError:  # an SQLite built without the dbstat table
            blobs, rows = self.conn.execute("SELECT COALESCE(SUM(length(data)), 0), COUNT(*) FROM dense").fetchone()
            return int(blobs) + 8 * int(rows)

    def compress_if_due(self, *, min_tokens: int) -> str | None:
        """Train and apply the compressed format ``codec_choice`` asks for, once this float16 index holds
        ``min_tokens`` token vectors; returns the new format's name, or None when nothing changed.

        ``auto`` (the default) and ``residual`` mean ``residual``; ``compact`` means ``compact``; ``fp16``
        never compresses. The centroids are trained once and kept: later tokens go to their nearest one.
        """
        choice = self.codec_choice()
        if choice == codecs.FP16 or self.codec.name != codecs.FP16 or self.token_count() < min_tokens:
            return None
        name = codecs.RESIDUAL if choice == "auto" else choice
        self.recode(name)
        return name

    def recode(self, name: str, *, seed: int = 0) -> None:
        """Rewrite every stored vector in format ``name`` now, whatever the index's size (a compressed format is
        trained on this index's own vectors first, with ``seed``), then give the freed pages back to the file
        system."""
        self.convert_vectors(codecs.Fp16Codec(self.dim or 0) if name == codecs.FP16 else
                             self.train_codec(name, seed=seed))
        self.vacuum()

    def train_codec(self, name: str, *, seed: int = 0) -> codecs.Codec:
        """A codec ``name`` fitted on a sample of this index's token vectors (not applied: ``convert_vectors``)."""
        spec = codecs.CodecSpec.named(name, self.dim or 0)
        if spec.name == codecs.FP16:
            return codecs.Fp16Codec(self.dim or 0)
        sample = self.sample_vectors(codecs.sample_size(spec), seed=seed)
        return codecs.train(sample, spec=spec, seed=seed)

    @guarded
    def codec_choice(self) -> str:
        """The vector format asked for with ``findling index --codec`` (``auto`` unless set)."""
        return self.meta.get("codec_choice") or "auto"

    @guarded
    def set_codec_choice(self, choice: str) -> None:
        if choice not in codecs.CHOICES:
            raise ValueError(f"unknown vector format {choice!r}; use auto, {', '.join(codecs.NAMES)}")
        self.meta.set("codec_choice", choice)

    def drop_codec(self) -> None:
        """Back to float16 with no trained arrays (inside the caller's transaction, with no vectors left)."""
        self.conn.execute("DELETE FROM codec")
        self.meta.delete("vector_codec")
        self.meta.set("vector_layout", VECTOR_LAYOUT)

    @guarded
    def vector_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def token_count(self) -> int:
        """Stored token vectors (kept in ``meta`` by triggers: no scan)."""
        return int(self.meta.get("stored_tokens", "0") or 0)

    @guarded
    def chunk_ids(self) -> np.ndarray:
        rows = self.conn.execute("SELECT chunk_id FROM vectors ORDER BY chunk_id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    @guarded
    def dense_chunk_ids(self) -> np.ndarray:
        """Ids of the chunks that have a dense vector (table ``dense``), ascending."""
        rows = self.conn.execute("SELECT chunk_id FROM dense ORDER BY chunk_id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    @guarded
    def read_dense(self, chunk_ids: Sequence[int] | None = None, *, batch: int = 900) -> list[tuple[int, int, bytes]]:
        """``(chunk_id, file_id, dense BLOB)`` of every dense vector, or of the given chunks', in chunk-id order."""
        sql = "SELECT d.chunk_id, c.file_id, d.data FROM dense d JOIN chunks c ON c.id = d.chunk_id"
        if chunk_ids is None:
            return self.conn.execute(sql + " ORDER BY d.chunk_id").fetchall()
        return list(self._by_chunk_ids(sql, "d.chunk_id", chunk_ids, batch))

    def iter_vectors(self, chunk_ids: Sequence[int] | None = None, *, batch: int = 900) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(chunk_id, file_id, blob)`` in chunk-id order, for all chunks or the given ids."""
        try:
            yield from self._iter_vectors(chunk_ids, batch=batch)
        except sqlite3.Error as exc:
            raise (explain(exc, self.path) or exc) from exc

    def _iter_vectors(self, chunk_ids: Sequence[int] | None, *, batch: int) -> Iterator[tuple[int, int, bytes]]:
        sql = "SELECT v.chunk_id, c.file_id, v.data FROM vectors v JOIN chunks c ON c.id = v.chunk_id"
        if chunk_ids is None:
            yield from self.conn.execute(sql + " ORDER BY v.chunk_id")
            return
        yield from self._by_chunk_ids(sql, "v.chunk_id", chunk_ids, batch)
