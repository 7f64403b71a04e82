"""The index: one SQLite file (WAL) holding folders, files, chunks, token vectors and an FTS5 index.

``Store`` opens the file (creating and migrating it when needed: ``findling.engine.store.schema``), owns the
connection, the writer lock and the file's lifecycle (checkpoint, vacuum, copying another index in), and is
assembled from parts by job, all sharing its connection and all inside ``findling.engine.store``, the only
package that runs SQL. Mixins give it their methods: ``FileRecords`` (``files``: files, chunks and their
vectors), ``FolderList`` (``folders``: the watched folders), ``IndexSettings`` (``settings``: the bound model
and the user's settings) and ``IndexStats`` (``stats``: counts, sizes, problems). Objects it holds do the
rest: ``meta`` (``IndexMeta``), ``vectors`` (``VectorTable``: token and dense vectors, their format) and
``reads`` (``SearchReads``: what searches read besides vectors). Every write that changes what search sees
bumps ``meta.generation`` inside the same transaction, so readers on other connections (the search matrix)
know when to catch up.
"""
from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Sequence

import numpy as np
from findling.engine.store.sqlite_lib import Database

from findling.engine.store.index_file import WriterLock, check_health, explain, guarded
from findling.engine.errors import StoreError
from findling.engine.store.schema import PAGE_SIZE, SCHEMA_VERSION, VECTOR_LAYOUT, migrations, register_functions
from findling.engine.store.files import FileRecords
from findling.engine.store.folders import FolderList
from findling.engine.store.meta import IndexMeta
from findling.engine.store.search_reads import ChunkRow, SearchReads
from findling.engine.store.settings import IndexSettings
from findling.engine.store.stats import IndexStats
from findling.engine.store.vectors import VectorTable

def encode_vectors(vectors: np.ndarray) -> bytes:
    """float32 ``[n, dim]`` -> float16 BLOB (``VECTOR_LAYOUT``; ``Store.codec`` says which format an index uses)."""
    return np.ascontiguousarray(vectors, dtype="<f2").tobytes()


def decode_vectors(blob: bytes, dim: int) -> np.ndarray:
    """BLOB -> float16 ``[n, dim]`` (a read-only view of the bytes)."""
    return np.frombuffer(blob, dtype="<f2").reshape(-1, dim)


class Store(FileRecords, FolderList, IndexSettings, IndexStats):
    """An open index file. One instance per thread; open more for more threads.

    Made of parts that share its connection: the mixins above give it the methods for files and chunks,
    folders, settings and statistics; ``meta`` (``IndexMeta``), ``vectors`` (``VectorTable``: token and dense
    vectors, their format) and ``reads`` (``SearchReads``: what searches read besides vectors) are objects it
    holds, whose methods that callers use are passed through by name below, so callers see one object.

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

    # ------------------------------------------------------------ copying to another index
    # These serve ``findling.engine.index.reencode`` (re-encoding into a new file), with ``file_records`` and
    # ``chunks_of`` (``FileRecords``).
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
