"""Spreadsheets: XLSX written by xlsxwriter, ODS written by odfpy, read back through ``extract``."""
from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import replace

import pytest
import xlsxwriter
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P

from findling.engine.errors import CorruptFile, EncryptedFile, FileTooLarge
from findling.engine.extract import extract, page_unit
from findling.engine.extract.sheets import MAX_SHEET_CELLS, format_value
from tests.engine.test_extract_pdf import make_pdf

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def make_xlsx(sheets: dict[str, list[list]], *, chart_sheet_at: int | None = None) -> bytes:
    """A workbook with one worksheet per entry; datetimes get a date format, cells written as typed."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for index, (name, rows) in enumerate(sheets.items()):
        if chart_sheet_at == index:
            chart = book.add_chart({"type": "column"})
            chart.add_series({"values": f"='{name}'!$B$2:$B$3"})
            book.add_chartsheet("Chart").set_chart(chart)
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, dt.datetime):
                    sheet.write_datetime(r, c, value, stamp if value.time() != dt.time() else date)
                else:
                    sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


def make_ods(sheets: dict[str, list[list]]) -> bytes:
    """An OpenDocument spreadsheet; strings, floats and ``datetime.date`` values are typed as such."""
    doc = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for row in rows:
            element = TableRow()
            for value in row:
                if value is None:
                    element.addElement(TableCell())
                elif isinstance(value, dt.date):
                    cell = TableCell(valuetype="date", datevalue=value.isoformat())
                    cell.addElement(P(text=value.isoformat()))
                    element.addElement(cell)
                elif isinstance(value, (int, float)):
                    cell = TableCell(valuetype="float", value=repr(value))
                    cell.addElement(P(text=str(value)))
                    element.addElement(cell)
                else:
                    cell = TableCell(valuetype="string")
                    cell.addElement(P(text=value))
                    element.addElement(cell)
            table.addElement(element)
        doc.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    doc.write(buffer)
    return buffer.getvalue()


def _sheet_text(doc, number: int) -> str:
    span = next(span for span in doc.pages if span.number == number)
    return doc.text[span.start:span.end].strip()


def test_xlsx_rows_keep_their_column_names(tmp_path, config):
    path = tmp_path / "budget.xlsx"
    path.write_bytes(make_xlsx({
        "Budget 2024": [
            ["Office budget"],  # a title above the header row
            [],
            ["Item", "Cost", "Bought", "Paid"],
            ["Coffee beans", 1200.5000000001, dt.datetime(2024, 3, 15), True],
            ["Tea", 3.0, dt.datetime(2024, 3, 16, 14, 30), False],
            ["Cups", None, None, None],
        ],
        "Staff": [["Name", "Room"], ["Ann", 12]],
    }))
    doc = extract(path, config=config)
    assert doc.kind == "xlsx" and page_unit(path.suffix) == "sheet"
    assert [(span.number, span.label) for span in doc.pages] == [(1, "Budget 2024"), (2, "Staff")]
    assert _sheet_text(doc, 1).split("\n") == [
        "Budget 2024",
        "Office budget",
        "Item: Coffee beans | Cost: 1200.5 | Bought: 2024-03-15 | Paid: TRUE",
        "Item: Tea | Cost: 3 | Bought: 2024-03-16 14:30 | Paid: FALSE",
        "Item: Cups",
    ]
    assert _sheet_text(doc, 2) == "Staff\nName: Ann | Room: 12"
    assert doc.page_at(doc.text.index("Room: 12")) == 2


def test_chart_sheets_are_left_out_but_keep_their_tab_number(tmp_path, config):
    path = tmp_path / "charted.xlsx"
    path.write_bytes(make_xlsx({"Data": [["Month", "Rain"], ["May", 40], ["June", 55]], "Notes": [["a", "b"], [1, 2]]},
                               chart_sheet_at=1))
    doc = extract(path, config=config)
    assert [(span.number, span.label) for span in doc.pages] == [(1, "Data"), (3, "Notes")]


def test_a_sheet_of_only_numbers_has_no_header(tmp_path, config):
    path = tmp_path / "numbers.xlsx"
    path.write_bytes(make_xlsx({"Raw": [[1, 2.25], [3, 4]]}))
    assert extract(path, config=config).text == "Raw\n1 | 2.25\n3 | 4"


def test_ods_sheets_pages_and_values(tmp_path, config):
    path = tmp_path / "people.ods"
    path.write_bytes(make_ods({
        "People": [["Name", "Amount", "Born"], ["Ann", 1200.5000000001, dt.date(1990, 1, 2)], ["Bob", 7.0, None]],
        "Empty": [],
        "Rooms": [["Room", "Floor"], ["Lab", 2]],
    }))
    doc = extract(path, config=config)
    assert doc.kind == "ods"
    assert [(span.number, span.label) for span in doc.pages] == [(1, "People"), (3, "Rooms")]
    assert _sheet_text(doc, 1).split("\n") == ["People", "Name: Ann | Amount: 1200.5 | Born: 1990-01-02",
                                               "Name: Bob | Amount: 7"]
    assert doc.page_at(doc.text.index("Floor: 2")) == 3


@pytest.mark.parametrize(("value", "shown"), [
    (3.0, "3"), (-12.0, "-12"), (1200.5000000001, "1200.5"), (0.1 + 0.2, "0.3"), (2.5e-7, "2.5E-07"),
    (123456789012.0, "123456789012"), (7, "7"), (True, "TRUE"), ("  two\nlines ", "two lines"), ("", ""),
    (dt.date(2024, 2, 29), "2024-02-29"), (dt.datetime(2024, 2, 29), "2024-02-29"),
    (dt.datetime(2024, 2, 29, 8, 5), "2024-02-29 08:05"), (dt.time(9, 30), "09:30"), (dt.time(9, 30, 15), "09:30:15"),
    (dt.timedelta(hours=26, minutes=3), "26:03:00"),
])
def test_values_read_as_a_person_sees_them(value, shown):
    assert format_value(value) == shown


def _xlsx_with_cells(cells: dict[str, str]) -> bytes:
    """A minimal hand-written workbook with one sheet holding ``{reference: inline string}``."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    rows = "".join(f'<row r="{ref.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}"><c r="{ref}" t="inlineStr"><is><t>{text}</t>'
                   f'</is></c></row>' for ref, text in cells.items())
    parts = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                               '<Default Extension="xml" ContentType="application/xml"/></Types>',
        "_rels/.rels": f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                       f'<Relationship Id="r1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook {ns} xmlns:r="{rel}"><sheets><sheet name="Far" sheetId="1" r:id="r1"/>'
                           f'<sheet name="Near" sheetId="2" r:id="r2"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                                      f'relationships"><Relationship Id="r1" Type="{rel}/worksheet" '
                                      f'Target="worksheets/sheet1.xml"/><Relationship Id="r2" Type="{rel}/worksheet"'
                                      f' Target="worksheets/sheet2.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f"<worksheet {ns}><sheetData>{rows}</sheetData></worksheet>",
        "xl/worksheets/sheet2.xml": f'<worksheet {ns}><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>near '
                                    f"words</t></is></c></row></sheetData></worksheet>",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_a_sheet_spanning_too_many_cells_is_skipped_before_it_is_loaded(tmp_path, config):
    """Two cells far apart would make calamine allocate the whole grid between them."""
    path = tmp_path / "sparse.xlsx"
    path.write_bytes(_xlsx_with_cells({"A1": "corner", "ZZ99999": "far corner"}))
    assert 702 * 99999 > MAX_SHEET_CELLS
    doc = extract(path, config=config)
    assert doc.text == "Near\nnear words"
    assert any("'Far' spans 99,999 rows x 702 columns" in warning for warning in doc.warnings)


