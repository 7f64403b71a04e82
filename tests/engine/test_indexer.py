import os
import threading
from pathlib import Path

import pytest

from findling.engine.errors import ModelMismatch
from findling.engine.index.indexer import CancelToken, Indexer, owning_folder
from findling.engine.records import ChangeKind, FileChange
from findling.engine.search.searcher import Searcher
from tests.fakes import FakeEncoder


def _index(store, enc, config):
    return Indexer(store, enc, config=config).run_to_end()


def test_first_index_then_nothing_to_do(store, fake_encoder, config, docs):
    store.add_folder(docs)
    p = _index(store, fake_encoder, config)
    assert p.indexed == 4 and p.failed == 0
    encoded = fake_encoder.documents_encoded
    p2 = _index(store, fake_encoder, config)
    assert p2.indexed == 0 and p2.unchanged == 4
    assert fake_encoder.documents_encoded == encoded


def test_rename_keeps_vectors_and_delete_removes(store, fake_encoder, config, docs):
    store.add_folder(docs)
    _index(store, fake_encoder, config)
    before = fake_encoder.documents_encoded
    (docs / "notes" / "csv.md").rename(docs / "csv-notes.md")
    (docs / "garden.txt").unlink()
    p = _index(store, fake_encoder, config)
    assert (p.moved, p.deleted, p.indexed) == (1, 1, 0)
    assert fake_encoder.documents_encoded == before  # 0 chunks encoded
    paths = set(store.file_states())
    assert docs / "csv-notes.md" in paths and docs / "garden.txt" not in paths


def test_touched_file_is_not_reencoded_but_edited_one_is(store, fake_encoder, config, docs):
    store.add_folder(docs)
    _index(store, fake_encoder, config)
    before = fake_encoder.documents_encoded
    os.utime(docs / "garden.txt", (1e9, 1e9))
    p = _index(store, fake_encoder, config)
    assert p.indexed == 0 and fake_encoder.documents_encoded == before
    (docs / "garden.txt").write_text("Cucumbers climb the trellis.")
    p = _index(store, fake_encoder, config)
    assert p.indexed == 1 and fake_encoder.documents_encoded == before + 1


def test_bad_files_get_reasons_and_the_run_goes_on(store, fake_encoder, config, docs):
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (docs / "empty.md").write_text("")
    (docs / "big.txt").write_text("x " * 5000)
    from dataclasses import replace

    cfg = replace(config, max_file_bytes=8000)
    store.add_folder(docs)
    p = _index(store, fake_encoder, cfg)
    states = store.file_states()
    assert states[docs / "broken.pdf"].status == "failed" and states[docs / "broken.pdf"].reason
    assert states[docs / "binary.txt"].status == "failed" and "binary" in states[docs / "binary.txt"].reason
    assert states[docs / "empty.md"].status == "empty"
    assert states[docs / "big.txt"].status == "skipped" and "limit" in states[docs / "big.txt"].reason
    assert states[docs / "garden.txt"].status == "indexed"
    assert p.failed == 2


def test_watcher_changes_apply(store, fake_encoder, config, docs):
    store.add_folder(docs)
    indexer = Indexer(store, fake_encoder, config=config)
    indexer.run_to_end()
    new = docs / "new.txt"
    new.write_text("brand new words")
    (docs / "garden.txt").rename(docs / "garden2.txt")
    last = indexer.run_to_end([FileChange(ChangeKind.ADDED, new),
                               FileChange(ChangeKind.MOVED, docs / "garden2.txt", old_path=docs / "garden.txt")])
    assert (last.indexed, last.moved) == (1, 1)
    assert store.file_state(docs / "garden2.txt").status == "indexed"


