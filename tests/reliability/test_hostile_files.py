"""Hostile files: indexing a folder of them completes, each file is indexed or carries its reason, memory stays
bounded, and no extractor runs without a limit.

The corpus (``hostile.build``) holds truncated, encrypted and self-referencing PDFs, one with broken
cross-references and one with thousands of empty pages, DOCX and EPUB zip bombs (one lying about its size),
an XML entity bomb, deeply nested HTML, XML and JSON, a 200 MB single-line text file, binary data named .txt,
invalid UTF-8, UTF-16 and UTF-32, PNG headers declaring billions of pixels, a truncated PNG, random bytes named
.jpg, an unreadable file, a FIFO, symlink loops, and names with a newline, an
emoji and bytes that are not UTF-8. It is indexed by ``findling index`` in its own process with the tiny
model, whose peak resident memory is measured.
"""
from __future__ import annotations

import os
import sqlite3
import textwrap
from pathlib import Path

import pytest

from findling.engine.config import Config
from findling.engine.extract import extract
from findling.engine.index.indexer import Indexer
from findling.engine.search.searcher import Searcher
from findling.engine.sources.reconcile import scan_folder
from findling.engine.store.store import Store
from findling.engine.store.index_file import path_to_db
from tests.engine.test_extract_pdf import make_pdf
from tests.reliability import hostile
from tests.reliability.helpers import PYTHON, check_consistent, run_measured, subprocess_env, tree_snapshot

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, symlinks, file modes and getrusage are POSIX")

GB = 1 << 30
MIB = 1 << 20


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "corpus"
    expected = hostile.build(folder)
    yield folder, expected
    os.chmod(folder / "unreadable.txt", 0o600)  # so the temporary folder can be cleaned up


def _stored(folder: Path, name: bytes) -> str:
    return path_to_db(Path(os.fsdecode(os.path.join(os.fsencode(folder), name))))


@pytest.mark.slow
def test_hostile_corpus_indexes_completely_with_reasons_in_bounded_memory(corpus, tmp_path, tiny_model_dir):
    folder, expected = corpus
    assert sum(not e.absent for e in expected.values()) >= 30
    home = tmp_path / "home"
    before = tree_snapshot(folder)
    env = subprocess_env()
    cli = [PYTHON, "-m", "findling.cli.main", "--home", str(home)]
    assert run_measured([*cli, "folders", "add", str(folder)], env=env)[0] == 0
    rc, err, peak = run_measured([*cli, "index", "--quiet", "--model", str(tiny_model_dir)], env=env, timeout=600)
    assert rc == 0, err[-3000:]
    assert "Traceback" not in err
    assert peak < 2 * GB, f"peak resident memory {peak / GB:.2f} GB"
    assert tree_snapshot(folder) == before, "indexing wrote inside the watched folder"

    db = home / "index.sqlite"
    check_consistent(db)
    with sqlite3.connect(db) as conn:
        rows = {p: (s, r) for p, s, r in conn.execute("SELECT path, status, reason FROM files")}
    problems = []
    for name, expect in expected.items():
        row = rows.pop(_stored(folder, name), None)
        if expect.absent:
            if row is not None:
                problems.append(f"{name!r}: not a regular file, yet recorded as {row}")
            continue
        if row is None:
            problems.append(f"{name!r}: neither indexed nor recorded with a reason")
            continue
        status, reason = row
        if status in ("failed", "skipped") and not reason:
            problems.append(f"{name!r}: {status} without a reason")
        if expect.status is not None and status != expect.status:
            problems.append(f"{name!r}: {status} ({reason}), expected {expect.status}")
        if expect.reason and expect.reason.lower() not in (reason or "").lower():
            problems.append(f"{name!r}: reason {reason!r} lacks {expect.reason!r}")
    assert not problems, "\n".join(problems)
    assert not rows, f"recorded but not in the corpus: {sorted(rows)}"

    with Store(db) as store:  # the odd names and encodings are searchable
        hits = store.fts_search('"findable"', limit=100)
        found = {row.path for row in store.chunk_rows([chunk_id for chunk_id, _, _ in hits]).values()}
    for name in (b"new\nline.txt", "emoji \U0001F4C4 notes.md".encode(), b"caf\xe9 latin-1 name.txt",
                 b"utf16-bom.txt", b"utf16-no-bom.txt", b"utf32-bom.txt", b"invalid-utf8.txt", b"nested.html"):
        assert Path(os.fsdecode(os.path.join(os.fsencode(folder), name))) in found, name


