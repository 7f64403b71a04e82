"""Jupyter notebooks (.ipynb), read as JSON.

Each cell becomes one ``PageSpan`` numbered by its position in the notebook (empty cells count but are
left out), so a hit says "cell 7". A cell's text is its source (Markdown, code or raw), then the text of
its outputs: streams (printed text), ``text/plain`` results, and errors as ``Name: message``. Images and
other binary outputs are left out, as is the plain-text stand-in of an output that carries an image
(``<Figure size 640x480 ...>``). Terminal colour codes are removed. The span's label is the cell's first
Markdown heading. Notebook formats 4 (``cells``) and 3 (``worksheets``) are read. Title: the metadata
title, else the first Markdown heading, else the first line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from findling.engine.config import Config
from findling.engine.errors import CorruptFile
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.textutil import first_line, normalise_newlines, one_line
from findling.engine.records import ExtractedText

SUFFIXES: frozenset[str] = frozenset({".ipynb"})

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def extract_notebook(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of a Jupyter notebook, one page per cell."""
    del config  # the caller applies the size and length limits
    try:
        notebook = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptFile(f"not a Jupyter notebook: the file is not valid JSON ({_short(exc)})") from exc
    if not isinstance(notebook, dict):
        raise CorruptFile("not a Jupyter notebook: the JSON is not an object with cells")
    cells = _cells(notebook)
    pages: list[Page] = []
    headings: list[str] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            continue
        text, heading = _cell_text(cell)
        if heading:
            headings.append(heading)
        if text:
            pages.append(Page(number=number, text=text, label=heading))
    text, spans = join_pages(pages)
    metadata = notebook.get("metadata")
    title = metadata.get("title") if isinstance(metadata, dict) else None
    title = one_line(title) if isinstance(title, str) else ""
    title = title or (headings[0] if headings else "") or first_line(text) or path.name
    return ExtractedText(path=path, text=text, title=title, pages=spans, kind="notebook")


def _cells(notebook: dict) -> list:
    cells = notebook.get("cells")
    if isinstance(cells, list):
        return cells
    worksheets = notebook.get("worksheets")
    if isinstance(worksheets, list):
        return [cell for sheet in worksheets if isinstance(sheet, dict)
                for cell in (sheet.get("cells") if isinstance(sheet.get("cells"), list) else [])]
    raise CorruptFile("not a Jupyter notebook: the JSON has no cells")


def _cell_text(cell: dict) -> tuple[str, str]:
    """The text of one cell and its first Markdown heading (``""`` if none)."""
    source = _text(cell.get("source", cell.get("input", "")))
    heading = ""
    if cell.get("cell_type") in ("markdown", "heading"):
        found = _HEADING.search(source)
        heading = one_line(found.group(1)) if found else ""
        if cell.get("cell_type") == "heading":  # format 3 heading cells hold the heading text alone
            heading = one_line(source)
    parts = [source.strip()]
    outputs = cell.get("outputs")
    if isinstance(outputs, list):
        parts.extend(_output_text(output) for output in outputs if isinstance(output, dict))
    return "\n\n".join(part for part in parts if part), heading


def _output_text(output: dict) -> str:
    kind = output.get("output_type")
    if kind == "error" or kind == "pyerr":
        name, value = _text(output.get("ename", "")), _text(output.get("evalue", ""))
        return _clean(f"{name}: {value}" if value else name)
    if kind == "stream":
        return _clean(_text(output.get("text", "")))
    data = output.get("data")
    if isinstance(data, dict):  # format 4: execute_result, display_data
        if any(isinstance(mime, str) and mime.startswith("image/") for mime in data):
            return ""
        return _clean(_text(data.get("text/plain", "")))
    if any(key in output for key in ("png", "jpeg", "svg")):  # format 3 image output
        return ""
    return _clean(_text(output.get("text", "")))  # format 3 pyout


def _text(value: object) -> str:
    """A notebook string field: a string, or a list of strings to be joined."""
    if isinstance(value, str):
        return normalise_newlines(value)
    if isinstance(value, list):
        return normalise_newlines("".join(item for item in value if isinstance(item, str)))
    return ""


def _clean(text: str) -> str:
    return _ANSI.sub("", text).strip()


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:120]
