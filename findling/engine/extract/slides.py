"""Presentations: PowerPoint (.pptx, .pptm) and OpenDocument (.odp), read with zipfile and ElementTree.

Each slide becomes one ``PageSpan`` numbered by its position in the presentation (hidden slides count,
as in the application's slide sorter), so a hit says "slide 12". A slide's text is its shapes' paragraphs
in document order (text boxes, placeholders, tables, grouped shapes), then its speaker notes after a
``Notes:`` line. Slide-number, date, footer and header placeholders are left out: they repeat on every
slide and say nothing about it. The span's label is the slide's title. Slides without any text are left
out (their numbers are not reused).

PPTX: the order comes from ``ppt/presentation.xml`` and its relationships (else the slide part numbers);
each slide's notes are the notes slide its relationships name. ODP: ``draw:page`` elements of
``content.xml``, notes in their ``presentation:notes``. Document title: the metadata title, else the
first slide's title, else the first line.

Encrypted files are refused with their own reason (see ``officezip``); every member is read under
``archive.ZipLimits``.
"""
from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from xml.etree import ElementTree as ET

from findling.engine.config import Config
from findling.engine.errors import CorruptFile
from findling.engine.extract.archive import SafeZip, local, parse_xml
from findling.engine.extract.officezip import metadata_title, odf_paragraphs, open_package, refuse_odf_encryption
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.textutil import first_line, one_line
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

PPTX_SUFFIXES: frozenset[str] = frozenset({".pptx", ".pptm"})
ODP_SUFFIXES: frozenset[str] = frozenset({".odp"})

NOTES_HEADING = "Notes:"
"""The line that separates a slide's own text from its speaker notes."""

_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_DRAWINGML = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_PRESENTATION = "ppt/presentation.xml"
_SLIDE_PART = re.compile(r"ppt/slides/slide(\d+)\.xml")
_SLIDE_TYPE = "/slide"
_NOTES_TYPE = "/notesSlide"
_PPTX_SKIP_PLACEHOLDERS = frozenset({"sldNum", "dt", "ftr", "hdr", "sldImg"})
_PPTX_TITLES = frozenset({"title", "ctrTitle"})
_ODP_CLASS = "{urn:oasis:names:tc:opendocument:xmlns:presentation:1.0}class"
_ODP_SKIP_CLASSES = frozenset({"page-number", "date-time", "footer", "header", "page"})


