"""The files of an index and their chunks: what the indexer writes, moves and drops, and what a copy into
another index reads back (tables ``files``, ``file_fields``, ``chunks``, and the ``vectors`` and ``dense``
rows written with each chunk).

``FileRecords`` is a mixin of ``findling.engine.store.store.Store``. It relies on the store's ``conn`` (the
connection), ``db`` (its ``Database``, for ``atomic`` transactions), ``path`` (named in the messages of
``guarded``), ``codec`` (the format new chunks' vectors are written in) and ``_bump()`` (the generation
counter). Every write that changes what search sees bumps the generation in its own transaction; a file is
replaced as a whole (its chunks, vectors and fields go with its row: the foreign keys cascade).
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from findling.engine.records import Chunk, EncodedChunk
from findling.engine.store.dense_codec import encode_dense
from findling.engine.store.index_file import guarded, path_from_db, path_to_db
from findling.engine.store.schema import pack_text, unpack_text
from findling.engine.store.sqlite_lib import Database


def _utf8(text: str | None) -> str | None:
    """``text`` with lone surrogates (from undecodable file names in a reason or title) replaced: SQLite needs UTF-8."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass(frozen=True)
class FileState:
    """What the index knows about one file."""

    id: int
    path: Path
    size: int
    mtime: float
    hash: str | None
    status: str
    reason: str | None = None
    n_chunks: int = 0


@dataclass(frozen=True)
class FileRecord:
    """A file about to be written: its identity on disk and what extraction found."""

    path: Path
    folder: Path
    size: int
    mtime: float
    hash: str | None
    status: str  # indexed | empty | failed | skipped
    reason: str | None = None
    title: str = ""
    kind: str = ""
    fields: tuple[tuple[str, str], ...] = ()  # (name, value) pairs filters match: ``ExtractedText.fields``


