"""A generated folder of hostile files, and what indexing must make of each.

``build(folder)`` writes the files and returns ``{name as bytes: Expect}``. Everything is generated in a
few seconds: PDFs written by hand (``tests.engine.test_extract_pdf.make_pdf``), zip bombs that compress
40 MB of spaces at the fastest level (about 1000 to 1), a 200 MB single-line text file written in 1 MB blocks.
"""
from __future__ import annotations

import base64
import io
import os
import random
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.engine.test_extract_pdf import encrypt, make_pdf

MB = 1 << 20
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOCX_TYPES = ('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
              '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
              'wordprocessingml.document.main+xml"/></Types>')
BIG_TEXT_BYTES = 200 * MB


@dataclass(frozen=True)
class Expect:
    """What the index must hold for a file: a status (``None``: any status, as long as a reason comes with a
    problem), a phrase of the reason, or ``absent`` for entries that are not regular files."""

    status: str | None = None
    reason: str = ""
    absent: bool = False


INDEXED, EMPTY, ANY, ABSENT = Expect("indexed"), Expect("empty"), Expect(), Expect(absent=True)


def failed(reason: str) -> Expect:
    return Expect("failed", reason)


def _docx(document: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", DOCX_TYPES)
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


def _zip_with_bomb(extra: dict[str, str], name: str, size: int) -> bytes:
    """A zip whose member ``name`` inflates to ``size`` bytes of spaces (about 1000 to 1 compressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for member, text in extra.items():
            archive.writestr(member, text)
        block = b" " * MB
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as out:
            out.write(f'<w:document xmlns:w="{W}"><w:body>'.encode())
            for _ in range(size // MB):
                out.write(block)
    return buffer.getvalue()


def _lie_about_size(data: bytes, name: bytes, declared: int) -> bytes:
    """The zip with ``name``'s uncompressed size claimed to be ``declared`` in the central directory."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", out, at + 28)[0]
        if bytes(out[at + 46: at + 46 + name_len]) == name:
            struct.pack_into("<I", out, at + 24, declared)
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def _epub_bomb() -> bytes:
    container = ('<container><rootfiles><rootfile full-path="a.opf"/></rootfiles></container>')
    opf = ('<package><metadata><title>T</title></metadata><manifest><item id="x" href="x.xhtml" '
           'media-type="application/xhtml+xml"/></manifest><spine><itemref idref="x"/></spine></package>')
    return _zip_with_bomb({"mimetype": "application/epub+zip", "META-INF/container.xml": container, "a.opf": opf},
                          "x.xhtml", 40 * MB)


def _pdfs(rng: random.Random) -> dict[bytes, tuple[bytes, Expect]]:
    good = make_pdf([[f"findable glacier text on page {i}"] for i in range(1, 4)], title="Glaciers")
    return {
        b"good.pdf": (good, INDEXED),
        b"truncated.pdf": (good[: len(good) // 2], failed("damaged or truncated")),
        b"encrypted.pdf": (encrypt(good, user_password="secret"), failed("encrypted")),
        b"owner-only-protection.pdf": (encrypt(good, user_password=""), INDEXED),
        b"broken-xref.pdf": (good.replace(b"startxref\n", b"startxref\n9"), ANY),
        b"no-xref.pdf": (good[: good.index(b"xref")], ANY),
        b"garbage-xref.pdf": (good[: good.index(b"xref")] + b"xref\n0 99\n" + rng.randbytes(400), ANY),
        b"empty-pages.pdf": (make_pdf([[] for _ in range(2500)]), failed("no text")),
        b"cyclic-pages.pdf": (good.replace(b"/Kids [4 0 R 6 0 R 8 0 R]", b"/Kids [2 0 R 4 0 R]"), failed("cyclic")),
        b"not-really.pdf": (b"just some words, not a PDF at all\n" * 20, failed("PDF")),
        b"zero-bytes.pdf": (b"", EMPTY),
    }


def _containers(rng: random.Random) -> dict[bytes, tuple[bytes, Expect]]:
    body = f'<w:document xmlns:w="{W}"><w:body>'.encode()
    bomb = _zip_with_bomb({"[Content_Types].xml": DOCX_TYPES}, "word/document.xml", 40 * MB)
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                         for i in range(1, 10))
              + b']>' + body + b"<w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>")
    deep = body + b"<w:p>" * 50_000 + b"<w:r><w:t>deep</w:t></w:r>" + b"</w:p>" * 50_000 + b"</w:body></w:document>"
    return {
        b"zip-bomb.docx": (bomb, failed("zip bomb")),
        b"lying-zip-bomb.docx": (_lie_about_size(bomb, b"word/document.xml", 1000), failed("")),
        b"zip-bomb.epub": (_epub_bomb(), failed("zip bomb")),
        b"billion-laughs.docx": (_docx(laughs), failed("entit")),
        b"deeply-nested.docx": (_docx(deep), ANY),
        b"random-bytes.docx": (rng.randbytes(5000), failed("")),
        b"no-container.epub": (_docx(body), failed("")),
        b"random-bytes.odt": (rng.randbytes(3000), failed("")),
    }


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, "PNG")
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A 1 KB PNG whose header declares ``width`` x ``height`` pixels: a decompression bomb's header."""
    import zlib

    raw = _png(8, 8)
    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    ihdr = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return raw[:8] + ihdr + raw[8 + len(ihdr):]


