"""EPUB: spine order, one section per document with its heading as label, title, DRM, damage."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from findling.engine.errors import CorruptFile, EncryptedFile
from findling.engine.extract import extract

CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""

OPF = """<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:title>The  Lighthouse Keeper</dc:title><dc:identifier id="id">urn:x</dc:identifier>
  </metadata>
  <manifest>
    <item id="c2" href="text/chapter%202.xhtml" media-type="application/xhtml+xml"/>
    <item id="cover" href="cover.xhtml" media-type="application/xhtml+xml"/>
    <item id="c1" href="text/chapter1.xhtml" media-type="application/xhtml+xml"/>
    <item id="img" href="images/cover.jpg" media-type="image/jpeg"/>
    <item id="css" href="style.css" media-type="text/css"/>
  </manifest>
  <spine><itemref idref="cover"/><itemref idref="c1"/><itemref idref="c2"/></spine>
</package>"""


def chapter(heading: str, *paragraphs: str, title: str = "The Lighthouse Keeper") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    heading_html = f"<h1>{heading}</h1>" if heading else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE html>'
        f'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title></head>'
        f"<body>{heading_html}{body}</body></html>"
    )


BOOK = {
    "mimetype": "application/epub+zip",
    "META-INF/container.xml": CONTAINER,
    "OEBPS/content.opf": OPF,
    "OEBPS/cover.xhtml": '<html><body><img src="images/cover.jpg"/></body></html>',
    "OEBPS/text/chapter1.xhtml": chapter("Storm Season", "The lamp was lit at dusk.", "Waves hit the rocks."),
    "OEBPS/text/chapter 2.xhtml": chapter("Calm Water", "Gulls circled the tower at dawn."),
    "OEBPS/style.css": "p { margin: 0 }",
}


def make_epub(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


def write(tmp_path: Path, members: dict[str, str | bytes], name: str = "book.epub") -> Path:
    path = tmp_path / name
    path.write_bytes(make_epub(members))
    return path


def test_sections_follow_the_spine_with_heading_labels(tmp_path, config):
    result = extract(write(tmp_path, BOOK), config=config)
    assert result.kind == "epub"
    assert [(span.number, span.label) for span in result.pages] == [(1, "Storm Season"), (2, "Calm Water")]
    assert result.page_at(result.text.index("Waves hit the rocks.")) == 1
    assert result.page_at(result.text.index("Gulls circled")) == 2
    assert result.text.index("Storm Season") < result.text.index("Calm Water")
    assert "margin" not in result.text


def test_book_title_from_the_package(tmp_path, config):
    assert extract(write(tmp_path, BOOK), config=config).title == "The Lighthouse Keeper"


def test_label_falls_back_to_the_document_title(tmp_path, config):
    members = {**BOOK, "OEBPS/text/chapter1.xhtml": chapter("", "No heading here.", title="Prologue")}
    result = extract(write(tmp_path, members), config=config)
    assert result.pages[0].label == "Prologue"


def test_missing_spine_document_is_a_warning(tmp_path, config):
    members = {name: content for name, content in BOOK.items() if name != "OEBPS/text/chapter1.xhtml"}
    result = extract(write(tmp_path, members), config=config)
    assert [span.label for span in result.pages] == ["Calm Water"]
    assert any("OEBPS/text/chapter1.xhtml" in warning for warning in result.warnings)


def test_binary_spine_document_is_skipped_with_a_warning(tmp_path, config):
    members = {**BOOK, "OEBPS/text/chapter1.xhtml": bytes(range(256)) * 4}
    result = extract(write(tmp_path, members), config=config)
    assert "Gulls circled" in result.text
    assert any("binary" in warning for warning in result.warnings)


def test_package_found_without_container(tmp_path, config):
    members = {name: content for name, content in BOOK.items() if name != "META-INF/container.xml"}
    assert "Gulls circled" in extract(write(tmp_path, members), config=config).text


def test_no_container_and_no_package_is_corrupt(tmp_path, config):
    members = {"mimetype": "application/epub+zip", "OEBPS/a.xhtml": chapter("A", "text")}
    with pytest.raises(CorruptFile, match=r"META-INF/container\.xml is missing"):
        extract(write(tmp_path, members), config=config)


def test_container_pointing_nowhere_is_corrupt(tmp_path, config):
    members = {**BOOK, "META-INF/container.xml": CONTAINER.replace("OEBPS/content.opf", "nope.opf")}
    with pytest.raises(CorruptFile, match=r"nope\.opf is missing"):
        extract(write(tmp_path, members), config=config)


def test_drm_encrypted_book_is_refused(tmp_path, config):
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/text/chapter1.xhtml"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    with pytest.raises(EncryptedFile, match="DRM-protected EPUB"):
        extract(write(tmp_path, {**BOOK, "META-INF/encryption.xml": encryption}), config=config)


def test_font_obfuscation_is_not_drm(tmp_path, config):
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/fonts/a.otf"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    result = extract(write(tmp_path, {**BOOK, "META-INF/encryption.xml": encryption}), config=config)
    assert len(result.pages) == 2


def test_epub_that_is_not_a_zip(tmp_path, config):
    path = tmp_path / "fake.epub"
    path.write_bytes(b"%PDF-1.4 not really an epub\n" * 10)
    with pytest.raises(CorruptFile, match="not a valid EPUB"):
        extract(path, config=config)


def test_epub_zip_bomb_is_refused(tmp_path, config):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, content in BOOK.items():
            if name != "OEBPS/text/chapter1.xhtml":
                archive.writestr(name, content)
        with archive.open("OEBPS/text/chapter1.xhtml", "w", force_zip64=True) as handle:
            for _ in range(200):
                handle.write(bytes(1024 * 1024))
    path = tmp_path / "bomb.epub"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CorruptFile, match=r"possible zip bomb"):
        extract(path, config=config)
