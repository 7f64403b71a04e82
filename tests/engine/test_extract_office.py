"""DOCX and ODT: paragraphs, runs, tabs, breaks, headings, titles, damage and zip bombs."""
from __future__ import annotations

import io
import zipfile

import pytest

from findling.engine.errors import CorruptFile, EncryptedFile
from findling.engine.extract import extract
from findling.engine.extract.archive import SafeZip, ZipLimits, read_capped
from tests.engine.files import write

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"


def paragraph(*runs: str, style: str | None = None) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{props}{''.join(runs)}</w:p>"


def run(text: str) -> str:
    return f'<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">{text}</w:t></w:r>'


def document_xml(*paragraphs: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{W}" xmlns:mc="{MC}"><w:body>\n{"".join(paragraphs)}\n'
        f"<w:sectPr/></w:body></w:document>"
    )


def make_zip(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


def make_docx(body: str, *, title: str | None = None) -> bytes:
    members = {"[Content_Types].xml": "<Types/>", "word/document.xml": body}
    if title is not None:
        members["docProps/core.xml"] = (
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
            f' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>'
        )
    return make_zip(members)


ODT_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
)


def make_odt(body: str, *, title: str | None = None) -> bytes:
    members: dict[str, str | bytes] = {
        "mimetype": "application/vnd.oasis.opendocument.text",
        "content.xml": f"<office:document-content {ODT_NS}><office:body><office:text>{body}"
        "</office:text></office:body></office:document-content>",
    }
    if title is not None:
        members["meta.xml"] = (
            f"<office:document-meta {ODT_NS}><office:meta><dc:title>{title}</dc:title>"
            "</office:meta></office:document-meta>"
        )
    return make_zip(members)


def zip_bomb(member: str, *, megabytes: int, level: int, extra: dict[str, str] | None = None) -> bytes:
    """A zip whose ``member`` is ``megabytes`` MB of zeros, deflated at ``level`` (1: ~230:1, 9: ~1000:1)."""
    buffer = io.BytesIO()
    zeros = bytes(1024 * 1024)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
        with archive.open(member, "w", force_zip64=True) as handle:
            for _ in range(megabytes):
                handle.write(zeros)
    return buffer.getvalue()


def test_docx_paragraphs_runs_tabs_and_breaks(tmp_path, config):
    body = document_xml(
        paragraph(run("Quarterly"), run(" report"), style="Title"),
        paragraph(run("Revenue"), "<w:r><w:tab/></w:r>", run("grew"), "<w:r><w:br/></w:r>", run("again.")),
        paragraph(run("Outlook"), style="Heading1"),
        paragraph(run("Steady."), "<w:del><w:r><w:delText>deleted words</w:delText></w:r></w:del>"),
    )
    result = extract(write(tmp_path, "report.docx", make_docx(body)), config=config)
    assert result.kind == "docx"
    assert result.text == "Quarterly report\n\nRevenue\tgrew\nagain.\n\nOutlook\n\nSteady."
    assert result.title == "Quarterly report"


def test_docx_tab_stop_definitions_are_not_tabs(tmp_path, config):
    tabs = '<w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>'
    body = document_xml(f"<w:p>{tabs}{run('no tab here')}</w:p>")
    assert extract(write(tmp_path, "t.docx", make_docx(body)), config=config).text == "no tab here"


def test_docx_text_box_fallback_is_not_duplicated(tmp_path, config):
    box = (
        f'<mc:AlternateContent><mc:Choice Requires="wps">{paragraph(run("boxed text"))}</mc:Choice>'
        f"<mc:Fallback>{paragraph(run('boxed text'))}</mc:Fallback></mc:AlternateContent>"
    )
    body = document_xml(f"<w:p><w:r>{box}</w:r>{run('outer')}</w:p>")
    text = extract(write(tmp_path, "box.docx", make_docx(body)), config=config).text
    assert text.count("boxed text") == 1 and "outer" in text


def test_docx_title_from_core_properties(tmp_path, config):
    data = make_docx(document_xml(paragraph(run("Body first"))), title="Board Minutes")
    assert extract(write(tmp_path, "m.docx", data), config=config).title == "Board Minutes"


def test_docx_title_falls_back_to_first_line(tmp_path, config):
    data = make_docx(document_xml(paragraph(run("First words")), paragraph(run("more"))))
    assert extract(write(tmp_path, "m.docx", data), config=config).title == "First words"


def test_docx_footnotes_are_included(tmp_path, config):
    note = paragraph(run("see appendix B"))
    notes = f'<w:footnotes xmlns:w="{W}"><w:footnote w:id="1">{note}</w:footnote></w:footnotes>'
    members = {"word/document.xml": document_xml(paragraph(run("Main text"))), "word/footnotes.xml": notes}
    text = extract(write(tmp_path, "n.docx", make_zip(members)), config=config).text
    assert text == "Main text\nsee appendix B"


def test_docx_that_is_not_a_zip(tmp_path, config):
    with pytest.raises(CorruptFile, match="not a valid Word document"):
        extract(write(tmp_path, "fake.docx", b"plain text, not a zip " * 10), config=config)


def test_docx_missing_document_part(tmp_path, config):
    data = make_zip({"[Content_Types].xml": "<Types/>"})
    with pytest.raises(CorruptFile, match=r"word/document\.xml is missing"):
        extract(write(tmp_path, "hollow.docx", data), config=config)


def test_docx_with_broken_xml(tmp_path, config):
    data = make_docx("<w:document><w:body><w:p>unclosed")
    with pytest.raises(CorruptFile, match="not well-formed XML"):
        extract(write(tmp_path, "broken.docx", data), config=config)


