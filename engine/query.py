"""Query syntax: free text plus inline filters, parsed once for the CLI and the app alike.

    csv reader ext:py dir:~/Projects after:2024-01-01 before:2025-01-01 "exact phrase"

``ext:`` and ``dir:`` may repeat (any of them matches); a quoted phrase must occur literally in the
chunk (case-insensitive, via the keyword index). Anything that is not a filter stays in the text that is
encoded. Bad filter values raise ``QueryError`` with a message saying what was expected.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from .errors import QueryError

MAX_QUERY_CHARS = 2000
_FILTER = re.compile(r'(?<!\S)(ext|dir|after|before):("[^"]*"|\S+)', re.IGNORECASE)
_PHRASE = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class Query:
    """A parsed query: what to encode and how to filter."""

    text: str
    phrases: tuple[str, ...] = ()
    exts: tuple[str, ...] = ()
    dirs: tuple[Path, ...] = ()
    after: float | None = None  # POSIX seconds, inclusive
    before: float | None = None  # POSIX seconds, exclusive

    @property
    def has_filters(self) -> bool:
        return bool(self.exts or self.dirs or self.after is not None or self.before is not None)

    def with_filters(self, *, exts=(), dirs=(), after=None, before=None) -> "Query":
        """This query with more filters (from CLI flags or UI chips) merged in."""
        return replace(
            self,
            exts=self.exts + tuple(_norm_ext(e) for e in exts),
            dirs=self.dirs + tuple(Path(d).expanduser().absolute() for d in dirs),
            after=after if after is not None else self.after,
            before=before if before is not None else self.before,
        )


def parse_query(raw: str) -> Query:
    """Split ``raw`` into text, phrases and filters."""
    raw = (raw or "").replace("\x00", " ")[:MAX_QUERY_CHARS]
    exts: list[str] = []
    dirs: list[Path] = []
    after = before = None
    for m in _FILTER.finditer(raw):
        key, value = m.group(1).lower(), m.group(2).strip('"')
        if key == "ext":
            exts += [_norm_ext(v) for v in value.split(",") if v]
        elif key == "dir":
            dirs.append(Path(value).expanduser().absolute())
        elif key == "after":
            after = parse_date(value)
        else:
            before = parse_date(value)
    rest = _FILTER.sub(" ", raw)
    phrases = tuple(p.strip() for p in _PHRASE.findall(rest) if p.strip())
    text = " ".join(rest.replace('"', " ").split())
    return Query(text=text, phrases=phrases, exts=tuple(exts), dirs=tuple(dirs), after=after, before=before)


def parse_date(value: str) -> float:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (local time) -> POSIX seconds."""
    for fmt in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(value, fmt).timestamp()
        except ValueError:
            continue
    raise QueryError(f"'{value}' is not a date; write it as YYYY-MM-DD, YYYY-MM or YYYY")


def fts_expression(query: Query) -> str:
    """A safe FTS5 MATCH expression: any of the query's words (each quoted), phrases required."""
    words = [w for w in re.findall(r"\w+", query.text) if len(w) > 1 or w.isdigit()]
    any_word = " OR ".join(_quote(w) for w in dict.fromkeys(w.lower() for w in words))
    required = " AND ".join(_quote(p) for p in query.phrases)
    if any_word and required:
        return f"({any_word}) AND {required}"
    return any_word or required


def phrase_expression(query: Query) -> str:
    return " AND ".join(_quote(p) for p in query.phrases)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _norm_ext(ext: str) -> str:
    ext = ext.strip().lower()
    return ext if ext.startswith(".") else "." + ext
