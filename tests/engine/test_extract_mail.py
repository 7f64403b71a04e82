"""Mail files: .eml and .mbox built with the standard library, .msg written as a real OLE compound file."""
from __future__ import annotations

import io
import struct
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest

import findling.engine.extract.mail as mail
from findling.engine.errors import BinaryFile, CorruptFile
from findling.engine.extract import extract, page_unit
from tests.engine.test_extract_office import document_xml, make_docx, paragraph, run
from tests.engine.test_extract_pdf import make_pdf

TERN_SENTENCE = "Arctic terns follow a migratory loop between the poles every single year."


def message(*, sender="Ann Example <ann@example.org>", to="Bob Builder <bob@example.org>", cc=None,
            subject="Quarterly budget", body="Hello Bob,\nthe budget is attached.\n", html=None,
            date="Mon, 01 Jan 2024 10:00:00 +0000") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = date
    if body is not None:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    elif html is not None:
        msg.set_content(html, subtype="html")
    return msg


def docx_with(text: str) -> bytes:
    return make_docx(document_xml(paragraph(run(text))))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def mbox(*messages: EmailMessage | bytes) -> bytes:
    out = []
    for number, msg in enumerate(messages):
        raw = (msg if isinstance(msg, bytes) else msg.as_bytes(unixfrom=False)).replace(b"\r\n", b"\n")
        raw = raw.replace(b"\nFrom ", b"\n>From ")  # what a mailbox writer does to a body line starting "From "
        out.append(b"From sender%d@example.org Mon Jan  1 10:00:00 2024\n" % number + raw)
    return b"\n".join(out)


# ---------------------------------------------------------------------------------------------- .eml
def test_eml_headers_body_attachments_and_a_broken_one(tmp_path, config):
    msg = message(cc="Carol <carol@example.org>")
    msg.add_attachment(docx_with(TERN_SENTENCE), maintype="application",
                       subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="terns.docx")
    msg.add_attachment(b"Plain notes about glaciers.\n", maintype="text", subtype="plain", filename="notes.txt")
    msg.add_attachment(make_pdf([["first half only"]])[:200], maintype="application", subtype="pdf",
                       filename="broken.pdf")
    msg.add_attachment(b"\x00\x01 opaque", maintype="application", subtype="octet-stream", filename="data.bin")
    doc = extract(write(tmp_path, "budget.eml", bytes(msg)), config=config)

    assert doc.kind == "mail" and doc.title == "Quarterly budget"
    head = doc.text.split("\n\n", 1)[0].splitlines()
    assert head == ["From: Ann Example <ann@example.org>", "To: Bob Builder <bob@example.org>",
                    "Cc: Carol <carol@example.org>", "Subject: Quarterly budget",
                    "Date: Mon, 01 Jan 2024 10:00:00 +0000",
                    "Attachments: terns.docx, notes.txt, broken.pdf, data.bin"]
    assert "the budget is attached." in doc.text
    assert dict(doc.fields) == {"from": "Ann Example <ann@example.org>", "to": "Bob Builder <bob@example.org>",
                                "cc": "Carol <carol@example.org>", "subject": "Quarterly budget",
                                "date": "Mon, 01 Jan 2024 10:00:00 +0000"}
    # each attachment read is a section of its own, labelled with its name, after the message
    labels = [span.label for span in doc.pages]
    assert labels == ["Quarterly budget", "terns.docx", "notes.txt"]
    sections = {span.label: doc.text[span.start:span.end] for span in doc.pages}
    assert sections["terns.docx"].startswith("Attachment: terns.docx\n\n") and TERN_SENTENCE in sections["terns.docx"]
    assert "Plain notes about glaciers." in sections["notes.txt"]
    assert TERN_SENTENCE not in sections["Quarterly budget"]
    assert {span.number for span in doc.pages} == {1}
    # the broken attachment has its own reason; the unsupported one is only named
    [broken] = [w for w in doc.warnings if "broken.pdf" in w]
    assert broken.startswith("attachment broken.pdf not read: ") and "pdf" in broken.lower()
    assert not any("data.bin" in w for w in doc.warnings)


