"""Small string helpers shared by the extractors."""
from __future__ import annotations

MAX_TITLE = 200
"""Titles and section labels are cut to this many characters."""

_MAX_REASON = 160


def normalise_newlines(text: str) -> str:
    """``text`` with ``\\r\\n`` and lone ``\\r`` turned into ``\\n``."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def one_line(text: str) -> str:
    """``text`` with runs of whitespace collapsed to one space, trimmed and cut to ``MAX_TITLE``."""
    return " ".join(text.split())[:MAX_TITLE]


def first_line(text: str, *, scan: int = 50) -> str:
    """The first non-blank line among the first ``scan`` lines of ``text`` (see ``one_line``)."""
    for line in text.split("\n", scan)[:scan]:
        if line.strip():
            return one_line(line)
    return ""


def short_reason(exc: BaseException) -> str:
    """``exc`` as a short phrase for a failure reason: its message, else its type's name."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message[:_MAX_REASON]
