"""PDF text with pypdf: one ``PageSpan`` per page so a chunk can say which page it came from.

Encrypted files are opened with the empty password (owner-only protection) or refused. A page that
fails is skipped with a warning; reading stops after ``max_pdf_pages`` pages, once
``max_text_chars`` characters are in, or when ``TIME_BUDGET_S`` seconds have gone into the file (a
page is never cut; the pages read so far are kept, with a warning). pypdf's own log warnings about
damaged files are demoted to debug messages of this module while it runs.

Pages read without text (scanned pages) are rendered with pypdfium2 and recognised by OCR
(``findling.engine.extract.ocr``) when it is on: only those pages, at most ``ocr.MAX_OCR_PAGES`` of them,
each within ``ocr.PAGE_TIME_LIMIT_S``; a blank page is not sent to the engine. Their spans carry
``ocr=True`` and a label ending in ``ocr.OCR_SUFFIX``. A PDF left without any text is reported as scanned,
with why OCR did not help (off, nothing recognised, failed).
"""
from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from findling.engine.config import Config
from findling.engine.errors import CorruptFile, EncryptedFile, ExtractionError
from findling.engine.extract import ocr
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.textutil import first_line, normalise_newlines, one_line, short_reason
from findling.engine.records import ExtractedText

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".pdf"})

NO_TEXT_REASON = "no text layer (scanned PDF?)"
"""Start of the reason recorded for a PDF without text; what follows says why OCR did not help."""

TIME_BUDGET_S = 60.0
"""Seconds of reading per PDF; pages after that are not read (a crafted file cannot hold up indexing)."""


