"""OCR: scanned PDF pages and images are recognised with the real engine; damaged images, decompression bombs
and OCR being off give clear reasons.

Scanned files are made here from text: a PDF written by hand (``make_pdf``) is rendered with pypdfium2, and
the renders are saved as an image-only PDF (JPEG-compressed, as scanners write them), a PNG or a TIFF.
"""
from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from findling.engine.errors import CorruptFile, ExtractionError, FileTooLarge
from findling.engine.extract import extract, images, ocr
from findling.engine.extract.pdf import NO_TEXT_REASON
from findling.engine.index.indexer import Indexer
from findling.engine.search.searcher import Searcher
from tests.engine.test_extract_pdf import make_pdf

pytestmark = pytest.mark.skipif(not ocr.status().available, reason=f"no OCR engine: {ocr.status().reason}")

SCANNED = [
    ["Migrating cranes rest beside shallow lakes", "before crossing the northern mountains."],
    ["Volcanic islands grow slowly from lava flows", "and coral reefs gather around them."],
]
TYPED = ["Spreadsheet formulas recalculate totals automatically."]
SENTENCE = "Migrating cranes rest beside shallow lakes"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _recall(expected_lines: list[str], text: str) -> float:
    expected = _words(" ".join(expected_lines))
    found = set(_words(text))
    return sum(word in found for word in expected) / len(expected)


def _renders(pages: list[list[str]]) -> list:
    """Each page of a text PDF as a greyscale image at 144 dpi."""
    with ocr.PdfPages(make_pdf(pages)) as rendered:
        return [rendered.render(index).convert("L") for index in range(len(pages))]


def _image_pdf(images_: list) -> bytes:
    buffer = io.BytesIO()
    images_[0].save(buffer, "PDF", save_all=True, append_images=images_[1:], resolution=144)
    return buffer.getvalue()


