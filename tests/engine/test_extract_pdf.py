"""PDF: page spans, titles, encryption, damage, limits and pypdf's log noise.

PDFs are written by hand (``make_pdf``): a catalog, a page tree, Helvetica, one content stream per
page drawing its lines with ``Tj``, and an xref table with real byte offsets.
"""
from __future__ import annotations

import io
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from findling.engine.errors import CorruptFile, EncryptedFile, ExtractionError
from findling.engine.extract import extract
from findling.engine.extract.pdf import NO_TEXT_REASON

R_DATA = Path("/work/shared/data/folders/r-manuals/R-data.pdf")


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _content(lines: list[str], *, broken: bool) -> bytes:
    ops = ["0.9 g 50 50 100 100 re f 0 g", "BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    ops += [f"{_pdf_string(line)} Tj T*" for line in lines]
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    filters = " /Filter /NoSuchFilter" if broken else ""  # pypdf raises when it decodes this page
    return b"<< /Length %d%s >>\nstream\n" % (len(stream), filters.encode()) + stream + b"\nendstream"


def make_pdf(pages: list[list[str]], *, title: str | None = None, broken_pages: tuple[int, ...] = ()) -> bytes:
    """A valid PDF whose page ``n`` (1-based) shows ``pages[n - 1]``, one line each."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(_content(lines, broken=i + 1 in broken_pages))
    info = ""
    if title is not None:
        objects.append(f"<< /Title {_pdf_string(title)} >>".encode("latin-1"))
        info = f" /Info {len(objects)} 0 R"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\n".encode()
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def encrypt(data: bytes, *, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password="owner-secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


THREE_PAGES = [
    ["Introduction to glaciers", "Ice flows slowly downhill."],
    ["Moraines are piles of rock debris.", "They mark old ice margins."],
    ["Crevasses open where ice stretches."],
]


def write(tmp_path: Path, data: bytes, name: str = "doc.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_phrases_come_back_on_their_pages(tmp_path, config):
    result = extract(write(tmp_path, make_pdf(THREE_PAGES)), config=config)
    assert result.kind == "pdf"
    assert [span.number for span in result.pages] == [1, 2, 3]
    for number, lines in enumerate(THREE_PAGES, start=1):
        for line in lines:
            offset = result.text.index(line)
            assert result.page_at(offset) == number
            assert result.page_at(offset + len(line) - 1) == number


def test_page_spans_are_contiguous_and_cover_the_text(tmp_path, config):
    result = extract(write(tmp_path, make_pdf(THREE_PAGES)), config=config)
    assert result.pages[0].start == 0
    assert result.pages[-1].end == len(result.text)
    for before, after in zip(result.pages, result.pages[1:]):
        assert before.end == after.start
    assert result.text[result.pages[1].start :].startswith("Moraines")
    assert "\n\n" in result.text[result.pages[0].start : result.pages[0].end]


def test_title_from_metadata(tmp_path, config):
    data = make_pdf(THREE_PAGES, title="Glaciers of the World")
    assert extract(write(tmp_path, data), config=config).title == "Glaciers of the World"


def test_title_falls_back_to_first_line(tmp_path, config):
    assert extract(write(tmp_path, make_pdf(THREE_PAGES)), config=config).title == "Introduction to glaciers"


def test_truncated_pdf_is_corrupt(tmp_path, config):
    data = make_pdf(THREE_PAGES)
    for cut in (len(data) // 3, len(data) // 2, len(data) - 30):
        with pytest.raises(CorruptFile, match="damaged or truncated PDF"):
            extract(write(tmp_path, data[:cut]), config=config)


def test_not_a_pdf_at_all_is_corrupt(tmp_path, config):
    with pytest.raises(CorruptFile):
        extract(write(tmp_path, b"<html>this was mislabelled</html>\n" * 20), config=config)


def test_encrypted_pdf_is_refused(tmp_path, config):
    data = encrypt(make_pdf(THREE_PAGES), user_password="hunter2")
    with pytest.raises(EncryptedFile) as caught:
        extract(write(tmp_path, data), config=config)
    assert str(caught.value) == "encrypted PDF; Findling cannot read it without the password"


def test_owner_only_protection_is_read_with_the_empty_password(tmp_path, config):
    data = encrypt(make_pdf(THREE_PAGES), user_password="")
    result = extract(write(tmp_path, data), config=config)
    assert result.page_at(result.text.index("Crevasses")) == 3


def test_failing_page_is_skipped_with_a_warning(tmp_path, config):
    data = make_pdf(THREE_PAGES, broken_pages=(2,))
    result = extract(write(tmp_path, data), config=config)
    assert "Moraines" not in result.text
    assert result.page_at(result.text.index("Crevasses")) == 3
    assert [w for w in result.warnings if w.startswith("page 2 skipped")]


def test_every_page_failing_is_corrupt(tmp_path, config):
    data = make_pdf(THREE_PAGES, broken_pages=(1, 2, 3))
    with pytest.raises(CorruptFile, match="no page of the PDF could be read"):
        extract(write(tmp_path, data), config=config)


def test_pdf_without_text_is_reported_as_scanned(tmp_path, config):
    with pytest.raises(ExtractionError) as caught:
        extract(write(tmp_path, make_pdf([[], []])), config=config)
    assert type(caught.value) is ExtractionError
    assert str(caught.value).startswith(NO_TEXT_REASON + "; OCR")  # what follows says why OCR did not help


def test_page_limit_stops_reading_with_a_warning(tmp_path, config):
    result = extract(write(tmp_path, make_pdf(THREE_PAGES)), config=replace(config, max_pdf_pages=2))
    assert [span.number for span in result.pages] == [1, 2]
    assert "Crevasses" not in result.text and "Moraines" in result.text
    assert any("first 2 of 3 pages" in warning for warning in result.warnings)


def test_text_limit_cuts_text_and_spans(tmp_path, config):
    pages = [[f"page {n} " + "x" * 60] for n in range(1, 11)]
    result = extract(write(tmp_path, make_pdf(pages)), config=replace(config, max_text_chars=150))
    assert len(result.text) == 150
    assert result.pages[-1].end == 150
    assert result.pages[-1].number < 10
    assert any("max_text_chars" in warning for warning in result.warnings)


def test_pypdf_warnings_are_demoted_to_debug(tmp_path, config, caplog):
    # A wrong startxref offset: pypdf repairs the file but logs warnings while doing so.
    data = make_pdf(THREE_PAGES)
    start = data.rindex(b"startxref\n") + len(b"startxref\n")
    data = data[:start] + b"17" + data[data.index(b"\n", start) :]
    with caplog.at_level(logging.DEBUG):
        result = extract(write(tmp_path, data), config=config)
    assert result.page_at(result.text.index("Moraines")) == 2
    assert not [r for r in caplog.records if r.name.startswith("pypdf") and r.levelno >= logging.WARNING]
    assert [r for r in caplog.records if r.name == "findling.engine.extract.pdf" and r.getMessage().startswith("pypdf:")]
    assert logging.getLogger("pypdf").propagate  # restored afterwards


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_pdfs_only_raise_extraction_errors(tmp_path, config, data):
    original = bytearray(make_pdf(THREE_PAGES, title="T"))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    path = write(tmp_path, bytes(original), name="fuzzed.pdf")
    try:
        result = extract(path, config=config)
    except ExtractionError:
        return
    assert isinstance(result.text, str)


@pytest.mark.skipif(not R_DATA.exists(), reason="shared R manuals are not available")
def test_real_manual(config):
    result = extract(R_DATA, config=replace(config, max_pdf_pages=12))
    assert [span.number for span in result.pages] == list(range(1, 13))
    assert any("first 12 of" in warning for warning in result.warnings)
    assert result.text.startswith("R Data Import/Export")
    assert result.title == "R Data Import/Export"
    contents_page = result.page_at(result.text.index("Table of Contents"))
    assert contents_page is not None and 1 < contents_page < 10
