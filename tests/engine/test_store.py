import json
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from findling.engine.encode.encoder import ModelInfo
from findling.engine.errors import ModelMismatch, StoreError
from findling.engine.records import Chunk, EncodedChunk
from findling.engine.store.store import Store, decode_vectors, encode_vectors
from findling.engine.store.index_file import path_from_db, path_to_db
from findling.engine.store.files import FileRecord


def _info(fp="fp1", dim=4):
    return ModelInfo(name=f"model-{fp}", source="test", path="", fingerprint=fp, dim=dim, max_tokens=512)


def _encoded(n_chunks, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_chunks):
        v = rng.standard_normal((3 + i, dim)).astype(np.float32)
        out.append(EncodedChunk(Chunk(i, f"chunk {i} text", i * 10, i * 10 + 9, 3 + i, page=i + 1), v))
    return out


def _record(path, folder, **kw):
    base = dict(size=10, mtime=1.0, hash="h", status="indexed")
    base.update(kw)
    return FileRecord(Path(path), Path(folder), **base)


def test_schema_wal_meta_and_private_file(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.meta("schema_version") == "7"
    assert "float16" in store.meta("vector_layout")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.integrity_check() == "ok"


def test_vector_blob_roundtrip():
    v = np.random.default_rng(0).standard_normal((5, 48)).astype(np.float32)
    blob = encode_vectors(v)
    assert len(blob) == 5 * 48 * 2
    np.testing.assert_allclose(decode_vectors(blob, 48).astype(np.float32), v, atol=2e-3)


def test_write_swaps_rows_and_bumps_generation(store):
    store.bind_model(_info(), chunk_settings={"max_chunk_tokens": 64})
    g0 = store.generation()
    store.write_files([(_record("/d/a.txt", "/d"), _encoded(3))])
    assert store.generation() > g0
    assert store.stats()["chunks"] == 3
    store.write_files([(_record("/d/a.txt", "/d", hash="h2"), _encoded(1, seed=5))])
    assert store.stats()["chunks"] == 1
    assert store.conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 1
    assert store.file_state(Path("/d/a.txt")).hash == "h2"
    # FTS follows chunk rows
    assert store.conn.execute("SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH 'chunk'").fetchone()[0] == 1


def test_failed_write_leaves_old_rows(store):
    store.bind_model(_info(), chunk_settings={})
    store.write_files([(_record("/d/a.txt", "/d"), _encoded(2))])
    bad = _encoded(1)
    bad = [EncodedChunk(Chunk(0, "x", 0, 1, 1), "not an array")]
    with pytest.raises(Exception):
        store.write_files([(_record("/d/a.txt", "/d", hash="new"), bad)])
    assert store.file_state(Path("/d/a.txt")).hash == "h" and store.stats()["chunks"] == 2


def test_problem_keeps_existing_chunks(store):
    store.bind_model(_info(), chunk_settings={})
    store.write_files([(_record("/d/a.pdf", "/d"), _encoded(2))])
    store.record_problem(_record("/d/a.pdf", "/d", status="failed", reason="encrypted PDF"))
    st = store.file_state(Path("/d/a.pdf"))
    assert (st.status, st.reason, st.n_chunks) == ("failed", "encrypted PDF", 2)
    assert store.stats()["chunks"] == 2
    store.record_problem(_record("/d/new.pdf", "/d", status="failed", reason="truncated"))
    assert [p.path.name for p in store.problems()] == ["a.pdf", "new.pdf"]


def test_model_mismatch_is_refused_until_reset(store):
    store.bind_model(_info("A"), chunk_settings={})
    store.write_files([(_record("/d/a.txt", "/d"), _encoded(1))])
    with pytest.raises(ModelMismatch, match="reencode"):
        store.bind_model(_info("B"), chunk_settings={})
    store.reset_vectors()
    store.bind_model(_info("B"), chunk_settings={})
    assert json.loads(store.meta("model"))["fingerprint"] == "B"
    assert store.file_state(Path("/d/a.txt")).status == "stale"


def test_move_keeps_chunks_and_ids(store):
    store.bind_model(_info(), chunk_settings={})
    store.write_files([(_record("/d/a.txt", "/d"), _encoded(2))])
    ids = store.chunk_ids().tolist()
    store.move_file(Path("/d/a.txt"), Path("/d/sub/b.txt"), folder=Path("/d"), mtime=5.0)
    assert store.file_state(Path("/d/a.txt")) is None
    assert store.file_state(Path("/d/sub/b.txt")).mtime == 5.0
    assert store.chunk_ids().tolist() == ids


def test_folder_filters_and_removal(store):
    store.bind_model(_info(), chunk_settings={})
    store.add_folder(Path("/d"))
    store.add_folder(Path("/e"))
    store.write_files([(_record("/d/a.txt", "/d", mtime=100.0), _encoded(1)),
                       (_record("/d2/b.pdf", "/d", mtime=200.0), _encoded(1)),
                       (_record("/e/c.pdf", "/e", mtime=300.0), _encoded(1))])
    ids = {p: s.id for p, s in store.file_states().items()}
    assert store.filtered_file_ids(folders=[Path("/d")]) == {ids[Path("/d/a.txt")]}
    assert store.filtered_file_ids(suffixes=["pdf"]) == {ids[Path("/d2/b.pdf")], ids[Path("/e/c.pdf")]}
    assert store.filtered_file_ids(after=150.0, before=250.0) == {ids[Path("/d2/b.pdf")]}
    assert store.remove_folder(Path("/e")) == 1
    assert store.folders() == [Path("/d")]


def test_undecodable_file_names_roundtrip(store):
    odd = Path(os.fsdecode(b"/d/caf\xe9 \xff.txt"))
    assert path_from_db(path_to_db(odd)) == odd
    store.bind_model(_info(), chunk_settings={})
    store.write_files([(_record(odd, "/d"), _encoded(1))])
    assert odd in store.file_states()


def test_damaged_file_gives_clear_error(tmp_path):
    bad = tmp_path / "index.sqlite"
    bad.write_bytes(b"this is not a database" * 200)
    with pytest.raises(StoreError, match="--rebuild"):
        Store(bad)


def test_two_connections_see_each_others_writes(config):
    a, b = Store(config.db_path), Store(config.db_path)
    a.bind_model(_info(), chunk_settings={})
    g = b.generation()
    a.write_files([(_record("/d/a.txt", "/d"), _encoded(1))])
    assert b.generation() > g and b.stats()["chunks"] == 1
    a.close(), b.close()


def test_a_reader_store_reads_writes_nothing_and_never_waits_for_a_writer(tmp_path):
    path = tmp_path / "index.sqlite"
    with Store(path) as writer:
        writer.add_folder(tmp_path / "docs")
        writer.write_files([(_record(tmp_path / "docs" / "a.txt", tmp_path / "docs"), _encoded(2))])
        writer.conn.execute("BEGIN IMMEDIATE")  # an indexer in the middle of a write transaction
        try:
            reader = Store(path, timeout=5.0, reader=True)  # opening writes nothing: no wait for the lock
            try:
                assert reader.fts_search('"chunk"', limit=10) and len(reader.chunk_ids()) == 2
                with pytest.raises(sqlite3.OperationalError, match="readonly"):
                    reader.conn.execute("UPDATE meta SET value = '7' WHERE key = 'generation'")
            finally:
                reader.close()
        finally:
            writer.conn.execute("ROLLBACK")
    with pytest.raises(StoreError, match="cannot be opened"):  # a reader never creates a file
        Store(tmp_path / "missing.sqlite", reader=True)
    assert not (tmp_path / "missing.sqlite").exists()