def test_html_only_mail_is_read_as_text(tmp_path, config):
    msg = message(body=None, html="<html><head><style>p{color:red}</style></head><body><p>Meet at the "
                                   "<b>harbour</b> at noon.</p><script>alert(1)</script></body></html>")
    doc = extract(write(tmp_path, "html.eml", bytes(msg)), config=config)
    assert "Meet at the harbour at noon." in doc.text
    assert "<b>" not in doc.text and "color:red" not in doc.text and "alert" not in doc.text


def test_plain_text_is_preferred_over_its_html_twin(tmp_path, config):
    msg = message(body="The plain version.\n", html="<p>The HTML version.</p>")
    doc = extract(write(tmp_path, "alt.eml", bytes(msg)), config=config)
    assert "The plain version." in doc.text and "HTML version" not in doc.text


def test_encoded_headers_and_charsets_are_decoded(tmp_path, config):
    raw = ("From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jorg@example.org>\n"
           "To: =?iso-8859-1?q?Ren=E9?= <rene@example.org>\n"
           "Subject: =?utf-8?b?Q2Fmw6kgbWVldGluZw==?=\n"
           "Content-Type: text/plain; charset=iso-8859-1\n"
           "Content-Transfer-Encoding: quoted-printable\n\n"
           "Cr=E8me br=FBl=E9e for dessert.\n").encode("ascii")
    doc = extract(write(tmp_path, "enc.eml", raw), config=config)
    assert dict(doc.fields)["from"] == "Jörg Müller <jorg@example.org>"
    assert dict(doc.fields)["to"] == "René <rene@example.org>"
    assert doc.title == "Café meeting"
    assert "Crème brûlée for dessert." in doc.text


def test_an_attached_mail_is_read_one_level_deep(tmp_path, config):
    innermost = message(sender="Deep <deep@example.org>", subject="Too deep", body="Innermost words.\n")
    inner = message(sender="Inner <inner@example.org>", subject="Forwarded plan", body="The inner plan.\n")
    inner.add_attachment(b"Inner attachment text.\n", maintype="text", subtype="plain", filename="inner.txt")
    inner.add_attachment(innermost)  # message/rfc822 inside the attached mail: not read
    outer = message(subject="Fwd: plan", body="See the attached mail.\n")
    outer.add_attachment(inner)
    doc = extract(write(tmp_path, "fwd.eml", bytes(outer)), config=config)

    assert "Attached message: Forwarded plan.eml" in doc.text
    assert "From: Inner <inner@example.org>" in doc.text and "The inner plan." in doc.text
    assert "Attachment: inner.txt (in Forwarded plan.eml)" in doc.text and "Inner attachment text." in doc.text
    assert "Innermost words." not in doc.text
    assert any("Too deep.eml" in w and "one level" in w for w in doc.warnings)
    # the fields are the file's own message's, not the attached one's
    assert dict(doc.fields)["from"] == "Ann Example <ann@example.org>"
    assert ("from", "Inner <inner@example.org>") not in doc.fields


def test_an_eml_file_attached_as_a_file_is_read_as_mail(tmp_path, config):
    inner = message(sender="Zed <zed@example.org>", subject="Attached file mail", body="Words of the file mail.\n")
    outer = message(subject="Has an .eml file")
    outer.add_attachment(bytes(inner), maintype="application", subtype="octet-stream", filename="saved.eml")
    doc = extract(write(tmp_path, "outer.eml", bytes(outer)), config=config)
    assert "Attached message: saved.eml" in doc.text and "Words of the file mail." in doc.text


def test_an_eml_without_headers_is_read_as_text_and_binary_is_refused(tmp_path, config):
    doc = extract(write(tmp_path, "notes.eml", b"Just a note, no headers at all.\nSecond line.\n"), config=config)
    assert "Just a note" in doc.text and any("no mail headers" in w for w in doc.warnings)
    with pytest.raises(BinaryFile):
        extract(write(tmp_path, "noise.eml", bytes(range(256)) * 40), config=config)


