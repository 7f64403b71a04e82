"""Reading a file safely and keeping extracted text within the configured bounds.

``read_bytes`` is the only place in the extraction stage that touches the disk. It checks the file
with ``stat`` before opening it (so a named pipe never blocks and an oversized file is never read),
opens it non-blocking, checks again on the open descriptor, and reads at most ``max_bytes + 1``; with
``head`` it reads only that many bytes of a longer file, so a text format's memory is bounded by the text
limit rather than by the file. ``clean_text`` replaces lone surrogates (broken PDF font maps) that SQLite
and the tokenizer cannot take.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

from findling.engine.errors import ExtractionError, FileTooLarge, FileVanished, UnsupportedFile
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_SURROGATE = re.compile("[\ud800-\udfff]")


def human_size(n_bytes: int) -> str:
    """``n_bytes`` as a short human-readable size: ``"512 bytes"``, ``"12.5 KB"``, ``"3.5 MB"``."""
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def read_bytes(path: Path, *, max_bytes: int, head: int | None = None) -> bytes:
    """The whole content of the regular file ``path``, refusing anything over ``max_bytes``; with ``head``,
    only its first ``head`` bytes (``len(result) == head`` then means the file may be longer).

    Raises ``FileVanished`` (missing, unreadable), ``UnsupportedFile`` (a folder, pipe or device) or
    ``FileTooLarge``.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    _check_regular(st)
    _check_size(st.st_size, max_bytes)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    try:
        with os.fdopen(fd, "rb") as handle:
            opened = os.fstat(handle.fileno())
            _check_regular(opened)  # the path may have been swapped since the stat above
            _check_size(opened.st_size, max_bytes)
            if head is not None and head < max_bytes:
                return handle.read(head)
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    _check_size(len(data), max_bytes)  # it may have grown while we read
    return data


def _check_regular(st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise UnsupportedFile("this is a folder, not a file")
    if stat.S_ISFIFO(mode):
        raise UnsupportedFile("this is a named pipe (FIFO), not a regular file; skipped so indexing cannot hang")
    if stat.S_ISSOCK(mode):
        raise UnsupportedFile("this is a socket, not a regular file; skipped")
    raise UnsupportedFile("this is a device or special file, not a regular file; skipped")


def _check_size(size: int, max_bytes: int) -> None:
    if size <= max_bytes:
        return
    actual, limit = human_size(size), human_size(max_bytes)
    if actual == limit:  # just over: rounding would make both look the same
        actual, limit = f"{size:,} bytes", f"{max_bytes:,} byte"
    raise FileTooLarge(f"{actual} is over the {limit} limit; raise max_file_bytes to index it")


def _os_error(path: Path, exc: OSError) -> ExtractionError:
    """The user-facing error for an ``OSError`` raised while opening or reading ``path``."""
    logger.debug("cannot read %s: %r", path, exc)
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return FileVanished("broken link: the file it points to does not exist")
        return FileVanished("the file no longer exists (moved or deleted before it could be read)")
    if isinstance(exc, PermissionError):
        return FileVanished("permission denied; give your user read access to this file to index it")
    if isinstance(exc, IsADirectoryError):
        return UnsupportedFile("this is a folder, not a file")
    if exc.errno == errno.ELOOP:
        return FileVanished("symbolic link loop; fix or remove the link")
    reason = exc.strerror or type(exc).__name__
    return FileVanished(f"cannot read the file ({reason}); check the disk or network share it lives on")


def cap_text(extracted: ExtractedText, *, max_chars: int) -> ExtractedText:
    """``extracted`` cut to ``max_chars`` characters (page spans clipped, a warning added)."""
    if len(extracted.text) <= max_chars:
        return extracted
    pages = tuple(replace(p, end=min(p.end, max_chars)) for p in extracted.pages if p.start < max_chars)
    warning = f"text cut at {max_chars:,} of {len(extracted.text):,} characters (max_text_chars)"
    return replace(
        extracted,
        text=extracted.text[:max_chars],
        pages=pages,
        warnings=(*extracted.warnings, warning),
    )



def clean_text(extracted: ExtractedText) -> ExtractedText:
    """``extracted`` with lone surrogates in its text and title replaced by U+FFFD (lengths kept)."""
    if not _SURROGATE.search(extracted.text) and not _SURROGATE.search(extracted.title):
        return extracted
    return replace(
        extracted,
        text=_SURROGATE.sub("\ufffd", extracted.text),
        title=_SURROGATE.sub("\ufffd", extracted.title),
        warnings=(*extracted.warnings, "some characters could not be decoded and were replaced"),
    )
