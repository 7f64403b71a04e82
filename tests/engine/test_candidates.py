"""Candidate search over a compressed store: recall against exact MaxSim, filters, keeping in step."""
from pathlib import Path

import numpy as np
import pytest

from findling.engine.store import codec as C
from findling.engine.search.candidates import CandidateIndex, CandidateSettings
from findling.engine.encode.encoder import ModelInfo
from findling.engine.index.indexer import Indexer
from findling.engine.search.maxsim import maxsim_scores
from findling.engine.records import Chunk, EncodedChunk
from findling.engine.search.searcher import Searcher
from findling.engine.store.store import Store
from findling.engine.store.files import FileRecord

DIM = 48
TOPICS = np.random.default_rng(99).standard_normal((40, DIM)).astype(np.float32)


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _chunk_vectors(rng, n):
    """Tokens of a chunk: mostly from three topics of its own, as words of a passage are."""
    topics = rng.choice(len(TOPICS), size=3, replace=False)
    return _unit(TOPICS[rng.choice(topics, size=n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32))


def _batch(rng, n_files, prefix="f"):
    out = []
    for i in range(n_files):
        n = int(rng.integers(20, 120))
        record = FileRecord(Path(f"/d/{prefix}{i}.txt"), Path("/d"), 1, 1.0, f"h{prefix}{i}", "indexed")
        out.append((record, [EncodedChunk(Chunk(0, f"text {prefix}{i}", 0, 9, n), _chunk_vectors(rng, n))]))
    return out


@pytest.fixture(scope="module")
def topic_codec():
    """A residual codec trained once on tokens like the test chunks'."""
    rng = np.random.default_rng(7)
    sample = np.concatenate([_chunk_vectors(rng, 100) for _ in range(150)])
    return C.train(sample, spec=C.CodecSpec(C.RESIDUAL, centroids=256, groups=12))


@pytest.fixture
def compressed(tmp_path, topic_codec):
    rng = np.random.default_rng(0)
    store = Store(tmp_path / "index.sqlite")
    store.bind_model(ModelInfo("m", "test", "", "fp", DIM, 512), chunk_settings={})
    store.write_files(_batch(rng, 300))
    store.convert_vectors(topic_codec)
    yield store
    store.close()


def _exact(store, index, q):
    vectors = store.read_vectors(index.chunk_ids.tolist())
    parts = [vectors[c] for c in index.chunk_ids.tolist()]
    starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
    return maxsim_scores(q, np.concatenate(parts), starts)


def _query(rng):
    topics = rng.choice(len(TOPICS), size=2, replace=False)
    return _unit(TOPICS[rng.choice(topics, size=24)] + 0.6 * rng.standard_normal((24, DIM)).astype(np.float32))


def test_recall_at_10_against_exact_maxsim(compressed):
    index = CandidateIndex(compressed.codec, settings=CandidateSettings(probe=8, candidates=40))
    index.refresh(compressed)
    assert len(index.chunk_ids) == 300 and index.pairs > 300
    rng = np.random.default_rng(1)
    recalls = []
    for _ in range(20):
        q = _query(rng)
        exact = _exact(compressed, index, q)
        got = index.search(compressed, q)
        assert np.isfinite(got).sum() == 40  # only the candidates were decoded and scored
        top = np.argsort(-got)[:10]
        np.testing.assert_allclose(got[top], exact[top], rtol=1e-5, atol=1e-5)  # candidates score exactly
        recalls.append(len(set(top) & set(np.argsort(-exact)[:10])) / 10)
    assert np.mean(recalls) >= 0.95


def test_few_enough_chunks_are_all_scored_exactly(compressed):
    index = CandidateIndex(compressed.codec, settings=CandidateSettings(candidates=1000))
    index.refresh(compressed)
    q = _query(np.random.default_rng(2))
    np.testing.assert_allclose(index.search(compressed, q), _exact(compressed, index, q), rtol=1e-5, atol=1e-5)


def test_filters_and_deletions_are_respected(compressed):
    index = CandidateIndex(compressed.codec, settings=CandidateSettings(probe=4, candidates=20))
    index.refresh(compressed)
    allowed = np.zeros(len(index.chunk_ids), dtype=bool)
    allowed[::7] = True
    got = index.search(compressed, _query(np.random.default_rng(3)), allowed)
    assert np.isfinite(got).sum() == 20 and not np.isfinite(got[~allowed]).any()
    compressed.delete_files([Path(f"/d/f{i}.txt") for i in range(0, 300, 2)])
    assert index.refresh(compressed)
    got = index.search(compressed, _query(np.random.default_rng(4)))
    assert not np.isfinite(got[~index.alive]).any() and index.live_chunks == 150


def test_new_chunks_join_the_lists(compressed):
    index = CandidateIndex(compressed.codec, settings=CandidateSettings(probe=8, candidates=20))
    index.refresh(compressed)
    rng = np.random.default_rng(5)
    target = _chunk_vectors(rng, 60)
    record = FileRecord(Path("/d/new.txt"), Path("/d"), 1, 1.0, "hnew", "indexed")
    compressed.write_files([(record, [EncodedChunk(Chunk(0, "new", 0, 3, 60), target)])])
    assert index.refresh(compressed) and not index.refresh(compressed)
    got = index.search(compressed, target[:24])  # the chunk's own tokens as the query
    assert index.chunk_ids[int(np.argmax(got))] == compressed.chunk_ids()[-1]


def test_mostly_deleted_index_is_rebuilt(compressed):
    index = CandidateIndex(compressed.codec)
    index.refresh(compressed)
    compressed.delete_files([Path(f"/d/f{i}.txt") for i in range(250)])
    index.refresh(compressed)
    assert len(index.chunk_ids) == 50 and index.alive.all()
    assert index.nbytes() > 0


def test_the_best_chunks_decoded_vectors_are_kept_for_the_next_step(compressed):
    rng = np.random.default_rng(11)
    index = CandidateIndex(compressed.codec, settings=CandidateSettings(probe=4, candidates=64))
    index.refresh(compressed)
    q = _query(rng)
    scores = index.search(compressed, q, depth=10, keep=5)
    best = index.chunk_ids[np.argsort(-scores, kind="stable")[:5]].tolist()
    assert sorted(index.recent) == sorted(best)  # exactly the five best, however the groups fell
    stored = compressed.read_vectors(best)
    for cid in best:
        np.testing.assert_array_equal(index.vectors_of(cid), stored[cid])
    worst = int(index.chunk_ids[np.flatnonzero(np.isfinite(scores))[np.argmin(scores[np.isfinite(scores)])]])
    assert index.vectors_of(worst) is None
    index.search(compressed, q, depth=10)  # keep=0: nothing kept from an earlier query
    assert index.recent == {}


# ------------------------------------------------------------------- through the searcher
@pytest.fixture
def searcher_pair(store, fake_encoder, config, docs):
    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    exact = Searcher(store, fake_encoder)
    expected = {q: [h.path for h in exact.search(q, k=3, mode="maxsim")] for q in ("csv module", "tomatoes sun")}
    sample = store.sample_vectors(10_000)
    store.convert_vectors(C.train(sample, spec=C.CodecSpec(C.RESIDUAL, centroids=8, groups=4)))
    return Searcher(store, fake_encoder, candidate_min_tokens=0), expected


def test_searcher_uses_candidates_on_a_compressed_index(searcher_pair, docs):
    searcher, expected = searcher_pair
    for text, paths in expected.items():
        hits = searcher.search(text, k=3, mode="maxsim")
        assert [h.path for h in hits][:1] == paths[:1]
    assert isinstance(searcher.index, CandidateIndex)
    hit = searcher.search("csv module", k=1, mode="hybrid")[0]
    assert hit.path == docs / "notes" / "csv.md" and {m.query_token for m in hit.alignment} == {"csv", "module"}
    assert [h.path.name for h in searcher.search("csv ext:py", k=5, mode="maxsim")] == ["code.py"]


def test_hits_aligned_from_kept_vectors_match_hits_aligned_from_the_rows(searcher_pair, monkeypatch):
    searcher, _expected = searcher_pair
    kept = searcher.search("csv module tomatoes", k=4, mode="hybrid")
    assert searcher.index.recent  # the alignment had vectors at hand
    monkeypatch.setattr(CandidateIndex, "vectors_of", lambda self, chunk_id: None)  # read every row again
    again = searcher.search("csv module tomatoes", k=4, mode="hybrid")
    assert [(h.path, h.alignment, h.snippet) for h in kept] == [(h.path, h.alignment, h.snippet) for h in again]
    assert any(h.alignment for h in kept)


def test_searcher_follows_a_conversion_and_picks_exact_below_the_size(store, fake_encoder, config, docs):
    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    searcher = Searcher(store, fake_encoder)  # default size: this small index is searched exactly
    first = searcher.search("tomatoes", k=1, mode="maxsim")[0].path
    store.convert_vectors(C.train(store.sample_vectors(10_000), spec=C.CodecSpec(C.COMPACT, centroids=8, groups=2)))
    assert searcher.search("tomatoes", k=1, mode="maxsim")[0].path == first
    assert type(searcher.index).__name__ == "TokenMatrix"  # exact, over the decoded vectors
