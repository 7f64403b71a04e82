"""The dense lane: pooled vectors from the encoder, stored per chunk, migrated, searched, fused; absent for a
model without dense pooling. Also the long-document file score (``rank_files``)."""
from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from findling.engine.encode.encoder import TokenVectors, mean_pool, pooled_of
from findling.engine.index.indexer import Indexer
from findling.engine.search.ranking import Fusion, Ranked, fuse, rank_files, rank_keyword_files
from findling.engine.search.searcher import Searcher
from findling.engine.store.dense_codec import decode_dense, encode_dense
from findling.engine.store.schema import migrations
from findling.engine.store.sqlite_lib import Database
from findling.engine.store.store import Store
from tests.fakes import FakeEncoder


class FakeDenseEncoder(FakeEncoder):
    """The fake encoder with a dense pooling: a text's pooled vector is the mean of its word vectors."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.info = replace(self.info, dense_dim=self.dim)

    def encode_documents(self, texts):
        return [TokenVectors(v, mean_pool(v[1:])) for v in super().encode_documents(texts)]

    def encode_queries(self, texts):
        out = []
        for text, v in zip(texts, super().encode_queries(texts)):
            words = [w for w in self.tokenizer.query_labels(text) if not w.startswith("[")]
            out.append(TokenVectors(v, mean_pool(np.stack([self._vec(w) for w in words])) if words else None))
        return out


@pytest.fixture
def dense_encoder():
    return FakeDenseEncoder()


def _index(store, encoder, config, folder):
    store.add_folder(folder)
    Indexer(store, encoder, config=config).run_to_end()


def test_token_vectors_carry_the_pooled_vector_and_slices_do_not():
    v = TokenVectors(np.eye(3, dtype=np.float32), np.array([1.0, 0.0, 0.0]))
    assert pooled_of(v).tolist() == [1.0, 0.0, 0.0]
    assert pooled_of(v[:2]) is None and pooled_of(v * 2) is None and pooled_of(np.eye(3)) is None
    import pickle

    back = pickle.loads(pickle.dumps(v))
    assert np.array_equal(back, v) and back.pooled.tolist() == [1.0, 0.0, 0.0]


def test_dense_vectors_round_trip_as_4bit_directions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(384).astype(np.float32)
    x /= np.linalg.norm(x)
    blob = encode_dense(x)
    assert len(blob) == 192  # two dimensions a byte
    back = decode_dense(blob)
    assert float(np.linalg.norm(back)) == pytest.approx(1.0, abs=1e-5)
    assert float(back @ x) > 0.98
    # the ranking by cosine survives: a vector's nearest neighbours among noisy copies are found again
    others = x + 0.4 * rng.standard_normal((50, 384)).astype(np.float32) * np.linspace(0.2, 2, 50)[:, None]
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    stored = np.stack([decode_dense(encode_dense(o)) for o in others])
    found, truth = np.argsort(-(stored @ x)), np.argsort(-(others @ x))
    assert found[0] == truth[0] and len(set(found[:5]) & set(truth[:5])) >= 4
    # odd dimensions: one zero component is added, the direction is kept
    odd = decode_dense(encode_dense(np.array([0.6, -0.8, 0.0], dtype=np.float32)))
    assert odd.shape == (4,) and odd.tolist() == pytest.approx([0.6, -0.8, 0.0, 0.0])
    assert decode_dense(encode_dense(np.zeros(6, np.float32))).tolist() == [0.0] * 6


def test_each_chunk_gets_its_dense_vector_stored(store, dense_encoder, config, docs):
    _index(store, dense_encoder, config, docs)
    ids = store.dense_chunk_ids()
    assert len(ids) == len(store.chunk_ids()) > 0 and np.array_equal(ids, store.chunk_ids())
    row = store.chunk_rows([int(ids[0])])[int(ids[0])]
    expected = dense_encoder.encode_documents([row.text])[0].pooled
    blob = store.read_dense([int(ids[0])])[0][2]
    assert blob == encode_dense(expected) and float(decode_dense(blob) @ expected) > 0.95
    assert store.stats()["dense_bytes"] == store.dense_bytes() >= len(ids) * len(blob)  # the table's share of the file
    # a deleted file takes its dense vectors with it
    (docs / "garden.txt").unlink()
    Indexer(store, dense_encoder, config=config).run_to_end()
    assert np.array_equal(store.dense_chunk_ids(), store.chunk_ids())


def test_dense_mode_ranks_by_the_cosine_of_pooled_vectors(store, dense_encoder, config, docs):
    _index(store, dense_encoder, config, docs)
    searcher = Searcher(store, dense_encoder)
    query = "tomatoes basil water"
    hits = searcher.search(query, k=10, mode="dense")
    # by hand: each file's best chunk cosine of its stored (4-bit) vector with the query's pooled vector
    q = dense_encoder.encode_queries([query])[0].pooled
    rows = store.chunk_rows(store.chunk_ids().tolist())
    best: dict = {}
    for row in rows.values():
        cos = float(decode_dense(encode_dense(dense_encoder.encode_documents([row.text])[0].pooled)) @ q)
        best[row.path] = max(best.get(row.path, -2.0), cos)
    expected = sorted(best, key=lambda p: -best[p])
    assert [h.path for h in hits] == expected
    assert [h.score for h in hits] == pytest.approx([best[p] for p in expected], abs=1e-4)
    assert hits[0].path.name == "garden.txt" and hits[0].lanes == ("dense",)


def test_hybrid_fuses_three_lanes_and_says_which_found_a_file(store, dense_encoder, config, docs):
    _index(store, dense_encoder, config, docs)
    searcher = Searcher(store, dense_encoder, fusion=Fusion(dense=0.3))
    lanes = searcher.ranked_lanes("read csv files", depth=50)
    assert set(lanes) == {"maxsim", "bm25", "dense"}
    hits = searcher.search("read csv files", k=3)
    assert hits[0].path == docs / "notes" / "csv.md"
    assert set(hits[0].lanes) == {"maxsim", "bm25", "dense"}
    # a dense share of 0 is exactly the two-lane fusion
    without = {k: v for k, v in lanes.items() if k != "dense"}
    fused, two = fuse(lanes, Fusion(dense=0.0)), fuse(without, Fusion(dense=0.0))
    assert [r.file_id for r in fused] == [r.file_id for r in two]
    assert [r.score for r in fused] == pytest.approx([r.score for r in two])
    # and a searcher whose fusion gives the dense lane no share does not compute it
    assert set(Searcher(store, dense_encoder, fusion=Fusion(dense=0.0)).ranked_lanes("csv", depth=50)) == {
        "maxsim", "bm25"}


def test_filters_apply_to_the_dense_lane(store, dense_encoder, config, docs):
    _index(store, dense_encoder, config, docs)
    hits = Searcher(store, dense_encoder).search("csv ext:py", k=5, mode="dense")
    assert [h.path.name for h in hits] == ["code.py"]


def test_a_model_without_pooling_has_no_dense_lane(store, fake_encoder, config, docs):
    _index(store, fake_encoder, config, docs)
    assert fake_encoder.info.dense_dim == 0 and len(store.dense_chunk_ids()) == 0
    searcher = Searcher(store, fake_encoder, fusion=Fusion(dense=0.5))
    assert set(searcher.ranked_lanes("csv files", depth=50)) == {"maxsim", "bm25"}
    assert searcher.search("csv files", k=3)[0].path == docs / "notes" / "csv.md"
    assert searcher.search("csv files", k=3, mode="dense") == []


def test_an_index_without_dense_vectors_searches_without_the_lane_until_every_chunk_has_one(
        store, config, docs):
    plain = FakeEncoder()
    _index(store, plain, config, docs)  # same model identity, no pooled vectors: as an index from before them
    dense = FakeDenseEncoder()
    searcher = Searcher(store, dense, fusion=Fusion(dense=0.5))
    assert set(searcher.ranked_lanes("csv files", depth=50)) == {"maxsim", "bm25"}
    (docs / "veg.txt").write_text("Tomatoes and peppers in the greenhouse.")
    Indexer(store, dense, config=config).run_to_end()  # only the new file gets a dense vector
    assert 0 < len(store.dense_chunk_ids()) < len(store.chunk_ids())
    assert set(searcher.ranked_lanes("tomatoes", depth=50)) == {"maxsim", "bm25"}
    store.reset_vectors()
    Indexer(store, dense, config=config).run_to_end()  # encoded again: every chunk has one
    assert np.array_equal(store.dense_chunk_ids(), store.chunk_ids())
    assert set(searcher.ranked_lanes("tomatoes", depth=50)) == {"maxsim", "bm25", "dense"}


def test_an_index_from_before_the_dense_table_opens_and_gains_it(tmp_path):
    path = tmp_path / "v3.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    from findling.engine.store.schema import register_functions

    register_functions(conn)
    migrations.apply(Database(conn), stop_before="m004_dense")
    conn.executescript(
        "INSERT INTO meta VALUES ('schema_version', '3'), ('generation', '1');"
        "INSERT INTO files(id, path, folder, suffix, size, mtime, status, indexed_at)"
        " VALUES (1, '/d/a.txt', '/d', '.txt', 1, 1.0, 'indexed', 0);"
        "INSERT INTO chunks(id, file_id, ordinal, char_start, char_end, token_count, text)"
        " VALUES (7, 1, 0, 0, 8, 2, 'old text');")
    conn.close()
    with Store(path) as store:
        assert len(store.dense_chunk_ids()) == 0 and store.read_dense() == []
        assert store.integrity_check() == "ok"
        assert [r[0] for r in store.fts_search("old", limit=5)] == [7]


def test_dense_vectors_of_an_int8_index_are_converted_when_it_opens(tmp_path, dense_encoder, config, docs,
                                                                   monkeypatch):
    """Schema versions 4-6 stored a dense vector as one int8 a dimension; opening such an index converts
    every row to the 4-bit layout (a few rows at a time), and the dense lane ranks on it as before."""
    import findling.engine.store.schema

    monkeypatch.setattr(findling.engine.store.schema, "MIGRATION_BATCH", 2)
    with Store(config.db_path) as store:
        _index(store, dense_encoder, config, docs)
        pooled = {int(c): dense_encoder.encode_documents([t.text])[0].pooled
                  for c, t in store.chunk_rows(store.chunk_ids().tolist()).items()}
    with sqlite3.connect(config.db_path) as conn:  # make it what version 6 wrote
        for chunk_id, vector in pooled.items():
            int8 = np.clip(np.rint(vector * 127 / np.abs(vector).max()), -127, 127).astype(np.int8).tobytes()
            conn.execute("UPDATE dense SET data = ? WHERE chunk_id = ?", (int8, chunk_id))
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm007_dense_4bit'")
        conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    with Store(config.db_path) as store:
        assert store.meta("schema_version") == "7" and store.integrity_check() == "ok"
        rows = store.read_dense()
        assert sorted(r[0] for r in rows) == sorted(pooled)
        for chunk_id, _file, blob in rows:
            assert len(blob) == dense_encoder.dim // 2
            assert float(decode_dense(blob) @ pooled[chunk_id]) > 0.95
        searcher = Searcher(store, dense_encoder)
        assert "dense" in searcher.ranked_lanes("tomatoes", depth=50)


# ------------------------------------------------------------ long documents: a file's score from its chunks
def test_rank_files_with_decay_adds_the_next_chunks_damped():
    scores = np.array([0.9, 0.5, 0.8, 0.7, 0.6, 0.1, -np.inf], dtype=np.float32)
    files = np.array([1, 1, 2, 2, 2, 2, 3])
    chunks = np.arange(10, 17)
    best = rank_files(scores, files, chunks, 10)
    assert [(r.file_id, r.chunk_id) for r in best] == [(1, 10), (2, 12)]  # a -inf chunk is not found
    assert [r.score for r in best] == pytest.approx([0.9, 0.8])
    summed = rank_files(scores, files, chunks, 10, decay=0.5)
    # file 2: (0.8 + 0.5 * 0.7 + 0.25 * 0.6) / 1.75 (its 4th chunk does not count); file 1 has two chunks, its
    # best stands in for the third: (0.9 + 0.5 * 0.5 + 0.25 * 0.9) / 1.75
    assert [(r.file_id, r.chunk_id) for r in summed] == [(1, 10), (2, 12)]
    assert [r.score for r in summed] == pytest.approx([1.375 / 1.75, 1.3 / 1.75])
    assert rank_files(scores, files, chunks, 1, decay=0.5) == [Ranked(1, 10, pytest.approx(1.375 / 1.75))]
    # a one-chunk file keeps its chunk's score: never behind a longer file for having fewer chunks
    single = rank_files(np.array([0.7, 0.9, 0.1]), np.array([1, 2, 2]), np.arange(3), 5, decay=0.5)
    assert [(r.file_id, r.score) for r in single] == [(1, pytest.approx(0.7)), (2, pytest.approx(1.175 / 1.75))]


def test_rank_files_breaks_ties_by_file_id():
    scores = np.array([0.5, 0.5, 0.5])
    assert [r.file_id for r in rank_files(scores, np.array([9, 4, 6]), np.arange(3), 3)] == [4, 6, 9]
    assert [r.file_id for r in rank_files(scores, np.array([9, 4, 6]), np.arange(3), 3, decay=0.5)] == [4, 6, 9]


def test_fusion_shares_and_bounds():
    f = Fusion(weight=0.6, dense=0.25)
    assert (f.share("maxsim"), f.share("bm25"), f.share("dense")) == pytest.approx((0.45, 0.3, 0.25))
    for bad in ({"dense": 1.5}, {"decay": -0.1}, {"weight": 2.0}):
        with pytest.raises(ValueError):
            Fusion(**bad)


# ------------------------------------------------------------ a real (tiny) model
@pytest.fixture
def pooled_model(tiny_model_dir, tmp_path):
    folder = tmp_path / "tiny-dense"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "dense_pooling.json").write_text(json.dumps({"pooling": "mean", "normalize": True}))
    return folder


def _direct(folder, config):
    from findling.engine.encode.direct_encoder import DirectEncoder
    from findling.engine.encode.resolve import ResolvedModel, model_info

    info = model_info(ResolvedModel(name="tiny", source="user", path=folder), config=config)
    return DirectEncoder(folder, info, precision="fp32")


def _reference_pool(model, features) -> np.ndarray:
    import torch

    with torch.inference_mode():
        hidden = model[0](dict(features))["token_embeddings"][0].float()
    mask = features["attention_mask"][0].bool()
    return mean_pool(hidden[mask].numpy())


def test_the_direct_encoder_pools_the_backbone_states_of_the_same_pass(pooled_model, config):
    enc = _direct(pooled_model, config)
    assert enc.info.dense_dim == 32
    text = "Tomatoes need sun and water, and the basil needs pruning."
    [vec] = enc.encode_documents([text])
    model = enc._loaded()
    expected = _reference_pool(model, model.tokenize([text], is_query=False))
    assert vec.pooled.shape == (32,) and float(vec.pooled @ expected) == pytest.approx(1.0, abs=1e-5)
    # the query framing of this model adds a prefix and expansion tokens: the pooled query vector is the
    # backbone's embedding of the raw query instead
    [qv] = enc.encode_queries(["sun and water"])
    backbone = model._first_module()
    backbone.max_seq_length = model.query_length
    raw = _reference_pool(model, backbone.tokenize(["sun and water"]))
    assert float(qv.pooled @ raw) == pytest.approx(1.0, abs=1e-5)
    assert len(qv) == len(enc.tokenizer.query_labels("sun and water"))  # the token rows are unchanged


def test_a_model_folder_without_the_declaration_pools_nothing(tiny_model_dir, config, tmp_path):
    enc = _direct(tiny_model_dir, config)
    assert enc.info.dense_dim == 0
    assert pooled_of(enc.encode_documents(["sun and water"])[0]) is None
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "dense_pooling.json").write_text(json.dumps({"pooling": "cls"}))
    assert _direct(bad, config).info.dense_dim == 0


@pytest.mark.parametrize("decay", [0.0, 0.5])
def test_rank_files_equals_scoring_every_file_by_hand(decay):
    rng = np.random.default_rng(7)
    n = 5000
    scores = np.round(rng.standard_normal(n), 2)  # rounded: many ties, including at any cut
    scores[rng.choice(n, 300, replace=False)] = -np.inf
    files = rng.integers(0, 900, n)
    chunks = np.arange(n) + 100
    got = rank_files(scores, files, chunks, 40, decay=decay)
    by_file: dict = {}
    for s, f, c in zip(scores, files, chunks):
        if np.isfinite(s):
            by_file.setdefault(int(f), []).append((-s, int(c)))
    expected = []
    for f, rows in by_file.items():
        rows.sort()
        top = [-r[0] for r in rows[:3]]
        top += [top[0]] * (3 - len(top))
        value = top[0] if decay == 0 else (top[0] + decay * top[1] + decay ** 2 * top[2]) / (1 + decay + decay ** 2)
        expected.append((-value, f, rows[0][1]))
    expected.sort(key=lambda e: (round(e[0], 9), e[1]))
    assert [(r.file_id, r.chunk_id) for r in got] == [(f, c) for _v, f, c in expected[:40]]
    assert [r.score for r in got] == pytest.approx([-v for v, _f, _c in expected[:40]])


def test_file_scoring_from_several_chunks_applies_to_hybrid_only(store, dense_encoder, config, tmp_path):
    folder = tmp_path / "long"
    folder.mkdir()
    # one file matching in one chunk strongly, another matching in every chunk a little less
    (folder / "once.txt").write_text("pepper salsa recipe " * 3 + " ".join(f"filler{i}" for i in range(200)))
    (folder / "often.txt").write_text(" ".join(f"pepper salsa word{i} recipe" for i in range(60)))
    _index(store, dense_encoder, config, folder)
    plain = Searcher(store, dense_encoder, fusion=Fusion(keyword_decay=0.0))
    damped = Searcher(store, dense_encoder, fusion=Fusion(keyword_decay=0.75))
    lanes = {n: damped.ranked_lanes("pepper salsa recipe", depth=50, mode=n) for n in ("bm25", "hybrid")}
    assert lanes["bm25"]["bm25"] == plain.ranked_lanes("pepper salsa recipe", depth=50, mode="bm25")["bm25"]
    rows = damped.chunk_scores("pepper salsa recipe", depth=50)["bm25"]
    counts = store.chunk_counts(np.unique(rows[1]).tolist())
    assert lanes["hybrid"]["bm25"] == rank_keyword_files(*rows, 50, decay=0.75, chunk_counts=counts)
    assert [r.score for r in lanes["hybrid"]["bm25"]] != [r.score for r in lanes["bm25"]["bm25"]]


def test_keyword_file_scores_count_unmatched_chunks_low_not_as_the_best():
    """The keyword lane sees only matching chunks: a long file with one strong match and weak ones (all
    returned) must not fall behind a long file whose other chunks did not match at all; a file that has only
    one chunk keeps its best in the places it has no chunk."""
    decay = 0.25
    full = 1 + decay + decay ** 2
    # file 1: 70 chunks, its best 34 then two matches of nil weight (common words); file 2: 70 chunks, one match of 27 and its
    # overlap neighbour at 24, nothing else matched; file 3: one chunk of 30
    scores = np.array([34.0, 0.0, 0.0, 27.0, 24.0, 30.0])
    files = np.array([1, 1, 1, 2, 2, 3])
    chunks = np.array([10, 11, 12, 50, 51, 90])
    counts = {1: 70, 2: 70, 3: 1}
    got = rank_keyword_files(scores, files, chunks, 3, decay=decay, chunk_counts=counts)
    floor = 0.0  # every match was returned: an unmatched chunk scores nothing
    assert [(r.file_id, r.chunk_id) for r in got] == [(3, 90), (1, 10), (2, 50)]
    assert [r.score for r in got] == pytest.approx([
        30.0,  # one chunk: its best stands in where it has none
        34.0 / full,
        (27.0 + decay * 24.0 + decay ** 2 * floor) / full])
    # without chunk counts a missing chunk counts as the file's best (the lanes that score every chunk)
    plain = rank_files(scores, files, chunks, 3, decay=decay)
    assert plain[0].file_id == 3 and [r.file_id for r in plain[1:]] == [2, 1]
