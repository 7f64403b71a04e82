"""One mail message, whatever its format: its headers, body and attachments, as the reading of a mail file
(``mail``) sees them.

``MessageView`` is that seam: ``header(name)`` gives a header's value decoded (RFC 2047 encoded words; 8-bit
bytes read as UTF-8, else cp1252), on one line and cut to ``MAX_HEADER_CHARS``, "" when absent; ``body()``
the message's text; ``attachments()`` its attachments as ``Attachment`` (a name, a size before decoding, and
a way to load the content only when it is read). A view adds what it could not read to ``warnings``; reading
a view never raises on bad input except ``ExtractionError`` from ``body()``.

``EmailView`` is an RFC 5322 message parsed by the standard library: its body is the text/plain part (else
the HTML part through the HTML extractor) followed by further inline text/plain parts; pictures shown inside
the body (inline images) are not attachments; an encrypted message gives its headers only; containers nested
deeper than ``MAX_MULTIPARTS`` are not opened; an attached message (message/rfc822) is an attachment whose
content is a view of its own, named after its subject with a mail suffix.

``MsgView`` is an Outlook message (``.msg``, an OLE compound file) opened by extract-msg through ``open_msg``,
whose errors become ``CorruptFile`` (``UnsupportedFile`` for an Outlook item that is not a message); a damaged
property is a warning and a missing value, never a lost message. An embedded message is an attachment whose
content is a view; an attachment's size is its stored size in base64 terms, the unit the walk's size check
expects.

Attachment names are file names only: folders in a claimed name are dropped.
"""
from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from pathlib import PurePath
from typing import Any, Callable, Iterator

from findling.engine.errors import CorruptFile, ExtractionError, UnsupportedFile
from findling.engine.extract.decode import decode_text
from findling.engine.extract.html import parse_html
from findling.engine.extract.textutil import normalise_newlines, one_line, short_reason

logger = logging.getLogger(__name__)

EML_SUFFIXES: frozenset[str] = frozenset({".eml"})
MBOX_SUFFIXES: frozenset[str] = frozenset({".mbox"})
MSG_SUFFIXES: frozenset[str] = frozenset({".msg"})
MAIL_SUFFIXES: frozenset[str] = EML_SUFFIXES | MBOX_SUFFIXES | MSG_SUFFIXES