def _mixed_pdf() -> bytes:
    """Page 1 has a text layer; pages 2 and 3 are scans of ``SCANNED``."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for data in (make_pdf([TYPED]), _image_pdf(_renders(SCANNED))):
        for page in PdfReader(io.BytesIO(data)).pages:
            writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def spy(monkeypatch):
    """Every image handed to the OCR engine, by size."""
    seen = []
    real = ocr.recognize

    def recognize(image, **kwargs):
        seen.append(image.size)
        return real(image, **kwargs)

    monkeypatch.setattr(ocr, "recognize", recognize)
    return seen


def _ocr_missing(monkeypatch):
    monkeypatch.setattr(ocr, "status", lambda: ocr.OcrStatus(False, "", "no engine installed here"))


# ------------------------------------------------------------------ PDF
def test_only_the_scanned_pages_of_a_pdf_are_recognised_and_marked(tmp_path, config, spy):
    result = extract(_write(tmp_path, "mixed.pdf", _mixed_pdf()), config=config)
    assert len(spy) == 2, "the page with a text layer must not be OCR'd"
    assert [(span.number, span.ocr) for span in result.pages] == [(1, False), (2, True), (3, True)]
    assert [span.label for span in result.pages] == ["", "(OCR)", "(OCR)"]
    assert result.text.startswith(TYPED[0])
    for number, lines in enumerate(SCANNED, start=2):
        span = result.pages[number - 1]
        assert _recall(lines, result.text[span.start:span.end]) >= 0.9, result.text[span.start:span.end]


def test_blank_scanned_pages_are_not_sent_to_the_engine(tmp_path, config, spy):
    with pytest.raises(ExtractionError) as caught:
        extract(_write(tmp_path, "blank.pdf", _image_pdf(_renders([[], []]))), config=config)
    assert spy == []
    assert str(caught.value) == f"{NO_TEXT_REASON}; OCR found no text on the 2 pages tried"


def test_scanned_pdf_with_ocr_off_says_why(tmp_path, config, monkeypatch):
    path = _write(tmp_path, "scan.pdf", _image_pdf(_renders(SCANNED[:1])))
    with pytest.raises(ExtractionError, match=r"^no text layer \(scanned PDF\?\); OCR is off: turned off"):
        extract(path, config=replace(config, ocr=False))
    _ocr_missing(monkeypatch)
    with pytest.raises(ExtractionError) as caught:
        extract(path, config=config)
    assert str(caught.value) == f"{NO_TEXT_REASON}; OCR is off: no engine installed here"


def test_ocr_page_limit_leaves_later_pages_out_with_a_warning(tmp_path, config, monkeypatch, spy):
    monkeypatch.setattr(ocr, "MAX_OCR_PAGES", 1)
    result = extract(_write(tmp_path, "scan.pdf", _image_pdf(_renders(SCANNED))), config=config)
    assert len(spy) == 1 and [span.number for span in result.pages] == [1, 2]
    assert "Volcanic" not in result.text and _recall(SCANNED[0], result.text) >= 0.9
    assert any("OCR read only the first 1 of 2 pages" in warning for warning in result.warnings)


def test_a_page_past_its_time_limit_is_skipped_with_a_warning(tmp_path, config, monkeypatch):
    def too_slow(image, **kwargs):
        raise ocr.OcrTimeout("OCR took longer than 30 s")

    monkeypatch.setattr(ocr, "recognize", too_slow)
    with pytest.raises(ExtractionError, match="OCR failed .page 1: OCR took longer than 30 s"):
        extract(_write(tmp_path, "scan.pdf", _image_pdf(_renders(SCANNED))), config=config)


# ---------------------------------------------------------------- images
def test_png_text_is_recognised(tmp_path, config):
    result = extract(_write(tmp_path, "note.png", _png(_renders(SCANNED[:1])[0])), config=config)
    assert result.kind == "image" and result.title == "note.png"
    assert _recall(SCANNED[0], result.text) >= 0.9, result.text
    assert [(span.number, span.ocr, span.label) for span in result.pages] == [(1, True, "(OCR)")]


def test_multi_page_tiff_gives_a_page_each(tmp_path, config):
    first, second = _renders(SCANNED)
    buffer = io.BytesIO()
    first.save(buffer, "TIFF", save_all=True, append_images=[second], compression="tiff_deflate")
    result = extract(_write(tmp_path, "scan.tiff", buffer.getvalue()), config=config)
    assert [span.number for span in result.pages] == [1, 2] and all(span.ocr for span in result.pages)
    for span, lines in zip(result.pages, SCANNED):
        assert _recall(lines, result.text[span.start:span.end]) >= 0.9


def test_transparent_png_is_read_on_white(tmp_path, config):
    from PIL import Image

    ink = _renders(SCANNED[:1])[0]
    transparent = Image.new("RGBA", ink.size, (0, 0, 0, 0))
    transparent.putalpha(Image.eval(ink, lambda v: 255 - v))  # black text, alpha from the ink
    result = extract(_write(tmp_path, "clear.png", _png(transparent)), config=config)
    assert _recall(SCANNED[0], result.text) >= 0.9, result.text


def test_image_without_text_is_indexed_empty_with_a_note(tmp_path, config, spy):
    from PIL import Image

    result = extract(_write(tmp_path, "white.jpg", _jpeg(Image.new("RGB", (300, 200), "white"))), config=config)
    assert result.text == "" and images.NO_TEXT_NOTE in result.warnings and spy == []


def _jpeg(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


def test_truncated_image_is_reported(tmp_path, config):
    data = _png(_renders(SCANNED[:1])[0])
    with pytest.raises(CorruptFile, match="truncated or damaged image"):
        extract(_write(tmp_path, "cut.png", data[: len(data) // 2]), config=config)


def test_not_an_image_is_reported(tmp_path, config):
    with pytest.raises(CorruptFile, match="not a readable image"):
        extract(_write(tmp_path, "photo.jpg", b"these are words, not a JPEG\n" * 20), config=config)


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's header)."""
    from PIL import Image

    raw = _png(Image.new("L", (8, 8), 255))
    body = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + body
    ihdr = struct.pack(">I", len(body)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return raw[:8] + ihdr + raw[8 + len(ihdr):]


@pytest.mark.parametrize("side", [7_000, 60_000])  # over ocr.MAX_IMAGE_PIXELS; over Pillow's own bomb limit
def test_decompression_bomb_is_refused_before_decoding(tmp_path, config, side, spy):
    with pytest.raises(FileTooLarge, match="image too large to read"):
        extract(_write(tmp_path, "bomb.png", _png_declaring(side, side)), config=config)
    assert spy == []


def test_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path, config, monkeypatch, spy):
    from PIL import Image

    ink = _renders(SCANNED[:1])[0]
    page = ink.resize((ink.width * 2, ink.height * 2)).convert("RGB")  # 7.8 million pixels
    monkeypatch.setattr(ocr, "MAX_IMAGE_PIXELS", 2_000_000)
    extract(_write(tmp_path, "big.jpg", _jpeg(page)), config=config)
    assert len(spy) == 1 and spy[0][0] * spy[0][1] <= 2_000_000 and spy[0][0] == page.width // 2
    monkeypatch.setattr(ocr, "MAX_IMAGE_PIXELS", 100_000)  # even 1/8 scale is too large: refused
    with pytest.raises(FileTooLarge, match="over the limit of 100,000 pixels"):
        extract(_write(tmp_path, "big.jpg", _jpeg(page)), config=config)


