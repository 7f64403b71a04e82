"""EPUB e-books: ``META-INF/container.xml`` -> the OPF package -> its spine, read in order.

Each spine document is an XHTML file run through the HTML extractor and becomes one ``PageSpan``
section, labelled with its first heading (else its ``<title>``). The book title is the OPF
``dc:title``. DRM-encrypted content (listed in ``META-INF/encryption.xml`` with an algorithm other
than font obfuscation) is refused as encrypted.
"""
from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from findling.engine.config import Config
from findling.engine.errors import CorruptFile, EncryptedFile, ExtractionError
from findling.engine.extract.archive import SafeZip, local
from findling.engine.extract.decode import decode_text
from findling.engine.extract.html import parse_html, sniff_charset
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.textutil import one_line
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".epub"})

_CONTAINER = "META-INF/container.xml"
_ENCRYPTION = "META-INF/encryption.xml"
_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/x-dtbook+xml"})
_HTML_EXTENSIONS = (".xhtml", ".html", ".htm", ".xht")
_FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})


@dataclass(frozen=True)
class Package:
    """What the OPF file says: the book's title and its reading order (paths inside the zip)."""

    title: str
    spine: tuple[str, ...]


def extract_epub(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of an EPUB, one section per spine document."""
    del config  # the caller applies the size and length limits
    archive = SafeZip(data, what="EPUB")
    _refuse_drm(archive)
    package = read_package(archive, _package_path(archive))
    sections: list[Page] = []
    warnings: list[str] = []
    for name in package.spine:
        page = _read_section(archive, name, number=len(sections) + 1, warnings=warnings)
        if page is not None:
            sections.append(page)
    text, spans = join_pages(sections)
    first_label = next((page.label for page in sections if page.label), "")
    title = package.title or first_label or path.name
    return ExtractedText(path=path, text=text, title=title, pages=spans, kind="epub", warnings=tuple(warnings))


def _package_path(archive: SafeZip) -> str:
    """Where the OPF file is: from the container, else the only ``.opf`` in the archive."""
    if archive.has(_CONTAINER):
        for element in archive.read_xml(_CONTAINER).iter():
            if local(element.tag) == "rootfile" and element.get("full-path"):
                return _clean_path(element.get("full-path", ""))
        raise CorruptFile(f"{_CONTAINER} names no package file; the EPUB file is damaged")
    candidates = [name for name in archive.names() if name.lower().endswith(".opf")]
    if len(candidates) == 1:
        return candidates[0]
    raise CorruptFile(f"{_CONTAINER} is missing; the EPUB file is damaged or not a real EPUB")


def read_package(archive: SafeZip, opf_path: str) -> Package:
    """The title and reading order from the OPF file at ``opf_path``."""
    root = archive.read_xml(opf_path)
    base = posixpath.dirname(opf_path)
    title = ""
    manifest: dict[str, tuple[str, str]] = {}  # id -> (path, media type)
    order: list[str] = []
    for element in root.iter():
        name = local(element.tag)
        if name == "title" and not title and element.text:
            title = one_line(element.text)
        elif name == "item" and element.get("id") and element.get("href"):
            href = _resolve(base, element.get("href", ""))
            manifest[element.get("id", "")] = (href, element.get("media-type", ""))
        elif name == "itemref" and element.get("idref"):
            order.append(element.get("idref", ""))
    spine = tuple(manifest[idref][0] for idref in order if idref in manifest and _is_html(*manifest[idref]))
    if not spine:  # no usable spine: fall back to the manifest's documents in listed order
        spine = tuple(href for href, media in manifest.values() if _is_html(href, media))
    if not spine:
        raise CorruptFile("the EPUB lists no readable documents; the file is damaged")
    return Package(title=title, spine=spine)


def _read_section(archive: SafeZip, name: str, *, number: int, warnings: list[str]) -> Page | None:
    """One spine document as a section, or None (with a warning) when it is missing or unreadable."""
    if not archive.has(name):
        warnings.append(f"{name} is in the reading order but missing from the book; skipped")
        return None
    data = archive.read(name)
    try:
        parsed = parse_html(decode_text(data, declared=sniff_charset(data)).text)
    except ExtractionError as exc:
        warnings.append(f"skipped {name}: {exc}")
        return None
    if not parsed.text.strip():
        return None  # cover images, blank pages
    label = parsed.first_heading or parsed.title
    return Page(number=number, text=parsed.text, label=label)


def _refuse_drm(archive: SafeZip) -> None:
    if not archive.has(_ENCRYPTION):
        return
    try:
        root = archive.read_xml(_ENCRYPTION)
    except CorruptFile as exc:
        logger.debug("unreadable %s: %s", _ENCRYPTION, exc)
        return
    for element in root.iter():
        if local(element.tag) == "EncryptionMethod" and element.get("Algorithm") not in _FONT_OBFUSCATION:
            raise EncryptedFile("DRM-protected EPUB; Findling cannot read its text")


def _resolve(base: str, href: str) -> str:
    href = unquote(href.split("#", 1)[0])
    return _clean_path(posixpath.join(base, href))


def _clean_path(name: str) -> str:
    return posixpath.normpath(name).lstrip("/")


def _is_html(href: str, media_type: str) -> bool:
    return media_type in _HTML_TYPES or (not media_type and href.lower().endswith(_HTML_EXTENSIONS))
