"""The ``meta`` table of an index file: named string values (schema version, model identity, vector format,
the generation counter) that every part of the store reads.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from findling.engine.store.index_file import guarded


class IndexMeta:
    """Reads and writes ``meta`` on one connection. Writes join the caller's transaction, if any."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path  # named in the messages of ``guarded``

    @guarded
    def get(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    @guarded
    def set(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def set_default(self, key: str, value: str) -> None:
        """Set ``key`` unless it is set already."""
        self.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def delete(self, key: str) -> None:
        self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    def generation(self) -> int:
        """Bumped by every write that changes what search sees."""
        return int(self.get("generation", "0") or 0)

    def bump(self) -> None:
        self.conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def model_identity(self) -> dict | None:
        """The identity of the model whose vectors the index holds (name, fingerprint, dim, source), if any."""
        raw = self.get("model")
        return json.loads(raw) if raw else None

    def dim(self) -> int | None:
        ident = self.model_identity()
        return int(ident["dim"]) if ident else None