MAX_MULTIPARTS = 50
"""Multipart containers nested deeper than this are not opened."""
MAX_HEADER_CHARS = 2000
"""A header value is cut to this many characters."""

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""The first bytes of an OLE compound file, which every Outlook ``.msg`` is."""
_ENCRYPTED = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime", "multipart/encrypted"})


# ------------------------------------------------------------------------------------------- the seam
@dataclass
class Attachment:
    """An attachment as the walk sees it: its name, its size before decoding, and how to get its content
    (bytes, or a message view for mail embedded as a message rather than as a file)."""

    name: str
    encoded_size: int
    load: Callable[[], Any]


class MessageView:
    """What the walk needs of one message, whatever its format."""

    warnings: list[str]

    def header(self, name: str) -> str:
        raise NotImplementedError

    def body(self) -> str:
        raise NotImplementedError

    def attachments(self) -> list[Attachment]:
        raise NotImplementedError


# -------------------------------------------------------------------------------- RFC 5322 (email)
class EmailView(MessageView):
    """A message parsed by the standard library (``policy.default``)."""

    def __init__(self, message: Message, *, headers_only: bool = False) -> None:
        self.msg = message
        self.headers_only = headers_only
        self.warnings = []
        self._body_part: Message | None = None

    def header(self, name: str) -> str:
        values = [_decode_header(raw) for key, raw in self.msg.raw_items() if key.lower() == name]
        return one_line_header(", ".join(v for v in values if v))

    def body(self) -> str:
        if self.headers_only:
            return ""
        msg = self.msg
        if _content_type(msg) in _ENCRYPTED:
            self.warnings.append("an encrypted message: only its headers were read")
            return ""
        part = None
        if isinstance(msg, EmailMessage):
            try:
                part = msg.get_body(preferencelist=("plain", "html"))
            except Exception:  # malformed structure: fall back to the first text part below
                logger.debug("get_body failed", exc_info=True)
        leaves = list(_leaves(msg))
        if part is None:
            part = next((p for p, _d in leaves if _content_type(p) in ("text/plain", "text/html")
                         and not _is_attachment(p)), None)
        self._body_part = part
        texts = []
        if part is not None:
            texts.append(self._text(part))
        # further inline text parts (a list's footer after an attachment, ...), not the body's HTML twin
        texts += [self._text(p) for p, _d in leaves
                  if p is not part and _content_type(p) == "text/plain" and not _is_attachment(p)]
        return "\n\n".join(t for t in texts if t.strip())

    def _text(self, part: Message) -> str:
        try:
            text = _decode_part(part)
        except ExtractionError as exc:
            self.warnings.append(f"a part of the message was not read: {exc}")
            return ""
        if _content_type(part) == "text/html":
            text = parse_html(text).text
        return normalise_newlines(text).strip()

    def attachments(self) -> list[Attachment]:
        if self.headers_only or _content_type(self.msg) in _ENCRYPTED:
            return []
        out = []
        for part, depth in _leaves(self.msg, rfc822=True):
            if depth < 0:
                self.warnings.append(f"parts nested over {MAX_MULTIPARTS} deep were not read")
                continue
            kind = _content_type(part)
            if kind == "message/rfc822":
                out.append(self._embedded(part))
            elif kind.startswith("image/") and _disposition(part) != "attachment":
                continue  # pictures shown in the body (logos, signatures): not worth reading by OCR
            elif _is_attachment(part) and part is not self._body_part:
                name = _filename(part) or _name_for(kind, len(out) + 1)
                payload = part.get_payload()
                size = len(payload) if isinstance(payload, (str, bytes)) else 0
                out.append(Attachment(name, size, lambda part=part: part.get_payload(decode=True)))
        return out

    def _embedded(self, part: Message) -> Attachment:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        name = _filename(part)
        if not name and isinstance(inner, Message):
            name = (one_line(_decode_header(str(inner.get("subject", "") or ""))) or "message") + ".eml"
        name = name or "message.eml"
        if not name.lower().endswith(tuple(MAIL_SUFFIXES)):
            name += ".eml"
        return Attachment(name, 0, lambda: EmailView(inner) if isinstance(inner, Message) else None)


def _leaves(msg: Message, *, rfc822: bool = False) -> Iterator[tuple[Message, int]]:
    """The non-multipart parts of ``msg`` in order, with their depth; without descending into attached
    messages when ``rfc822`` (they are yielded whole). A container deeper than ``MAX_MULTIPARTS`` is yielded
    with depth -1 and not opened."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        kind = _content_type(part)
        if kind.startswith("multipart/") and part.is_multipart():
            if depth > MAX_MULTIPARTS:
                yield part, -1
                continue
            children = [p for p in part.get_payload() if isinstance(p, Message)]
            stack += [(child, depth + 1) for child in reversed(children)]
        elif kind == "message/rfc822" and part is not msg:
            if rfc822:
                yield part, depth
        elif part.is_multipart():
            continue  # another container type (message/partial, ...): nothing readable here
        else:
            yield part, depth


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # a Content-Type the header parser cannot take
        return "text/plain"


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:  # a Content-Disposition the header parser cannot take
        return ""


def _is_attachment(part: Message) -> bool:
    return _disposition(part) == "attachment" or bool(_filename(part))


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        return ""
    return PurePath(one_line(str(name)).replace("\\", "/")).name


def _name_for(content_type: str, index: int) -> str:
    return f"attachment {index}{mimetypes.guess_extension(content_type) or ''}"


