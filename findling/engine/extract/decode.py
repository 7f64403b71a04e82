"""Turning the bytes of a text file into ``str`` without a charset library.

Order of guesses: a byte-order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE), strict UTF-8, UTF-16 without
a BOM (NUL bytes nearly all at odd or all at even offsets), then cp1252 and finally latin-1, which
decodes anything. Data with NUL bytes that is not UTF-16/32, or with many control characters, is
rejected as binary.
"""
from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass

from findling.engine.errors import BinaryFile

logger = logging.getLogger(__name__)

BINARY_REASON = "looks like binary data, not text"

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# C0 controls except tab, newline, carriage return and form feed; DEL; C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_MAX_CONTROL_RATIO = 0.05
_SAMPLE_CHARS = 65536
_MIN_UTF16_NULS = 2


@dataclass(frozen=True)
class Decoded:
    """Text decoded from bytes, the codec that worked and any recoverable problem."""

    text: str
    encoding: str
    warnings: tuple[str, ...] = ()


def decode_text(data: bytes, *, declared: str | None = None) -> Decoded:
    """``data`` decoded by the guesses above; ``declared`` (e.g. from an HTML meta tag) is tried
    after a BOM and before guessing. Raises ``BinaryFile`` for data that is not text."""
    decoded = _decode_with_bom(data)
    if decoded is None and declared:
        decoded = _decode_declared(data, declared)
    if decoded is None:
        decoded = _guess(data)
    text = decoded.text.lstrip("\ufeff")
    if looks_binary(text):
        raise BinaryFile(BINARY_REASON)
    return Decoded(text=text, encoding=decoded.encoding, warnings=decoded.warnings)


def looks_binary(text: str) -> bool:
    """Whether ``text`` has too many control characters to be prose or code (checks three samples)."""
    if len(text) <= 3 * _SAMPLE_CHARS:
        samples = [text]
    else:
        middle = len(text) // 2
        samples = [text[:_SAMPLE_CHARS], text[middle : middle + _SAMPLE_CHARS], text[-_SAMPLE_CHARS:]]
    return any(len(_CONTROL.findall(sample)) > _MAX_CONTROL_RATIO * len(sample) for sample in samples)


def _decode_with_bom(data: bytes) -> Decoded | None:
    for bom, encoding in _BOMS:
        if not data.startswith(bom):
            continue
        body = data[len(bom) :]
        try:
            return Decoded(text=body.decode(encoding), encoding=encoding)
        except UnicodeDecodeError:
            if encoding == "utf-32-le":
                continue  # really UTF-16 LE text whose first character is U+0000; try that BOM next
            warning = f"some bytes were not valid {encoding} and were replaced"
            return Decoded(text=body.decode(encoding, "replace"), encoding=encoding, warnings=(warning,))
    return None


def _decode_declared(data: bytes, declared: str) -> Decoded | None:
    """``data`` in its declared charset, unless it is valid UTF-8 (then the declaration is wrong)."""
    if b"\x00" in data:
        return None  # binary, or UTF-16 without a BOM: let the guesses decide
    try:
        return Decoded(text=data.decode("utf-8"), encoding="utf-8")
    except UnicodeDecodeError:
        pass
    try:
        encoding = codecs.lookup(declared).name
    except LookupError:
        logger.debug("unknown declared charset %r; guessing instead", declared)
        return None
    if encoding.startswith(("utf-16", "utf-32")):
        return None
    if encoding in ("latin-1", "iso8859-1", "ascii"):
        encoding = "cp1252"  # what browsers do: a declared Latin-1 is nearly always Windows-1252
    try:
        return Decoded(text=data.decode(encoding), encoding=encoding)
    except UnicodeDecodeError:
        warning = f"some bytes were not valid {encoding} and were replaced"
        return Decoded(text=data.decode(encoding, "replace"), encoding=encoding, warnings=(warning,))


def _guess(data: bytes) -> Decoded:
    if b"\x00" in data:
        utf16 = _guess_utf16(data)
        if utf16 is None:
            raise BinaryFile(BINARY_REASON)
        return utf16
    try:
        return Decoded(text=data.decode("utf-8"), encoding="utf-8")
    except UnicodeDecodeError as exc:
        if exc.end == len(data) and exc.reason == "unexpected end of data":  # a character cut by a read limit
            try:
                return Decoded(text=data[: exc.start].decode("utf-8"), encoding="utf-8")
            except UnicodeDecodeError:
                pass
    try:
        return Decoded(text=data.decode("cp1252"), encoding="cp1252")
    except UnicodeDecodeError:
        return Decoded(text=data.decode("latin-1"), encoding="latin-1")


def _guess_utf16(data: bytes) -> Decoded | None:
    """UTF-16 without a BOM: NUL bytes (high bytes of ASCII characters) all at one parity."""
    if len(data) % 2:
        return None
    nul_even = data[0::2].count(0)
    nul_odd = data[1::2].count(0)
    if nul_odd >= _MIN_UTF16_NULS and nul_even <= nul_odd // 50:
        encoding = "utf-16-le"
    elif nul_even >= _MIN_UTF16_NULS and nul_odd <= nul_even // 50:
        encoding = "utf-16-be"
    else:
        return None
    try:
        return Decoded(text=data.decode(encoding), encoding=encoding)
    except UnicodeDecodeError:
        return None
