"""The store with compressed vectors: converting, writing and reading, old float16 indexes, the policy."""
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from findling.engine.store import codec as C
from findling.engine.encode.encoder import ModelInfo
from findling.engine.records import Chunk, EncodedChunk
from findling.engine.store.schema import SCHEMA_VERSION, migrations
from findling.engine.store.sqlite_lib import Database
from findling.engine.store.store import Store, encode_vectors
from findling.engine.store.files import FileRecord
from tests.engine.test_codec import clustered

DIM = 48


def _info(fp="fp1"):
    return ModelInfo(name=f"model-{fp}", source="test", path="", fingerprint=fp, dim=DIM, max_tokens=512)


def _files(n_files, *, tokens=60, seed=0, prefix="f"):
    rng = np.random.default_rng(seed)
    batch = []
    for i in range(n_files):
        n = int(rng.integers(tokens // 2, tokens + 1))
        v = clustered(n, seed=seed * 1000 + i)
        record = FileRecord(Path(f"/d/{prefix}{i}.txt"), Path("/d"), 10, 1.0, f"h{i}", "indexed")
        batch.append((record, [EncodedChunk(Chunk(0, f"text {prefix}{i}", 0, 9, n), v)]))
    return batch


@pytest.fixture
def filled(tmp_path):
    store = Store(tmp_path / "index.sqlite")
    store.bind_model(_info(), chunk_settings={})
    store.write_files(_files(120))
    yield store
    store.close()


@pytest.fixture
def small_codecs(monkeypatch):
    """Named codecs with 64 centroids, so training takes a moment."""
    monkeypatch.setattr(C, "DEFAULT_CENTROIDS", 64)


def _vectors(store):
    return {cid: v for cid, v in store.read_vectors(store.chunk_ids().tolist()).items()}


def test_new_index_is_fp16_with_schema_2(filled):
    assert filled.codec.name == C.FP16
    assert filled.meta("schema_version") == str(SCHEMA_VERSION) == "7"
    assert filled.vector_bytes() == filled.token_count() * 2 * DIM


def test_token_count_follows_writes_and_cascading_deletes(filled):
    def summed():
        return filled.conn.execute("SELECT SUM(n_tokens) FROM vectors").fetchone()[0] or 0

    assert filled.token_count() == summed() > 0
    filled.write_files(_files(2, seed=4, prefix="f"))  # replaces f0 and f1
    assert filled.token_count() == summed()
    filled.delete_files([Path("/d")])
    assert filled.token_count() == summed() == 0


def test_convert_to_residual_and_back(filled, small_codecs):
    before = _vectors(filled)
    generation = filled.generation()
    tokens = filled.convert_vectors(filled.train_codec(C.RESIDUAL))
    assert tokens == filled.token_count()
    assert filled.generation() > generation
    assert filled.codec.name == C.RESIDUAL
    assert json.loads(filled.meta("vector_codec"))["centroids"] == 64
    assert "centroid ids" in filled.meta("vector_layout")
    stored = filled.conn.execute("SELECT COALESCE(SUM(length(data)), 0) FROM vectors").fetchone()[0]
    assert stored == filled.token_count() * 18  # 2 bytes of centroid id, 16 one-byte groups at 48 dims
    after = _vectors(filled)
    for cid, v in before.items():
        assert after[cid].shape == v.shape
        assert np.einsum("ij,ij->i", after[cid], v).mean() > 0.98
    filled.convert_vectors(C.Fp16Codec(DIM))
    assert filled.codec.name == C.FP16 and filled.meta("vector_codec") is None
    assert filled.conn.execute("SELECT COUNT(*) FROM codec").fetchone()[0] == 0
    back = _vectors(filled)
    for cid in before:
        np.testing.assert_allclose(back[cid], after[cid], atol=2e-3)  # the compressed values, now in float16
    assert filled.integrity_check() == "ok"


def test_writes_after_conversion_use_the_codec(filled, small_codecs):
    filled.convert_vectors(filled.train_codec(C.COMPACT))
    filled.write_files(_files(3, seed=9, prefix="new"))
    rows = filled.conn.execute("SELECT v.n_tokens, length(v.data) FROM vectors v JOIN chunks c ON c.id = v.chunk_id"
                               " JOIN files f ON f.id = c.file_id WHERE f.path LIKE '/d/new%'").fetchall()
    assert len(rows) == 3 and all(size == n * 8 for n, size in rows)
    new_ids = [cid for cid in filled.chunk_ids().tolist()][-3:]
    vectors = filled.read_vectors(new_ids)
    originals = [enc.vectors for _r, chunks in _files(3, seed=9, prefix="new") for enc in chunks]
    for cid, original in zip(new_ids, originals):
        assert np.einsum("ij,ij->i", vectors[cid], original).mean() > 0.95


def test_other_connections_follow_a_conversion(filled, small_codecs):
    reader = Store(filled.path)
    try:
        assert reader.codec.name == C.FP16
        filled.convert_vectors(filled.train_codec(C.RESIDUAL))
        assert reader.codec.name == C.RESIDUAL
        cid = int(filled.chunk_ids()[0])
        np.testing.assert_array_equal(reader.read_vectors([cid])[cid], filled.read_vectors([cid])[cid])
    finally:
        reader.close()


def test_compress_if_due_follows_the_choice(filled, small_codecs):
    tokens = filled.token_count()
    assert filled.codec_choice() == "auto"
    assert filled.compress_if_due(min_tokens=tokens + 1) is None
    filled.set_codec_choice("fp16")
    assert filled.compress_if_due(min_tokens=1) is None and filled.codec.name == C.FP16
    filled.set_codec_choice("auto")
    assert filled.compress_if_due(min_tokens=tokens) == C.RESIDUAL
    centroids = filled.codec.centroids.copy()
    filled.write_files(_files(5, seed=3, prefix="later"))
    assert filled.compress_if_due(min_tokens=1) is None  # trained once: new tokens use the same centroids
    np.testing.assert_array_equal(filled.codec.centroids, centroids)
    with pytest.raises(ValueError, match="unknown"):
        filled.set_codec_choice("int3")


def test_compact_choice_trains_compact(filled, small_codecs):
    filled.set_codec_choice("compact")
    assert filled.compress_if_due(min_tokens=1) == C.COMPACT
    assert filled.vector_bytes() < filled.token_count() * 9 + 64 * DIM * 4 + 6 * 256 * 8 * 4 + DIM * 4


def test_reencode_and_a_new_model_drop_the_codec(filled, small_codecs):
    filled.convert_vectors(filled.train_codec(C.RESIDUAL))
    filled.reset_vectors()
    assert filled.codec.name == C.FP16 and filled.conn.execute("SELECT COUNT(*) FROM codec").fetchone()[0] == 0
    filled.bind_model(_info(), chunk_settings={})
    filled.write_files(_files(40))
    filled.convert_vectors(filled.train_codec(C.RESIDUAL))
    filled.delete_files([Path("/d")])
    filled.bind_model(_info("other-model"), chunk_settings={})  # no vectors left: allowed, old centroids go
    assert filled.codec.name == C.FP16


def test_sample_vectors_draws_from_the_index(filled):
    sample = filled.sample_vectors(500, seed=1)
    assert sample.shape == (500, DIM) and sample.dtype == np.float32
    everything = np.concatenate(list(_vectors(filled).values()))
    assert len(filled.sample_vectors(10 ** 6)) == len(everything)
    # every sampled row is one of the stored rows
    hits = (sample @ everything.T).max(axis=1)
    np.testing.assert_allclose(hits, 1.0, atol=2e-3)


def test_a_version_1_index_opens_and_stays_fp16(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(Database(conn), stop_before="m002_vector_codec")  # what Findling wrote before codecs
    v = clustered(5, seed=1)
    conn.executescript(
        "INSERT INTO meta VALUES ('schema_version', '1'), ('generation', '3'),"
        " ('vector_layout', 'float16-le row-major [n_tokens, dim]');"
        "INSERT INTO files(id, path, folder, suffix, size, mtime, status, indexed_at)"
        " VALUES (1, '/d/a.txt', '/d', '.txt', 1, 1.0, 'indexed', 0);"
        "INSERT INTO chunks(id, file_id, ordinal, char_start, char_end, token_count, text)"
        " VALUES (7, 1, 0, 0, 4, 5, 'old text');")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", ("1",))
    conn.execute("INSERT INTO meta VALUES ('model', ?)", (json.dumps({"name": "m", "fingerprint": "fp1", "dim": DIM}),))
    conn.execute("INSERT INTO vectors VALUES (7, 5, ?)", (encode_vectors(v),))
    conn.close()
    with Store(path) as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert store.codec.name == C.FP16
        np.testing.assert_allclose(store.read_vectors([7])[7], v, atol=2e-3)
        assert store.vector_bytes() == 5 * 2 * DIM and store.token_count() == 5
        assert store.integrity_check() == "ok"


def test_the_same_index_and_seed_train_the_same_codec(filled, small_codecs):
    first = filled.train_codec(C.RESIDUAL, seed=5)
    again = filled.train_codec(C.RESIDUAL, seed=5)
    assert first.arrays() == again.arrays()
    assert np.array_equal(filled.sample_vectors(300, seed=2), filled.sample_vectors(300, seed=2))
