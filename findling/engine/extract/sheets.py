"""Spreadsheets: Excel (.xlsx, .xlsm) and OpenDocument (.ods), read with python-calamine.

Each sheet becomes one ``PageSpan`` numbered by its tab position, labelled with the sheet's name; the
sheet's text starts with that name on a line of its own. Rows are written one per line. The header row
(the first row with at least two cells, all of them text) is not written alone: every row below it is
written as ``Header: value | Header: value``, empty cells left out, so any chunk cut from the sheet still
says what each number means. Rows above the header, and every row of a sheet without one, are written as
``value | value``. Values read as a person sees them in the cell: integers without ``.0``, other numbers
to 12 significant digits (``1200.5``, not ``1200.5000000001``), dates as ``2024-03-15``, date-times as
``2024-03-15 14:30``, times as ``14:30``, booleans as ``TRUE``/``FALSE``. Chart sheets are left out.

Limits, all checked before calamine sees the file: ``officezip.check_members`` decompresses every member
under ``archive.ZipLimits`` (zip bombs, members lying about their size); and the used area of each sheet
(rows x columns between its first and last cells with values, which calamine holds in memory as a dense
grid) is measured from the sheet's XML and must be at most ``MAX_SHEET_CELLS``. In an Excel workbook a
sheet over it is skipped with a warning; an OpenDocument file is refused whole, since calamine reads all
of its sheets at once. Reading stops, with a warning, once ``max_text_chars`` characters are written or
after ``TIME_BUDGET_S`` seconds.
"""
from __future__ import annotations

import datetime as dt
import io
import logging
import math
import posixpath
import re
import time
from dataclasses import dataclass
from pathlib import Path

from findling.engine.config import Config
from findling.engine.errors import CorruptFile, FileTooLarge
from findling.engine.extract.archive import local, parse_xml
from findling.engine.extract.officezip import check_members, metadata_title, open_package, refuse_odf_encryption
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.textutil import one_line, short_reason
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

XLSX_SUFFIXES: frozenset[str] = frozenset({".xlsx", ".xlsm"})
ODS_SUFFIXES: frozenset[str] = frozenset({".ods"})

MAX_SHEET_CELLS = 4_000_000
"""Largest used area (rows x columns) of a sheet that is read; calamine holds it as a dense grid."""

TIME_BUDGET_S = 60.0
"""Seconds of writing rows per workbook; later rows and sheets are not read."""

SIGNIFICANT_DIGITS = 12
"""Numbers that are not integers are written to this many significant digits."""

_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_WORKBOOK = "xl/workbook.xml"
_WORKBOOK_RELS = "xl/_rels/workbook.xml.rels"
_XLSX_SHEET_PART = re.compile(r"xl/(?:worksheets|dialogsheets|macrosheets)/[^/]+\.xml")
_XLSX_VALUED_REF = re.compile(rb'<(?:[\w.-]+:)?c\s[^>]*?\br="([A-Z]{1,4})([0-9]{1,10})"[^>/]*>')
_XLSX_ANY_CELL = re.compile(rb"<(?:[\w.-]+:)?c[\s>/]")
_XLSX_REF_CELL = re.compile(rb'<(?:[\w.-]+:)?c\s[^>]*?\br="[A-Z]')
_XLSX_TAG = re.compile(rb"<(?:[\w.-]+:)?(row|c)(?=[\s>/])([^>]*)>")
_XLSX_ROW_R = re.compile(rb'\br="([0-9]{1,10})"')
_XLSX_CELL_R = re.compile(rb'\br="([A-Z]{1,4})([0-9]{1,10})"')
_ODS_TAG = re.compile(rb"<table:(table|table-row|table-cell|covered-table-cell)(?=[\s>/])([^>]*)>")
_ODS_NAME = re.compile(rb'\btable:name="([^"]*)"')
_ODS_ROWS = re.compile(rb'\btable:number-rows-repeated="([0-9]{1,10})"')
_ODS_COLUMNS = re.compile(rb'\btable:number-columns-repeated="([0-9]{1,10})"')
_SKIPPED_SHEET_TYPES = ("ChartSheet", "Vba")
_MIN_HEADER_CELLS = 2


@dataclass
class Extent:
    """The bounding box of a sheet's cells with values (0 rows when it has none)."""

    first_row: int = 0
    last_row: int = -1
    first_col: int = 0
    last_col: int = -1

    def add(self, first_row: int, last_row: int, first_col: int, last_col: int) -> None:
        if self.last_row < 0:
            self.first_row, self.last_row, self.first_col, self.last_col = first_row, last_row, first_col, last_col
            return
        self.first_row, self.last_row = min(self.first_row, first_row), max(self.last_row, last_row)
        self.first_col, self.last_col = min(self.first_col, first_col), max(self.last_col, last_col)

    @property
    def rows(self) -> int:
        return max(0, self.last_row - self.first_row + 1)

    @property
    def cols(self) -> int:
        return max(0, self.last_col - self.first_col + 1)

    @property
    def cells(self) -> int:
        return self.rows * self.cols