def test_docx_truncated_zip(tmp_path, config):
    data = make_docx(document_xml(*(paragraph(run(f"paragraph {i}")) for i in range(200))))
    with pytest.raises(CorruptFile):
        extract(write(tmp_path, "cut.docx", data[: len(data) // 2]), config=config)


def test_password_protected_office_file(tmp_path, config):
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    with pytest.raises(EncryptedFile, match="password-protected"):
        extract(write(tmp_path, "locked.docx", ole), config=config)


def test_encrypted_zip_member(tmp_path, config):
    data = bytearray(make_docx(document_xml(paragraph(run("hidden")))))
    position = 0
    while (position := data.find(b"PK\x01\x02", position)) != -1:  # central directory entries
        data[position + 8] |= 0x01  # general purpose flag bit 0: the member is encrypted
        position += 4
    with pytest.raises(EncryptedFile, match="encrypted Word document"):
        extract(write(tmp_path, "zipcrypto.docx", bytes(data)), config=config)


def test_xml_entity_bomb_is_refused(tmp_path, config):
    laughs = '<!DOCTYPE x [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    data = make_docx(laughs + document_xml(paragraph(run("&b;"))).split("\n", 1)[1])
    with pytest.raises(CorruptFile, match="entities"):
        extract(write(tmp_path, "laughs.docx", data), config=config)


def test_docx_zip_bomb_is_refused_before_reading(tmp_path, config, monkeypatch):
    data = zip_bomb("word/document.xml", megabytes=200, level=1, extra={"[Content_Types].xml": "<Types/>"})
    assert len(data) < 2 * 1024 * 1024  # 200 MB of zeros in under 2 MB on disk

    def no_reading(*args, **kwargs):
        raise AssertionError("a member was opened for reading")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    with pytest.raises(CorruptFile) as caught:
        extract(write(tmp_path, "bomb.docx", data), config=config)
    assert str(caught.value) == "archive expands to more than 128.0 MB; refusing (possible zip bomb)"


def test_docx_member_with_an_extreme_compression_ratio_is_refused(tmp_path, config):
    data = zip_bomb("word/document.xml", megabytes=20, level=9)
    with pytest.raises(CorruptFile, match=r"word/document\.xml is compressed [\d,]+ to 1 .*possible zip bomb"):
        extract(write(tmp_path, "dense.docx", data), config=config)


def test_declared_size_over_the_member_limit_is_refused():
    data = make_zip({"word/document.xml": "x" * 5000})
    archive = SafeZip(data, what="Word document", limits=ZipLimits(max_member_bytes=4096))
    with pytest.raises(CorruptFile, match=r"archive expands to more than 4\.0 KB; refusing \(possible zip bomb\)"):
        archive.read("word/document.xml")


def test_total_expansion_across_members_is_capped():
    data = make_zip({f"part{i}.xml": "y" * 3000 for i in range(5)})
    archive = SafeZip(data, what="Word document", limits=ZipLimits(max_member_bytes=4096, max_total_bytes=10_000))
    for i in range(3):
        assert archive.read(f"part{i}.xml") == b"y" * 3000
    with pytest.raises(CorruptFile, match="possible zip bomb"):
        archive.read("part3.xml")


def test_too_many_members_is_refused():
    data = make_zip({f"f{i}": "" for i in range(30)})
    with pytest.raises(CorruptFile, match="30 members"):
        SafeZip(data, what="EPUB", limits=ZipLimits(max_members=20))


def test_hard_cap_counts_bytes_actually_decompressed():
    stream = io.BytesIO(b"z" * 1_000_000)  # stands in for a member whose header understates its size
    with pytest.raises(CorruptFile, match="possible zip bomb"):
        read_capped(stream, cap=500_000)
    assert read_capped(io.BytesIO(b"abc"), cap=3) == b"abc"


def test_odt_paragraphs_headings_spaces_and_title(tmp_path, config):
    body = (
        '<text:h text:outline-level="1">Field <text:span>Notes</text:span></text:h>'
        '<text:p>Birds<text:tab/>seen:<text:s text:c="2"/>three<text:line-break/>on Monday.</text:p>'
        "<text:tracked-changes><text:changed-region><text:p>removed text</text:p></text:changed-region>"
        "</text:tracked-changes>"
        "<table:table><table:table-row><table:table-cell><text:p>cell one</text:p></table:table-cell>"
        "</table:table-row></table:table>"
    )
    result = extract(write(tmp_path, "notes.odt", make_odt(body, title="Spring Survey")), config=config)
    assert result.kind == "odt"
    assert result.text == "Field Notes\n\nBirds\tseen:  three\non Monday.\ncell one"
    assert result.title == "Spring Survey"


def test_odt_title_falls_back_to_first_heading(tmp_path, config):
    body = "<text:p>intro</text:p><text:h>Chapter One</text:h>"
    assert extract(write(tmp_path, "c.odt", make_odt(body)), config=config).title == "Chapter One"


def test_odt_missing_content(tmp_path, config):
    data = make_zip({"mimetype": "application/vnd.oasis.opendocument.text"})
    with pytest.raises(CorruptFile, match=r"content\.xml is missing"):
        extract(write(tmp_path, "hollow.odt", data), config=config)


def test_deeply_nested_odt_spans(tmp_path, config):
    depth = 50_000
    body = "<text:p>" + "<text:span>" * depth + "deep" + "</text:span>" * depth + "</text:p>"
    assert extract(write(tmp_path, "deep.odt", make_odt(body)), config=config).text == "deep"
