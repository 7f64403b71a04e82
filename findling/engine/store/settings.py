"""Settings kept in the index's ``meta`` table: which model writes its vectors, the model the user chose, and
the user's exclude patterns, so the CLI, the app and the watcher all read the same ones.

``IndexSettings`` is a mixin of ``findling.engine.store.store.Store``. It relies on the store's ``conn``
(the connection), ``db`` (its ``Database``, for ``atomic`` transactions), ``path`` (named by ``guarded``),
``vectors`` (its ``VectorTable``, whose format is dropped with the vectors), ``meta``/``set_meta``/
``model_identity``, ``vector_count``, ``lock_for_writing`` and ``_bump()``. Contract: vectors of two models
never mix in one index (``bind_model`` refuses; ``reset_vectors`` starts over for a new model).
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Sequence

from findling.engine.errors import ModelMismatch
from findling.engine.records import ModelInfo
from findling.engine.store.index_file import guarded
from findling.engine.store.sqlite_lib import Database
from findling.engine.store.vectors import VectorTable


class IndexSettings:
    """The model bound to the index's vectors, and the user's settings stored with the index."""

    conn: sqlite3.Connection
    db: Database
    path: Path
    vectors: VectorTable

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
