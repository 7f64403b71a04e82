"""Cut extracted text into token-bounded chunks with the active model's own tokenizer.

A chunk holds at most ``max_tokens`` content tokens. Within the last 40% of that window the cut goes to
the strongest break found (page > paragraph > line > sentence > word), so chunks end where the text does.
A cut at a page or paragraph break needs no overlap; a weaker cut repeats ``overlap`` tokens at the start
of the next chunk so a sentence split at the boundary is still found whole. In formats whose pages are
separate units (``records.SEPARATE_PAGE_KINDS``: slides, sheets, notebook cells, mail parts) every page
starts a new chunk, so each chunk's page is the only page its text came from.
"""
from __future__ import annotations

import bisect
from typing import Sequence

from findling.engine.encode.encoder import Tokenizer
from findling.engine.records import SEPARATE_PAGE_KINDS, Chunk, ExtractedText

MAX_CHUNK_TOKENS = 32768

# break strengths
_PAGE, _PARAGRAPH, _LINE, _SENTENCE, _WORD, _NONE = 5, 4, 3, 2, 1, 0
_STRONG = _PARAGRAPH


def chunk_text(doc: ExtractedText, tokenizer: Tokenizer, *, max_tokens: int, overlap: int = 32) -> list[Chunk]:
    """Chunks of ``doc.text`` in order, each with its character span, page and token count."""
    if not 1 <= max_tokens <= MAX_CHUNK_TOKENS:
        raise ValueError(f"max_tokens must be between 1 and {MAX_CHUNK_TOKENS}, not {max_tokens}")
    overlap = max(0, min(overlap, max_tokens // 4))
    text = doc.text
    spans = tokenizer.token_spans(text)
    if not spans:
        return []
    page_starts = sorted(p.start for p in doc.pages[1:])
    hard_cuts: list[int] = []  # token indices that must start a chunk (the first token of each separate page)
    if doc.kind in SEPARATE_PAGE_KINDS and page_starts:
        token_starts = [s for s, _e in spans]
        hard_cuts = sorted({bisect.bisect_left(token_starts, start) for start in page_starts} - {0, len(spans)})
    chunks: list[Chunk] = []
    i, n = 0, len(spans)
    while i < n:
        limit = n
        if hard_cuts:
            j = bisect.bisect_right(hard_cuts, i)
            if j < len(hard_cuts):
                limit = hard_cuts[j]
        end = min(i + max_tokens, limit)
        strength = _PAGE
        if end < limit:
            end, strength = _best_cut(text, spans, i, end, page_starts)
        start_char, end_char = spans[i][0], spans[end - 1][1]
        chunks.append(Chunk(ordinal=len(chunks), text=text[start_char:end_char], char_start=start_char,
                            char_end=end_char, token_count=end - i, page=doc.page_at(start_char),
                            ocr=any(p.ocr and p.start < end_char and start_char < p.end for p in doc.pages)))
        if end >= n:
            break
        i = end if strength >= _STRONG else max(end - overlap, i + 1)
    return chunks


def _best_cut(text: str, spans: Sequence[tuple[int, int]], i: int, end: int,
              page_starts: Sequence[int]) -> tuple[int, int]:
    """Token index in ``(i, end]`` to cut before, preferring strong breaks late in the window."""
    lowest = i + max(1, int((end - i) * 0.6))
    best_k, best_strength = end, _NONE
    for k in range(end, lowest - 1, -1):
        strength = _break_strength(text, spans[k - 1][1], spans[k][0], page_starts)
        if strength > best_strength:
            best_k, best_strength = k, strength
            if strength == _PAGE:
                break
    return best_k, best_strength


def _break_strength(text: str, gap_start: int, gap_end: int, page_starts: Sequence[int]) -> int:
    """How good a place to cut is the gap ``text[gap_start:gap_end]`` between two tokens."""
    p = bisect.bisect_right(page_starts, gap_start)
    if p < len(page_starts) and page_starts[p] <= gap_end:
        return _PAGE
    gap = text[gap_start:gap_end]
    if "\n\n" in gap or "\f" in gap:
        return _PARAGRAPH
    if "\n" in gap:
        return _LINE
    if gap and gap_start > 0 and text[gap_start - 1] in ".!?;:":
        return _SENTENCE
    return _WORD if gap else _NONE