def test_an_ods_with_repeated_rows_of_values_is_refused(tmp_path, config):
    doc = OpenDocumentSpreadsheet()
    table = Table(name="Bomb")
    row = TableRow(numberrowsrepeated=100_000)
    cell = TableCell(valuetype="string", numbercolumnsrepeated=1000)
    cell.addElement(P(text="x"))
    row.addElement(cell)
    table.addElement(row)
    doc.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    doc.write(buffer)
    path = tmp_path / "cells.ods"
    path.write_bytes(buffer.getvalue())
    assert path.stat().st_size < 10_000
    with pytest.raises(FileTooLarge, match="'Bomb' spans 100,000 rows x 1,000 columns"):
        extract(path, config=config)


def test_reading_stops_at_the_text_limit(tmp_path, config):
    path = tmp_path / "long.xlsx"
    path.write_bytes(make_xlsx({"Log": [["Step", "Note"]] + [[i, f"entry number {i}"] for i in range(2000)]}))
    doc = extract(path, config=replace(config, max_text_chars=5000))
    assert len(doc.text) <= 5000
    assert any("text limit" in warning for warning in doc.warnings)


@pytest.mark.parametrize("name", ["book.xlsx", "book.ods"])
def test_a_pdf_named_as_a_spreadsheet_is_refused_with_a_reason(tmp_path, config, name):
    path = tmp_path / name
    path.write_bytes(make_pdf([["hello"]]))
    with pytest.raises(CorruptFile, match="not a zip container"):
        extract(path, config=config)


def test_encrypted_workbook_gets_a_password_reason(tmp_path, config):
    path = tmp_path / "salaries.xlsx"
    path.write_bytes(OLE_MAGIC + bytes(512) + "EncryptedPackage".encode("utf-16-le") + bytes(512))
    with pytest.raises(EncryptedFile, match="encrypted Excel workbook: password-protected files are not supported"):
        extract(path, config=config)


def test_encrypted_ods_gets_a_password_reason(tmp_path, config):
    good = make_ods({"S": [["a", "b"]]})
    source = zipfile.ZipFile(io.BytesIO(good))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "META-INF/manifest.xml":
                data = data.replace(b"</manifest:manifest>", b"<manifest:encryption-data/></manifest:manifest>")
            out.writestr(info, data)
    path = tmp_path / "locked.ods"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(EncryptedFile, match="password-protected"):
        extract(path, config=config)