def extract_pdf(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of a PDF, page by page."""
    deadline = time.monotonic() + TIME_BUDGET_S
    with quiet_pypdf():
        reader = _open(data)
        _unlock(reader)
        pages, warnings, failures = _read_pages(reader, max_pages=config.max_pdf_pages, max_chars=config.max_text_chars,
                                                deadline=deadline)
        meta_title = _metadata_title(reader)
    if not pages:
        raise ExtractionError("the PDF has no pages")
    recognised = _recognise_blank_pages(data, pages, warnings, failed=failures, config=config)
    if not any(page.text for page in pages):
        if len(failures) == len(pages):
            raise CorruptFile(f"no page of the PDF could be read ({warnings[0]})")
        stopped = [w for w in warnings if w.startswith("stopped after")]
        if stopped:
            raise ExtractionError(f"no text in the pages read ({stopped[0]}; {recognised.outcome})")
        raise ExtractionError(f"{NO_TEXT_REASON}; {recognised.outcome}")
    text, spans = join_pages(pages)
    if recognised.numbers:
        spans = tuple(replace(span, ocr=True, label=ocr.mark(span.label)) if span.number in recognised.numbers
                      else span for span in spans)
    title = meta_title or first_line(text) or path.name
    return ExtractedText(path=path, text=text, title=title, pages=spans, kind="pdf", warnings=tuple(warnings))


@dataclass
class _Recognised:
    """What OCR made of a PDF's text-less pages: the page numbers it gave text, how many pages it looked at,
    and, in words, why it gave no text where it gave none."""

    numbers: set[int] = field(default_factory=set)
    tried: int = 0
    outcome: str = ""


def _recognise_blank_pages(data: bytes, pages: list[Page], warnings: list[str], *, failed: set[int],
                           config: Config) -> _Recognised:
    """Fill the text of ``pages`` that were read but hold none with OCR, in place; problems go to ``warnings``.
    Pages whose reading ``failed`` are left alone: they are damaged, not scanned."""
    blank = [index for index, page in enumerate(pages) if not page.text and page.number not in failed]
    result = _Recognised()
    if not blank:
        return result
    engine = ocr.enabled(config)
    if not engine.available:
        result.outcome = f"OCR is off: {engine.reason}"
        return result
    if len(blank) > ocr.MAX_OCR_PAGES:
        warnings.append(f"OCR read only the first {ocr.MAX_OCR_PAGES} of {len(blank)} pages without text")
        blank = blank[:ocr.MAX_OCR_PAGES]
    problems: list[str] = []
    try:
        rendered = ocr.PdfPages(data)
    except Exception as exc:  # pypdfium2 cannot open what pypdf could: nothing to render
        result.outcome = f"OCR could not render the pages ({short_reason(exc)})"
        warnings.append(result.outcome)
        return result
    with rendered:
        for index in blank:
            number = pages[index].number
            result.tried += 1
            try:
                image = rendered.render(number - 1)
                if ocr.looks_blank(image):
                    continue
                found = clean_page_text(ocr.recognize(image))
            except ocr.OcrTimeout as exc:
                problems.append(f"page {number}: {exc}")
                warnings.append(f"OCR stopped at page {number}: {exc}")
                break  # the engine is still busy with this page; later pages would only queue behind it
            except Exception as exc:
                logger.debug("OCR of page %d failed", number, exc_info=True)
                problems.append(f"page {number}: {short_reason(exc)}")
                warnings.append(f"OCR failed on page {number}: {short_reason(exc)}")
                continue
            if found:
                pages[index] = Page(number=number, text=found, label=pages[index].label)
                result.numbers.add(number)
    if not result.numbers:
        tried = f"{result.tried} page" + ("s" if result.tried != 1 else "")
        result.outcome = f"OCR failed ({problems[0]})" if problems else f"OCR found no text on the {tried} tried"
    return result


def _open(data: bytes) -> PdfReader:
    from pypdf import PdfReader

    try:
        return PdfReader(io.BytesIO(data), strict=False)
    except Exception as exc:  # PdfReadError, PdfStreamError, ValueError, KeyError, ... on damaged files
        raise CorruptFile(f"damaged or truncated PDF ({short_reason(exc)})") from exc


def _unlock(reader: PdfReader) -> None:
    """Decrypt with the empty user password, which is all that owner-only protection needs."""
    from pypdf import PasswordType
    from pypdf.errors import DependencyError

    if not reader.is_encrypted:
        return
    try:
        result = reader.decrypt("")
    except DependencyError as exc:
        raise EncryptedFile(
            "encrypted PDF (AES); install the 'cryptography' package (pip install cryptography) to read it"
        ) from exc
    except Exception as exc:
        raise CorruptFile(f"damaged PDF encryption settings ({short_reason(exc)})") from exc
    if result == PasswordType.NOT_DECRYPTED:
        raise EncryptedFile("encrypted PDF; Findling cannot read it without the password")


def _read_pages(reader: PdfReader, *, max_pages: int, max_chars: int,
                deadline: float = float("inf")) -> tuple[list[Page], list[str], set[int]]:
    """The pages' texts, the warnings, and the numbers of the pages that failed."""
    try:
        total = len(reader.pages)
    except Exception as exc:
        raise CorruptFile(f"damaged PDF page tree ({short_reason(exc)})") from exc
    pages: list[Page] = []
    warnings: list[str] = []
    failures: set[int] = set()
    chars = 0
    for index in range(min(total, max_pages)):
        if chars >= max_chars:
            warnings.append(f"stopped after page {index} of {total}: text limit reached (max_text_chars)")
            return pages, warnings, failures
        if index and time.monotonic() > deadline:
            warnings.append(f"stopped after page {index} of {total}: reading took over {TIME_BUDGET_S:g} s")
            return pages, warnings, failures
        try:
            raw = reader.pages[index].extract_text() or ""
        except Exception as exc:
            logger.debug("page %d failed", index + 1, exc_info=True)
            warnings.append(f"page {index + 1} skipped: {short_reason(exc)}")
            failures.add(index + 1)
            raw = ""
        page = Page(number=index + 1, text=clean_page_text(raw))
        pages.append(page)
        chars += len(page.text)
    if total > max_pages:
        warnings.append(f"only the first {max_pages:,} of {total:,} pages were read (max_pdf_pages)")
    return pages, warnings, failures


def clean_page_text(raw: str) -> str:
    """Page text with newlines normalised, NULs dropped and outer blank space trimmed."""
    return normalise_newlines(raw.replace("\x00", "")).strip()


def _metadata_title(reader: PdfReader) -> str:
    try:
        info = reader.metadata
        raw = info.title if info is not None else None
    except Exception as exc:
        logger.debug("unreadable PDF metadata: %r", exc)
        return ""
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    title = one_line(str(raw or "").replace("\x00", "")).removeprefix("Microsoft Word - ")
    return "" if title.lower() in ("untitled", "title", "document") else title


class _Demote(logging.Handler):
    """Re-logs pypdf's records as debug messages of this module."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("pypdf: %s", record.getMessage())


class _PypdfQuieter:
    """Demotes pypdf's log records while at least one extraction (in any thread) is running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._handler = _Demote()
        self._saved_propagate = True

    @contextmanager
    def __call__(self) -> Iterator[None]:
        pypdf_logger = logging.getLogger("pypdf")
        with self._lock:
            if self._users == 0:
                self._saved_propagate = pypdf_logger.propagate
                pypdf_logger.addHandler(self._handler)
                pypdf_logger.propagate = False
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    pypdf_logger.removeHandler(self._handler)
                    pypdf_logger.propagate = self._saved_propagate


quiet_pypdf = _PypdfQuieter()
"""``with quiet_pypdf():`` routes pypdf's warnings about damaged files to this module's debug log."""
