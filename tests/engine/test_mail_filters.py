"""The from:, to: and subject: filters, through the real Indexer, Store and Searcher with the fake encoder."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from findling.engine.errors import QueryError
from findling.engine.index.indexer import Indexer
from findling.engine.search.query import parse_query
from findling.engine.search.searcher import Searcher
from findling.engine.store.store import Store
from findling.engine.store.schema import SCHEMA_VERSION
from tests.engine.test_extract_mail import TERN_SENTENCE, docx_with, mbox, message

MODES = ["maxsim", "bm25", "hybrid"]


@pytest.fixture
def mail_folder(tmp_path: Path) -> Path:
    root = tmp_path / "mail"
    root.mkdir()
    budget = message(sender="Ann Example <ann@example.org>", to="Bob Builder <bob@example.org>",
                     subject="Quarterly budget review", body="The harbour budget needs a review.\n")
    budget.add_attachment(docx_with(TERN_SENTENCE), maintype="application",
                          subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="terns.docx")
    (root / "budget.eml").write_bytes(bytes(budget))
    (root / "reply.eml").write_bytes(bytes(message(
        sender="Bob Builder <bob@example.org>", to="Ann Example <ann@example.org>", cc="Carol Jones <carol@example.org>",
        subject="Re: harbour budget", body="Agreed, the harbour budget is fine.\n")))
    (root / "Archive.mbox").write_bytes(mbox(
        message(sender="Dave <dave@example.org>", subject="Lunch", body="Harbour lunch on Friday.\n"),
        message(sender="Érin Ölander <erin@example.org>", subject="Harbour BUDGET notes", body="Numbers.\n"),
        message(sender="Frank <frank@example.org>", to="Gina <gina@example.org>", subject="Boats",
                body="The harbour boats.\n")))
    # a plain file with the same words: never passes a mail filter
    (root / "notes.txt").write_text("From: ann@example.org\nSubject: budget\nThe harbour budget, in a note.\n")
    return root


@pytest.fixture
def searcher(store, fake_encoder, config, mail_folder) -> Searcher:
    store.add_folder(mail_folder)
    last = Indexer(store, fake_encoder, config=config).run_to_end()
    assert last.indexed == 4 and last.failed == 0
    return Searcher(store, fake_encoder)


def names(hits) -> set[str]:
    return {h.path.name for h in hits}


@pytest.mark.parametrize("mode", MODES)
def test_from_keeps_only_mail_from_that_sender(searcher, mode):
    assert names(searcher.search("harbour budget", k=10, mode=mode)) >= {"budget.eml", "notes.txt"}
    assert names(searcher.search("harbour budget from:ann", k=10, mode=mode)) == {"budget.eml"}
    assert names(searcher.search("harbour from:bob@example.org", k=10, mode=mode)) == {"reply.eml"}
    assert names(searcher.search("harbour from:nobody", k=10, mode=mode)) == set()


def test_filters_are_case_insensitive_and_match_inside_a_mailbox(searcher):
    assert names(searcher.search("harbour from:ERIN", k=10)) == {"Archive.mbox"}
    assert names(searcher.search("harbour from:érin", k=10)) == {"Archive.mbox"}  # casefolded, not ASCII-only
    assert names(searcher.search("harbour subject:budget", k=10)) == {"budget.eml", "reply.eml", "Archive.mbox"}


def test_to_matches_to_and_cc(searcher):
    assert names(searcher.search("harbour to:carol", k=10)) == {"reply.eml"}  # Cc
    assert names(searcher.search("harbour to:gina", k=10)) == {"Archive.mbox"}
    assert names(searcher.search("harbour to:bob", k=10)) == {"budget.eml", "Archive.mbox"}  # mbox: the default To
    assert names(searcher.search("harbour to:ann", k=10)) == {"reply.eml"}


def test_every_word_of_a_quoted_value_must_match_and_filters_combine(searcher):
    assert names(searcher.search('harbour subject:"budget review"', k=10)) == {"budget.eml"}
    assert names(searcher.search('harbour subject:"review budget"', k=10)) == {"budget.eml"}  # any order
    assert names(searcher.search('harbour subject:"budget lunch"', k=10)) == set()  # not in one subject
    assert names(searcher.search("harbour subject:budget from:bob", k=10)) == {"reply.eml"}
    assert names(searcher.search("harbour from:ann from:dave", k=10)) == {"budget.eml", "Archive.mbox"}  # either
    assert names(searcher.search("harbour from:example.org ext:mbox", k=10)) == {"Archive.mbox"}


def test_a_sentence_only_in_an_attachment_finds_its_message_first(searcher):
    for mode in MODES:
        hits = searcher.search("arctic terns migratory loop between the poles", k=5, mode=mode)
        assert hits[0].path.name == "budget.eml", mode
        assert "Attachment: terns.docx" in hits[0].chunk_text and hits[0].page == 1


def test_a_hit_in_a_mailbox_names_its_message(searcher):
    hit = searcher.search("boats", k=1, mode="maxsim")[0]
    assert hit.path.name == "Archive.mbox" and hit.page == 3


def test_fields_are_stored_per_file_and_go_with_the_file(store, searcher, mail_folder, fake_encoder, config):
    records = {r.path.name: r for r in store.file_records()}
    assert ("from", "Ann Example <ann@example.org>") in records["budget.eml"].fields
    assert records["notes.txt"].fields == ()
    mailbox_senders = {v for k, v in records["Archive.mbox"].fields if k == "from"}
    assert mailbox_senders == {"Dave <dave@example.org>", "Érin Ölander <erin@example.org>", "Frank <frank@example.org>"}
    # a changed mail replaces its fields; a deleted one takes them along
    (mail_folder / "budget.eml").write_bytes(bytes(message(sender="Zoe <zoe@example.org>", subject="harbour budget")))
    (mail_folder / "reply.eml").unlink()
    Indexer(store, fake_encoder, config=config).run_to_end()
    assert names(searcher.search("harbour from:zoe", k=10)) == {"budget.eml"}
    assert names(searcher.search("harbour from:ann", k=10)) == set()
    (count,) = store.conn.execute("SELECT COUNT(*) FROM file_fields WHERE file_id NOT IN (SELECT id FROM files)"
                                  ).fetchone()
    assert count == 0


def test_an_index_from_before_fields_opens_without_loss_and_gains_them(tmp_path, fake_encoder, config, mail_folder):
    """An index written by schema version 4 (no file_fields table) opens, keeps its files, and fills fields
    for mail indexed from then on."""
    db = config.db_path
    with Store(db) as store:
        store.add_folder(mail_folder)
        Indexer(store, fake_encoder, config=config).run_to_end()
    with sqlite3.connect(db) as conn:  # make it what version 4 wrote
        conn.execute("DROP TABLE file_fields")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_file_fields'")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        before = sorted(conn.execute("SELECT path, status, n_chunks FROM files"))
    with Store(db) as store:
        assert sorted((str(r.path), r.status) for r in store.file_records()) == [(p, s) for p, s, _n in before]
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        searcher = Searcher(store, fake_encoder)
        assert names(searcher.search("harbour", k=10)) == {"budget.eml", "reply.eml", "Archive.mbox", "notes.txt"}
        assert names(searcher.search("harbour from:ann", k=10)) == set()  # no fields stored yet
        (mail_folder / "budget.eml").write_bytes(bytes(message(subject="harbour again")))  # changed: read again
        Indexer(store, fake_encoder, config=config).run_to_end()
        assert names(searcher.search("harbour from:ann", k=10)) == {"budget.eml"}


def test_query_syntax_for_mail_filters():
    q = parse_query('harbour From:ann to:"Bob  Builder" subject:"budget review" from:"" rest')
    assert q.text == "harbour rest"
    assert q.fields == (("from", "ann"), ("to", "Bob Builder"), ("subject", "budget review"))
    assert q.has_filters and not parse_query("how to: fix it").fields
    assert parse_query("x").with_filters(fields=[("subject", "plans")]).fields == (("subject", "plans"),)
    with pytest.raises(QueryError, match="not a mail filter"):
        parse_query("x").with_filters(fields=[("bcc", "ann")])