class FileRecords:
    """Writing files with their chunks and vectors, keeping their rows in step with the disk, reading them back."""

    conn: sqlite3.Connection
    db: Database
    path: Path

    @guarded
    def file_states(self, folder: Path | None = None) -> dict[Path, FileState]:
        sql = "SELECT id, path, size, mtime, hash, status, reason, n_chunks FROM files"
        args: tuple = ()
        if folder is not None:
            sql += " WHERE folder = ?"
            args = (path_to_db(folder),)
        return {
            path_from_db(r[1]): FileState(r[0], path_from_db(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])
            for r in self.conn.execute(sql, args)
        }

    @guarded
    def file_state(self, path: Path) -> FileState | None:
        r = self.conn.execute(
            "SELECT id, path, size, mtime, hash, status, reason, n_chunks FROM files WHERE path = ?",
            (path_to_db(path),),
        ).fetchone()
        return FileState(r[0], path_from_db(r[1]), r[2], r[3], r[4], r[5], r[6], r[7]) if r else None

    @guarded
    def write_files(self, batch: Sequence[tuple[FileRecord, Sequence[EncodedChunk]]], *,
                    blobs: Sequence[bytes] | None = None) -> None:
        """Swap in new chunks and vectors for each file, all in one transaction (all or nothing).

        The vectors are encoded in this index's format (``codec``) first, outside the transaction. ``blobs``:
        the chunks' vectors already in that format, one per chunk in order (copied from an index of the same
        format); each chunk's ``vectors`` then only needs its number of rows.
        """
        if blobs is None:
            blobs = self.codec.encode_many([enc.vectors for _r, chunks in batch for enc in chunks])
        blobs = iter(blobs)
        with self.db.atomic():
            for record, chunks in batch:
                self._write_file(record, chunks, [next(blobs) for _ in chunks])
            self._bump()

    def _write_file(self, record: FileRecord, chunks: Sequence[EncodedChunk], blobs: Sequence[bytes] = ()) -> None:
        key = path_to_db(record.path)
        self.conn.execute("DELETE FROM files WHERE path = ?", (key,))  # cascades to chunks and vectors
        n_tokens = sum(c.chunk.token_count for c in chunks)
        cur = self.conn.execute(
            "INSERT INTO files(path, folder, suffix, size, mtime, hash, status, reason, title, kind, n_chunks,"
            " n_tokens, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, path_to_db(record.folder), record.path.suffix.lower(), record.size, record.mtime, record.hash,
             record.status, _utf8(record.reason), _utf8(record.title), record.kind, len(chunks), n_tokens,
             time.time()),
        )
        file_id = cur.lastrowid
        if record.fields:
            self.conn.executemany(
                "INSERT INTO file_fields(file_id, name, value, folded) VALUES (?,?,?,?)",
                [(file_id, name, _utf8(value), _utf8(value).casefold()) for name, value in dict.fromkeys(record.fields)])
        for enc, blob in zip(chunks, blobs):
            c = enc.chunk
            cur = self.conn.execute(
                "INSERT INTO chunks(file_id, ordinal, char_start, char_end, page, token_count, text, ocr)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (file_id, c.ordinal, c.char_start, c.char_end, c.page, c.token_count, pack_text(c.text), int(c.ocr)),
            )
            self.conn.execute(
                "INSERT INTO vectors(chunk_id, n_tokens, data) VALUES (?,?,?)",
                (cur.lastrowid, int(enc.vectors.shape[0]), blob),
            )
            pooled = getattr(enc.vectors, "pooled", None)  # the encoder's dense vector (encode.encoder.TokenVectors)
            if pooled is not None:
                self.conn.execute("INSERT INTO dense(chunk_id, data) VALUES (?,?)",
                                  (cur.lastrowid, encode_dense(pooled)))

    @guarded
    def record_problem(self, record: FileRecord) -> None:
        """Record why a file was skipped or failed. Chunks it already had stay searchable (nothing is lost)."""
        key = path_to_db(record.path)
        with self.db.atomic():
            updated = self.conn.execute(
                "UPDATE files SET status = ?, reason = ?, size = ?, mtime = ?, hash = ?, indexed_at = ?"
                " WHERE path = ?",
                (record.status, _utf8(record.reason), record.size, record.mtime, record.hash, time.time(), key),
            ).rowcount
            if not updated:
                self._write_file(record, ())

    @guarded
    def move_file(self, old: Path, new: Path, *, folder: Path, mtime: float) -> None:
        """A renamed or moved file keeps its chunks and vectors."""
        with self.db.atomic():
            self.conn.execute("DELETE FROM files WHERE path = ?", (path_to_db(new),))
            self.conn.execute(
                "UPDATE files SET path = ?, folder = ?, suffix = ?, mtime = ? WHERE path = ?",
                (path_to_db(new), path_to_db(folder), new.suffix.lower(), mtime, path_to_db(old)),
            )
            self._bump()

    @guarded
    def touch_file(self, path: Path, *, mtime: float) -> None:
        """Same content, new mtime: no re-encoding."""
        self.conn.execute("UPDATE files SET mtime = ? WHERE path = ?", (mtime, path_to_db(path)))

    @guarded
    def delete_files(self, paths: Iterable[Path]) -> int:
        """Drop each path from the index, and everything below it when it was a folder."""
        n = 0
        with self.db.atomic():
            for p in paths:
                key = path_to_db(p)
                prefix = key.rstrip("/") + "/"
                n += self.conn.execute("DELETE FROM files WHERE path = ? OR substr(path, 1, ?) = ?",
                                       (key, len(prefix), prefix)).rowcount
            self._bump()
        return n

    @guarded
    def files_with_hash(self, size: int, digest: str) -> list[Path]:
        rows = self.conn.execute("SELECT path FROM files WHERE size = ? AND hash = ?", (size, digest))
        return [path_from_db(r[0]) for r in rows]

    # ------------------------------------------------- reading back, for a copy into another index
    @guarded
    def file_records(self) -> list[FileRecord]:
        """Every file row as a ``FileRecord`` (what a copy into another index needs)."""
        fields: dict[int, list[tuple[str, str]]] = {}
        for file_id, name, value in self.conn.execute("SELECT file_id, name, value FROM file_fields ORDER BY rowid"):
            fields.setdefault(file_id, []).append((name, value))
        rows = self.conn.execute(
            "SELECT path, folder, size, mtime, hash, status, reason, title, kind, id FROM files ORDER BY path")
        return [FileRecord(path_from_db(r[0]), path_from_db(r[1]), r[2], r[3], r[4], r[5], r[6], r[7] or "",
                           r[8] or "", tuple(fields.get(r[9], ()))) for r in rows]

    @guarded
    def chunks_of(self, path: Path) -> list[Chunk]:
        """A file's chunks in order, with their text (no vectors)."""
        rows = self.conn.execute(
            "SELECT c.ordinal, c.text, c.char_start, c.char_end, c.token_count, c.page, c.ocr FROM chunks c"
            " JOIN files f ON f.id = c.file_id WHERE f.path = ? ORDER BY c.ordinal", (path_to_db(path),))
        return [Chunk(r[0], unpack_text(r[1]), *r[2:6], ocr=bool(r[6])) for r in rows]
