"""Thunderbird mail folders: an mbox file without a suffix, told apart by the ``.msf`` index beside it.

Real files in tmp_path, read through ``extract`` (what the indexer calls), the real Indexer and Store with the
fake encoder, and a real watchdog observer.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from findling.engine.errors import UnsupportedFile
from findling.engine.extract import extract, is_supported
from findling.engine.index.indexer import Indexer
from findling.engine.search.searcher import Searcher
from tests.engine.test_extract_mail import mbox, message
from tests.engine.test_watcher import Recorder, Session, added

PUFFIN = "Puffins nest in burrows on the cliffs of the northern island."
OTTER = "Sea otters hold hands while they sleep so they do not drift apart."


def inbox_bytes() -> bytes:
    return mbox(message(sender="Ann Example <ann@example.org>", subject="Seabird survey", body=PUFFIN + "\n"),
                message(sender="Bob Builder <bob@example.org>", subject="Otter notes", body=OTTER + "\n"))


def thunderbird_folder(root: Path, name: str = "Inbox", *, with_index: bool = True) -> Path:
    """A mail folder as Thunderbird keeps it: ``name`` (an mbox) and, unless told not to, ``name.msf``."""
    root.mkdir(parents=True, exist_ok=True)
    folder = root / name
    folder.write_bytes(inbox_bytes())
    if with_index:
        (root / f"{name}.msf").write_bytes(b"// <!-- <mdb:mork:z v=\"1.4\"/> -->\n< <(a=c)> // (f=iso-8859-1)\n")
    return folder


def test_a_folder_with_its_msf_index_is_read_as_a_mailbox(tmp_path, config):
    inbox = thunderbird_folder(tmp_path / "Mail" / "Local Folders")
    assert is_supported(inbox)
    doc = extract(inbox, config=config)
    assert doc.kind == "mail"
    assert PUFFIN in doc.text and OTTER in doc.text
    assert [page.label for page in doc.pages] == ["Seabird survey", "Otter notes"]
    assert doc.text[doc.pages[1].start:doc.pages[1].end].count(OTTER) == 1
    assert ("from", "Bob Builder <bob@example.org>") in doc.fields


def test_a_folder_name_with_a_dot_is_read_too(tmp_path, config):
    folder = thunderbird_folder(tmp_path, "Lists.birding")
    assert PUFFIN in extract(folder, config=config).text


def test_the_indexer_finds_both_messages_and_skips_the_msf_index(tmp_path, store, fake_encoder, config):
    root = tmp_path / "profile"
    inbox = thunderbird_folder(root)
    store.add_folder(root)
    last = Indexer(store, fake_encoder, config=config).run_to_end()
    assert last.failed == 0
    assert set(store.file_states(root)) == {inbox}  # Inbox.msf is neither indexed nor recorded
    searcher = Searcher(store, fake_encoder)
    for words, page in (("puffins burrows cliffs", 1), ("otters hold hands", 2)):
        hits = searcher.search(words, k=3, mode="bm25")
        assert hits and hits[0].path == inbox
        assert hits[0].page == page


def test_without_the_msf_index_a_suffixless_mbox_is_not_mail(tmp_path, store, fake_encoder, config):
    root = tmp_path / "plain"
    inbox = thunderbird_folder(root, with_index=False)
    assert not is_supported(inbox)
    with pytest.raises(UnsupportedFile, match="without a known extension"):
        extract(inbox, config=config)
    store.add_folder(root)
    Indexer(store, fake_encoder, config=config).run_to_end()
    assert store.file_states(root) == {}


def test_an_msf_index_beside_a_file_that_is_not_an_mbox_changes_nothing(tmp_path, config):
    notes = tmp_path / "Notes"
    notes.write_text("Subject: not a mailbox\n\nJust some notes.\n")
    (tmp_path / "Notes.msf").write_bytes(b"")
    assert not is_supported(notes)
    with pytest.raises(UnsupportedFile):
        extract(notes, config=config)
    assert not is_supported(tmp_path / "Notes.msf")


def test_an_attachment_is_judged_by_its_name_not_by_files_beside_the_process(tmp_path, config, monkeypatch):
    thunderbird_folder(tmp_path / "cwd")  # the working folder, where a bare name would resolve
    monkeypatch.chdir(tmp_path / "cwd")
    assert is_supported(Path("Inbox"))  # a path on disk is looked at ...
    outer = message(subject="Carries a mailbox", body="See attached.\n")
    outer.add_attachment(b"From x@example.org\n\nAttached words.\n", maintype="application",
                         subtype="octet-stream", filename="Inbox")
    (tmp_path / "carrier.eml").write_bytes(bytes(outer))
    doc = extract(tmp_path / "carrier.eml", config=config)
    assert "Attachments: Inbox" in doc.text  # ... an attachment's name is not: named, not read, no warning
    assert "Attached words." not in doc.text
    assert not any("Inbox" in warning for warning in doc.warnings), doc.warnings


def test_the_watcher_reports_a_folder_and_not_its_index(tmp_path):
    root = tmp_path / "watched"
    root.mkdir()
    session = Session(root, Recorder(), accept=is_supported)  # as the indexer's watcher
    session.watcher.start()
    try:
        inbox = thunderbird_folder(root)
        assert {change.path for change in session.new_changes()} == {inbox}
        with open(inbox, "ab") as fh:  # new mail arrives
            fh.write(b"\n" + mbox(message(subject="Third", body="More words.\n")))
        assert {change.path for change in session.new_changes()} == {inbox}
        thunderbird_folder(root, "Drafts", with_index=False)
        assert session.new_changes() == []
        profile = thunderbird_folder(tmp_path / "outside" / "Local Folders", "Archive").parent
        profile.rename(root / "Local Folders")  # a profile folder moved in: walked, the mailbox found
        assert session.new_changes() == [added(root / "Local Folders" / "Archive")]
    finally:
        session.watcher.stop()
