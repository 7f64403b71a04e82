"""Highlight spans, exact versus meaning matches, score shares, snippet mapping (hand-computed cases)."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QPalette

from findling.app.highlight import (
    EXACT,
    MEANING,
    Span,
    best_span_index,
    chunk_spans,
    collapse_with_map,
    contributions,
    match_colors,
    match_kind,
    normalize_token,
    snippet_spans,
    spans_to_html,
    word_contributions,
)
from findling.engine import SearchHit, TokenMatch


def tm(q: str, start: int, end: int, sim: float, doc: str) -> TokenMatch:
    return TokenMatch(query_token=q, doc_start=start, doc_end=end, similarity=sim, doc_token=doc)


def test_normalize_strips_case_and_subword_markers():
    assert normalize_token("##Ing") == "ing"
    assert normalize_token("\u0120Word") == "word"
    assert normalize_token("\u2581csv,") == "csv"


def test_exact_versus_meaning():
    assert match_kind(tm("CSV", 0, 3, 0.9, "csv")) == EXACT
    assert match_kind(tm("spreadsheet", 0, 3, 0.7, "csv")) == MEANING
    assert match_kind(tm("", 0, 3, 0.7, "")) == MEANING


def test_chunk_spans_merge_and_drop_weak_meaning_matches():
    text = "Read CSV files"
    alignment = (
        tm("csv", 5, 8, 0.95, "CSV"),
        tm("table", 5, 8, 0.80, "CSV"),  # same span as an exact match: exact wins
        tm("read", 0, 4, 0.90, "Read"),
        tm("folder", 9, 14, 0.70, "files"),  # meaning match, strong enough
        tm("the", 9, 14, 0.20, "files"),  # weak: not highlighted
        tm("[Q]", -1, -1, 0.5, ""),  # marker: nothing to highlight
    )
    spans = chunk_spans(alignment)
    assert [(s.start, s.end, s.kind) for s in spans] == [(0, 4, EXACT), (5, 8, EXACT), (9, 14, MEANING)]
    assert [text[s.start:s.end] for s in spans] == ["Read", "CSV", "files"]
    assert best_span_index(spans) == 1
    assert best_span_index([]) == -1


def test_contributions_are_shares_of_the_summed_similarity():
    rows = contributions((tm("a", 0, 1, 0.6, "a"), tm("b", 2, 3, 0.2, "x"), tm("c", 4, 5, -0.1, "y")))
    assert [r.share for r in rows] == pytest.approx([0.75, 0.25, 0.0])
    assert [r.kind for r in rows] == [EXACT, MEANING, MEANING]
    assert contributions(()) == []


def test_collapse_with_map_matches_split_join():
    text = "  a\n\n bc \t d  "
    collapsed, index = collapse_with_map(text)
    assert collapsed == " ".join(text.split()) == "a bc d"
    assert [collapsed[index[i]] for i, ch in enumerate(text) if not ch.isspace()] == list("abcd")


def test_snippet_spans_follow_the_collapsed_window():
    chunk = "Intro text here.\n\nThe   csv module\nreads rows."
    snippet = "… csv module reads rows."
    hit = SearchHit(path=Path("/x/a.md"), score=1.0, chunk_id=1, chunk_ordinal=0, page=None, snippet=snippet,
                    chunk_text=chunk,
                    alignment=(tm("csv", chunk.index("csv"), chunk.index("csv") + 3, 0.9, "csv"),
                               tm("rows", chunk.index("rows"), chunk.index("rows") + 4, 0.9, "rows"),
                               tm("intro", 0, 5, 0.9, "Intro")))  # outside the snippet: dropped
    spans = snippet_spans(hit)
    assert [snippet[s.start:s.end] for s in spans] == ["csv", "rows"]


def test_html_escapes_and_marks_both_kinds():
    colors = match_colors(QPalette())
    html = spans_to_html("a <b> c", [Span(2, 5, EXACT, 1.0), Span(6, 7, MEANING, 0.5)], colors,
                         text_color=QColor("black"))
    assert "&lt;b&gt;" in html
    assert "font-weight:600" in html and "font-style:italic" in html
    assert colors[EXACT].name() in html and colors[MEANING].name() in html
    assert colors[EXACT] != colors[MEANING]


def test_match_colours_follow_a_dark_palette():
    dark = QPalette()
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 30))
    dark.setColor(QPalette.ColorRole.Highlight, QColor(40, 110, 200))
    colors = match_colors(dark)
    assert all(c.lightness() < 160 for c in colors.values())  # still dark, so light text stays readable


def test_snippet_spans_pick_the_occurrence_that_holds_the_matches():
    chunk = "red fox jumps. " * 3
    snippet = "… red fox jumps. …"
    last = chunk.rindex("fox")
    hit = SearchHit(path=Path("/x/a.md"), score=1.0, chunk_id=1, chunk_ordinal=0, page=None, snippet=snippet,
                    chunk_text=chunk, alignment=(tm("fox", last, last + 3, 0.9, "fox"),))
    assert [(snippet[s.start:s.end], s.start) for s in snippet_spans(hit)] == [("fox", 6)]


def test_word_contributions_sum_token_pieces_per_word():
    alignment = (tm("cs", 0, 2, 0.5, "CS"), tm("v", 2, 3, 0.3, "V"), tm("reader", 4, 10, 0.2, "reading"))
    rows = word_contributions("csv reader", alignment)
    assert [(r.query_token, r.doc_token, r.kind) for r in rows] == [("csv", "CS V", EXACT), ("reader", "reading",
                                                                                             MEANING)]
    assert [r.share for r in rows] == pytest.approx([0.8, 0.2])
    assert word_contributions("", alignment) == contributions(alignment)  # cannot place them: per token


def test_the_preview_names_the_lanes_that_found_a_hit_in_plain_words():
    from findling.app.preview import found_by_text

    assert found_by_text(()) == ""
    assert found_by_text(("bm25",)) == "keywords (BM25)"
    assert found_by_text(("maxsim", "bm25")) == "meaning (MaxSim) and keywords (BM25)"
    assert found_by_text(("maxsim", "bm25", "dense")) == \
        "meaning (MaxSim), keywords (BM25) and overall topic (dense)"