def _images(rng: random.Random) -> dict[bytes, tuple[bytes, Expect]]:
    from findling.engine.extract import ocr

    if not ocr.status().available:  # every image is recorded with the same reason
        off = failed("OCR is off")
        return {name: (data, off) for name, (data, _) in _images_with_ocr(rng).items()}
    return _images_with_ocr(rng)


def _images_with_ocr(rng: random.Random) -> dict[bytes, tuple[bytes, Expect]]:
    photo = _png(640, 480)
    return {
        b"bomb.png": (_png_declaring(50_000, 50_000), Expect("failed", "image too large")),
        b"over-pixel-limit.png": (_png_declaring(8_000, 8_000), Expect("failed", "pixels")),
        b"truncated.png": (photo[: len(photo) // 2], failed("truncated")),
        b"not-an-image.jpg": (rng.randbytes(3000), failed("not a readable image")),
        b"blank.tif": (photo, Expect("empty", "no text")),
    }


def _office_documents(rng: random.Random) -> dict[bytes, tuple[bytes, Expect]]:
    """Slides, spreadsheets, RTF and notebooks: bombs, truncation, wrong content, encryption."""
    from tests.engine.test_extract_sheets import make_ods, make_xlsx
    from tests.engine.test_extract_slides import make_pptx

    pptx = make_pptx([{"title": "Findable glaciers", "body": "a slide about findable glaciers"}])
    xlsx = make_xlsx({"Sheet": [["Topic", "Note"], ["ice", "findable glaciers"]]})
    ods = make_ods({"Sheet": [["Topic", "Note"], ["ice", "findable glaciers"]]})
    sheet_bomb = _zip_with_bomb({"[Content_Types].xml": DOCX_TYPES, "xl/workbook.xml": "<workbook/>"},
                                "xl/worksheets/sheet1.xml", 40 * MB)
    encrypted = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512) + "EncryptedPackage".encode("utf-16-le") + bytes(512)
    repeated = ('<table:table table:name="Cells"><table:table-row table:number-rows-repeated="100000">'
                '<table:table-cell table:number-columns-repeated="1000" office:value-type="string"><text:p>x</text:p>'
                "</table:table-cell></table:table-row></table:table>")
    cell_bomb = _replace_member(ods, "content.xml", lambda xml: xml.replace(
        xml[xml.index(b"<table:table "):xml.index(b"</table:table>") + len(b"</table:table>")], repeated.encode()))
    pdf = make_pdf([["findable glaciers"]])
    return {
        b"good.pptx": (pptx, INDEXED),
        b"good.xlsx": (xlsx, INDEXED),
        b"good.ods": (ods, INDEXED),
        b"zip-bomb.pptx": (_zip_with_bomb({"[Content_Types].xml": DOCX_TYPES}, "ppt/slides/slide1.xml", 40 * MB),
                           failed("zip bomb")),
        b"zip-bomb.xlsx": (sheet_bomb, failed("zip bomb")),
        b"lying-zip-bomb.xlsx": (_lie_about_size(sheet_bomb, b"xl/worksheets/sheet1.xml", 1000), failed("")),
        b"cell-bomb.ods": (cell_bomb, failed("cell limit")),
        b"truncated.pptx": (pptx[: len(pptx) // 2], failed("")),
        b"truncated.xlsx": (xlsx[: len(xlsx) // 2], failed("")),
        b"truncated.ods": (ods[: len(ods) // 2], failed("")),
        b"pdf-named.pptx": (pdf, failed("not a zip container")),
        b"pdf-named.xlsx": (pdf, failed("not a zip container")),
        b"encrypted.pptx": (encrypted, failed("password-protected")),
        b"encrypted.xlsx": (encrypted, failed("password-protected")),
        b"not-really.rtf": (rng.randbytes(3000), failed("not an RTF")),
        b"truncated.rtf": (rb"{\rtf1\ansi\pard findable glaciers in a cut file\par {\b unclosed", INDEXED),
        b"broken.ipynb": (b'{"cells": [{"cell_type": "markdown", "source": "findable', failed("not valid JSON")),
        b"deep.ipynb": (b"[" * 100_000 + b"]" * 100_000, failed("")),
    }


def _replace_member(data: bytes, name: str, change) -> bytes:
    """The zip ``data`` with member ``name`` passed through ``change``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            member = source.read(info)
            out.writestr(info, change(member) if info.filename == name else member)
    return buffer.getvalue()


def _texts(rng: random.Random) -> dict[bytes, tuple[bytes, Expect]]:
    return {
        b"plain.txt": (b"An ordinary note about findable glaciers.\n", INDEXED),
        b"README": (b"Readme without an extension, about findable glaciers.\n", INDEXED),
        b"empty.txt": (b"", EMPTY),
        b"whitespace-only.md": (b" \n\t\n   \n", EMPTY),
        b"nested.html": (b"<html><body>" + b"<div>" * 50_000 + b"findable glaciers" + b"</div>" * 50_000
                         + b"</body></html>", INDEXED),
        b"unclosed.htm": (b"<p><b><i><table><tr><td>" * 5_000 + b"findable glaciers", INDEXED),
        b"binary.txt": (rng.randbytes(20_000), failed("binary")),
        b"program.md": (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 40, failed("binary")),
        b"nul-heavy.csv": (b"a,b\x00,c\x00\x00\n" * 500, failed("binary")),
        b"control-chars.log": (bytes(range(1, 32)) * 300, failed("binary")),
        b"invalid-utf8.txt": (b"caf\xe9 cr\xe8me br\xfbl\xe9e \xff\xfe findable glaciers. " * 20 + b"\x81\n", INDEXED),
        b"utf16-bom.txt": ("\ufeffUTF-16 text with a BOM: findable glaciers\n".encode("utf-16-le"), INDEXED),
        b"utf16-no-bom.txt": ("UTF-16 text without a BOM: findable glaciers\n".encode("utf-16-le"), INDEXED),
        b"utf32-bom.txt": ("\ufeffUTF-32 text: findable glaciers\n".encode("utf-32"), INDEXED),
        b"long-line.csv": (b"x" * (2 * MB), INDEXED),
        b"deep.json": (b"[" * 20_000 + b'"findable"' + b"]" * 20_000, INDEXED),
        b"new\nline.txt": (b"a file name with a newline; findable glaciers\n", INDEXED),
        "emoji \U0001F4C4 notes.md".encode(): (b"# Emoji\n\nfindable glaciers\n", INDEXED),
        b"caf\xe9 latin-1 name.txt": (b"a file whose name is not UTF-8; findable glaciers\n", INDEXED),
        b"unreadable.txt": (b"nobody may read this\n", INDEXED if os.geteuid() == 0 else failed("permission denied")),
    }


def _mail_message(subject: str, body: bytes, *, extra_headers: bytes = b"") -> bytes:
    return (b"From: Ann <ann@example.org>\nTo: Bob <bob@example.org>\nSubject: " + subject.encode()
            + b"\nMIME-Version: 1.0\n" + extra_headers + body)


def _mail(rng: random.Random) -> dict[bytes, tuple[bytes, Expect]]:
    """Mail that lies, nests, is cut short or is not mail."""
    b64 = base64.encodebytes(b"%PDF-1.4\n" + rng.randbytes(2 * MB)).replace(b"\n", b"\r\n")
    claims = _mail_message("claims a 1 GB attachment", (
        b'Content-Type: multipart/mixed; boundary="XX"\n\n--XX\nContent-Type: text/plain\n\nfindable glaciers\n'
        b"--XX\nContent-Type: application/pdf; name=claimed.pdf\nContent-Length: 1073741824\n"
        b'Content-Disposition: attachment; filename="claimed.pdf"; size=1073741824\n'
        b"Content-Transfer-Encoding: base64\n\n") + b64 + b"\n--XX--\n")
    depth = 5_000
    nested = _mail_message("nested", b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth))
        + b"Content-Type: text/plain\n\nfindable glaciers\n" + b"".join(b"--b%d--\n" % i for i in reversed(range(depth))))
    mailbox = b"".join(b"From ann@example.org Mon Jan  1 10:00:00 2024\n" + _mail_message(
        f"message {i}", b"Content-Type: text/plain\n\nfindable glaciers in message %d\n" % i) + b"\n" for i in range(3))
    truncated = mailbox + b"From ann@example.org Mon Jan  1 10:00:00 2024\n" + claims[: len(claims) // 2]
    return {
        b"claims-1gb-attachment.eml": (claims, Expect("indexed", "claimed.pdf")),
        b"nested-multiparts.eml": (nested, Expect("indexed", "nested parts")),
        b"truncated.mbox": (truncated, INDEXED),
        b"random-bytes.eml": (rng.randbytes(5000), failed("binary")),
        b"zip-named.mbox": (_docx(b"<w:document/>"), failed("binary")),
        b"text-named.msg": (b"Subject: hello\n\nplain text, not Outlook\n", failed("OLE")),
    }


def build(folder: Path, *, seed: int = 11) -> dict[bytes, Expect]:
    """Write the corpus into ``folder``; return what the index must hold for each entry."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    raw = os.fsencode(folder)
    expected: dict[bytes, Expect] = {}
    for name, (data, expect) in {**_pdfs(rng), **_containers(rng), **_texts(rng), **_images(rng),
                                 **_mail(rng),
                                 **_office_documents(rng)}.items():
        with open(os.path.join(raw, name), "wb") as fh:
            fh.write(data)
        expected[name] = expect
    os.chmod(os.path.join(raw, b"unreadable.txt"), 0)
    with open(os.path.join(raw, b"big-single-line.txt"), "wb") as fh:  # over the default 64 MB limit
        block = b"glacier " * (MB // 8)
        for _ in range(BIG_TEXT_BYTES // MB):
            fh.write(block)
    expected[b"big-single-line.txt"] = Expect("skipped", "size limit")
    os.mkfifo(os.path.join(raw, b"named-pipe.txt"))
    os.symlink(b"self-loop.txt", os.path.join(raw, b"self-loop.txt"))
    os.symlink(b"missing-target.txt", os.path.join(raw, b"dangling.txt"))
    os.symlink(b".", os.path.join(raw, b"folder-loop"))
    expected.update({b"named-pipe.txt": ABSENT, b"self-loop.txt": ABSENT, b"dangling.txt": ABSENT})
    return expected
