from pathlib import Path

import numpy as np
import pytest

from findling.engine.index.indexer import Indexer
from findling.engine.search.searcher import Searcher


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
    from findling.engine.errors import ModelMismatch
    from tests.fakes import FakeEncoder

    with pytest.raises(ModelMismatch, match="reencode"):
        Searcher(store, FakeEncoder(name="other")).search("csv")


def _keyword_folder(root: Path, n: int = 50) -> Path:
    """``n`` files that all say "report"; 22 also say "basil" (rare: under half), 3 say "tomato"."""
    root.mkdir()
    for i in range(n):
        extra = "basil " * (1 + i % 3) if i < 22 else ("tomato" if i < 25 else "weather")
        (root / f"f{i:02d}.txt").write_text(f"Report {i}: the report on {extra} for week {i}.")
    return root


@pytest.fixture
def keywords(store, fake_encoder, config, tmp_path, monkeypatch):
    """A searcher over ``_keyword_folder`` and the MATCH expressions its keyword lane sends."""
    store.add_folder(_keyword_folder(tmp_path / "kw"))
    Indexer(store, fake_encoder, config=config).run_to_end()
    sent: list[str] = []
    search = store.fts_search
    monkeypatch.setattr(store, "fts_search", lambda match, *, limit: sent.append(match) or search(match, limit=limit))
    return Searcher(store, fake_encoder), sent


def test_words_in_half_the_chunks_or_more_are_left_out_of_the_keyword_match(keywords, store):
    from findling.engine.search.query import fts_expression, parse_query

    searcher, sent = keywords
    assert store.fts_common_words(["report", "the", "basil", "tomato", "zzz"]) == {"report", "the"}
    q = parse_query("the report on basil")
    lane = searcher._bm25_lane(q, None, depth=1)  # asks for 20 rows; "basil" alone fills them
    assert sent == ['"basil"']
    full = store.fts_search(fts_expression(q), limit=20)  # every word: "report" too
    # the same best row as matching every word, its score equal but for the clamped IDF's 1e-6
    assert [(r.file_id, r.chunk_id) for r in lane] == [(full[0][1], full[0][0])]
    assert lane[0].score == pytest.approx(full[0][2], abs=1e-4)
    rare = store.fts_search(sent[0], limit=20)
    assert [c for c, _f, _s in rare] == [c for c, _f, _s in full]  # and the same 20 rows in the same order


def test_when_the_rare_words_fill_too_few_rows_every_word_is_matched(keywords, store):
    searcher, sent = keywords
    lane = searcher._bm25_lane(parse_q("report tomato"), None, depth=1)
    assert sent == ['"tomato"', '"report" OR "tomato"']
    rows = store.fts_search(sent[-1], limit=20)  # the three tomato files, then "report" ones at a score of nothing
    assert len(rows) == 20 and all(s > 1e-3 for _c, _f, s in rows[:3])
    assert all(s == pytest.approx(0.0, abs=1e-4) for _c, _f, s in rows[3:])
    assert lane[0].chunk_id == rows[0][0]
    sent.clear()
    assert len(searcher.search("the report", k=10, mode="bm25")) == 10  # common words only: matched as they are
    assert sent == ['"the" OR "report"']


def test_which_words_are_common_follows_the_index(keywords, store, fake_encoder, config, tmp_path):
    searcher, sent = keywords
    searcher._bm25_lane(parse_q("report basil"), None, depth=1)
    assert sent == ['"basil"']
    for i in range(22, 50):
        (tmp_path / "kw" / f"f{i:02d}.txt").write_text(f"Notes {i} on the weather.")
    Indexer(store, fake_encoder, config=config).run_to_end()
    sent.clear()
    searcher._bm25_lane(parse_q("report basil"), None, depth=1)  # "report" is in 22 of 50 now: rare
    assert sent == ['"report" OR "basil"']