RAISED_LIMIT = textwrap.dedent("""
    import sys
    from dataclasses import replace
    from pathlib import Path
    from findling.engine.config import Config
    from findling.engine.index.indexer import Indexer
    from findling.engine.store.store import Store
    from tests.fakes import FakeEncoder

    home, folder = Path(sys.argv[1]), Path(sys.argv[2])
    config = replace(Config(data_dir=home), max_file_bytes=256 << 20, max_text_chars=200_000, threads=1)
    with Store(config.db_path) as store:
        store.add_folder(folder)
        last = Indexer(store, FakeEncoder(), config=config).run_to_end()
        assert last.indexed == 1, last
""")


def test_with_a_raised_size_limit_the_text_limit_bounds_memory(corpus, tmp_path):
    """The 200 MB single-line file is read only as far as ``max_text_chars`` reaches, not whole."""
    folder, _ = corpus
    alone = tmp_path / "alone"
    alone.mkdir()
    os.link(folder / "big-single-line.txt", alone / "big-single-line.txt")
    rc, err, peak = run_measured([PYTHON, "-c", RAISED_LIMIT, str(tmp_path / "home"), str(alone)],
                                 env=subprocess_env())
    assert rc == 0, err[-3000:]
    assert peak < hostile.BIG_TEXT_BYTES * 3 // 4, f"peak {peak / MIB:.0f} MiB for a 200 MB file"
    with Store(tmp_path / "home" / "index.sqlite") as store:
        [state] = store.file_states().values()
    assert state.status == "indexed" and "max_text_chars" in state.reason


# ------------------------------------------------------------------------------------- races and budgets
def test_a_file_deleted_between_listing_and_reading_is_dropped(tmp_path, store, fake_encoder, config):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("stays.txt", "goes.txt", "becomes-a-pipe.txt"):
        (folder / name).write_text(f"{name} has some words")
    store.add_folder(folder)
    changes = scan_folder(store, folder, patterns=(), max_file_bytes=config.max_file_bytes).changes
    (folder / "goes.txt").unlink()
    (folder / "becomes-a-pipe.txt").unlink()
    os.mkfifo(folder / "becomes-a-pipe.txt")  # opening it for reading would block forever
    last = list(Indexer(store, fake_encoder, config=config).apply(changes))[-1]
    states = store.file_states()
    assert states[folder / "stays.txt"].status == "indexed"
    assert folder / "goes.txt" not in states
    pipe = states[folder / "becomes-a-pipe.txt"]
    assert pipe.status == "skipped" and "regular file" in pipe.reason
    assert last.phase == "done" and last.files_done == 3


def test_pdf_reading_stops_at_its_time_budget(tmp_path, config, monkeypatch):
    import findling.engine.extract.pdf as pdf

    path = tmp_path / "long.pdf"
    path.write_bytes(make_pdf([[f"page {i} text"] for i in range(1, 51)]))
    monkeypatch.setattr(pdf, "TIME_BUDGET_S", 0.0)
    doc = extract(path, config=config)
    assert len(doc.pages) == 1 and "page 1 text" in doc.text
    assert any("stopped after page 1 of 50" in w and "took over" in w for w in doc.warnings)
    blank = tmp_path / "blank.pdf"
    blank.write_bytes(make_pdf([[] for _ in range(50)]))
    with pytest.raises(Exception, match="no text in the pages read .stopped after page 1 of 50"):
        extract(blank, config=config)


def test_undecodable_file_names_and_characters_do_not_stop_indexing(tmp_path, store, fake_encoder, config):
    """A title taken from a non-UTF-8 file name, or text with lone surrogates, still reaches SQLite."""
    folder = tmp_path / "docs"
    folder.mkdir()
    raw = os.fsencode(folder)
    for name in (b"caf\xe9.txt", b"\xff\xfe.md", b"ok.txt"):
        with open(os.path.join(raw, name), "wb") as fh:
            fh.write(b"plain words without a heading\n")
    store.add_folder(folder)
    last = Indexer(store, fake_encoder, config=config).run_to_end()
    assert last.indexed == 3 and last.failed == 0
    check_consistent(config.db_path)


