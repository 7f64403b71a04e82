"""Where a hit matched and why: spans to highlight, exact versus meaning matches, score shares.

Pure functions over ``SearchHit``/``TokenMatch`` (no widgets), so they are easy to test. A match is
*exact* when the query token and the document token it aligned with are the same word (ignoring case and
sub-word markers such as ``##``); otherwise it is a *meaning* match found by the vectors alone.
"""
from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette

from findling.engine import SearchHit, TokenMatch

EXACT = "exact"
MEANING = "meaning"
MEANING_FLOOR = 0.6
"""A meaning match is highlighted only if its similarity reaches this share of the hit's strongest match..."""
MEANING_MIN = 0.45
"""... and at least this cosine similarity (weaker alignments are what MaxSim finds in any text)."""


@dataclass(frozen=True)
class Span:
    """Characters ``[start, end)`` of a text that matched a query token."""

    start: int
    end: int
    kind: str  # EXACT or MEANING
    weight: float  # the similarity of the match
    query_token: str = ""


@dataclass(frozen=True)
class Contribution:
    """One query token's part in the score: ``share`` of the summed similarities (0..1)."""

    query_token: str
    doc_token: str
    similarity: float
    share: float
    kind: str


def normalize_token(token: str) -> str:
    """Lower-cased token without sub-word markers (``##ing``, ``Ġword``, ``▁word``) or punctuation."""
    token = token.strip()
    for marker in ("##", "\u0120", "\u2581"):
        token = token.removeprefix(marker)
    return "".join(ch for ch in token.lower() if ch.isalnum())


def match_kind(match: TokenMatch) -> str:
    q, d = normalize_token(match.query_token), normalize_token(match.doc_token)
    return EXACT if q and q == d else MEANING


def chunk_spans(alignment: Sequence[TokenMatch]) -> list[Span]:
    """Spans of ``chunk_text`` to highlight, ordered by position; one per document token (exact wins)."""
    located = [m for m in alignment if m.doc_start >= 0 and m.doc_end > m.doc_start]
    if not located:
        return []
    strongest = max(m.similarity for m in located)
    by_span: dict[tuple[int, int], Span] = {}
    for m in located:
        kind = match_kind(m)
        if kind == MEANING and (m.similarity < MEANING_FLOOR * strongest or m.similarity < MEANING_MIN):
            continue
        key = (m.doc_start, m.doc_end)
        old = by_span.get(key)
        if old is None or (kind == EXACT and old.kind != EXACT) or (kind == old.kind and m.similarity > old.weight):
            by_span[key] = Span(m.doc_start, m.doc_end, kind, m.similarity, m.query_token)
    return sorted(by_span.values(), key=lambda s: (s.start, s.end))


def best_span_index(spans: Sequence[Span]) -> int:
    """Index of the strongest span (exact matches first), or -1 when there is none."""
    if not spans:
        return -1
    return max(range(len(spans)), key=lambda i: (spans[i].kind == EXACT, spans[i].weight, -i))


def contributions(alignment: Sequence[TokenMatch]) -> list[Contribution]:
    """Each query token's share of the MaxSim score (negative similarities count as zero)."""
    sims = [max(m.similarity, 0.0) for m in alignment]
    total = sum(sims)
    return [
        Contribution(m.query_token, m.doc_token, m.similarity, (s / total) if total > 0 else 0.0, match_kind(m))
        for m, s in zip(alignment, sims, strict=True)
    ]


