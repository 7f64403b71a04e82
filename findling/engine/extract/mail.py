"""E-mail: single messages (``.eml``, Outlook ``.msg``) and mailboxes (``.mbox``).

Each message becomes text in this order: its headers as lines (``From``, ``To``, ``Cc``, ``Subject``,
``Date``, then ``Attachments:`` with every attachment's name), a blank line, its body (text/plain preferred,
else the HTML part through the HTML extractor). Each attachment of a type Findling reads follows as a section
of its own, headed ``Attachment: NAME`` and read by ``extract_bytes`` (the reader and limits a file of that
name gets). A mail attached to a mail is read one level deep, as a section headed ``Attached message: NAME``
with its own attachments after it; a mail attached inside that one is named but not read. An attachment that
cannot be read adds a warning with its reason, and its message is indexed all the same.

Pages: the messages of a mailbox are its pages, numbered from 1 in the order of the file, so a hit names its
message; a message's attachment sections carry the message's number (a single message is page 1 throughout).

The headers' values are also kept as ``ExtractedText.fields`` (``from``, ``to``, ``cc``, ``subject``,
``date``; for a mailbox, those of every message) for the ``from:``, ``to:`` and ``subject:`` filters.

Pictures shown inside a message's body (inline images: logos, signatures) are not read; attached ones are.

Bounds, whatever the input claims: the parser gets the bytes 1 MiB at a time and the whole file stops at
``TIME_BUDGET_S`` (what is left is skipped with a warning; the first message is always read), attachments at
half of it, so slow ones (OCR, long PDFs) leave the rest of a mailbox time to be read; a message with more
than ``MAX_MULTIPARTS`` multipart containers is read for its headers only (each line of a message is checked
against every open boundary, so deep nesting costs time as its square); header values are cut to ``MAX_HEADER_CHARS``; at most
``MAX_ATTACHMENTS`` attachments are read per file; no more messages or attachments are read once the text
reaches ``max_text_chars``. An attachment's size is its decoded length, never a size it declares, and one over
``max_file_bytes`` is refused from its encoded length before it is decoded.

mbox: a message begins at each line that starts with ``From `` (as Python's ``mailbox`` splits them); that
line is dropped and ``>From `` lines lose one ``>`` (mboxrd quoting).
"""
from __future__ import annotations

import logging
import mimetypes
import re
import time
from dataclasses import dataclass, field, replace
from email import policy
from email.feedparser import BytesFeedParser
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path, PurePath
from typing import Any, Callable, Iterator

from findling.engine.config import Config
from findling.engine.errors import CorruptFile, ExtractionError, UnsupportedFile
from findling.engine.extract.decode import decode_text
from findling.engine.extract.html import parse_html
from findling.engine.extract.limits import human_size
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.textutil import normalise_newlines, one_line, short_reason
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

EML_SUFFIXES: frozenset[str] = frozenset({".eml"})
MBOX_SUFFIXES: frozenset[str] = frozenset({".mbox"})
MSG_SUFFIXES: frozenset[str] = frozenset({".msg"})
MAIL_SUFFIXES: frozenset[str] = EML_SUFFIXES | MBOX_SUFFIXES | MSG_SUFFIXES

HEADERS: tuple[tuple[str, str], ...] = (
    ("from", "From"), ("to", "To"), ("cc", "Cc"), ("subject", "Subject"), ("date", "Date"),
)
"""(field name, header line label) of the headers that go into the text and ``ExtractedText.fields``."""

TIME_BUDGET_S = 60.0
"""Seconds one mail file may take to read, attachments included; the rest is skipped with a warning."""
MAX_MULTIPARTS = 50
MAX_HEADER_CHARS = 2000
MAX_ATTACHMENTS = 500
MAX_NESTED_MAIL = 1
"""How deep mail attached to mail is read: 1 reads an attached message, not one attached inside it."""

_FEED_BYTES = 1 << 20
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_BOUNDARY = re.compile(rb"boundary\s*=", re.IGNORECASE)
_ENCRYPTED = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime", "multipart/encrypted"})


