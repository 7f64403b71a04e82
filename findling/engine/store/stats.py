"""What an index reports about itself: counts and sizes (``findling status``, the window's status line), the
files that failed or were skipped, and SQLite's own integrity check.

``IndexStats`` is a mixin of ``findling.engine.store.store.Store``. It only reads. It relies on the store's
``conn`` (the connection), ``path`` (the index file: its size, and ``guarded``'s messages) and, for
``stats``, on ``folders``, ``model_identity``, ``codec``, ``codec_choice``, ``vector_bytes`` and
``dense_bytes``.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from findling.engine.store.files import FileState
from findling.engine.store.index_file import guarded, path_from_db


class IndexStats:
    """Counts, sizes, problems and the integrity check of one index."""

    conn: sqlite3.Connection
    path: Path

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