def test_extraction_limits_have_defaults():
    """Every extractor is bounded: file size, text length, PDF pages and time, zip expansion."""
    from findling.engine.extract.archive import ZipLimits
    from findling.engine.extract.pdf import TIME_BUDGET_S

    config = Config()
    assert config.max_file_bytes <= 64 * MIB and config.max_text_chars <= 20_000_000
    assert config.max_pdf_pages <= 5000 and 0 < TIME_BUDGET_S <= 120
    limits = ZipLimits()
    assert limits.max_total_bytes <= 256 * MIB and limits.max_members <= 20_000


def test_a_file_the_tokenizer_chokes_on_is_recorded_and_the_run_goes_on(tmp_path, store, config):
    from tests.fakes import FakeEncoder, FakeTokenizer

    class Choking(FakeTokenizer):
        def token_spans(self, text):
            if "EXPLODE" in text:
                raise ValueError("tokenizer gave up")
            return super().token_spans(text)

    encoder = FakeEncoder()
    encoder.tokenizer = Choking()
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("fine words")
    (folder / "b.txt").write_text("EXPLODE here")
    (folder / "c.txt").write_text("more fine words")
    store.add_folder(folder)
    last = Indexer(store, encoder, config=config).run_to_end()
    states = store.file_states()
    assert last.indexed == 2 and last.failed == 1
    assert states[folder / "b.txt"].status == "failed" and "tokenizer gave up" in states[folder / "b.txt"].reason


# ------------------------------------------------------------------------------------------------------ mail
def test_hostile_mail_indexes_or_carries_its_reason(tmp_path, store, fake_encoder, config):
    """Mail that lies about an attachment's size, nests 5000 multiparts deep, is cut short or is not mail."""
    import random

    folder = tmp_path / "mail"
    folder.mkdir()
    expected = {}
    for name, (data, expect) in hostile._mail(random.Random(3)).items():
        (folder / os.fsdecode(name)).write_bytes(data)
        expected[os.fsdecode(name)] = expect
    store.add_folder(folder)
    last = Indexer(store, fake_encoder, config=config).run_to_end()
    assert last.files_done == len(expected)
    states = {path.name: state for path, state in store.file_states().items()}
    for name, expect in expected.items():
        state = states[name]
        assert state.status == expect.status, (name, state)
        assert expect.reason.lower() in (state.reason or "").lower(), (name, state.reason)
    [hit] = Searcher(store, fake_encoder).search('"glaciers in message 2"', k=1)
    assert hit.path.name == "truncated.mbox" and "glaciers in message 2" in hit.chunk_text and hit.page == 3


BIG_MAIL = textwrap.dedent("""
    import base64, sys
    from pathlib import Path
    from findling.engine.config import Config
    from findling.engine.extract import extract

    path = Path(sys.argv[1])
    payload = base64.encodebytes(bytes(range(256)) * (int(sys.argv[2]) // 256)).replace(b"\\n", b"\\r\\n")
    path.write_bytes(
        b"From: Ann <ann@example.org>\\nSubject: big\\nMIME-Version: 1.0\\n"
        b'Content-Type: multipart/mixed; boundary="XX"\\n\\n--XX\\nContent-Type: text/plain\\n\\nthe body\\n'
        b"--XX\\nContent-Type: application/octet-stream\\nContent-Length: 1073741824\\n"
        b'Content-Disposition: attachment; filename="claimed.docx"; size=1073741824\\n'
        b"Content-Transfer-Encoding: base64\\n\\n" + payload + b"\\n--XX--\\n")
    del payload
    doc = extract(path, config=Config())
    assert "the body" in doc.text, doc.text
    assert any("claimed.docx" in w for w in doc.warnings), doc.warnings
""")


def test_a_large_mail_is_read_in_bounded_memory(tmp_path):
    attachment = 30 * MIB
    rc, err, peak = run_measured([PYTHON, "-c", BIG_MAIL, str(tmp_path / "big.eml"), str(attachment)],
                                 env=subprocess_env())
    assert rc == 0, err[-3000:]
    size = (tmp_path / "big.eml").stat().st_size
    assert peak < 1 * GB and peak < 16 * size, f"peak {peak / MIB:.0f} MiB for a {size / MIB:.0f} MiB mail"
