"""Chunk text stored deflated, the keyword index kept on the plain text, 32 KiB pages, and the version-3 upgrade."""
import sqlite3
from pathlib import Path

import numpy as np

from findling.engine.encode.encoder import ModelInfo
from findling.engine.records import Chunk, EncodedChunk
from findling.engine.store.schema import PAGE_SIZE, migrations, pack_text, register_functions, unpack_text
from findling.engine.store.sqlite_lib import Database
from findling.engine.store.store import Store
from findling.engine.store.files import FileRecord

PROSE = ("Alpine meadows flower in early summer, when the snow retreats above the tree line and marmots "
         "return to their burrows. ")


def _info():
    return ModelInfo(name="m", source="test", path="", fingerprint="fp1", dim=4, max_tokens=512)


def _file(store, name, texts, seed=0):
    rng = np.random.default_rng(seed)
    chunks = [EncodedChunk(Chunk(i, t, 0, len(t), 5), rng.standard_normal((5, 4)).astype(np.float32))
              for i, t in enumerate(texts)]
    store.write_files([(FileRecord(Path(f"/d/{name}"), Path("/d"), 10, 1.0, "h", "indexed"), chunks)])


def _keyword_hits(store, query):
    return store.conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rowid",
                              (query,)).fetchall()


def test_pack_text_round_trips_and_only_packs_what_shrinks():
    rng = np.random.default_rng(3)
    noise = "".join(chr(c) for c in rng.integers(0x4E00, 0x9FFF, 400))  # CJK noise: deflate gains little
    for text in (PROSE * 6, "é ü ß 漢字 🙂 " * 40, noise, "", "tiny"):
        packed = pack_text(text)
        assert unpack_text(packed) == text
        if isinstance(packed, bytes):
            assert len(packed) * 10 <= len(text.encode()) * 9
    assert isinstance(pack_text(PROSE * 6), bytes) and len(pack_text(PROSE * 6)) < len(PROSE * 6) / 3
    assert isinstance(pack_text("tiny"), str)


def test_packed_chunks_are_searchable_readable_and_unindexed_on_delete(store):
    store.bind_model(_info(), chunk_settings={})
    long_text = PROSE * 5 + "The glacier's moraine holds granite boulders."
    _file(store, "a.txt", [long_text, "short marmot note"])
    _file(store, "b.txt", [PROSE * 4 + "Edelweiss grows on limestone."], seed=1)
    stored = [r[0] for r in store.conn.execute("SELECT typeof(text) FROM chunks ORDER BY id")]
    assert stored == ["blob", "text", "blob"]
    # the keyword index was built from the plain text, through the view
    ids = dict(store.conn.execute("SELECT ordinal || f.path, c.id FROM chunks c JOIN files f ON f.id = c.file_id"))
    assert _keyword_hits(store, "moraine") == [(ids["0/d/a.txt"],)]
    assert _keyword_hits(store, "edelweiss") == [(ids["0/d/b.txt"],)]
    assert len(_keyword_hits(store, "marmots")) == 3  # porter: "marmot" and "marmots" are one term
    # what search and copies read is the text itself
    rows = store.chunk_rows(list(ids.values()))
    assert rows[ids["0/d/a.txt"]].text == long_text and rows[ids["1/d/a.txt"]].text == "short marmot note"
    assert [c.text for c in store.chunks_of(Path("/d/a.txt"))] == [long_text, "short marmot note"]
    # re-writing and deleting files takes their words out of the keyword index
    _file(store, "a.txt", ["nothing alpine here"], seed=2)
    assert _keyword_hits(store, "moraine") == []
    store.delete_files([Path("/d/b.txt")])
    assert _keyword_hits(store, "edelweiss") == [] and len(_keyword_hits(store, "marmots")) == 0
    assert store.integrity_check() == "ok"


def test_a_damaged_keyword_index_is_reported(store):
    store.bind_model(_info(), chunk_settings={})
    _file(store, "a.txt", [PROSE * 5])
    store.conn.execute("DELETE FROM chunks_fts_data WHERE id > 10")  # the keyword index's segments lost
    assert store.integrity_check().startswith("keyword index")


def test_a_new_index_uses_large_pages_and_an_old_one_keeps_its_own(tmp_path):
    with Store(tmp_path / "new.sqlite") as store:
        assert store.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    old = tmp_path / "old.sqlite"
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("CREATE TABLE t(x)")
    conn.close()
    with Store(old) as store:
        assert store.conn.execute("PRAGMA page_size").fetchone()[0] == 4096


def test_a_version_2_index_gets_its_keyword_index_rebuilt_over_the_view(tmp_path):
    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(Database(conn), stop_before="m003_packed_text")  # what Findling wrote before version 3
    conn.executescript(
        "INSERT INTO meta VALUES ('schema_version', '2'), ('generation', '1');"
        "INSERT INTO files(id, path, folder, suffix, size, mtime, status, indexed_at)"
        " VALUES (1, '/d/a.txt', '/d', '.txt', 1, 1.0, 'indexed', 0);"
        "INSERT INTO chunks(id, file_id, ordinal, char_start, char_end, token_count, text)"
        " VALUES (4, 1, 0, 0, 20, 5, 'old plain text about granite');")
    conn.close()
    with Store(path) as store:
        assert store.meta("schema_version") == "7"
        assert _keyword_hits(store, "granite") == [(4,)]
        assert store.conn.execute("SELECT typeof(text) FROM chunks").fetchone()[0] == "text"  # left as it was
        store.bind_model(_info(), chunk_settings={})
        _file(store, "b.txt", [PROSE * 5 + "granite again"])
        assert len(_keyword_hits(store, "granite")) == 2
        store.delete_files([Path("/d/a.txt")])
        assert len(_keyword_hits(store, "granite")) == 1
        assert store.integrity_check() == "ok"


def test_the_functions_are_what_an_outside_connection_needs(tmp_path):
    path = tmp_path / "i.sqlite"
    with Store(path) as store:
        store.bind_model(_info(), chunk_settings={})
        _file(store, "a.txt", [PROSE * 5])
    conn = sqlite3.connect(path)
    register_functions(conn)
    assert conn.execute("SELECT text FROM chunk_text").fetchone()[0] == PROSE * 5
    conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
    conn.close()


def test_the_module_examples_hold():
    import doctest

    import findling.engine.store.schema

    result = doctest.testmod(findling.engine.store.schema)
    assert result.attempted > 0 and result.failed == 0


def test_an_index_from_a_newer_findling_is_refused_with_a_reason(tmp_path):
    import pytest

    from findling.engine.errors import StoreError

    path = tmp_path / "future.sqlite"
    with Store(path) as store:
        store.set_meta("schema_version", "99")
    with pytest.raises(StoreError, match="newer Findling"):
        Store(path)
    with sqlite3.connect(path) as conn:  # nothing was changed in it
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "99"
