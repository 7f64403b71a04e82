"""HTML and XHTML: the visible text, with block elements on their own lines.

Uses the standard library's event-driven ``html.parser``, so depth of nesting costs nothing (no
recursion). Skipped: ``script``, ``style``, ``noscript``, ``template``, ``svg``, ``math`` annotations
and everything in ``head`` except ``title``. Entities are decoded by the parser. The title is
``<title>``, else the first ``<h1>``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from findling.engine.config import Config
from findling.engine.extract.decode import decode_text
from findling.engine.extract.textutil import one_line
from findling.engine.records import ExtractedText

SUFFIXES: frozenset[str] = frozenset({".html", ".htm", ".xhtml", ".xht"})

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object", "select"})
_HEAD_ONLY = frozenset({"title", "meta", "link", "base", "style", "script", "noscript", "template"})
_PARAGRAPH = frozenset(
    """p h1 h2 h3 h4 h5 h6 pre blockquote table ul ol dl section article aside header footer nav main
    figure figcaption form fieldset address details summary hr body html""".split()
)
_LINE = frozenset("div li dt dd tr br caption legend center label".split())
_BLOCKS = _PARAGRAPH | _LINE
_VOID = frozenset({"br", "hr", "img"})
_CELL = frozenset({"td", "th"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_CHARSET = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_PRESCAN_BYTES = 4096


@dataclass(frozen=True)
class HtmlText:
    """What ``parse_html`` finds: the visible text, ``<title>``, and the first heading."""

    text: str
    title: str
    first_h1: str
    first_heading: str


def extract_html(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Visible text of an HTML or XHTML file."""
    del config  # the caller applies the size and length limits
    decoded = decode_text(data, declared=sniff_charset(data))
    parsed = parse_html(decoded.text)
    return ExtractedText(
        path=path,
        text=parsed.text,
        title=parsed.title or parsed.first_h1 or path.name,
        kind="html",
        warnings=decoded.warnings,
    )


def sniff_charset(data: bytes) -> str | None:
    """The charset named by a ``<meta>`` tag or an XML declaration near the start of ``data``."""
    head = data[:_PRESCAN_BYTES]
    for match in _CHARSET.finditer(head):
        start = head.rfind(b"<", 0, match.start())
        tag = head[start : start + 5].lower()
        if tag.startswith((b"<meta", b"<?xml")):
            return match.group(1).decode("ascii")
    return None


def parse_html(markup: str) -> HtmlText:
    """The visible text of ``markup`` (a whole document or a fragment)."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    return parser.result()


class _TextParser(HTMLParser):
    """Collects visible text into lines; keeps only a small stack of skipped elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[str] = []
        self._line: list[str] = []
        self._skip: list[str] = []  # open elements whose content is hidden
        self._in_head = False
        self._pre = 0
        self._capture: str | None = None  # "title" or a heading tag being recorded
        self._captured: list[str] = []
        self._title = ""
        self._first_h1 = ""
        self._first_heading = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self._in_head = True
            return
        if self._in_head and tag not in _HEAD_ONLY:
            self._in_head = False  # body content without </head>: the head has ended
        if tag in _SKIP:
            self._skip.append(tag)
            return
        if self._skip:
            return
        if self._capture is None and self._wants_capture(tag):
            self._capture, self._captured = tag, []
        self._block_boundary(tag)
        if tag == "pre":
            self._pre += 1
        elif tag in _CELL and self._line:
            self._line.append(" ")
        elif tag == "img":
            self._image_text(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            return  # <svg/>: nothing inside to hide
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and tag in _BLOCKS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
            return
        if tag in _SKIP and tag in self._skip:
            while self._skip.pop() != tag:
                pass
            return
        if self._skip:
            return
        if tag == self._capture:
            self._finish_capture()
        if tag != "br":
            self._block_boundary(tag)
        if tag == "pre" and self._pre:
            self._pre -= 1

    def handle_data(self, data: str) -> None:
        if self._skip or (self._in_head and self._capture != "title"):
            return
        if self._capture is not None:
            self._captured.append(data)
        if self._capture == "title":
            return
        if self._pre:
            self._add_preformatted(data)
        else:
            self._line.append(_SPACES.sub(" ", data))

    def result(self) -> HtmlText:
        if self._capture is not None:
            self._finish_capture()
        self._break(blank=False)
        while self._lines and not self._lines[-1]:
            self._lines.pop()
        return HtmlText(
            text="\n".join(self._lines),
            title=self._title,
            first_h1=self._first_h1,
            first_heading=self._first_heading,
        )

    def _block_boundary(self, tag: str) -> None:
        if tag == "br":
            self._break(blank=False, keep_empty=True)
        elif tag in _PARAGRAPH:
            self._break(blank=True)
        elif tag in _LINE:
            self._break(blank=False)

    def _break(self, *, blank: bool, keep_empty: bool = False) -> None:
        """End the current line; ``blank`` also leaves one empty line (never two in a row)."""
        line = "".join(self._line)
        self._line = []
        line = line.rstrip() if self._pre else line.strip()
        if line or keep_empty:
            self._lines.append(line)
        if blank and self._lines and self._lines[-1]:
            self._lines.append("")

    def _add_preformatted(self, data: str) -> None:
        parts = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._line.append(parts[0])
        for part in parts[1:]:
            self._lines.append("".join(self._line).rstrip())
            self._line = [part]

    def _image_text(self, attrs: list[tuple[str, str | None]]) -> None:
        alt = dict(attrs).get("alt")
        if alt and alt.strip():
            self._line.append(f" {_SPACES.sub(' ', alt.strip())} ")

    def _wants_capture(self, tag: str) -> bool:
        if tag == "title":
            return not self._title
        if tag == "h1" and not self._first_h1:
            return True
        return tag in _HEADINGS and not self._first_heading

    def _finish_capture(self) -> None:
        text = one_line("".join(self._captured))
        tag, self._capture, self._captured = self._capture, None, []
        if not text:
            return
        if tag == "title":
            self._title = self._title or text
            return
        self._first_heading = self._first_heading or text
        if tag == "h1":
            self._first_h1 = self._first_h1 or text
