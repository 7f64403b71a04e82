"""Rich Text Format (.rtf) documents, read with striprtf.

The file must start with ``{\\rtf``. Embedded pictures, OLE objects and raw binary runs (``\\pict``,
``\\object``, ``\\objdata``, ``\\bin``) are cut out before striprtf sees the text: they hold no text and
would dominate its running time. ``\\'xx`` escapes and 8-bit bytes are decoded with the code page the
document declares (``\\ansicpgNNNN``; Windows-1252 when it declares none or one Python does not know);
``\\uN`` escapes are Unicode. Title: the ``\\info`` group's ``\\title``, else the first line.
"""
from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

from findling.engine.config import Config
from findling.engine.errors import CorruptFile
from findling.engine.extract.textutil import first_line, normalise_newlines, one_line
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".rtf"})

_SIGNATURE = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*\{\\rtf", re.ASCII)
_CODEPAGE = re.compile(rb"\\ansicpg(\d{1,5})")
_BINARY_GROUP = re.compile(rb"\{(?:\\\*)?\\(?:pict|object|objdata|themedata|colorschememapping|datastore)\b")
_BRACE = re.compile(rb"\\[\\{}]|[{}]")
_BIN = re.compile(rb"\\bin(\d{1,10}) ?")
_TITLE = re.compile(r"\{\\title\s?([^{}]*)\}")


def extract_rtf(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """Text of an RTF document."""
    del config  # the caller applies the size and length limits
    if not _SIGNATURE.match(data[:64]):
        raise CorruptFile("not an RTF document (it does not start with {\\rtf); damaged, or another format "
                          "under an .rtf name")
    from striprtf.striprtf import rtf_to_text

    encoding = _encoding(data)
    source = _drop_binary(data).decode(encoding, errors="replace")
    text = normalise_newlines(rtf_to_text(source, encoding=encoding, errors="replace")).strip()
    found = _TITLE.search(source)
    title = one_line(rtf_to_text(found.group(1), encoding=encoding, errors="replace")) if found else ""
    return ExtractedText(path=path, text=text, title=title or first_line(text) or path.name, kind="rtf")


def _encoding(data: bytes) -> str:
    found = _CODEPAGE.search(data[:4096])
    if found:
        name = f"cp{int(found.group(1))}"
        try:
            codecs.lookup(name)
            return name
        except LookupError:
            logger.debug("unknown RTF code page %s; reading it as cp1252", name)
    return "cp1252"


def _drop_binary(data: bytes) -> bytes:
    """``data`` without picture and object groups and ``\\binN`` runs (which hold no text)."""
    pieces: list[bytes] = []
    position = 0
    group = _BINARY_GROUP.search(data)
    binary = _BIN.search(data)
    while group is not None or binary is not None:
        if binary is not None and (group is None or binary.start() < group.start()):
            pieces.append(data[position:binary.start()])
            position = min(len(data), binary.end() + int(binary.group(1)))
        else:
            assert group is not None
            pieces.append(data[position:group.start()])
            position = _group_end(data, group.start())
        if group is not None and group.start() < position:
            group = _BINARY_GROUP.search(data, position)
        if binary is not None and binary.start() < position:
            binary = _BIN.search(data, position)
    pieces.append(data[position:])
    return b"".join(pieces)


def _group_end(data: bytes, start: int) -> int:
    """The offset just past the group opening at ``start`` (the end of ``data`` if it never closes)."""
    depth = 0
    for match in _BRACE.finditer(data, start):
        token = match.group()
        if token == b"{":
            depth += 1
        elif token == b"}":
            depth -= 1
            if depth == 0:
                return match.end()
        # anything else is an escaped brace or backslash, which does not count
    return len(data)
