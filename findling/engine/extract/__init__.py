"""The extraction stage: one file on disk -> an ``ExtractedText`` (or an ``ExtractionError``).

``extract`` picks a reader by the file's suffix (or, for ``README``, ``Makefile`` and friends, its
name), reads the file once through ``limits.read_bytes`` (size checked before reading, never
blocking on a pipe), hands the bytes to the format's module and cuts the result to
``config.max_text_chars``. Text and HTML files are read only as far as that many characters can reach
(4 bytes each), so memory follows the text limit, not the file size. PDFs stop after a time budget
(``pdf.TIME_BUDGET_S``); zip containers are read under ``archive.ZipLimits``. Anything a parser
raises on bad input becomes ``CorruptFile``; the error's message is the short reason recorded for
the file. Nothing is ever written.

Modules: ``text`` (plain text and source code, with ``decode``), ``html``, ``pdf``, ``office``
(DOCX, ODT), ``epub``; ``archive`` reads zip containers safely; ``limits``, ``pages`` and
``textutil`` are shared helpers.

``images`` (PNG, JPEG, TIFF) and the scanned pages of ``pdf`` are read by OCR (``ocr``), when it is on.

``slides`` (PPTX, ODP: a page per slide, speaker notes included), ``sheets`` (XLSX, ODS with calamine: a
page per sheet), ``rtf`` and ``notebook`` (Jupyter: a page per cell); ``officezip`` holds their shared
zip checks. ``page_unit`` names what a page number counts in each format.

``mail`` reads e-mail (.eml, .mbox, Outlook .msg, and Thunderbird's mail folders: an mbox file without a
known suffix, told apart by the ``.msf`` index beside it and its first line); each attachment goes through
``extract_bytes``, the same readers and limits as a file on disk.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from findling.engine.config import Config
from findling.engine.errors import CorruptFile, ExtractionError, FileTooLarge, UnsupportedFile
from findling.engine.extract import epub, html, office, pdf, text
from findling.engine.extract import images
from findling.engine.extract import notebook, rtf, sheets, slides
from findling.engine.extract import mail, mailmessage
from findling.engine.extract.limits import cap_text, clean_text, human_size, read_bytes
from findling.engine.extract.textutil import short_reason
from findling.engine.records import PAGE_UNITS, ExtractedText, page_unit  # page_unit: public here

logger = logging.getLogger(__name__)

Reader = Callable[..., ExtractedText]  # (path, data, *, config) -> ExtractedText


@dataclass(frozen=True)
class Format:
    """How one family of files is read."""

    kind: str
    read: Reader
    streams: bool = False  # a prefix of the file is a readable file of this kind (plain text, HTML)


def _formats() -> dict[str, Format]:
    table: dict[str, Format] = {}
    for suffixes, fmt in (
        (text.PROSE_SUFFIXES, Format("text", text.extract_plain, streams=True)),
        (text.SOURCE_SUFFIXES, Format("source", text.extract_plain, streams=True)),
        (html.SUFFIXES, Format("html", html.extract_html, streams=True)),
        (pdf.SUFFIXES, Format("pdf", pdf.extract_pdf)),
        (office.DOCX_SUFFIXES, Format("docx", office.extract_docx)),
        (office.ODT_SUFFIXES, Format("odt", office.extract_odt)),
        (epub.SUFFIXES, Format("epub", epub.extract_epub)),
        (images.SUFFIXES, Format("image", images.extract_image)),
        (slides.PPTX_SUFFIXES, Format("pptx", slides.extract_pptx)),
        (slides.ODP_SUFFIXES, Format("odp", slides.extract_odp)),
        (sheets.XLSX_SUFFIXES, Format("xlsx", sheets.extract_xlsx)),
        (sheets.ODS_SUFFIXES, Format("ods", sheets.extract_ods)),
        (rtf.SUFFIXES, Format("rtf", rtf.extract_rtf)),
        (notebook.SUFFIXES, Format("notebook", notebook.extract_notebook)),
        (mailmessage.EML_SUFFIXES, Format("mail", mail.extract_eml)),
        (mailmessage.MBOX_SUFFIXES, Format("mail", mail.extract_mbox)),
        (mailmessage.MSG_SUFFIXES, Format("mail", mail.extract_msg)),
    ):
        table.update(dict.fromkeys(suffixes, fmt))
    return table


_BY_SUFFIX: dict[str, Format] = _formats()
_BY_NAME: dict[str, Format] = {
    **dict.fromkeys(text.PROSE_NAMES, Format("text", text.extract_plain, streams=True)),
    **dict.fromkeys(text.SOURCE_NAMES, Format("source", text.extract_plain, streams=True)),
}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_BY_SUFFIX)
"""Lower-case suffixes, with the dot, of the files Findling reads."""

SUPPORTED_NAMES: frozenset[str] = frozenset(_BY_NAME)
"""Lower-case names of suffix-less files Findling reads as text (``readme``, ``makefile``, ...)."""


def _format_for(path: Path) -> Format | None:
    suffix = path.suffix.lower()
    if suffix:
        found = _BY_SUFFIX.get(suffix)
        if found is not None:
            return found
    return _BY_NAME.get(path.name.lower())


def _format_on_disk(path: Path) -> Format | None:
    """The reader for the file at ``path``: by its name, else the mailbox reader for a Thunderbird mail folder
    (``mail.is_thunderbird_folder``: the ``.msf`` index beside it and its first bytes, never the name alone)."""
    found = _format_for(path)
    if found is None and mail.is_thunderbird_folder(path):
        return _BY_SUFFIX[".mbox"]
    return found


def is_supported(path: Path) -> bool:
    """Whether ``extract`` has a reader for the file at ``path``: judged by its name, except that a file the
    name gives no reader is looked at as a possible Thunderbird mail folder (its ``.msf`` index and first bytes)."""
    return _format_on_disk(Path(path)) is not None


def extract(path: Path, *, config: Config) -> ExtractedText:
    """The text of the file at ``path``.

    Raises an ``ExtractionError`` subclass whose message is a short reason for the user:
    ``UnsupportedFile``, ``FileTooLarge``, ``BinaryFile``, ``EncryptedFile``, ``CorruptFile``,
    ``FileVanished``, or ``ExtractionError`` itself (e.g. a PDF without a text layer). An empty file
    gives an ``ExtractedText`` with empty text.
    """
    path = Path(path)
    fmt = _format_on_disk(path) or _reader_for(path)  # _reader_for raises the reason when there is no reader
    head = 4 * config.max_text_chars if fmt.streams else None  # enough bytes for max_text_chars characters
    data = read_bytes(path, max_bytes=config.max_file_bytes, head=head)
    result = _read(fmt, path, data, config=config)
    if head is not None and len(data) >= head and path.stat().st_size > head:
        note = f"only the first {human_size(head)} of the file were read: the text limit (max_text_chars) was reached"
        result = replace(result, warnings=(*result.warnings, note))
    return cap_text(clean_text(result), max_chars=config.max_text_chars)


def extract_bytes(name: str | Path, data: bytes, *, config: Config) -> ExtractedText:
    """The text of ``data``, the content of a file called ``name`` that has no file of its own (a mail's
    attachment): read by the reader ``extract`` would pick for that name, under the same limits (size, text
    length, and each format's own). The result's ``path`` is ``Path(name)``. Raises what ``extract`` raises.
    """
    path = Path(name)
    fmt = _reader_for(path)
    if len(data) > config.max_file_bytes:
        raise FileTooLarge(f"{human_size(len(data))} is over the {human_size(config.max_file_bytes)} limit; "
                           "raise max_file_bytes to index it")
    head = 4 * config.max_text_chars if fmt.streams else None
    result = _read(fmt, path, data[:head] if head is not None else data, config=config)
    if head is not None and len(data) > head:
        note = f"only the first {human_size(head)} were read: the text limit (max_text_chars) was reached"
        result = replace(result, warnings=(*result.warnings, note))
    return cap_text(clean_text(result), max_chars=config.max_text_chars)


def _reader_for(path: Path) -> Format:
    fmt = _format_for(path)
    if fmt is None:
        what = f"{path.suffix.lower()} files" if path.suffix else "files without a known extension"
        raise UnsupportedFile(f"{what} are not supported")
    return fmt


def _read(fmt: Format, path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """``data`` read by ``fmt``; whatever a parser raises on bad input becomes ``CorruptFile``."""
    if not data:
        return ExtractedText(path=path, text="", title=path.name, kind=fmt.kind)
    try:
        return fmt.read(path, data, config=config)
    except ExtractionError:
        raise
    except RecursionError as exc:
        raise CorruptFile("structure nested too deeply to read; the file may be damaged") from exc
    except Exception as exc:  # a parser tripping over bad input must not stop the indexer
        logger.debug("%s reader failed on %s", fmt.kind, path, exc_info=True)
        raise CorruptFile(f"could not read this {fmt.kind} file ({short_reason(exc)})") from exc