def _decode_part(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    if charset:
        try:
            return payload.decode(charset, errors="replace")
        except (LookupError, ValueError):
            pass  # an unknown charset: guess below
    return decode_text(payload).text


def _decode_header(raw: str) -> str:
    """A raw header value with RFC 2047 encoded words decoded (8-bit bytes read as UTF-8, else cp1252)."""
    raw = raw[: 4 * MAX_HEADER_CHARS]
    if not raw.isascii():  # the parser keeps 8-bit header bytes as surrogate escapes
        data = raw.encode("utf-8", "surrogateescape")
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            raw = data.decode("cp1252", errors="replace")
    try:
        return str(make_header(decode_header(raw)))
    except Exception:  # a malformed encoded word: keep the text as written
        return raw


def one_line_header(value: str) -> str:
    """``value`` on one line, cut to ``MAX_HEADER_CHARS``."""
    return " ".join(value.split())[:MAX_HEADER_CHARS]



# ------------------------------------------------------------------------------------- Outlook (.msg)
class open_msg:
    """``extract_msg.openMsg`` on bytes as a context manager; its errors become ``CorruptFile``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.msg = None

    def __enter__(self):
        import extract_msg  # imported on first use: it takes a while and most indexes hold no .msg
        from extract_msg.enums import ErrorBehavior

        try:
            self.msg = extract_msg.openMsg(self.data, delayAttachments=True,
                                           errorBehavior=ErrorBehavior.SUPPRESS_ALL)
        except Exception as exc:
            if type(exc).__name__ == "UnsupportedMSGTypeError" or type(exc).__name__ == "UnrecognizedMSGTypeError":
                raise UnsupportedFile(f"an Outlook item that is not a message ({short_reason(exc)})") from exc
            raise CorruptFile(f"not a readable Outlook message ({short_reason(exc)})") from exc
        return self.msg

    def __exit__(self, *exc_info) -> None:
        if self.msg is not None:
            try:
                self.msg.close()
            except Exception:
                logger.debug("closing a .msg failed", exc_info=True)


class MsgView(MessageView):
    """An Outlook message opened by extract-msg."""

    def __init__(self, msg: Any) -> None:
        self.msg = msg
        self.warnings = []

    def _get(self, attribute: str) -> Any:
        try:
            return getattr(self.msg, attribute)
        except Exception as exc:  # a damaged property stream: that value is missing, the rest is read
            logger.debug("reading %s of a .msg failed", attribute, exc_info=True)
            self.warnings.append(f"the message's {attribute} could not be read ({short_reason(exc)})")
            return None

    def header(self, name: str) -> str:
        value = self._get({"from": "sender"}.get(name, name))
        if value is None and name == "date":  # no submit time property: the transport headers' Date
            headers = self._get("header")
            value = headers.get("date") if headers is not None else None
        if value is None:
            return ""
        return one_line_header(str(value))

    def body(self) -> str:
        body = self._get("body")
        if isinstance(body, bytes):
            body = decode_text(body).text
        if isinstance(body, str) and body.strip():
            return normalise_newlines(body).strip()
        html = self._get("htmlBody")
        if isinstance(html, bytes) and html.strip():
            return parse_html(decode_text(html).text).text
        return ""

    def attachments(self) -> list[Attachment]:
        found = self._get("attachments") or []
        out = []
        for index, att in enumerate(found, 1):
            try:
                name = att.getFilename() or ""
            except Exception:
                name = ""
            name = PurePath(one_line(str(name)).replace("\\", "/")).name or f"attachment {index}"
            kind = getattr(getattr(att, "type", None), "name", "")
            if kind in ("MSG", "SIGNED_EMBEDDED"):
                if not name.lower().endswith(tuple(MAIL_SUFFIXES)):
                    name += ".msg"
                out.append(Attachment(name, 0, lambda att=att: MsgView(att.data)))
            elif kind == "DATA":
                out.append(Attachment(name, _msg_size(att), lambda att=att: att.data))
            elif kind == "BROKEN" or kind == "UNSUPPORTED":
                self.warnings.append(f"attachment {name} not read: extract-msg could not read it ({kind.lower()})")
        return out


def _msg_size(att: Any) -> int:
    """An attachment's stored size in base64 terms (what the size check in the walk expects)."""
    try:
        size = att.size or 0
    except Exception:
        return 0
    return int(size) * 4 // 3 if isinstance(size, int) else 0
