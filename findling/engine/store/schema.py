"""The index database's schema, as sqlite-utils migrations. Only ``findling.engine.store.store`` imports this.

Tables
  meta      key/value: schema version, model name and weight fingerprint, vector dim, layout, chunk settings
  folders   watched folders
  files     one row per file seen: path, size, mtime, content hash, status, failure reason
  chunks    token-bounded slices of a file's text: ordinal, character span, page, token count, text
  vectors   one BLOB per chunk in the index's vector format (``meta.vector_codec``, ``findling.engine.store.codec``): float16
            little-endian row-major ``[n_tokens, dim]`` (``VECTOR_LAYOUT``, every index from before version 2),
            or centroid ids then residual codes
  codec     the compressed format's arrays by name (centroids, codebooks, dimension order), little-endian;
            empty for float16
  file_fields  named values of a file that filters match (a mail's from, to, cc, subject, date): one row per
              value, ``folded`` its casefolded copy for case-insensitive matching
  chunks_fts  FTS5 over the chunks' text (external content: the view ``chunk_text``, kept in step by triggers)

Chunk text is stored as TEXT, or, where deflate makes it at least a tenth smaller, as a BLOB of raw deflate
(``pack_text``; about half the bytes of prose). Every connection that reads text or changes chunks registers
the SQL function ``findling_text`` (``register_functions``), which the view and the triggers call, so FTS5
always indexes and un-indexes the plain text.

Version 2 added ``codec`` and ``meta.stored_tokens`` (the stored token vectors, kept by triggers on ``vectors``,
so the searcher and the indexer read the index size without a scan); an index from version 1 opens as it is
(float16, no codec rows, its count taken once).

Version 3 made chunk text compressible and pointed the FTS index at ``chunk_text`` (rebuilt once, from the
same text, when an older index is opened); rows written before stay TEXT. A new index file uses 32 KiB pages:
a chunk's vector BLOB is a few KiB, and 4 KiB pages left a third of the file empty around them.

Version 4 added ``dense``: one row per chunk whose model pools a dense vector (``ModelInfo.dense_dim``), its
``data`` the vector as ``dim`` int8 values (``findling.engine.store.dense_codec.encode_dense``: scaled so the largest
component is +-127; only its direction counts). An older index opens with the table empty: its chunks have
no dense vector until they are encoded again, and search runs without the dense lane until every chunk has one.

Version 5 added ``file_fields`` (an older index opens with the table empty).

Version 6 added ``chunks.ocr``. Version 7 stores dense vectors as 4-bit levels (``dense_codec.DENSE_LAYOUT``, half
the bytes of int8); opening an older index converts its int8 rows once, in the migration's transaction.

Chunk ids come from AUTOINCREMENT, so an id is never reused: the in-memory search matrix relies on that.
"""
from __future__ import annotations

import sqlite3
import zlib

from findling.engine.store.sqlite_lib import Database, Migrations

SCHEMA_VERSION = 7
PAGE_SIZE = 32768  # bytes; SQLite applies it only to a new, empty file
PACK_MIN_CHARS = 160  # shorter texts rarely shrink by a tenth
VECTOR_LAYOUT = "float16-le row-major [n_tokens, dim]"
MIGRATION_BATCH = 8192  # rows a migration that rewrites a table's values reads at a time

migrations = Migrations("findling")