def word_contributions(query_text: str, alignment: Sequence[TokenMatch]) -> list[Contribution]:
    """``contributions`` summed per word of the query, so "csv" split into "cs" + "v" reads as one row.

    Token labels are pieces of the query text, in order; when they cannot be placed in it, the rows stay
    per token.
    """
    rows = contributions(alignment)
    lowered = query_text.lower()
    words = [m.span() for m in re.finditer(r"\S+", query_text)]
    groups: list[tuple[int, list[Contribution]]] = []
    pos = 0
    for row in rows:
        at = lowered.find(row.query_token.lower(), pos) if row.query_token else -1
        word = next((i for i, (a, b) in enumerate(words) if a <= at < b), None)
        if word is None:
            return rows
        pos = at + len(row.query_token)
        if groups and groups[-1][0] == word:
            groups[-1][1].append(row)
        else:
            groups.append((word, [row]))
    out = []
    for word, members in groups:
        a, b = words[word]
        docs = list(dict.fromkeys(m.doc_token for m in members if m.doc_token))
        kind = EXACT if all(m.kind == EXACT for m in members) else MEANING
        out.append(Contribution(query_text[a:b], " ".join(docs), sum(m.similarity for m in members),
                                sum(m.share for m in members), kind))
    return out


def collapse_with_map(text: str) -> tuple[str, list[int]]:
    """``" ".join(text.split())`` and, for every character of ``text``, its index in the collapsed text."""
    out: list[str] = []
    index: list[int] = []
    pending_space = False
    for ch in text:
        if ch.isspace():
            pending_space = bool(out)
            index.append(len(out))
            continue
        if pending_space:
            out.append(" ")
            pending_space = False
        index.append(len(out))
        out.append(ch)
    return "".join(out), index


def snippet_spans(hit: SearchHit, spans: Sequence[Span] | None = None) -> list[Span]:
    """``spans`` of the chunk mapped into ``hit.snippet`` (a whitespace-collapsed window of the chunk)."""
    spans = chunk_spans(hit.alignment) if spans is None else spans
    if not spans or not hit.snippet or not hit.chunk_text:
        return []
    prefix = "… " if hit.snippet.startswith("… ") else ""
    core = hit.snippet[len(prefix):].removesuffix(" …")
    collapsed, index = collapse_with_map(hit.chunk_text)
    located = [(index[s.start], index[s.end - 1] + 1, s) for s in spans if s.end <= len(index)]
    best: list[Span] = []
    at = collapsed.find(core)
    while at >= 0:  # the window may occur more than once: take the occurrence holding the most matches
        inside = [Span(a - at + len(prefix), b - at + len(prefix), s.kind, s.weight, s.query_token)
                  for a, b, s in located if a >= at and b <= at + len(core)]
        if len(inside) > len(best):
            best = inside
        at = collapsed.find(core, at + 1)
    return best


def blend(a: QColor, b: QColor, amount: float) -> QColor:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * amount,
        a.greenF() + (b.greenF() - a.greenF()) * amount,
        a.blueF() + (b.blueF() - a.blueF()) * amount,
    )


def match_colors(palette: QPalette) -> dict[str, QColor]:
    """Backgrounds for exact and meaning matches, derived from the palette (works light and dark)."""
    base = palette.color(QPalette.ColorRole.Base)
    accent = palette.color(QPalette.ColorRole.Highlight)
    other = QColor.fromHsv((accent.hsvHue() + 150) % 360 if accent.hsvHue() >= 0 else 40,
                           max(accent.hsvSaturation(), 140), max(accent.value(), 180))
    return {EXACT: blend(base, accent, 0.45), MEANING: blend(base, other, 0.35)}


def spans_to_html(text: str, spans: Sequence[Span], colors: dict[str, QColor], *, text_color: QColor) -> str:
    """``text`` as HTML with each span bold on its match colour (exact and meaning told apart)."""
    out: list[str] = []
    pos = 0
    for s in spans:
        if s.start < pos:
            continue
        out.append(html.escape(text[pos:s.start]))
        style = f"background-color:{colors[s.kind].name()}; color:{text_color.name()};"
        style += " font-weight:600;" if s.kind == EXACT else " font-style:italic;"
        out.append(f'<span style="{style}">{html.escape(text[s.start:s.end])}</span>')
        pos = s.end
    out.append(html.escape(text[pos:]))
    return "".join(out)
