from pathlib import Path

import numpy as np
import pytest

from engine.indexer import Indexer
from engine.searcher import Searcher


@pytest.fixture
def indexed(store, fake_encoder, config, docs):
    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    return Searcher(store, fake_encoder)


@pytest.mark.parametrize("mode", ["maxsim", "bm25", "hybrid"])
def test_each_mode_finds_the_right_file(indexed, docs, mode):
    hits = indexed.search("read write csv files", k=3, mode=mode)
    assert hits[0].path == docs / "notes" / "csv.md"
    assert all(h.path.name != "secret.txt" for h in hits)  # hidden folders are excluded


def test_alignment_points_at_matching_words(indexed):
    hit = indexed.search("csv module", k=1, mode="maxsim")[0]
    words = {m.query_token: m for m in hit.alignment}
    assert set(words) == {"csv", "module"}
    for m in hit.alignment:
        assert hit.chunk_text[m.doc_start : m.doc_end].lower() == m.query_token
        assert m.similarity == pytest.approx(1.0, abs=1e-2)
    assert "csv" in hit.snippet.lower()
    assert "maxsim" in hit.lanes


@pytest.mark.parametrize("mode", ["maxsim", "hybrid"])
def test_ranking_without_explanations_is_the_same_ranking(indexed, mode):
    full = indexed.search("csv module", k=5, mode=mode)
    bare = indexed.search("csv module", k=5, mode=mode, explain=False)
    assert [(h.path, h.chunk_id, h.score) for h in bare] == [(h.path, h.chunk_id, h.score) for h in full]
    assert all(h.alignment == () for h in bare) and any(h.alignment for h in full)


def test_filters_restrict_results(indexed, docs):
    hits = indexed.search("csv ext:py", k=5, mode="maxsim")
    assert [h.path.name for h in hits] == ["code.py"]
    assert indexed.search(f"csv dir:{docs / 'notes'}", k=5, mode="hybrid")[0].path.parent == docs / "notes"
    assert indexed.search("csv after:2999-01-01", k=5) == []
    assert [h.path.name for h in indexed.search('"prune the basil"', k=5)] == ["garden.txt"]


def test_matrix_follows_writes_from_the_indexer(indexed, store, fake_encoder, config, docs):
    assert indexed.search("tomatoes", k=1, mode="maxsim")[0].path.name == "garden.txt"
    (docs / "garden.txt").unlink()
    (docs / "veg.txt").write_text("Tomatoes and peppers in the greenhouse.")
    Indexer(store, fake_encoder, config=config).run_to_end()
    hits = indexed.search("tomatoes", k=3, mode="maxsim")
    assert hits[0].path.name == "veg.txt"
    assert all(h.path.name != "garden.txt" for h in hits)


def test_empty_queries_return_nothing(indexed):
    assert indexed.search("   ", k=5) == []
    assert indexed.search("", k=5, mode="bm25") == []


def test_scores_equal_direct_maxsim(indexed, fake_encoder):
    hit = indexed.search("water the basil", k=1, mode="maxsim")[0]
    q = fake_encoder.encode_queries(["water the basil"])[0]
    d = fake_encoder.encode_documents([hit.chunk_text])[0].astype(np.float16).astype(np.float32)
    assert hit.score == pytest.approx(float((d @ q.T).max(axis=0).sum()), rel=1e-3)


def test_an_index_of_another_model_is_refused(indexed, store):
    from engine.errors import ModelMismatch
    from tests.fakes import FakeEncoder

    with pytest.raises(ModelMismatch, match="reencode"):
        Searcher(store, FakeEncoder(name="other")).search("csv")
