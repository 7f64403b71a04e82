"""Joining the pages or sections of a document into one text with a ``PageSpan`` for each."""
from __future__ import annotations

from dataclasses import dataclass

from findling.engine.records import PageSpan

SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Page:
    """The text of one page or section before joining."""

    number: int
    text: str
    label: str = ""


def join_pages(pages: list[Page]) -> tuple[str, tuple[PageSpan, ...]]:
    """The pages' texts joined by a blank line, and their spans.

    Spans are contiguous: each one runs up to where the next begins, so the separator after a page
    counts as part of it and every offset of the text falls in exactly one span.
    """
    starts: list[int] = []
    position = 0
    for index, page in enumerate(pages):
        if index:
            position += len(SEPARATOR)
        starts.append(position)
        position += len(page.text)
    text = SEPARATOR.join(page.text for page in pages)
    spans = tuple(
        PageSpan(
            number=page.number,
            start=starts[index],
            end=starts[index + 1] if index + 1 < len(pages) else len(text),
            label=page.label,
        )
        for index, page in enumerate(pages)
    )
    return text, spans
