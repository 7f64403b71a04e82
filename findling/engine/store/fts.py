"""SQLite FTS5 text that other stages build: quoting, and an in-memory keyword pool.

The store owns every line of SQL; the query parser (``findling.engine.search.query``) builds FTS5 MATCH
expressions with ``fts_quote`` and training mines BM25 negatives with ``KeywordPool``, both through here.
Both use the tokenizer of the index's own ``chunks_fts`` table, so a pool ranks as the index does.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable

FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"
"""The FTS5 tokenizer of the index's keyword table (``schema``) and of every ``KeywordPool``."""


def fts_quote(term: str) -> str:
    """``term`` as one quoted FTS5 string (inner quotes doubled): matched as a word or phrase, never as syntax."""
    return '"' + term.replace('"', '""') + '"'


class KeywordPool:
    """An in-memory FTS5 table over a list of texts, ranked by BM25; nothing touches disk.

    Row ids are the texts' positions in the list given to the constructor.
    """

    def __init__(self, texts: Iterable[str]) -> None:
        self._db = sqlite3.connect(":memory:")
        self._db.execute(f"CREATE VIRTUAL TABLE pool USING fts5(text, tokenize='{FTS_TOKENIZER}')")
        self._db.executemany("INSERT INTO pool(rowid, text) VALUES (?, ?)", enumerate(texts))

    def scored(self, match: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best texts for the FTS5 MATCH expression ``match``, as ``(position, -bm25)``, best first."""
        rows = self._db.execute("SELECT rowid, -bm25(pool) FROM pool WHERE pool MATCH ?"
                                " ORDER BY bm25(pool) LIMIT ?", (match, k)).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def close(self) -> None:
        self._db.close()