# ---------------------------------------------------------------------------------------------- mbox
def test_mbox_messages_are_pages_with_their_attachments(tmp_path, config):
    first = message(sender="Dave <dave@example.org>", subject="First", body="From the start, a line.\n")
    second = message(sender="Erin <erin@example.org>", subject="Second", body="Second body.\n")
    second.add_attachment(b"Second attachment about volcanoes.\n", maintype="text", subtype="plain",
                          filename="volcano.txt")
    third = message(sender="Frank <frank@example.org>", to="Gina <gina@example.org>", subject="Third",
                    body="Third body.\n")
    data = mbox(first, second, third)
    assert b"\n>From the start" in data
    doc = extract(write(tmp_path, "Inbox.mbox", data), config=config)

    assert [(span.number, span.label) for span in doc.pages] == [
        (1, "First"), (2, "Second"), (2, "volcano.txt"), (3, "Third")]
    assert doc.title == "Inbox.mbox" and page_unit(".mbox") == "message"
    assert doc.page_at(doc.text.index("Third body.")) == 3
    assert doc.page_at(doc.text.index("volcanoes")) == 2
    assert "\nFrom the start, a line." in doc.text  # unquoted
    senders = [value for name, value in doc.fields if name == "from"]
    assert senders == ["Dave <dave@example.org>", "Erin <erin@example.org>", "Frank <frank@example.org>"]
    assert ("to", "Gina <gina@example.org>") in doc.fields
    assert [value for name, value in doc.fields if name == "to"].count("Bob Builder <bob@example.org>") == 1


def test_truncated_mbox_keeps_the_messages_before_the_cut(tmp_path, config):
    last = message(sender="Cut <cut@example.org>", subject="Cut short")
    last.add_attachment(b"x" * 20_000, maintype="application", subtype="pdf", filename="big.pdf")
    data = mbox(message(subject="Whole one"), message(subject="Whole two"), last)
    doc = extract(write(tmp_path, "cut.mbox", data[: len(data) - 9_000]), config=config)
    assert [span.label for span in doc.pages][:3] == ["Whole one", "Whole two", "Cut short"]
    assert any("big.pdf" in w for w in doc.warnings)


def test_mbox_stops_at_the_text_limit_with_a_warning(tmp_path, config):
    data = mbox(*(message(subject=f"Number {i}", body=f"body {i} " * 40) for i in range(20)))
    small = replace(config, max_text_chars=2_000)
    doc = extract(write(tmp_path, "many.mbox", data), config=small)
    assert len(doc.text) <= 2_000 and 1 < len(doc.pages) < 20
    assert any("stopped after message" in w and "max_text_chars" in w for w in doc.warnings)


def test_mbox_stops_at_its_time_budget_after_the_first_message(tmp_path, config, monkeypatch):
    monkeypatch.setattr(mail, "TIME_BUDGET_S", 0.0)
    doc = extract(write(tmp_path, "slow.mbox", mbox(*(message(subject=f"M{i}") for i in range(5)))), config=config)
    assert [span.label for span in doc.pages] == ["M0"]
    assert any("stopped after message 1 of 5" in w and "took over" in w for w in doc.warnings)


def test_a_text_file_named_mbox_is_read_as_one_message(tmp_path, config):
    doc = extract(write(tmp_path, "x.mbox", bytes(message(subject="Lonely"))), config=config)
    assert doc.title == "Lonely" and any("no mbox 'From ' line" in w for w in doc.warnings)


# ---------------------------------------------------------------------------------------------- .msg
def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _properties(header: bytes, values: dict[int, int]) -> bytes:
    """A MAPI property stream: ``header``, then one 16-byte entry per fixed-size property."""
    out = header
    for tag, value in values.items():
        out += struct.pack("<IIQ", tag, 6, value) if tag & 0xFFFF == 0x0040 else struct.pack("<IIi4x", tag, 6, value)
    return out


