"""Checks and helpers shared by the zip-based office formats read in ``slides`` and ``sheets``.

``open_package`` refuses what is not a readable zip package with a clear reason: an OLE container in
place of an Office Open XML file (either a password-protected file, whose encrypted package OOXML wraps
in OLE, or an old binary Office file under a new name), and an OpenDocument file whose manifest lists
encrypted parts. ``check_members`` decompresses every member once under ``archive.ZipLimits`` before a
library that opens the zip itself (calamine) is given the bytes, so a zip bomb, a member that lies about
its size, or an archive with two members of one name is refused before that library inflates anything.
"""
from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from io import BytesIO
from xml.etree import ElementTree as ET

from findling.engine.errors import CorruptFile, EncryptedFile, UnsupportedFile
from findling.engine.extract.archive import SafeZip, local, parse_xml
from findling.engine.extract.office import walk
from findling.engine.extract.textutil import one_line

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")  # stream name of an encrypted OOXML package
_ODF_MANIFEST = "META-INF/manifest.xml"
_ODF_BREAKS = {"tab": "\t", "line-break": "\n"}
_SPACES = re.compile(r"\s+")
_TEXT_C = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}c"


def open_package(data: bytes, *, what: str, old_format: str) -> SafeZip:
    """``data`` as a ``SafeZip``; encrypted and old binary files are refused with their own reason.

    ``what`` names the format in messages ("PowerPoint presentation"); ``old_format`` is the old binary
    suffix a file of this kind may really be (".ppt").
    """
    if data.startswith(_OLE_MAGIC):
        if _OLE_ENCRYPTED in data:
            raise EncryptedFile(f"encrypted {what}: password-protected files are not supported; "
                                "save it again without a password to index it")
        raise UnsupportedFile(f"old binary Office file (like {old_format}) under a new name; "
                              f"not a zip-based {what}, which is all Findling reads; save it again in the new format")
    return SafeZip(data, what=what)


def refuse_odf_encryption(archive: SafeZip, *, what: str) -> None:
    """Raise ``EncryptedFile`` when the OpenDocument manifest lists encrypted members."""
    if not archive.has(_ODF_MANIFEST):
        return
    if b"encryption-data" in archive.read(_ODF_MANIFEST):
        raise EncryptedFile(f"encrypted {what}: password-protected files are not supported; "
                            "save it again without a password to index it")


def check_members(data: bytes, archive: SafeZip, inspect: Callable[[str, bytes], None] | None = None) -> None:
    """Decompress every member of ``archive`` (built from ``data``) under its limits, handing each to
    ``inspect``; raises ``CorruptFile`` for a zip bomb, a damaged member or duplicate member names.

    Afterwards the archive is known to expand to no more than ``ZipLimits.max_total_bytes``; members are
    dropped as soon as ``inspect`` returns, so memory holds one member at a time.
    """
    names = [info.filename for info in zipfile.ZipFile(BytesIO(data)).infolist()]
    if len(names) != len(set(names)):
        raise CorruptFile("the archive lists a member name twice; refusing a file that readers could disagree on")
    for name in names:
        member = archive.read(name)
        if inspect is not None:
            inspect(name, member)


def metadata_title(archive: SafeZip, name: str, warnings: list[str]) -> str:
    """``dc:title`` of the metadata part ``name`` ("docProps/core.xml", "meta.xml"), or ``""``.

    A malformed metadata part is a warning, not a failure of the whole file.
    """
    if not archive.has(name):
        return ""
    try:
        root = parse_xml(archive.read(name), what=name)
    except CorruptFile as exc:
        warnings.append(f"skipped {name}: {exc}")
        return ""
    for element in root.iter():
        if local(element.tag) == "title" and element.text and element.text.strip():
            return one_line(element.text)
    return ""


def odf_paragraphs(root: ET.Element, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """The non-empty ``text:p`` / ``text:h`` paragraphs under ``root`` in document order.

    ``text:s`` runs of spaces, tabs and line breaks are kept; elements whose local name is in ``skip``
    are left out with their content. A paragraph nested in another (a text box in a paragraph) ends
    the text before it.
    """
    paragraphs: list[str] = []
    parts: list[str] = []
    depth = 0

    def finish() -> None:
        text = "".join(parts).strip()
        parts.clear()
        if text:
            paragraphs.append(text)

    for event, element, text in walk(root, skip=skip):
        name = local(element.tag)
        if event == "text":
            if depth:
                parts.append(_SPACES.sub(" ", text))  # ODF collapses white space in text
        elif name in ("p", "h"):
            finish()
            depth += 1 if event == "start" else -1
        elif event == "start" and depth:
            if name == "s":
                count = element.get(_TEXT_C, "1")
                parts.append(" " * min(int(count) if count.isdigit() else 1, 1000))
            elif name in _ODF_BREAKS:
                parts.append(_ODF_BREAKS[name])
    finish()
    return paragraphs
