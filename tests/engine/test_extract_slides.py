"""Presentations: PPTX written by python-pptx, ODP written by odfpy, read back through ``extract``."""
from __future__ import annotations

import io

import pytest
from odf.draw import Frame, Page as DrawPage, TextBox
from odf.namespaces import PRESENTATIONNS
from odf.opendocument import OpenDocumentPresentation
from odf.presentation import Notes
from odf.style import MasterPage, PageLayout
from odf.text import P, Span
from pptx import Presentation
from pptx.util import Inches

from findling.engine.errors import CorruptFile, EncryptedFile, UnsupportedFile
from findling.engine.extract import extract, page_unit
from tests.engine.test_extract_pdf import make_pdf

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def make_pptx(slides: list[dict], *, title: str = "") -> bytes:
    """A presentation; each slide is ``{"title", "body", "notes", "table"}`` (all optional).

    A slide without any key is a blank slide.
    """
    prs = Presentation()
    if title:
        prs.core_properties.title = title
    for spec in slides:
        if "title" in spec or "body" in spec:
            slide = prs.slides.add_slide(prs.slide_layouts[1])
            slide.shapes.title.text = spec.get("title", "")
            slide.placeholders[1].text = spec.get("body", "")
        else:
            slide = prs.slides.add_slide(prs.slide_layouts[6])
        if "table" in spec:
            rows = spec["table"]
            table = slide.shapes.add_table(len(rows), len(rows[0]), Inches(1), Inches(4), Inches(6), Inches(1)).table
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
        if "notes" in spec:
            slide.notes_slide.notes_text_frame.text = spec["notes"]
    buffer = io.BytesIO()
    prs.save(buffer)
    return buffer.getvalue()


def make_odp(slides: list[dict], *, page_numbers: bool = True) -> bytes:
    """An OpenDocument presentation; slides as in ``make_pptx`` (title, body, notes)."""
    doc = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    doc.masterstyles.addElement(master)

    def frame(text: str, cls: str = "") -> Frame:
        box = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
        if cls:
            box.setAttrNS(PRESENTATIONNS, "class", cls)
        body = TextBox()
        for line in text.split("\n"):
            paragraph = P(text=line.split("*")[0])
            if "*" in line:  # "plain*span": a styled run inside the paragraph
                paragraph.addElement(Span(text=line.split("*", 1)[1]))
            body.addElement(paragraph)
        box.addElement(body)
        return box

    for number, spec in enumerate(slides, start=1):
        page = DrawPage(masterpagename=master, name=f"page{number}")
        if "title" in spec:
            page.addElement(frame(spec["title"], "title"))
        if "body" in spec:
            page.addElement(frame(spec["body"], "outline"))
        if page_numbers:
            page.addElement(frame(str(number), "page-number"))
        if "notes" in spec:
            notes = Notes()
            notes.addElement(frame(spec["notes"], "notes"))
            page.addElement(notes)
        doc.presentation.addElement(page)
    buffer = io.BytesIO()
    doc.write(buffer)
    return buffer.getvalue()


def _page_of(doc, phrase: str) -> int | None:
    return doc.page_at(doc.text.index(phrase))


def test_pptx_has_one_page_per_slide_with_notes_and_tables(tmp_path, config):
    path = tmp_path / "deck.pptx"
    path.write_bytes(make_pptx([
        {"title": "Quarterly review", "body": "Revenue grew\nCosts fell"},
        {"title": "Risks", "body": "Supply chain", "notes": "Mention the glacier retreat only when asked"},
        {},  # blank: no text, no page
        {"title": "Numbers", "table": [["Region", "Sales"], ["North", "1200"]]},
    ], title="Board deck"))
    doc = extract(path, config=config)
    assert doc.kind == "pptx" and doc.title == "Board deck"
    assert [span.number for span in doc.pages] == [1, 2, 4]
    assert [span.label for span in doc.pages] == ["Quarterly review", "Risks", "Numbers"]
    assert _page_of(doc, "glacier retreat") == 2
    assert _page_of(doc, "Revenue grew") == 1 and _page_of(doc, "North") == 4
    slide2 = doc.text[doc.pages[1].start:doc.pages[1].end]
    assert slide2.index("Supply chain") < slide2.index("Notes:") < slide2.index("glacier retreat")
    assert page_unit(path.suffix) == "slide"


def test_pptx_title_falls_back_to_the_first_slide_title(tmp_path, config):
    path = tmp_path / "untitled.pptx"
    path.write_bytes(make_pptx([{"title": "Opening words", "body": "x"}]))
    assert extract(path, config=config).title == "Opening words"


def test_pptx_slide_number_placeholders_are_left_out(tmp_path, config):
    from pptx.oxml.ns import qn

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = "Only the title"
    body = slide.placeholders[1]
    body.text = "7"  # turn the body placeholder into a slide-number placeholder
    body._element.find(f".//{qn('p:ph')}").set("type", "sldNum")
    buffer = io.BytesIO()
    prs.save(buffer)
    path = tmp_path / "numbered.pptx"
    path.write_bytes(buffer.getvalue())
    assert extract(path, config=config).text == "Only the title"


def test_odp_has_one_page_per_slide_with_notes(tmp_path, config):
    path = tmp_path / "talk.odp"
    path.write_bytes(make_odp([
        {"title": "Welcome", "body": "Agenda for *today"},
        {"title": "Ice", "body": "Field work", "notes": "The moraine samples came from the north ridge"},
    ]))
    doc = extract(path, config=config)
    assert doc.kind == "odp" and doc.title == "Welcome"
    assert [(span.number, span.label) for span in doc.pages] == [(1, "Welcome"), (2, "Ice")]
    assert "Agenda for today" in doc.text  # the span's text joins its paragraph
    assert _page_of(doc, "moraine samples") == 2
    lines = doc.text.split("\n")
    assert "1" not in lines and "2" not in lines  # page-number frames are left out


def test_encrypted_ooxml_gets_a_password_reason(tmp_path, config):
    path = tmp_path / "secret.pptx"
    path.write_bytes(OLE_MAGIC + bytes(500) + "EncryptedPackage".encode("utf-16-le") + bytes(500))
    with pytest.raises(EncryptedFile, match="password-protected files are not supported"):
        extract(path, config=config)


def test_old_binary_presentation_under_a_new_name_is_unsupported(tmp_path, config):
    path = tmp_path / "old.pptx"
    path.write_bytes(OLE_MAGIC + bytes(2000))
    with pytest.raises(UnsupportedFile, match=r"old binary Office file \(like \.ppt\)"):
        extract(path, config=config)


@pytest.mark.parametrize("name", ["report.pptx", "report.odp"])
def test_a_pdf_named_as_a_presentation_is_refused_with_a_reason(tmp_path, config, name):
    path = tmp_path / name
    path.write_bytes(make_pdf([["hello"]]))
    with pytest.raises(CorruptFile, match="not a zip container"):
        extract(path, config=config)


def test_a_malformed_slide_costs_only_that_slide(tmp_path, config):
    import zipfile

    good = make_pptx([{"title": "Fine slide", "body": "kept"}, {"title": "Broken slide", "body": "lost"}])
    source = zipfile.ZipFile(io.BytesIO(good))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            out.writestr(info, b"<p:sld><unclosed>" if info.filename == "ppt/slides/slide2.xml" else data)
    path = tmp_path / "half.pptx"
    path.write_bytes(buffer.getvalue())
    doc = extract(path, config=config)
    assert "kept" in doc.text and "lost" not in doc.text
    assert any("skipped slide 2" in warning for warning in doc.warnings)