# ------------------------------------------------------------------------------------------ entry points
def extract_eml(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """One RFC 5322 message (``.eml``)."""
    reading = _Reading(config)
    view = _parse(data, reading, what="the message")
    if not view.msg.keys():  # no header at all: not a mail; read it as text, or refuse it as binary
        decoded = decode_text(data)
        return ExtractedText(path=path, text=normalise_newlines(decoded.text), title=path.name, kind="mail",
                             warnings=(*decoded.warnings, "no mail headers found; read as plain text"))
    subject = reading.message(view, number=1, depth=0)
    return reading.result(path, title=subject)


def extract_mbox(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """A Unix mailbox: one page per message."""
    if not _FROM_LINE.search(data):  # no message separator at all: one message, or not mail
        result = extract_eml(path, data, config=config)
        return replace(result, warnings=(*result.warnings, "no mbox 'From ' line found; read as one message"))
    reading = _Reading(config)
    spans = _mbox_spans(data)
    if not data.startswith(b"From "):
        reading.warn("the file does not start with an mbox 'From ' line; its start was read as a message")
    for index, (start, end) in enumerate(spans):
        if index and reading.stop_reason():  # the first message is always read
            reading.warn(f"stopped after message {index} of {len(spans)}: {reading.stop_reason()}")
            break
        raw = data[start:end]
        if raw.startswith(b"From "):
            raw = raw[raw.find(b"\n") + 1:] if b"\n" in raw else b""
        raw = _QUOTED_FROM.sub(rb"\1", raw)
        reading.message(_parse(raw, reading, what=f"message {index + 1}"), number=index + 1, depth=0)
    return reading.result(path, title=path.name)


def extract_msg(path: Path, data: bytes, *, config: Config) -> ExtractedText:
    """An Outlook message (``.msg``, an OLE compound file), read with extract-msg."""
    if not data.startswith(_OLE_MAGIC):
        raise CorruptFile("not an Outlook message: a .msg file is an OLE compound file and this one is not")
    reading = _Reading(config)
    with _open_msg(data) as msg:
        subject = reading.message(_MsgView(msg), number=1, depth=0)
    return reading.result(path, title=subject)


# ------------------------------------------------------------------------------------ the shared walk
@dataclass
class _Attachment:
    """An attachment as the walk sees it: its name, its size before decoding, and how to get its content
    (bytes, or a message view for mail embedded as a message rather than as a file)."""

    name: str
    encoded_size: int
    load: Callable[[], Any]


class _View:
    """What the walk needs of one message, whatever its format."""

    warnings: list[str]

    def header(self, name: str) -> str:
        raise NotImplementedError

    def body(self) -> str:
        raise NotImplementedError

    def attachments(self) -> list[_Attachment]:
        raise NotImplementedError


@dataclass
class _Reading:
    """One file being read: its sections so far, warnings, fields, text size and deadline."""

    config: Config
    deadline: float = field(default_factory=lambda: time.monotonic() + TIME_BUDGET_S)
    pages: list[Page] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fields: dict[tuple[str, str], None] = field(default_factory=dict)
    chars: int = 0
    attachments_read: int = 0

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def stop_reason(self, *, attachment: bool = False) -> str:
        """Why nothing more should be read ("" while there is room and time). Attachments get the first half of
        the time budget, so slow ones (OCR, long PDFs) leave the messages of a mailbox time to be read."""
        if self.chars >= self.config.max_text_chars:
            return "the text limit (max_text_chars) was reached"
        left = self.deadline - time.monotonic()
        if left < 0 or (attachment and left < TIME_BUDGET_S / 2):
            budget = TIME_BUDGET_S / 2 if attachment else TIME_BUDGET_S
            return f"reading {'attachments ' if attachment else ''}took over {budget:.0f} s"
        return ""

    def add(self, number: int, text: str, label: str) -> None:
        self.pages.append(Page(number=number, text=text, label=label))
        self.chars += len(text)

    def message(self, view: _View, *, number: int, depth: int, heading: str = "", within: str = "") -> str:
        """Add ``view`` and its attachments as sections numbered ``number``; returns its subject."""
        values = {name: view.header(name) for name, _label in HEADERS}
        if depth == 0:
            self.fields.update(((name, value), None) for name, value in values.items() if value)
        try:
            body = view.body()
        except ExtractionError as exc:
            body = ""
            view.warnings.append(f"the body of {within or 'the message'} was not read: {exc}")
        attachments = view.attachments()
        lines = [heading] if heading else []
        lines += [f"{label}: {values[name]}" for name, label in HEADERS if values[name]]
        named = [a.name for a in attachments if a.name]
        if named:
            lines.append(one_line("Attachments: " + ", ".join(named)))
        self.warnings += view.warnings
        subject = values["subject"]
        self.add(number, "\n".join(lines) + ("\n\n" + body if body.strip() else ""),
                 label=subject or heading or f"message {number}")
        for attachment in attachments:
            self._attachment(attachment, number=number, depth=depth, within=within)
        return subject

    def _attachment(self, attachment: _Attachment, *, number: int, depth: int, within: str) -> None:
        name = attachment.name or "unnamed attachment"
        shown = f"{name} (in {within})" if within else name
        suffix = PurePath(name).suffix.lower()
        mail = suffix in MAIL_SUFFIXES
        if not mail and not _readable(name):
            return  # images, archives, ...: named in the message's Attachments line only
        stop = self.stop_reason(attachment=True)
        if stop:
            self.warn(f"attachment {shown} not read: {stop}")
            return
        if self.attachments_read >= MAX_ATTACHMENTS:
            self.warn(f"attachment {shown} not read: over {MAX_ATTACHMENTS} attachments in one file")
            return
        if mail and depth >= MAX_NESTED_MAIL:
            self.warn(f"attachment {shown} not read: a mail inside an attached mail (one level is read)")
            return
        limit = self.config.max_file_bytes
        if not mail and attachment.encoded_size * 3 // 4 > limit:  # base64: 4 characters per 3 bytes
            self.warn(f"attachment {shown} not read: about {human_size(attachment.encoded_size * 3 // 4)}, over "
                      f"the {human_size(limit)} limit (max_file_bytes)")
            return
        self.attachments_read += 1
        try:
            content = attachment.load()
            if mail:
                self._nested(content, name=name, shown=shown, number=number, depth=depth)
                return
            if content is None:
                raise CorruptFile("its content could not be decoded")
            text = _attachment_text(name, content, config=self.config)
        except ExtractionError as exc:
            self.warn(f"attachment {shown} not read: {exc}")
            return
        except RecursionError:
            self.warn(f"attachment {shown} not read: nested too deeply to read")
            return
        except Exception as exc:  # a parser tripping over one attachment must not lose the message
            logger.debug("attachment %s failed", shown, exc_info=True)
            self.warn(f"attachment {shown} not read: {short_reason(exc)}")
            return
        if text.warnings:
            self.warnings += [f"attachment {shown}: {w}" for w in text.warnings]
        if text.text.strip():
            self.add(number, f"Attachment: {shown}\n\n{text.text}", label=name)

    def _nested(self, content: Any, *, name: str, shown: str, number: int, depth: int) -> None:
        """An attached mail: a message view (embedded .msg, message/rfc822) or the bytes of a mail file."""
        heading = f"Attached message: {shown}"
        if isinstance(content, _View):
            self.message(content, number=number, depth=depth + 1, heading=heading, within=name)
            return
        if not isinstance(content, bytes):
            raise CorruptFile("its content could not be decoded")
        suffix = PurePath(name).suffix.lower()
        if suffix in MSG_SUFFIXES:
            if not content.startswith(_OLE_MAGIC):
                raise CorruptFile("not an Outlook message (not an OLE compound file)")
            with _open_msg(content) as msg:
                self.message(_MsgView(msg), number=number, depth=depth + 1, heading=heading, within=name)
            return
        spans = _mbox_spans(content) if suffix in MBOX_SUFFIXES else [(0, len(content))]
        for start, end in spans:
            raw = content[start:end]
            if suffix in MBOX_SUFFIXES and raw.startswith(b"From "):
                raw = _QUOTED_FROM.sub(rb"\1", raw[raw.find(b"\n") + 1:] if b"\n" in raw else b"")
            if self.stop_reason():
                self.warn(f"attachment {shown} read in part: {self.stop_reason()}")
                return
            view = _parse(raw, self, what=f"attachment {shown}")
            self.message(view, number=number, depth=depth + 1, heading=heading, within=name)

    def result(self, path: Path, *, title: str) -> ExtractedText:
        text, spans = join_pages(self.pages)
        return ExtractedText(path=path, text=text, title=one_line(title) or path.name, pages=spans, kind="mail",
                             warnings=tuple(dict.fromkeys(self.warnings)), fields=tuple(self.fields))


def _readable(name: str) -> bool:
    from findling.engine.extract import is_supported  # the registry imports this module

    return is_supported(Path(PurePath(name).name))


def _attachment_text(name: str, data: bytes, *, config: Config) -> ExtractedText:
    from findling.engine.extract import extract_bytes  # the registry imports this module

    return extract_bytes(PurePath(name).name, data, config=config)


def _mbox_spans(data: bytes) -> list[tuple[int, int]]:
    """``[start, end)`` of each message of a mailbox; text before the first ``From `` line counts as one when
    it is more than blank lines."""
    starts = [m.start() for m in _FROM_LINE.finditer(data)]
    if not starts or (starts[0] > 0 and data[: starts[0]].strip()):
        starts.insert(0, 0)
    elif starts[0] > 0:
        starts[0] = 0
    ends = starts[1:] + [len(data)]
    return [(s, e) for s, e in zip(starts, ends) if data[s:e].strip()]


# -------------------------------------------------------------------------------- RFC 5322 (email)
def _parse(data: bytes, reading: _Reading, *, what: str) -> "_EmailView":
    """``data`` parsed as one message, within the file's time budget and ``MAX_MULTIPARTS``."""
    if len(_BOUNDARY.findall(data, 0, len(data))) > MAX_MULTIPARTS:
        reading.warn(f"{what} has more than {MAX_MULTIPARTS} nested parts; only its headers were read")
        return _EmailView(BytesParser(policy=policy.default).parsebytes(data, headersonly=True), headers_only=True)
    parser = BytesFeedParser(policy=policy.default)
    for start in range(0, len(data), _FEED_BYTES):
        if start and time.monotonic() > reading.deadline:
            reading.warn(f"{what} was read in part: reading took over {TIME_BUDGET_S:.0f} s")
            break
        parser.feed(data[start:start + _FEED_BYTES])
    return _EmailView(parser.close())


class _EmailView(_View):
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

    def attachments(self) -> list[_Attachment]:
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
                out.append(_Attachment(name, size, lambda part=part: part.get_payload(decode=True)))
        return out

    def _embedded(self, part: Message) -> _Attachment:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        name = _filename(part)
        if not name and isinstance(inner, Message):
            name = (one_line(_decode_header(str(inner.get("subject", "") or ""))) or "message") + ".eml"
        name = name or "message.eml"
        if not name.lower().endswith(tuple(MAIL_SUFFIXES)):
            name += ".eml"
        return _Attachment(name, 0, lambda: _EmailView(inner) if isinstance(inner, Message) else None)


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
class _open_msg:
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


class _MsgView(_View):
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

    def attachments(self) -> list[_Attachment]:
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
                out.append(_Attachment(name, 0, lambda att=att: _MsgView(att.data)))
            elif kind == "DATA":
                out.append(_Attachment(name, _msg_size(att), lambda att=att: att.data))
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
