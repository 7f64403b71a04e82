"""Word (.docx) and OpenDocument (.odt) text documents, read with zipfile and ElementTree.

DOCX: ``word/document.xml`` (then foot- and endnotes): paragraphs ``w:p``, text runs ``w:t``, tabs and
breaks; paragraphs styled as headings get a blank line around them. Title: ``dc:title`` in
``docProps/core.xml``, else the first Title/heading paragraph, else the first line.

ODT: ``content.xml``: ``text:p`` and ``text:h`` with spans, links, ``text:s`` spaces, tabs and line
breaks. Title: ``dc:title`` in ``meta.xml``, else the first heading, else the first line.

The XML trees are walked with an explicit stack, so deep nesting cannot exhaust recursion.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

from findling.engine.config import Config
from findling.engine.errors import CorruptFile
from findling.engine.extract.archive import SafeZip, local, parse_xml
from findling.engine.extract.textutil import first_line, one_line
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

DOCX_SUFFIXES: frozenset[str] = frozenset({".docx", ".docm"})
ODT_SUFFIXES: frozenset[str] = frozenset({".odt"})

_W_ATTR_VAL = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}val"
_TEXT_C = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}c"
_DOCX_NOTES = ("word/footnotes.xml", "word/endnotes.xml")
_DOCX_SKIP = frozenset({"Fallback", "moveFrom", "del"})  # duplicated text-box text, deleted revisions
_ODT_SKIP = frozenset({"tracked-changes", "annotation", "annotation-end", "sequence-decls"})
_RUN_BREAKS = {"tab": "\t", "br": "\n", "cr": "\n", "noBreakHyphen": "-"}
_SPACES = re.compile(r"\s+")

Event = tuple[str, ET.Element, str]  # ("start" | "end" | "text", element that owns it, text)


def walk(root: ET.Element, *, skip: frozenset[str] = frozenset()) -> Iterator[Event]:
    """Document-order start/text/end events of ``root``'s tree, without recursion.

    A text event's element is the one whose content holds the text (for a tail, the parent).
    Elements whose local name is in ``skip`` are left out with their content, but not their tail.
    """
    stack: list[tuple[ET.Element, ET.Element | None, bool]] = [(root, None, False)]
    while stack:
        element, parent, finished = stack.pop()
        if finished:
            yield "end", element, ""
        elif local(element.tag) not in skip:
            yield "start", element, ""
            if element.text:
                yield "text", element, element.text
            stack.append((element, parent, True))
            stack.extend((child, element, False) for child in reversed(element))
            continue
        if element.tail and parent is not None:
            yield "text", parent, element.tail


class _Lines:
    """Paragraph lines being assembled; headings get a blank line around them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.headings: list[str] = []
        self._parts: list[str] = []

    def add(self, text: str) -> None:
        self._parts.append(text)

    def end_line(self, *, heading: bool = False) -> str:
        """Finish the current line and return it (``""`` when it was empty and so dropped)."""
        line = "".join(self._parts).strip()
        self._parts = []
        if not line:
            return ""
        if heading:
            self.headings.append(line)
            if self.lines and self.lines[-1]:
                self.lines.append("")
        self.lines.append(line)
        if heading:
            self.lines.append("")
        return line

    def text(self) -> str:
        self.end_line()
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines)