def parse_q(text):
    from findling.engine.search.query import parse_query

    return parse_query(text)


def test_hybrid_runs_the_keyword_lane_on_its_own_thread_with_the_same_lanes(indexed, monkeypatch):
    import threading

    from findling.engine.search.ranking import Fusion

    indexed.fusion = Fusion()  # files by their best chunk in hybrid too, so its lanes equal the lanes alone
    where = []
    lane = indexed._bm25_lane
    monkeypatch.setattr(indexed, "_bm25_lane", lambda *a, **kw: where.append(threading.current_thread()) or lane(*a, **kw))
    both = indexed.ranked_lanes("read write csv files", depth=10, mode="hybrid")
    assert where and where[-1] is not threading.current_thread()
    assert both["bm25"] == indexed.ranked_lanes("read write csv files", depth=10, mode="bm25")["bm25"]
    assert where[-1] is threading.current_thread()  # a lane alone runs where it is asked
    assert both["maxsim"] == indexed.ranked_lanes("read write csv files", depth=10, mode="maxsim")["maxsim"]
    indexed.close()
    assert indexed.search("csv", k=2)  # and a closed searcher makes a new thread when it needs one
    indexed.close()


def test_a_failing_keyword_lane_fails_the_hybrid_search(indexed, monkeypatch):
    from findling.engine.errors import StoreError

    def broken(*a, **kw):
        raise StoreError("the index file is damaged")

    monkeypatch.setattr(indexed, "_bm25_lane", broken)
    with pytest.raises(StoreError, match="damaged"):
        indexed.search("csv", k=2, mode="hybrid")
    assert indexed.search("csv", k=2, mode="maxsim")


def test_the_keyword_lane_reads_through_a_connection_of_its_own(indexed, monkeypatch):
    """SQLite runs one statement per connection at a time: on a shared connection the MaxSim lane's reads would
    wait for the whole keyword query. Here the keyword statement stays open until the searcher's own
    connection has answered a query, which only a second connection allows (else it gives up after 10 s)."""
    import sqlite3
    import threading

    lane_store = indexed._keyword_lane_store()
    assert lane_store is not indexed.store and lane_store.path == indexed.store.path
    main_read, in_sql, held = threading.Event(), threading.Event(), []

    def hold(_x):
        in_sql.set()
        held.append(main_read.wait(10))
        return 1

    lane_store.conn.create_function("hold_until_main_reads", 1, hold)
    fts_search = lane_store.fts_search

    def slow_fts_search(match, *, limit):
        lane_store.conn.execute("SELECT hold_until_main_reads(1)").fetchone()
        return fts_search(match, limit=limit)

    monkeypatch.setattr(lane_store, "fts_search", slow_fts_search)
    maxsim_lane = indexed._maxsim_lane

    def lane_then_read(*a, **kw):
        out = maxsim_lane(*a, **kw)
        assert in_sql.wait(10)
        indexed.store.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()
        main_read.set()
        return out

    monkeypatch.setattr(indexed, "_maxsim_lane", lane_then_read)
    hits = indexed.search("read csv files", k=2, mode="hybrid")
    assert held and all(held) and hits
    indexed.close()
    with pytest.raises(sqlite3.ProgrammingError):  # closed with the searcher
        lane_store.conn.execute("SELECT 1")


def test_the_keyword_lane_shares_the_connection_when_it_cannot_open_one(indexed, monkeypatch):
    import findling.engine.search.searcher as searcher_module
    from findling.engine.errors import StoreError

    expected = indexed.ranked_lanes("read write csv files", depth=10, mode="hybrid")
    indexed.close()

    def refuse(path, **_kw):
        raise StoreError(f"The index {path} cannot be opened")

    monkeypatch.setattr(searcher_module, "Store", refuse)
    assert indexed._keyword_lane_store() is indexed.store
    assert indexed.ranked_lanes("read write csv files", depth=10, mode="hybrid") == expected