def make_msg(*, subject: str, body: str, headers: dict[str, str], attachments: dict[str, bytes] = {}) -> bytes:
    """A minimal Outlook message (IPM.Note, Unicode strings), written by extract-msg's own OLE writer."""
    from extract_msg.ole_writer import OleWriter

    writer = OleWriter()
    top = struct.pack("<8xIIII8x", 0, len(attachments), 0, len(attachments))
    writer.addEntry("__properties_version1.0", _properties(top, {0x340D0003: 0x40000}))  # strings are Unicode
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    writer.addEntry("__substg1.0_001A001F", _utf16("IPM.Note"))
    writer.addEntry("__substg1.0_0037001F", _utf16(subject))
    writer.addEntry("__substg1.0_1000001F", _utf16(body))
    writer.addEntry("__substg1.0_007D001F", _utf16("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"))
    for index, (name, data) in enumerate(attachments.items()):
        base = f"__attach_version1.0_#{index:08X}"
        writer.addEntry(base, storage=True)
        writer.addEntry(f"{base}/__properties_version1.0", _properties(b"\0" * 8, {0x37050003: 1}))  # by value
        writer.addEntry(f"{base}/__substg1.0_3707001F", _utf16(name))
        writer.addEntry(f"{base}/__substg1.0_37010102", data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


MSG_HEADERS = {"From": "Olga Outlook <olga@example.org>", "To": "Pat <pat@example.org>",
               "Cc": "Quinn <quinn@example.org>", "Subject": "Outlook plans",
               "Date": "Tue, 02 Jan 2024 09:00:00 +0000"}


def test_msg_headers_body_and_attachments(tmp_path, config):
    data = make_msg(subject="Outlook plans", body="The body of an Outlook message.", headers=MSG_HEADERS,
                    attachments={"terns.docx": docx_with(TERN_SENTENCE), "broken.docx": b"PK\x03\x04 not a zip"})
    doc = extract(write(tmp_path, "plans.msg", data), config=config)
    assert doc.kind == "mail" and doc.title == "Outlook plans"
    assert "From: Olga Outlook <olga@example.org>" in doc.text and "The body of an Outlook message." in doc.text
    assert dict(doc.fields) == {"from": "Olga Outlook <olga@example.org>", "to": "Pat <pat@example.org>",
                                "cc": "Quinn <quinn@example.org>", "subject": "Outlook plans",
                                "date": "Tue, 02 Jan 2024 09:00:00 +0000"}
    assert [span.label for span in doc.pages] == ["Outlook plans", "terns.docx"]
    assert TERN_SENTENCE in doc.text
    assert any(w.startswith("attachment broken.docx not read: ") for w in doc.warnings)


def test_msg_that_is_not_an_ole_file_gets_a_clear_reason(tmp_path, config):
    with pytest.raises(CorruptFile, match="not an Outlook message.*OLE compound file"):
        extract(write(tmp_path, "fake.msg", b"Subject: plain text pretending\n\nto be Outlook\n"), config=config)
    ole_but_not_mail = make_msg(subject="x", body="y", headers={})[:3000]  # cut: the directory is lost
    with pytest.raises(CorruptFile, match="Outlook message"):
        extract(write(tmp_path, "cut.msg", ole_but_not_mail), config=config)


def test_msg_attached_to_an_eml_is_read(tmp_path, config):
    outer = message(subject="Carrying an Outlook file")
    outer.add_attachment(make_msg(subject="Inside", body="Words inside the attached msg.", headers=MSG_HEADERS),
                         maintype="application", subtype="vnd.ms-outlook", filename="inside.msg")
    doc = extract(write(tmp_path, "carrier.eml", bytes(outer)), config=config)
    assert "Attached message: inside.msg" in doc.text and "Words inside the attached msg." in doc.text