def extract_xlsx(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of an Excel workbook, one page per sheet."""
    archive = open_package(data, what="Excel workbook", old_format=".xls")
    extents: dict[str, Extent] = {}
    small_parts: dict[str, bytes] = {}

    def inspect(name: str, member: bytes) -> None:
        if _XLSX_SHEET_PART.fullmatch(name):
            extents[name] = xlsx_extent(member)
        elif name in (_WORKBOOK, _WORKBOOK_RELS):
            small_parts[name] = member

    check_members(data, archive, inspect)
    by_name = _xlsx_sheet_parts(small_parts)
    largest = max(extents.values(), key=lambda e: e.cells, default=Extent())
    warnings: list[str] = []

    def extent_of(sheet: str) -> Extent:
        part = by_name.get(sheet)
        return extents[part] if part in extents else largest  # unknown part: assume the worst

    title = metadata_title(archive, "docProps/core.xml", warnings)
    return _read_workbook(path, data, extent_of, title, warnings, kind="xlsx", config=config)


def extract_ods(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of an OpenDocument spreadsheet, one page per sheet."""
    archive = open_package(data, what="OpenDocument spreadsheet", old_format=".xls")
    refuse_odf_encryption(archive, what="OpenDocument spreadsheet")
    if not archive.has("content.xml"):
        raise CorruptFile("content.xml is missing; the file is damaged or not a real OpenDocument spreadsheet")
    extents: dict[str, Extent] = {}

    def inspect(name: str, member: bytes) -> None:
        if name == "content.xml":
            extents.update(ods_extents(member))

    check_members(data, archive, inspect)
    for sheet, extent in extents.items():  # calamine reads every sheet when it opens the file
        if extent.cells > MAX_SHEET_CELLS:
            raise FileTooLarge(f"{_too_large(sheet, extent)}; refusing the file")
    warnings: list[str] = []
    title = metadata_title(archive, "meta.xml", warnings)
    return _read_workbook(path, data, lambda sheet: extents.get(sheet, Extent()), title, warnings, kind="ods",
                          config=config)


def _too_large(sheet: str, extent: Extent) -> str:
    return (f"sheet {sheet!r} spans {extent.rows:,} rows x {extent.cols:,} columns, "
            f"over the {MAX_SHEET_CELLS:,}-cell limit")


def _read_workbook(path: Path, data: bytes, extent_of, title: str, warnings: list[str], *, kind: str,
                   config: Config) -> ExtractedText:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    try:
        deadline = time.monotonic() + TIME_BUDGET_S
        budget = config.max_text_chars
        pages: list[Page] = []
        for number, meta in enumerate(workbook.sheets_metadata, start=1):
            if budget <= 0 or time.monotonic() > deadline:
                why = "text limit reached (max_text_chars)" if budget <= 0 else f"reading took over {TIME_BUDGET_S:g} s"
                warnings.append(f"stopped before sheet {number} of {len(workbook.sheets_metadata)}: {why}")
                break
            if any(str(meta.typ).endswith(skipped) for skipped in _SKIPPED_SHEET_TYPES):
                continue
            extent = extent_of(meta.name)
            if extent.cells > MAX_SHEET_CELLS:
                warnings.append(f"skipped {_too_large(meta.name, extent)}")
                continue
            try:
                sheet = workbook.get_sheet_by_index(number - 1)
            except Exception as exc:  # a damaged sheet costs only that sheet
                logger.debug("sheet %d of %s failed", number, path, exc_info=True)
                warnings.append(f"skipped sheet {meta.name!r}: {short_reason(exc)}")
                continue
            text, stop = sheet_text(meta.name, sheet.iter_rows(), max_chars=budget, deadline=deadline)
            if stop:
                warnings.append(f"sheet {meta.name!r} cut short: {stop}")
            if text:
                pages.append(Page(number=number, text=text, label=one_line(meta.name)))
                budget -= len(text)
    finally:
        workbook.close()
    text, spans = join_pages(pages)
    return ExtractedText(path=path, text=text, title=title or path.name, pages=spans, kind=kind,
                         warnings=tuple(warnings))


# ------------------------------------------------------------------------------------------------ text
def sheet_text(name: str, rows, *, max_chars: int, deadline: float | None = None) -> tuple[str, str]:
    """The text of one sheet (see the module docstring) and why it stopped early (``""`` if it did not).

    ``rows`` yields lists of cell values as calamine gives them (``""`` for an empty cell).
    """
    lines = [one_line(name)] if name.strip() else []
    size = len(lines[0]) if lines else 0
    header: list[str] | None = None
    stop = ""
    for index, row in enumerate(rows):
        cells = [format_value(value) for value in row]
        filled = [cell for cell in cells if cell]
        if not filled:
            continue
        if header is None and _is_header(row, filled):
            header = cells
            continue
        if header is None:
            line = " | ".join(filled)
        else:
            line = " | ".join(f"{header[i]}: {cell}" if i < len(header) and header[i] else cell
                              for i, cell in enumerate(cells) if cell)
        lines.append(line)
        size += len(line) + 1
        if size >= max_chars:
            stop = "text limit reached (max_text_chars)"
            break
        if deadline is not None and index % 1000 == 999 and time.monotonic() > deadline:
            stop = f"reading took over {TIME_BUDGET_S:g} s"
            break
    if header is not None and len(lines) == 1:  # a sheet that is only a header row
        lines.append(" | ".join(cell for cell in header if cell))
    if len(lines) <= 1 and header is None:
        return "", stop  # the name alone says nothing about the sheet's content
    return "\n".join(lines), stop


def _is_header(row: list, filled: list[str]) -> bool:
    return len(filled) >= _MIN_HEADER_CELLS and all(isinstance(value, str) for value in row if value != "")


def format_value(value: object) -> str:
    """One cell value as a person reads it in the cell (see the module docstring); ``""`` when empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M" if not value.second else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M" if not value.second else "%H:%M:%S")
    if isinstance(value, dt.timedelta):
        seconds = round(value.total_seconds())
        sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
        return f"{sign}{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return " ".join(str(value).split())


def format_number(value: float) -> str:
    """``value`` without float noise: ``3.0`` -> ``"3"``, ``1200.5000000001`` -> ``"1200.5"``."""
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.{SIGNIFICANT_DIGITS}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}E{int(exponent):+03d}"  # as a spreadsheet shows it: 1.5E-07
    return text


# ------------------------------------------------------------------------------------------------ extents
def xlsx_extent(xml: bytes) -> Extent:
    """The used area of an Excel worksheet part, as calamine will lay it out.

    Cells with a value (elements that are not empty) count; a cell without an ``r`` reference follows
    the one before it, a row without one follows the row before it.
    """
    extent = Extent()
    explicit = len(_XLSX_REF_CELL.findall(xml))
    if explicit == len(_XLSX_ANY_CELL.findall(xml)):  # every cell says where it is: no walk needed
        refs = _XLSX_VALUED_REF.findall(xml)
        if refs:
            letters, digits = zip(*refs)
            cols = [_column(name) for name in set(letters)]
            rows = list(map(int, digits))
            extent.add(min(rows) - 1, max(rows) - 1, min(cols) - 1, max(cols) - 1)
        return extent
    row = col = -1
    for match in _XLSX_TAG.finditer(xml):
        tag, attrs = match.group(1), match.group(2)
        if tag == b"row":
            ref = _XLSX_ROW_R.search(attrs)
            row = int(ref.group(1)) - 1 if ref else row + 1
            col = -1
            continue
        ref = _XLSX_CELL_R.search(attrs)
        if ref:
            col, row = _column(ref.group(1)) - 1, int(ref.group(2)) - 1
        else:
            col += 1
        if not attrs.endswith(b"/"):
            extent.add(row, row, col, col)
    return extent


def ods_extents(xml: bytes) -> dict[str, Extent]:
    """The used area of each sheet in an OpenDocument ``content.xml``, repeated rows and columns expanded.

    Tags are matched with the ``table:`` prefix, as calamine matches them.
    """
    extents: dict[str, Extent] = {}
    extent = Extent()
    row, row_repeat, col = 0, 0, 0
    for match in _ODS_TAG.finditer(xml):
        tag, attrs = match.group(1), match.group(2)
        if tag == b"table":
            name = _ODS_NAME.search(attrs)
            sheet = name.group(1).decode("utf-8", "replace") if name else f"Sheet{len(extents) + 1}"
            extent = extents.setdefault(_unescape(sheet), Extent())
            row, row_repeat, col = 0, 0, 0
        elif tag == b"table-row":
            row += row_repeat
            repeat = _ODS_ROWS.search(attrs)
            row_repeat = max(1, int(repeat.group(1))) if repeat else 1
            col = 0
        else:
            repeat = _ODS_COLUMNS.search(attrs)
            span = max(1, int(repeat.group(1))) if repeat else 1
            if not attrs.endswith(b"/") or b"value-type=" in attrs:
                extent.add(row, row + max(row_repeat, 1) - 1, col, col + span - 1)
            col += span
    return extents


def _column(letters: bytes) -> int:
    number = 0
    for char in letters:
        number = number * 26 + char - 64
    return number


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))


def _xlsx_sheet_parts(parts: dict[str, bytes]) -> dict[str, str]:
    """``{sheet name: worksheet part}`` from the workbook and its relationships (empty if unreadable)."""
    if _WORKBOOK not in parts or _WORKBOOK_RELS not in parts:
        return {}
    try:
        workbook = parse_xml(parts[_WORKBOOK], what=_WORKBOOK)
        rels = parse_xml(parts[_WORKBOOK_RELS], what=_WORKBOOK_RELS)
    except CorruptFile:
        return {}
    targets = {}
    for element in rels.iter():
        if local(element.tag) == "Relationship":
            target = element.get("Target", "")
            resolved = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
            targets[element.get("Id", "")] = posixpath.normpath(resolved)
    return {element.get("name", ""): targets.get(element.get(_R_ID, ""), "")
            for element in workbook.iter() if local(element.tag) == "sheet"}

