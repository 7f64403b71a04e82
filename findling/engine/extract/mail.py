"""E-mail files: single messages (``.eml``, Outlook ``.msg``) and mailboxes (``.mbox``), read within the
file's budgets. Here a file is split into messages and each message and attachment is laid out as text;
``mailmessage`` reads one message of either format (its headers, body and attachments).

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
against every open boundary, so deep nesting costs time as its square); header values are cut to
``MAX_HEADER_CHARS``; at most ``MAX_ATTACHMENTS`` attachments are read per file; no more messages or
attachments are read once the text reaches ``max_text_chars``. An attachment's size is its decoded length,
never a size it declares, and one over ``max_file_bytes`` is refused from its encoded length before it is
decoded.

mbox: a message begins at each line that starts with ``From `` (as Python's ``mailbox`` splits them); that
line is dropped and ``>From `` lines lose one ``>`` (mboxrd quoting).

Thunderbird keeps each mail folder as an mbox file named after the folder, with no suffix of a known kind
(``Inbox``, ``Lists.birding``), beside its index ``Inbox.msf``. ``is_thunderbird_folder`` recognises such a
file from both the index beside it and an mbox ``From `` line at its start; neither the name nor the index
alone makes a file mail. The ``.msf`` index itself is not a document.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field, replace
from email import policy
from email.feedparser import BytesFeedParser
from email.parser import BytesParser
from pathlib import Path, PurePath
from typing import Any

from findling.engine.config import Config
from findling.engine.errors import CorruptFile, ExtractionError
from findling.engine.extract.decode import decode_text
from findling.engine.extract.limits import human_size
from findling.engine.extract.mailmessage import (MAIL_SUFFIXES, MAX_MULTIPARTS, MBOX_SUFFIXES, MSG_SUFFIXES,
                                                 OLE_MAGIC, Attachment, EmailView, MessageView, MsgView, open_msg)
from findling.engine.extract.pages import Page, join_pages
from findling.engine.extract.textutil import normalise_newlines, one_line, short_reason
from findling.engine.records import ExtractedText

logger = logging.getLogger(__name__)

HEADERS: tuple[tuple[str, str], ...] = (
    ("from", "From"), ("to", "To"), ("cc", "Cc"), ("subject", "Subject"), ("date", "Date"),
)
"""(field name, header line label) of the headers that go into the text and ``ExtractedText.fields``."""

TIME_BUDGET_S = 60.0
"""Seconds one mail file may take to read, attachments included; the rest is skipped with a warning."""
MAX_ATTACHMENTS = 500
MAX_NESTED_MAIL = 1
"""How deep mail attached to mail is read: 1 reads an attached message, not one attached inside it."""

THUNDERBIRD_INDEX_SUFFIX = ".msf"
"""The suffix of the index Thunderbird keeps beside each mail folder (``Inbox`` -> ``Inbox.msf``)."""

_FEED_BYTES = 1 << 20
_MBOX_START = b"From "
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_BOUNDARY = re.compile(rb"boundary\s*=", re.IGNORECASE)


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
    if not data.startswith(OLE_MAGIC):
        raise CorruptFile("not an Outlook message: a .msg file is an OLE compound file and this one is not")
    reading = _Reading(config)
    with open_msg(data) as msg:
        subject = reading.message(MsgView(msg), number=1, depth=0)
    return reading.result(path, title=subject)


def is_thunderbird_folder(path: Path) -> bool:
    """Whether the file at ``path`` is a Thunderbird mail folder: a regular file with its index
    ``<name>.msf`` beside it and an mbox ``From `` line as its first bytes. Reads at most those five bytes;
    False when either cannot be read."""
    if not path.name or path.suffix.lower() == THUNDERBIRD_INDEX_SUFFIX:
        return False
    try:
        if not (path.with_name(path.name + THUNDERBIRD_INDEX_SUFFIX).is_file() and path.is_file()):
            return False  # is_file first: a pipe or device is never opened
        with open(path, "rb") as fh:
            return fh.read(len(_MBOX_START)) == _MBOX_START
    except OSError:
        return False


# ------------------------------------------------------------------------------------ the shared walk
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

    def message(self, view: MessageView, *, number: int, depth: int, heading: str = "", within: str = "") -> str:
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

    def _attachment(self, attachment: Attachment, *, number: int, depth: int, within: str) -> None:
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
        if isinstance(content, MessageView):
            self.message(content, number=number, depth=depth + 1, heading=heading, within=name)
            return
        if not isinstance(content, bytes):
            raise CorruptFile("its content could not be decoded")
        suffix = PurePath(name).suffix.lower()
        if suffix in MSG_SUFFIXES:
            if not content.startswith(OLE_MAGIC):
                raise CorruptFile("not an Outlook message (not an OLE compound file)")
            with open_msg(content) as msg:
                self.message(MsgView(msg), number=number, depth=depth + 1, heading=heading, within=name)
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
    """Whether a file called ``name`` has a reader, judged by the name only (an attachment has no folder, so
    nothing beside it can be looked at)."""
    from findling.engine.extract import SUPPORTED_NAMES, SUPPORTED_SUFFIXES  # the registry imports this module

    bare = PurePath(PurePath(name).name)
    return bare.suffix.lower() in SUPPORTED_SUFFIXES or bare.name.lower() in SUPPORTED_NAMES


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


def _parse(data: bytes, reading: _Reading, *, what: str) -> EmailView:
    """``data`` parsed as one message, within the file's time budget and ``MAX_MULTIPARTS``."""
    if len(_BOUNDARY.findall(data, 0, len(data))) > MAX_MULTIPARTS:
        reading.warn(f"{what} has more than {MAX_MULTIPARTS} nested parts; only its headers were read")
        return EmailView(BytesParser(policy=policy.default).parsebytes(data, headersonly=True), headers_only=True)
    parser = BytesFeedParser(policy=policy.default)
    for start in range(0, len(data), _FEED_BYTES):
        if start and time.monotonic() > reading.deadline:
            reading.warn(f"{what} was read in part: reading took over {TIME_BUDGET_S:.0f} s")
            break
        parser.feed(data[start:start + _FEED_BYTES])
    return EmailView(parser.close())