def test_cancel_stops_between_files(store, fake_encoder, config, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(30):
        (root / f"f{i}.txt").write_text(f"file number {i} " * 50)
    store.add_folder(root)
    token = CancelToken()
    token.cancel()
    phases = [p.phase for p in Indexer(store, fake_encoder, config=config).sync(cancel=token)]
    assert phases[-1] == "cancelled"
    assert store.stats()["chunks"] == 0
    p = Indexer(store, fake_encoder, config=config).run_to_end()
    assert p.indexed == 30


def test_another_model_is_refused(store, config, docs):
    store.add_folder(docs)
    _index(store, FakeEncoder(name="one"), config)
    with pytest.raises(ModelMismatch):
        Indexer(store, FakeEncoder(name="two"), config=config)


def test_owning_folder_picks_deepest():
    assert owning_folder(Path("/a/b/c.txt"), [Path("/a"), Path("/a/b")]) == Path("/a/b")
    assert owning_folder(Path("/x/c.txt"), [Path("/a")]) is None


def test_deleted_folder_drops_everything_below_it(store, fake_encoder, config, docs):
    store.add_folder(docs)
    indexer = Indexer(store, fake_encoder, config=config)
    indexer.run_to_end()
    import shutil

    shutil.rmtree(docs / "notes")
    last = indexer.run_to_end([FileChange(ChangeKind.DELETED, docs / "notes")])
    assert last.deleted == 2
    assert not any(p.parent.name == "notes" for p in store.file_states())


def test_progress_arrives_while_one_large_file_is_encoded(store, fake_encoder, config, tmp_path):
    from dataclasses import replace

    root = tmp_path / "big"
    root.mkdir()
    (root / "book.txt").write_text("\n\n".join(f"paragraph {i} " + "words " * 50 for i in range(40)))
    store.add_folder(root)
    cfg = replace(config, encode_batch_tokens=32)  # slices of about 128 tokens
    seen = [(p.tokens_encoded, p.files_done) for p in Indexer(store, fake_encoder, config=cfg).sync()]
    during = [t for t, done in seen if done == 0 and t > 0]
    assert len(set(during)) >= 5  # token counts rise before the file is written
    assert seen[-1][1] == 1 and store.file_state(root / "book.txt").n_chunks > 5


def test_index_texts_uses_the_same_batches_and_rows(store, fake_encoder, config):
    from findling.engine.records import ExtractedText
    from findling.engine.store.files import FileRecord

    items = [(FileRecord(Path(f"/corpus/{i}"), Path("/corpus"), 10, 0.0, None, "indexed"),
              ExtractedText(path=Path(f"/corpus/{i}"), text=text, title=f"doc {i}", kind="corpus"))
             for i, text in enumerate(["alpha beta " * 100, "", "gamma delta"])]
    last = list(Indexer(store, fake_encoder, config=config).index_texts(items))[-1]
    assert (last.phase, last.indexed, last.files_done) == ("done", 3, 3)
    states = store.file_states()
    assert [states[Path(f"/corpus/{i}")].status for i in range(3)] == ["indexed", "empty", "indexed"]
    assert states[Path("/corpus/0")].n_chunks > 1  # 200 tokens cut at the fixture's 64-token limit


def test_identical_chunks_are_encoded_once_and_stored_for_each_file(store, fake_encoder, config, tmp_path):
    root = tmp_path / "copies"
    root.mkdir()
    body = "Quarterly budget notes for the river project. " * 30
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / name).write_text(body)
    (root / "other.txt").write_text("A different file about mountain music.")
    store.add_folder(root)
    _index(store, fake_encoder, config)
    rows = store.chunk_rows([int(i) for i in store.chunk_ids()])
    by_file = {}
    for row in rows.values():
        by_file.setdefault(row.path.name, []).append(row.text)
    assert by_file["a.txt"] == by_file["b.txt"] == by_file["c.txt"] and len(by_file) == 4
    distinct = {text for texts in by_file.values() for text in texts}
    assert fake_encoder.documents_encoded == len(distinct) < sum(len(t) for t in by_file.values())
    hits = Searcher(store, fake_encoder).search("river budget", k=5, mode="maxsim")
    assert {h.path.name for h in hits} >= {"a.txt", "b.txt", "c.txt"}


def test_files_are_read_on_another_thread_and_the_index_is_the_same_as_reading_in_line(
        store, fake_encoder, config, tmp_path, monkeypatch):
    from dataclasses import replace

    import findling.engine.index.indexer as indexer_mod
    from findling.engine.store.store import Store

    root = tmp_path / "many"
    root.mkdir()
    for i in range(40):
        (root / f"f{i:02}.txt").write_text(f"file {i} about topic {i % 7}. " * (5 + i * 3))
    (root / "bad.pdf").write_bytes(b"%PDF-1.4 this is not a real pdf")
    readers = set()
    real_extract = indexer_mod.extract

    def extract(path, *, config):
        readers.add(threading.current_thread().name)
        return real_extract(path, config=config)

    monkeypatch.setattr(indexer_mod, "extract", extract)
    rows = {}
    for ahead, db in ((0, store), (64, Store(tmp_path / "ahead.sqlite"))):
        readers.clear()
        db.add_folder(root)
        cfg = replace(config, read_ahead_files=ahead, encode_batch_tokens=64)
        last = _index(db, FakeEncoder(), cfg)
        assert (last.indexed, last.failed) == (40, 1)
        assert readers == ({threading.current_thread().name} if ahead == 0 else {"findling-read-ahead"})
        ids = [int(i) for i in db.chunk_ids()]
        rows[ahead] = sorted((r.path.name, r.text) for r in db.chunk_rows(ids).values())
        assert db.file_state(root / "bad.pdf").reason
    assert rows[0] == rows[64]


def test_cancel_with_files_read_ahead_keeps_what_was_written_and_stops_reading(store, fake_encoder, config,
                                                                              tmp_path):
    from dataclasses import replace

    root = tmp_path / "many"
    root.mkdir()
    for i in range(60):
        (root / f"f{i}.txt").write_text(f"file number {i} " * 80)
    store.add_folder(root)
    cfg = replace(config, encode_batch_tokens=64)  # a flush every few files
    token = CancelToken()
    for p in Indexer(store, fake_encoder, config=cfg).sync(cancel=token):
        if p.indexed:
            token.cancel()
    assert p.phase == "cancelled" and 0 < p.indexed < 60
    assert len([s for s in store.file_states().values() if s.status == "indexed"]) == p.indexed
    assert not any(t.name == "findling-read-ahead" and t.is_alive() for t in threading.enumerate())
    last = Indexer(store, fake_encoder, config=cfg).run_to_end()
    assert p.indexed + last.indexed == 60
