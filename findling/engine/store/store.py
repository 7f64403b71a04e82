"""The index: one SQLite file (WAL) holding folders, files, chunks, token vectors and an FTS5 index.

This module, ``findling.engine.store.vectors`` (the token vectors and their format) and ``findling.engine.store.search_reads`` (the
reads a search makes: hits' rows, filters, the keyword index), the two parts of ``Store`` split off by job,
are the only ones that run SQL. The schema and its migrations live in ``findling.engine.store.schema``. Every
write that changes what search sees bumps ``meta.generation`` inside the same transaction, so readers on
other connections (the search matrix) know when to catch up.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from findling.engine.store.sqlite_lib import Database

from findling.engine.store.index_file import WriterLock, check_health, explain, guarded, path_from_db, path_to_db
from findling.engine.errors import ModelMismatch, StoreError
from findling.engine.records import Chunk, EncodedChunk, ModelInfo
from findling.engine.store.schema import (
    PAGE_SIZE,
    SCHEMA_VERSION,
    VECTOR_LAYOUT,
    migrations,
    pack_text,
    register_functions,
    unpack_text,
)
from findling.engine.store.codec import encode_dense
from findling.engine.store.meta import IndexMeta
from findling.engine.store.search_reads import ChunkRow, SearchReads
from findling.engine.store.vectors import VectorTable

log = logging.getLogger(__name__)



def _utf8(text: str | None) -> str | None:
    """``text`` with lone surrogates (from undecodable file names in a reason or title) replaced: SQLite needs UTF-8."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def normal_folder(path: Path | str) -> Path:
    """``path`` made absolute with ``~``, ``.`` and ``..`` folded (lexically, links kept as written)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def encode_vectors(vectors: np.ndarray) -> bytes:
    """float32 ``[n, dim]`` -> float16 BLOB (``VECTOR_LAYOUT``; ``Store.codec`` says which format an index uses)."""
    return np.ascontiguousarray(vectors, dtype="<f2").tobytes()


def decode_vectors(blob: bytes, dim: int) -> np.ndarray:
    """BLOB -> float16 ``[n, dim]`` (a read-only view of the bytes)."""
    return np.frombuffer(blob, dtype="<f2").reshape(-1, dim)


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


class Store:
    """An open index file. One instance per thread; open more for more threads.

    Made of parts that share its connection: ``meta`` (``IndexMeta``), ``vectors`` (``VectorTable``: token
    and dense vectors, their format) and ``reads`` (``SearchReads``: what searches read besides vectors). The
    store's own methods cover folders, files and chunks; the parts' methods that callers use are passed
    through by name below, so callers see one object.

    Any number of stores, in any number of processes, may read one index. Writing that must not interleave
    with another process (indexing) first takes the writer lock with ``lock_for_writing`` (``IndexLocked``
    when another process holds it); ``close`` releases it. SQLite's errors from disk trouble (full, damaged,
    busy) come out of every method as ``StoreError`` with a message that says what to do.
    """

    def __init__(self, path: Path, *, timeout: float = 30.0, reader: bool = False) -> None:
        """Open (creating and migrating when needed) the index at ``path``. ``reader``: a second connection to a
        file another ``Store`` of this process has opened, for reading only (``PRAGMA query_only``): it writes
        nothing on opening either, so it never waits for an indexer's write transaction."""
        self.path = Path(path)
        self.writer_lock = WriterLock(self.path)
        conn = self.conn = self._open_reader(timeout) if reader else self._open(timeout)
        try:
            register_functions(conn)
            self.db = Database(conn, execute_plugins=False)
            self._meta = IndexMeta(conn, self.path)
            self.vectors = VectorTable(conn, self.db, self.path, self._meta, lock_for_writing=self.lock_for_writing,
                                       vacuum=self.vacuum)
            self.reads = SearchReads(conn, self.path)
            if reader:
                conn.execute("PRAGMA query_only=ON")
                self._refuse_newer_schema()
                return
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a no-op unless the file is new and empty
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            check_health(conn, self.path)
            self._refuse_newer_schema()
            migrations.apply(self.db)
            self._meta.set_default("schema_version", str(SCHEMA_VERSION))
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version' AND CAST(value AS INTEGER) < ?",
                              (str(SCHEMA_VERSION), SCHEMA_VERSION))
            self._meta.set_default("vector_layout", VECTOR_LAYOUT)
            self._meta.set_default("generation", "0")
        except StoreError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise explain(exc, self.path) or StoreError(
                f"The index {self.path} cannot be opened ({exc}). Move it aside or run "
                "`findling index --rebuild` to build a new one from your files."
            ) from exc

    def _open(self, timeout: float) -> sqlite3.Connection:
        """The connection, the file (and its folder) made when missing."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        old_umask = os.umask(0o077)  # the index (and its -wal and -shm files) is readable by its owner only
        try:
            return sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:  # a folder that cannot hold the file, ...
            raise explain(exc, self.path) or StoreError(f"The index {self.path} cannot be opened ({exc}).") from exc
        finally:
            os.umask(old_umask)

    def _open_reader(self, timeout: float) -> sqlite3.Connection:
        """A connection to the existing file (``mode=rw``: SQLite never creates it; WAL readers need write access
        to the ``-shm`` file, so not ``mode=ro``)."""
        uri = f"file:{urllib.parse.quote(str(self.path))}?mode=rw"
        try:
            return sqlite3.connect(uri, timeout=timeout, isolation_level=None, check_same_thread=False, uri=True)
        except sqlite3.Error as exc:  # no such file
            raise StoreError(f"The index {self.path} cannot be opened for reading ({exc}).") from exc

    def _refuse_newer_schema(self) -> None:
        """A file written by a newer Findling may rely on SQL this one lacks (version 3's findling_text is one)."""
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:  # a new, empty file: no meta table yet
            return
        version = int(row[0]) if row and str(row[0]).isdigit() else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The index {self.path} was written by a newer Findling (index schema {version}; this one knows "
                f"{SCHEMA_VERSION}). Update Findling, or move the index aside and run `findling index --rebuild`."
            )

    def close(self) -> None:
        self.conn.close()
        self.writer_lock.release()

    def lock_for_writing(self) -> None:
        """Become this index's only writing process (idempotent); ``IndexLocked`` when another one is."""
        self.writer_lock.acquire()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- meta
    def meta(self, key: str, default: str | None = None) -> str | None:
        return self._meta.get(key, default)

    def set_meta(self, key: str, value: str) -> None:
        self._meta.set(key, value)

    def generation(self) -> int:
        """Bumped by every write that changes what search sees."""
        return self._meta.generation()

    def _bump(self) -> None:
        self._meta.bump()

    def model_identity(self) -> dict | None:
        return self._meta.model_identity()

    @property
    def dim(self) -> int | None:
        return self._meta.dim()

    # ----------------------------------------------------------------- the parts' methods, passed through
    @property
    def codec(self):
        """The format of this index's vector BLOBs (``VectorTable.codec``)."""
        return self.vectors.codec

    def convert_vectors(self, new, *, batch: int = 256) -> int:
        return self.vectors.convert_vectors(new, batch=batch)

    def sample_vectors(self, n: int, *, seed: int = 0) -> np.ndarray:
        return self.vectors.sample_vectors(n, seed=seed)

    def read_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        return self.vectors.read_vectors(chunk_ids)

    def read_codes(self, chunk_ids: Sequence[int]) -> list[tuple[int, int, bytes]]:
        return self.vectors.read_codes(chunk_ids)

    def vector_bytes(self) -> int:
        return self.vectors.vector_bytes()

    def dense_bytes(self) -> int:
        return self.vectors.dense_bytes()

    def compress_if_due(self, *, min_tokens: int) -> str | None:
        return self.vectors.compress_if_due(min_tokens=min_tokens)

    def recode(self, name: str, *, seed: int = 0) -> None:
        self.vectors.recode(name, seed=seed)

    def train_codec(self, name: str, *, seed: int = 0):
        return self.vectors.train_codec(name, seed=seed)

    def codec_choice(self) -> str:
        return self.vectors.codec_choice()

    def set_codec_choice(self, choice: str) -> None:
        self.vectors.set_codec_choice(choice)

    def vector_count(self) -> int:
        return self.vectors.vector_count()

    def token_count(self) -> int:
        return self.vectors.token_count()

    def chunk_ids(self) -> np.ndarray:
        return self.vectors.chunk_ids()

    def dense_chunk_ids(self) -> np.ndarray:
        return self.vectors.dense_chunk_ids()

    def read_dense(self, chunk_ids: Sequence[int] | None = None, *, batch: int = 900) -> list[tuple[int, int, bytes]]:
        return self.vectors.read_dense(chunk_ids, batch=batch)

    def iter_vectors(self, chunk_ids: Sequence[int] | None = None, *, batch: int = 900):
        return self.vectors.iter_vectors(chunk_ids, batch=batch)

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        return self.reads.chunk_rows(chunk_ids)

    def chunk_counts(self, file_ids: Sequence[int]) -> dict[int, int]:
        return self.reads.chunk_counts(file_ids)

    def filtered_file_ids(self, *, folders: Sequence[Path] = (), suffixes: Sequence[str] = (),
                          after: float | None = None, before: float | None = None,
                          fields: Sequence[tuple[Sequence[str], str]] = ()) -> set[int]:
        return self.reads.filtered_file_ids(folders=folders, suffixes=suffixes, after=after, before=before,
                                            fields=fields)

    def fts_common_words(self, words: Sequence[str]) -> set[str]:
        return self.reads.fts_common_words(words)

    def fts_search(self, match: str, *, limit: int) -> list[tuple[int, int, float]]:
        return self.reads.fts_search(match, limit=limit)

    @guarded
    def bind_model(self, info: ModelInfo, *, chunk_settings: dict) -> None:
        """Record which model writes vectors here; refuse to mix in vectors of another model."""
        ident = self.model_identity()
        if ident and ident.get("fingerprint") != info.fingerprint and self.vector_count() > 0:
            raise ModelMismatch(
                f"This index was built with {ident.get('name')} and the active model is {info.name}; "
                "their vectors cannot be mixed. Re-encode with `findling index --reencode` "
                f"(or switch back to {ident.get('name')})."
            )
        new = {"name": info.name, "fingerprint": info.fingerprint, "dim": info.dim, "source": info.source}
        with self.db.atomic():
            if ident and ident.get("fingerprint") != info.fingerprint:
                self.vectors.drop_codec()  # centroids live in the old model's space
            self.set_meta("model", json.dumps(new))
            self.set_meta("chunk_settings", json.dumps(chunk_settings, sort_keys=True))

    @guarded
    def reset_vectors(self) -> None:
        """Forget every chunk and vector (before a re-encode); files are kept and re-indexed."""
        self.lock_for_writing()
        with self.db.atomic():
            self.conn.execute("DELETE FROM chunks")
            self.conn.execute("UPDATE files SET status = 'stale', hash = NULL, n_chunks = 0, n_tokens = 0")
            self.conn.execute("DELETE FROM meta WHERE key = 'model'")
            self.vectors.drop_codec()  # the next model trains its own centroids
            self._bump()

    # -------------------------------------------------------------- folders
    @property
    def folders_backup(self) -> Path:
        """A plain copy of the folder list beside the index, so ``--rebuild`` can recover it."""
        return self.path.with_name(self.path.name + ".folders.json")

    def _save_folder_list(self) -> None:
        """Best effort: a full disk or a read-only folder costs only the backup, with a warning."""
        tmp = self.folders_backup.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner only, like the index
            with open(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps([path_to_db(p) for p in self.folders()], indent=1))
            os.replace(tmp, self.folders_backup)
        except OSError as exc:
            log.warning("the folder list backup %s was not written: %s", self.folders_backup, exc)

    @guarded
    def add_folder(self, path: Path) -> Path:
        """Watch ``path``, kept absolute with ``.`` and ``..`` folded away (as the walker reports file paths:
        a folder written ``docs/../docs`` would otherwise own none of its files). Returns the path kept."""
        folder = normal_folder(path)
        with self.db.atomic():
            self.conn.execute(
                "INSERT OR IGNORE INTO folders(path, added_at) VALUES (?, ?)", (path_to_db(folder), time.time())
            )
        self._save_folder_list()
        return folder

    @guarded
    def remove_folder(self, path: Path) -> int:
        """Stop watching a folder and drop its files from the index; returns the number of files dropped."""
        key = path_to_db(path)
        with self.db.atomic():
            cur = self.conn.execute("DELETE FROM files WHERE folder = ?", (key,))
            self.conn.execute("DELETE FROM folders WHERE path = ?", (key,))
            self._bump()
        self._save_folder_list()
        return cur.rowcount

    @staticmethod
    def read_folder_backup(db_path: Path) -> list[Path]:
        """The folder list saved beside an index file (empty when there is none)."""
        backup = Path(db_path).with_name(Path(db_path).name + ".folders.json")
        try:
            return [path_from_db(p) for p in json.loads(backup.read_text())]
        except (OSError, ValueError):
            return []

    @guarded
    def folders(self) -> list[Path]:
        return [path_from_db(r[0]) for r in self.conn.execute("SELECT path FROM folders ORDER BY path")]

    # ---------------------------------------------------------------- files
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

    # ---------------------------------------------------------------- stats
    @guarded
    def stats(self) -> dict:
        counts = dict(self.conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall())
        chunks, tokens = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(token_count), 0) FROM chunks").fetchone()
        stored = self.conn.execute("SELECT COALESCE(SUM(n_tokens), 0) FROM vectors").fetchone()[0]
        return {"files": counts, "chunks": chunks, "tokens": tokens, "vectors": stored,
                "folders": len(self.folders()), "model": self.model_identity(), "codec": self.codec.name,
                "codec_choice": self.codec_choice(), "vector_bytes": self.vector_bytes(), "dense_bytes": self.dense_bytes(),
                "db_bytes": self.path.stat().st_size if self.path.exists() else 0}

    @guarded
    def problems(self, *, limit: int = 1000) -> list[FileState]:
        rows = self.conn.execute(
            "SELECT id, path, size, mtime, hash, status, reason, n_chunks FROM files"
            " WHERE status IN ('failed', 'skipped') ORDER BY path LIMIT ?", (limit,))
        return [FileState(r[0], path_from_db(r[1]), *r[2:]) for r in rows]

    @guarded
    def integrity_check(self) -> str:
        """"ok", or what SQLite found wrong with the file or with the keyword index's structure."""
        result = self.conn.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            return result
        try:
            self.conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        except sqlite3.DatabaseError as exc:
            return f"keyword index: {exc}"
        return "ok"

    # ------------------------------------------- settings kept in the index, and copying to another index
    # The user's exclude patterns and chosen model live in ``meta`` so the CLI, the app and the watcher
    # read the same ones. The methods after them serve ``findling.engine.index.reencode`` (re-encoding into a new file).
    @guarded
    def exclude_patterns(self) -> tuple[str, ...]:
        """The user's exclude patterns (the defaults in ``Config`` are not included)."""
        try:
            patterns = json.loads(self.meta("exclude_patterns", "[]") or "[]")
        except ValueError:
            return ()
        return tuple(p for p in patterns if isinstance(p, str))

    @guarded
    def set_exclude_patterns(self, patterns: Sequence[str]) -> None:
        self.set_meta("exclude_patterns", json.dumps(list(dict.fromkeys(patterns)), ensure_ascii=False))

    def model_choice(self) -> str | None:
        """The model folder or hub name chosen with ``findling model use`` (None: the default order)."""
        return self.meta("model_choice") or None

    @guarded
    def set_model_choice(self, choice: str | None) -> None:
        if choice:
            self.set_meta("model_choice", choice)
        else:
            self.conn.execute("DELETE FROM meta WHERE key = 'model_choice'")

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

    @guarded
    def last_ids(self) -> tuple[int, int]:
        """The highest file and chunk ids ever handed out here (AUTOINCREMENT's counters)."""
        seq = dict(self.conn.execute("SELECT name, seq FROM sqlite_sequence WHERE name IN ('files', 'chunks')"))
        return int(seq.get("files", 0)), int(seq.get("chunks", 0))

    @guarded
    def continue_ids_after(self, files: int, chunks: int) -> None:
        """New rows get ids above ``files``/``chunks``: a copy that replaces an index never reuses its ids."""
        with self.db.atomic():
            for name, floor in (("files", files), ("chunks", chunks)):
                if self.conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?",
                                     (floor, name)).rowcount == 0:
                    self.conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", (name, floor))

    @guarded
    def replace_contents_with(self, source: "Store") -> None:
        """Make this index a copy of ``source`` in one transaction (SQLite's backup API).

        Other connections, in this process or another, see the old contents or the new ones, never a mix;
        the file is not renamed, so its -wal and -shm files stay its own. The caller holds the writer lock.
        """
        self.lock_for_writing()
        source.checkpoint()
        source.conn.backup(self.conn)
        self.checkpoint()

    @guarded
    def vacuum(self) -> None:
        """Give the pages freed by a conversion back to the file system (one more copy of the index, written
        through the log; readers carry on). Row ids do not change: every table keys on its own id."""
        self.lock_for_writing()
        self.conn.execute("VACUUM")
        self.checkpoint()

    @guarded
    def checkpoint(self) -> None:
        """Copy the write-ahead log into the file and truncate it (best effort while others read)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