def extract_docx(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of a Word document."""
    del config  # the caller applies the size and length limits
    archive = SafeZip(data, what="Word document")
    lines = _Lines()
    title_paragraphs: list[str] = []
    _docx_lines(archive.read_xml("word/document.xml"), lines, title_paragraphs)
    warnings: list[str] = []
    for part in _DOCX_NOTES:
        if archive.has(part):
            _docx_lines(_optional_xml(archive, part, warnings), lines, [])
    text = lines.text()
    title = _metadata_title(archive, "docProps/core.xml", warnings)
    title = title or _first(title_paragraphs) or _first(lines.headings) or first_line(text) or path.name
    return ExtractedText(path=path, text=text, title=title, kind="docx", warnings=tuple(warnings))


def _docx_lines(root: ET.Element | None, lines: _Lines, title_paragraphs: list[str]) -> None:
    """Append the paragraphs of a WordprocessingML part to ``lines``."""
    if root is None:
        return
    styles: list[str] = []  # style of each open paragraph (paragraphs nest inside text boxes)
    for event, element, text in walk(root, skip=_DOCX_SKIP):
        name = local(element.tag)
        if event == "text":
            if name == "t" and styles:
                lines.add(text)
        elif name == "p":
            if event == "start":
                lines.end_line()  # text of an enclosing paragraph before a nested one
                styles.append("")
            else:
                _end_docx_paragraph(lines, styles.pop() if styles else "", title_paragraphs)
        elif event == "start" and styles:
            _docx_marker(name, element, lines, styles)


def _docx_marker(name: str, element: ET.Element, lines: _Lines, styles: list[str]) -> None:
    if name == "pStyle":
        styles[-1] = (element.get(_W_ATTR_VAL) or "").lower().replace(" ", "")
    elif name == "outlineLvl" and not styles[-1]:
        styles[-1] = "heading"
    elif name in _RUN_BREAKS and (name != "tab" or not element.attrib):
        # a w:tab with attributes is a tab stop definition (inside w:tabs), not a tab character
        lines.add(_RUN_BREAKS[name])


def _end_docx_paragraph(lines: _Lines, style: str, title_paragraphs: list[str]) -> None:
    heading = style in ("title", "subtitle") or style.startswith("heading")
    line = lines.end_line(heading=heading)
    if style == "title" and line:
        title_paragraphs.append(one_line(line))


def extract_odt(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of an OpenDocument text document."""
    del config  # the caller applies the size and length limits
    archive = SafeZip(data, what="OpenDocument file")
    root = archive.read_xml("content.xml")
    body = next((el for el in root if local(el.tag) == "body"), None)
    if body is None:
        raise CorruptFile("content.xml has no document body; the OpenDocument file is damaged")
    lines = _Lines()
    _odt_lines(body, lines)
    text = lines.text()
    warnings: list[str] = []
    title = _metadata_title(archive, "meta.xml", warnings)
    title = title or _first(lines.headings) or first_line(text) or path.name
    return ExtractedText(path=path, text=text, title=title, kind="odt", warnings=tuple(warnings))


def _odt_lines(body: ET.Element, lines: _Lines) -> None:
    depth = 0  # open text:p / text:h elements
    headings: list[bool] = []
    for event, element, text in walk(body, skip=_ODT_SKIP):
        name = local(element.tag)
        if event == "text":
            if depth:
                lines.add(_SPACES.sub(" ", text))
        elif name in ("p", "h"):
            if event == "start":
                lines.end_line()
                depth += 1
                headings.append(name == "h")
            else:
                depth -= 1
                lines.end_line(heading=headings.pop())
        elif event == "start" and depth:
            _odt_marker(name, element, lines)


def _odt_marker(name: str, element: ET.Element, lines: _Lines) -> None:
    if name == "s":
        count = element.get(_TEXT_C, "1")
        lines.add(" " * min(int(count) if count.isdigit() else 1, 1000))
    elif name == "tab":
        lines.add("\t")
    elif name == "line-break":
        lines.add("\n")


def _optional_xml(archive: SafeZip, name: str, warnings: list[str]) -> ET.Element | None:
    """An optional part; malformed XML in it is a warning, not a failure of the whole file.

    A part that cannot be decompressed or expands too far still fails the file.
    """
    data = archive.read(name)
    try:
        return parse_xml(data, what=name)
    except CorruptFile as exc:
        warnings.append(f"skipped {name}: {exc}")
        return None


def _metadata_title(archive: SafeZip, name: str, warnings: list[str]) -> str:
    if not archive.has(name):
        return ""
    root = _optional_xml(archive, name, warnings)
    if root is None:
        return ""
    for element in root.iter():
        if local(element.tag) == "title" and element.text and element.text.strip():
            return one_line(element.text)
    return ""


def _first(items: list[str]) -> str:
    return one_line(items[0]) if items else ""
