"""PDF text with pypdf: one ``PageSpan`` per page so a chunk can say which page it came from.

Encrypted files are opened with the empty password (owner-only protection) or refused. A page that
fails is skipped with a warning; reading stops after ``max_pdf_pages`` pages, once
``max_text_chars`` characters are in, or when ``TIME_BUDGET_S`` seconds have gone into the file (a
page is never cut; the pages read so far are kept, with a warning). A PDF without any text is
reported as scanned. pypdf's own log warnings about damaged files are demoted to debug messages of
this module while it runs.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from findling.engine.config import Config
from findling.engine.errors import CorruptFile, EncryptedFile, ExtractionError
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.textutil import first_line, normalise_newlines, one_line, short_reason
from findling.engine.records import ExtractedText

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".pdf"})

NO_TEXT_REASON = "no text layer (scanned PDF?); OCR is not supported"

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
    if not any(page.text for page in pages):
        if failures == len(pages):
            raise CorruptFile(f"no page of the PDF could be read ({warnings[0]})")
        stopped = [w for w in warnings if w.startswith("stopped after")]
        raise ExtractionError(f"no text in the pages read ({stopped[0]})" if stopped else NO_TEXT_REASON)
    text, spans = join_pages(pages)
    title = meta_title or first_line(text) or path.name
    return ExtractedText(path=path, text=text, title=title, pages=spans, kind="pdf", warnings=tuple(warnings))


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
                deadline: float = float("inf")) -> tuple[list[Page], list[str], int]:
    """The pages' texts, the warnings, and how many pages failed."""
    try:
        total = len(reader.pages)
    except Exception as exc:
        raise CorruptFile(f"damaged PDF page tree ({short_reason(exc)})") from exc
    pages: list[Page] = []
    warnings: list[str] = []
    failures = 0
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
            failures += 1
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