def test_image_with_ocr_off_says_why(tmp_path, config, monkeypatch, spy):
    path = _write(tmp_path, "note.png", _png(_renders(SCANNED[:1])[0]))
    with pytest.raises(ExtractionError, match=r"^OCR is off: turned off"):
        extract(path, config=replace(config, ocr=False))
    _ocr_missing(monkeypatch)
    with pytest.raises(ExtractionError, match="^OCR is off: no engine installed here$"):
        extract(path, config=config)
    assert spy == []


def test_describe_says_whether_ocr_is_on(config, monkeypatch):
    assert ocr.describe(config) == f"OCR: on ({ocr.ENGINE_NAMES[ocr.status().engine]})"
    assert ocr.describe(replace(config, ocr=False)) == f"OCR: off ({ocr.SWITCHED_OFF})"
    _ocr_missing(monkeypatch)
    assert ocr.describe(config) == "OCR: off (no engine installed here)"


# ------------------------------------------------------------ end to end
def test_a_scanned_pdf_is_indexed_and_found_by_a_sentence_on_its_scanned_page(tmp_path, config, store,
                                                                                fake_encoder):
    folder = tmp_path / "docs"
    folder.mkdir()
    _write(folder, "scan.pdf", _image_pdf(_renders(SCANNED)))
    (folder / "birds.txt").write_text("Cranes and herons are birds. Lakes freeze in winter; mountains stay cold.\n")
    (folder / "typed.pdf").write_bytes(make_pdf([TYPED, ["Shallow rivers cross the valley floor."]]))
    store.add_folder(folder)
    last = Indexer(store, fake_encoder, config=config).run_to_end()
    assert last.indexed == 3 and last.failed == 0
    hits = Searcher(store, fake_encoder).search(SENTENCE, k=3)
    assert hits[0].path == folder / "scan.pdf" and hits[0].page == 1
    assert "cranes" in hits[0].chunk_text.lower()
    assert hits[0].ocr  # the mark travels with the chunk to the hit (and so to the preview)
    typed = Searcher(store, fake_encoder).search("Shallow rivers cross the valley floor", k=1)[0]
    assert typed.path == folder / "typed.pdf" and not typed.ocr
    assert all(c.ocr for c in store.chunks_of(folder / "scan.pdf"))


# ------------------------------------------------------------------- app
def test_preview_says_when_text_was_recognised(qtbot):
    from findling.app.preview import OCR_NOTE, PreviewPane
    from findling.engine.records import SearchHit

    pane = PreviewPane()
    qtbot.addWidget(pane)
    for name, ocr, marked in (("scan.png", False, True), ("scan.TIFF", False, True), ("notes.txt", False, False),
                              ("scan.pdf", True, True), ("typed.pdf", False, False)):
        pane.show_hit(SearchHit(path=Path("/docs") / name, score=1.0, chunk_id=1, chunk_ordinal=0, page=None,
                                snippet="cranes", chunk_text="Migrating cranes", ocr=ocr), [])
        assert (OCR_NOTE in pane.meta_label.text()) is marked, name


def test_findling_ocr_0_turns_ocr_off(monkeypatch):
    from findling.engine.config import Config

    monkeypatch.setenv("FINDLING_OCR", "0")
    off = Config.default()
    assert off.ocr is False and not ocr.enabled(off).available and "off" in ocr.describe(off)
    monkeypatch.setenv("FINDLING_OCR", "1")
    assert Config.default().ocr is True
