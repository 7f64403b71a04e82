"""The reads search makes: chunk rows for hits, file filters, and the keyword index (FTS5 BM25).

``SearchReads`` is one of the parts a ``findling.engine.store.store.Store`` is made of: it gets the store's
connection. A ``Store(path, reader=True)`` is enough for all of it.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from findling.engine.store.index_file import explain, guarded, path_from_db, path_to_db
from findling.engine.store.fts import fts_quote
from findling.engine.store.schema import unpack_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkRow:
    """A stored chunk with its file's details, as search needs them."""

    chunk_id: int
    file_id: int
    path: Path
    ordinal: int
    char_start: int
    char_end: int
    page: int | None
    text: str
    mtime: float
    size: int
    title: str
    ocr: bool = False  # some of the chunk's text was recognised by OCR


class SearchReads:
    """What a search reads from the index besides token vectors."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path  # named in the messages of ``guarded``

    @guarded
    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self.conn.execute(
            "SELECT c.id, c.file_id, f.path, c.ordinal, c.char_start, c.char_end, c.page, c.text, f.mtime,"
            f" f.size, f.title, c.ocr FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id IN ({marks})",
            [int(i) for i in chunk_ids],
        )
        return {r[0]: ChunkRow(r[0], r[1], path_from_db(r[2]), *r[3:7], unpack_text(r[7]), r[8], r[9], r[10] or "",
                               bool(r[11])) for r in rows}

    @guarded
    def chunk_counts(self, file_ids: Sequence[int]) -> dict[int, int]:
        """How many chunks each of ``file_ids`` has (files not in the index are left out)."""
        ids = sorted({int(i) for i in file_ids})
        out: dict[int, int] = {}
        for lo in range(0, len(ids), 900):  # under SQLite's limit on bound parameters
            part = ids[lo:lo + 900]
            out.update(self.conn.execute(f"SELECT id, n_chunks FROM files WHERE id IN ({','.join('?' * len(part))})",
                                         part).fetchall())
        return out

    @guarded
    def filtered_file_ids(self, *, folders: Sequence[Path] = (), suffixes: Sequence[str] = (),
                          after: float | None = None, before: float | None = None,
                          fields: Sequence[tuple[Sequence[str], str]] = ()) -> set[int]:
        """Ids of files that pass the filters (folder prefix, suffix, modified time, fields).

        ``fields``: ``(names, words)`` pairs, such as ``(("to", "cc"), "ann example.org")``. A file passes a pair
        when one of its values named in ``names`` contains every word of ``words`` (casefolded, anywhere in the
        value); pairs with the same ``names`` are alternatives, the others must all pass.
        """
        where, args = ["1=1"], []
        by_names: dict[tuple[str, ...], list[list[str]]] = {}
        for names, words in fields:
            folded = words.casefold().split()
            if folded and names:
                by_names.setdefault(tuple(n.lower() for n in names), []).append(folded)
        for names, choices in by_names.items():
            any_of = " OR ".join("(" + " AND ".join(["instr(folded, ?) > 0"] * len(words)) + ")" for words in choices)
            where.append(f"id IN (SELECT file_id FROM file_fields WHERE name IN ({','.join('?' * len(names))})"
                         f" AND ({any_of}))")
            args += [*names, *(word for words in choices for word in words)]
        if folders:
            parts = []
            for f in folders:
                parts.append("(path = ? OR substr(path, 1, ?) = ?)")
                prefix = path_to_db(f).rstrip("/") + "/"
                args += [path_to_db(f), len(prefix), prefix]
            where.append("(" + " OR ".join(parts) + ")")
        if suffixes:
            where.append(f"suffix IN ({','.join('?' * len(suffixes))})")
            args += [s.lower() if s.startswith(".") else "." + s.lower() for s in suffixes]
        if after is not None:
            where.append("mtime >= ?")
            args.append(after)
        if before is not None:
            where.append("mtime < ?")
            args.append(before)
        return {r[0] for r in self.conn.execute(f"SELECT id FROM files WHERE {' AND '.join(where)}", args)}

    @guarded
    def fts_common_words(self, words: Sequence[str]) -> set[str]:
        """The ``words`` (each searched as a quoted FTS5 term) that at least half of the chunks contain.

        FTS5's ``bm25()`` clamps such a term's IDF to 1e-6 (``log((N - n + 0.5) / (n + 0.5)) <= 0``), so it
        adds nothing to a ranking but still costs a score for every chunk it matches. Counting stops at the
        half, so a common word costs one pass over half of its list."""
        total = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if not total:
            return set()
        half = (total + 1) // 2
        common = set()
        for word in words:
            try:
                (n,) = self.conn.execute(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
                    (fts_quote(word), half)).fetchone()
            except sqlite3.OperationalError as exc:
                if explain(exc, self.path) is not None:
                    raise
                continue  # a term the keyword index cannot parse: fts_search reports nothing for it either
            if 2 * n >= total:
                common.add(word)
        return common

    @guarded
    def fts_search(self, match: str, *, limit: int) -> list[tuple[int, int, float]]:
        """``(chunk_id, file_id, score)`` by BM25 for an FTS5 MATCH expression; higher score is better."""
        try:
            rows = self.conn.execute(
                "SELECT c.id, c.file_id, -bm25(chunks_fts) AS s FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid"
                " WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?",
                (match, limit),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if explain(exc, self.path) is not None:
                raise  # disk trouble, not a query the keyword index cannot parse
            log.debug("FTS query %r failed: %s", match, exc)
            return []
        return [(r[0], r[1], float(r[2])) for r in rows]
