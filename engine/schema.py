"""The index database's schema, as sqlite-utils migrations. Only ``engine.store`` imports this.

Tables
  meta      key/value: schema version, model name and weight fingerprint, vector dim, layout, chunk settings
  folders   watched folders
  files     one row per file seen: path, size, mtime, content hash, status, failure reason
  chunks    token-bounded slices of a file's text: ordinal, character span, page, token count, text
  vectors   one BLOB per chunk in the index's vector format (``meta.vector_codec``, ``engine.codec``): float16
            little-endian row-major ``[n_tokens, dim]`` (``VECTOR_LAYOUT``, every index from before version 2),
            or centroid ids then residual codes
  codec     the compressed format's arrays by name (centroids, codebooks, dimension order), little-endian;
            empty for float16
  chunks_fts  FTS5 over chunks.text (external content, kept in step by triggers)

Version 2 added ``codec`` and ``meta.stored_tokens`` (the stored token vectors, kept by triggers on ``vectors``,
so the searcher and the indexer read the index size without a scan); an index from version 1 opens as it is
(float16, no codec rows, its count taken once).

Chunk ids come from AUTOINCREMENT, so an id is never reused: the in-memory search matrix relies on that.
"""
from __future__ import annotations

from .sqlite_lib import Database, Migrations

SCHEMA_VERSION = 2
VECTOR_LAYOUT = "float16-le row-major [n_tokens, dim]"

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
