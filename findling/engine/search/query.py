"""Query syntax: free text plus inline filters, parsed once for the CLI and the app alike.

    csv reader ext:py dir:~/Projects after:2024-01-01 before:2025-01-01 "exact phrase"

Mail filters keep only messages whose header contains every word given, case-insensitively, anywhere in
it (``from:ann``, ``to:example.org``, ``subject:"budget review"``; a mailbox passes when one of its messages
does): ``from:``, ``to:`` (To and Cc) and ``subject:``.

``ext:``, ``dir:`` and each mail filter may repeat (any of them matches); a quoted phrase must occur literally in the
chunk (case-insensitive, via the keyword index). Anything that is not a filter stays in the text that is
encoded. Bad filter values raise ``QueryError`` with a message saying what was expected; nothing else is
raised, whatever the input (NUL bytes and lone surrogates are replaced, the text is cut to
``MAX_QUERY_CHARS``, keyword operators are quoted away by ``fts_expression``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from findling.engine.errors import QueryError
from findling.engine.store.fts import fts_quote

MAX_QUERY_CHARS = 2000
_FILTER = re.compile(r'(?<!\S)(ext|dir|after|before|from|to|subject):("[^"]*"|\S+)', re.IGNORECASE)
FIELD_FILTERS: dict[str, tuple[str, ...]] = {"from": ("from",), "to": ("to", "cc"), "subject": ("subject",)}
"""Each mail filter and the stored fields (``ExtractedText.fields``) it looks in."""
_PHRASE = re.compile(r'"([^"]+)"')
_SURROGATE = re.compile("[\ud800-\udfff]")  # e.g. undecodable bytes from a command line


@dataclass(frozen=True)
class Query:
    """A parsed query: what to encode and how to filter."""

    text: str
    phrases: tuple[str, ...] = ()
    exts: tuple[str, ...] = ()
    dirs: tuple[Path, ...] = ()
    after: float | None = None  # POSIX seconds, inclusive
    before: float | None = None  # POSIX seconds, exclusive
    fields: tuple[tuple[str, str], ...] = ()  # (mail filter, its words): ("from", "ann"), ("subject", "budget")

    @property
    def has_filters(self) -> bool:
        return bool(self.exts or self.dirs or self.after is not None or self.before is not None or self.fields)

    def with_filters(self, *, exts=(), dirs=(), after=None, before=None, fields=()) -> "Query":
        """This query with more filters (from CLI flags or UI chips) merged in."""
        return replace(
            self,
            fields=self.fields + tuple(field_filter(k, v) for k, v in fields),
            exts=self.exts + tuple(_norm_ext(e) for e in exts),
            dirs=self.dirs + tuple(folder_filter(str(d)) for d in dirs),
            after=after if after is not None else self.after,
            before=before if before is not None else self.before,
        )


def parse_query(raw: str) -> Query:
    """Split ``raw`` into text, phrases and filters."""
    raw = (raw or "")[:MAX_QUERY_CHARS].replace("\x00", " ")
    exts: list[str] = []
    dirs: list[Path] = []
    after = before = None
    fields: list[tuple[str, str]] = []
    for m in _FILTER.finditer(raw):
        key, value = m.group(1).lower(), m.group(2).strip('"')
        if key in FIELD_FILTERS:
            if value.strip():
                fields.append(field_filter(key, value))
        elif key == "ext":
            exts += [_norm_ext(v) for v in value.split(",") if v]
        elif key == "dir":
            dirs.append(folder_filter(value))
        elif key == "after":
            after = parse_date(value)
        else:
            before = parse_date(value)
    rest = _SURROGATE.sub("\ufffd", _FILTER.sub(" ", raw))  # a dir: value may hold them: file names can
    phrases = tuple(p.strip() for p in _PHRASE.findall(rest) if p.strip())
    text = " ".join(rest.replace('"', " ").split())
    return Query(text=text, phrases=phrases, exts=tuple(exts), dirs=tuple(dirs), after=after, before=before,
                 fields=tuple(fields))


def field_filter(key: str, value: str) -> tuple[str, str]:
    """A mail filter (``from``, ``to``, ``subject``) and its words, cleaned: ``QueryError`` for another key."""
    key = key.lower()
    if key not in FIELD_FILTERS:
        raise QueryError(f"'{key[:40]}' is not a mail filter; use one of {', '.join(FIELD_FILTERS)}")
    return key, " ".join(_SURROGATE.sub("\ufffd", value.replace("\x00", " ")).split())


def parse_date(value: str) -> float:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (local time) -> POSIX seconds."""
    for fmt in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(value, fmt).timestamp()
        except (ValueError, OverflowError, OSError):  # not this format, or a year the clock cannot hold
            continue
    shown = _SURROGATE.sub("\ufffd", value[:40].replace("\x00", " "))
    raise QueryError(f"'{shown}' is not a date; write it as YYYY-MM-DD, YYYY-MM or YYYY")


def folder_filter(value: str) -> Path:
    """A ``dir:`` value as an absolute path (``~`` expanded); ``QueryError`` when it cannot be one."""
    try:
        return Path(value.replace("\x00", "")).expanduser().absolute()
    except (RuntimeError, ValueError, OSError) as exc:  # "~nosuchuser", no home folder, ...
        raise QueryError(f"'{value[:80]}' is not a folder Findling can look in ({exc})") from exc


def fts_words(query: Query) -> list[str]:
    """The query's keyword-lane words, lower-cased, each once, in order (single letters dropped, digits kept)."""
    words = [w for w in re.findall(r"\w+", query.text) if len(w) > 1 or w.isdigit()]
    return list(dict.fromkeys(w.lower() for w in words))


def fts_expression(query: Query, *, skip: frozenset[str] | set[str] = frozenset()) -> str:
    """A safe FTS5 MATCH expression: any of the query's words (each quoted), phrases required.

    ``skip``: words to leave out of the any-word part (the searcher's words without BM25 weight, see
    ``findling.engine.search.searcher``); when that would leave none, all stay.
    """
    words = fts_words(query)
    words = [w for w in words if w not in skip] or words
    any_word = " OR ".join(fts_quote(w) for w in words)
    required = " AND ".join(fts_quote(p) for p in query.phrases)
    if any_word and required:
        return f"({any_word}) AND {required}"
    return any_word or required


def phrase_expression(query: Query) -> str:
    return " AND ".join(fts_quote(p) for p in query.phrases)


def _norm_ext(ext: str) -> str:
    ext = _SURROGATE.sub("\ufffd", ext.replace("\x00", "")).strip().lower()
    return ext if ext.startswith(".") else "." + ext