def extract_pptx(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of a PowerPoint presentation, one page per slide."""
    del config  # the caller applies the size and length limits
    archive = open_package(data, what="PowerPoint presentation", old_format=".ppt")
    warnings: list[str] = []
    pages: list[Page] = []
    for number, slide_part in enumerate(_pptx_slide_parts(archive), start=1):
        page = _pptx_slide(archive, slide_part, number, warnings)
        if page is not None:
            pages.append(page)
    title = metadata_title(archive, "docProps/core.xml", warnings)
    return _result(path, pages, title, kind="pptx", warnings=warnings)


def extract_odp(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of an OpenDocument presentation, one page per slide."""
    del config  # the caller applies the size and length limits
    archive = open_package(data, what="OpenDocument presentation", old_format=".ppt")
    refuse_odf_encryption(archive, what="OpenDocument presentation")
    root = archive.read_xml("content.xml")
    presentation = next((el for el in root.iter() if local(el.tag) == "presentation"), None)
    if presentation is None:
        raise CorruptFile("content.xml holds no presentation; the file is damaged or not a real OpenDocument presentation")
    pages: list[Page] = []
    slides = [el for el in presentation if local(el.tag) == "page"]
    for number, slide in enumerate(slides, start=1):
        page = _odp_slide(slide, number)
        if page is not None:
            pages.append(page)
    warnings: list[str] = []
    title = metadata_title(archive, "meta.xml", warnings)
    return _result(path, pages, title, kind="odp", warnings=warnings)


def _result(path: Path, pages: list[Page], title: str, *, kind: str, warnings: list[str]) -> ExtractedText:
    text, spans = join_pages(pages)
    first_label = next((page.label for page in pages if page.label), "")
    title = title or first_label or first_line(text) or path.name
    return ExtractedText(path=path, text=text, title=title, pages=spans, kind=kind, warnings=tuple(warnings))


def _slide_text(body: list[str], notes: list[str]) -> str:
    text = "\n".join(body)
    if notes:
        text = f"{text}\n\n{NOTES_HEADING}\n" if text else f"{NOTES_HEADING}\n"
        text += "\n".join(notes)
    return text


# ------------------------------------------------------------------------------------------------ PPTX
def _pptx_slide_parts(archive: SafeZip) -> list[str]:
    """The slide parts in presentation order."""
    if archive.has(_PRESENTATION):
        targets = _relationships(archive, _PRESENTATION, _SLIDE_TYPE)
        order = [element.get(_R_ID, "") for element in archive.read_xml(_PRESENTATION).iter()
                 if local(element.tag) == "sldId"]
        parts = [targets[rid] for rid in order if rid in targets]
        if parts:
            return parts
    numbered = sorted((int(m.group(1)), name) for name in archive.names() if (m := _SLIDE_PART.fullmatch(name)))
    if not numbered and not archive.has(_PRESENTATION):
        raise CorruptFile(f"{_PRESENTATION} is missing; the file is damaged or not a real PowerPoint presentation")
    return [name for _, name in numbered]


def _relationships(archive: SafeZip, part: str, kind: str) -> dict[str, str]:
    """``{relationship id: target part}`` of ``part``'s relationships whose type ends with ``kind``."""
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", f"{name}.rels")
    if not archive.has(rels):
        return {}
    found: dict[str, str] = {}
    for element in archive.read_xml(rels).iter():
        if local(element.tag) != "Relationship" or not element.get("Type", "").endswith(kind):
            continue
        if element.get("TargetMode") == "External":
            continue
        target = element.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        found[element.get("Id", "")] = posixpath.normpath(resolved)
    return found


def _pptx_slide(archive: SafeZip, part: str, number: int, warnings: list[str]) -> Page | None:
    if not archive.has(part):
        warnings.append(f"slide {number} ({part}) is listed but missing; skipped")
        return None
    data = archive.read(part)  # a damaged or oversized member fails the whole file
    try:
        body, titles = _drawing_paragraphs(parse_xml(data, what=part))
    except CorruptFile as exc:  # malformed XML in one slide costs only that slide
        warnings.append(f"skipped slide {number}: {exc}")
        return None
    notes: list[str] = []
    for notes_part in _relationships(archive, part, _NOTES_TYPE).values():
        if not archive.has(notes_part):
            continue
        data = archive.read(notes_part)
        try:
            notes.extend(_drawing_paragraphs(parse_xml(data, what=notes_part))[0])
        except CorruptFile as exc:
            warnings.append(f"skipped the notes of slide {number}: {exc}")
    text = _slide_text(body, notes)
    if not text.strip():
        return None
    return Page(number=number, text=text, label=one_line(" ".join(titles)))


def _drawing_paragraphs(root: ET.Element) -> tuple[list[str], list[str]]:
    """The DrawingML paragraphs under ``root`` in document order, and those of its title placeholder.

    Walked with an explicit stack; placeholders in ``_PPTX_SKIP_PLACEHOLDERS`` and ``mc:Fallback``
    copies of alternate content are left out.
    """
    paragraphs: list[str] = []
    titles: list[str] = []
    stack: list[tuple[ET.Element, bool]] = [(root, False)]
    while stack:
        element, in_title = stack.pop()
        name = local(element.tag)
        if name == "Fallback":
            continue
        if name == "sp":
            kind = _placeholder_type(element)
            if kind in _PPTX_SKIP_PLACEHOLDERS:
                continue
            in_title = kind in _PPTX_TITLES
        if name == "p" and element.tag.startswith(_DRAWINGML):
            text = _drawing_paragraph(element)
            if text:
                paragraphs.append(text)
                if in_title:
                    titles.append(text)
            continue
        stack.extend((child, in_title) for child in reversed(element))
    return paragraphs, titles


def _placeholder_type(shape: ET.Element) -> str | None:
    """The ``p:ph`` type of a shape (``"body"`` when the placeholder names none), or None."""
    for element in shape.iter():
        if local(element.tag) == "ph":
            return element.get("type", "body")
        if local(element.tag) == "txBody":
            break  # the placeholder mark comes before the text
    return None


def _drawing_paragraph(paragraph: ET.Element) -> str:
    parts: list[str] = []
    for element in paragraph.iter():
        name = local(element.tag)
        if name == "t" and element.text:
            parts.append(element.text)
        elif name == "br":
            parts.append("\n")
        elif name == "tab":
            parts.append("\t")
    return "".join(parts).strip()


# ------------------------------------------------------------------------------------------------ ODP
def _odp_slide(slide: ET.Element, number: int) -> Page | None:
    _drop_repeated_frames(slide)
    notes_elements = [el for el in slide if local(el.tag) == "notes"]
    body = odf_paragraphs(slide, skip=frozenset({"notes"}))
    notes = [line for element in notes_elements for line in odf_paragraphs(element)]
    text = _slide_text(body, notes)
    if not text.strip():
        return None
    title_frame = next((el for el in slide.iter() if el.get(_ODP_CLASS) == "title"), None)
    label = one_line(" ".join(odf_paragraphs(title_frame))) if title_frame is not None else ""
    return Page(number=number, text=text, label=label)


def _drop_repeated_frames(slide: ET.Element) -> None:
    """Remove page-number, date, footer and header frames (and slide thumbnails) from ``slide``."""
    doomed = [(parent, child) for parent in slide.iter() for child in parent
              if child.get(_ODP_CLASS) in _ODP_SKIP_CLASSES]
    for parent, child in doomed:
        parent.remove(child)