@migrations()
def m001_initial(db: Database) -> None:
    for statement in _statements(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE folders (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            added_at REAL NOT NULL
        );
        CREATE TABLE files (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            folder TEXT NOT NULL,
            suffix TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime REAL NOT NULL,
            hash TEXT,
            status TEXT NOT NULL,          -- indexed | failed | skipped | empty
            reason TEXT,                   -- why failed or skipped, in words
            title TEXT,
            kind TEXT,
            n_chunks INTEGER NOT NULL DEFAULT 0,
            n_tokens INTEGER NOT NULL DEFAULT 0,
            indexed_at REAL NOT NULL
        );
        CREATE INDEX files_folder ON files(folder);
        CREATE INDEX files_size ON files(size);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            page INTEGER,
            token_count INTEGER NOT NULL,
            text TEXT NOT NULL
        );
        CREATE INDEX chunks_file ON chunks(file_id, ordinal);
        CREATE TABLE vectors (
            chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            n_tokens INTEGER NOT NULL,
            data BLOB NOT NULL
        );
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        """
    ):
        db.execute(statement)


@migrations()
def m002_vector_codec(db: Database) -> None:
    for statement in _statements(
        """
        CREATE TABLE codec (name TEXT PRIMARY KEY, data BLOB NOT NULL);
        INSERT OR REPLACE INTO meta(key, value) SELECT 'stored_tokens', COALESCE(SUM(n_tokens), 0) FROM vectors;
        CREATE TRIGGER vectors_ai AFTER INSERT ON vectors BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) + new.n_tokens WHERE key = 'stored_tokens';
        END;
        CREATE TRIGGER vectors_ad AFTER DELETE ON vectors BEGIN
            UPDATE meta SET value = CAST(value AS INTEGER) - old.n_tokens WHERE key = 'stored_tokens';
        END;
        """
    ):
        db.execute(statement)


@migrations()
def m003_packed_text(db: Database) -> None:
    for statement in _statements(
        """
        DROP TRIGGER chunks_ai;
        DROP TRIGGER chunks_ad;
        DROP TABLE chunks_fts;
        CREATE VIEW chunk_text(id, text) AS SELECT id, findling_text(text) FROM chunks;
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunk_text', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, findling_text(new.text));
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, findling_text(old.text));
        END;
        INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');
        """
    ):
        db.execute(statement)


@migrations()
def m004_dense(db: Database) -> None:
    db.execute("CREATE TABLE dense (chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
               " data BLOB NOT NULL)")


@migrations()
def m005_file_fields(db: Database) -> None:
    for statement in _statements(
        """
        CREATE TABLE file_fields (
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            folded TEXT NOT NULL
        );
        CREATE INDEX file_fields_file ON file_fields(file_id, name);
        """
    ):
        db.execute(statement)


@migrations()
def m006_chunk_ocr(db: Database) -> None:
    """``chunks.ocr``: 1 when some of the chunk's text was recognised by OCR rather than read from the file."""
    db.execute("ALTER TABLE chunks ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0")


@migrations()
def m007_dense_4bit(db: Database) -> None:
    """Dense vectors from int8 (one byte a dimension) to the 4-bit ``dense_codec.DENSE_LAYOUT``."""
    from findling.engine.store.dense_codec import dense_from_int8

    last = -1
    while True:  # in batches, so a large index never holds all its vectors in memory at once
        rows = db.execute("SELECT chunk_id, data FROM dense WHERE chunk_id > ? ORDER BY chunk_id LIMIT ?",
                          [last, MIGRATION_BATCH]).fetchall()
        if not rows:
            return
        db.conn.executemany("UPDATE dense SET data = ? WHERE chunk_id = ?",
                            [(dense_from_int8(data), chunk_id) for chunk_id, data in rows])
        last = rows[-1][0]


def pack_text(text: str) -> str | bytes:
    """What ``chunks.text`` holds for ``text``: raw deflate (a BLOB) when that saves a tenth, else the text.

    >>> prose = "The index keeps every chunk's text beside its vectors. " * 8
    >>> packed = pack_text(prose)
    >>> isinstance(packed, bytes) and len(packed) < len(prose) // 2 and unpack_text(packed) == prose
    True
    >>> pack_text("short") == "short" and unpack_text("short") == "short"
    True
    """
    if len(text) < PACK_MIN_CHARS:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    packed = packer.compress(raw) + packer.flush()
    return packed if len(packed) * 10 <= len(raw) * 9 else text


def unpack_text(value: str | bytes | None) -> str | None:
    """The text a ``chunks.text`` value holds (TEXT as it is, a BLOB inflated)."""
    if value is None or isinstance(value, str):
        return value
    return zlib.decompress(value, -15).decode("utf-8", "surrogatepass")


def register_functions(conn: sqlite3.Connection) -> None:
    """Make ``findling_text`` callable on ``conn`` (the view and triggers of version 3 need it)."""
    conn.create_function("findling_text", 1, unpack_text, deterministic=True)


def _statements(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit the migration's transaction)."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and (not text.upper().startswith("CREATE TRIGGER") or text.upper().endswith("END;")):
            out.append(text)
            current = []
    return out
