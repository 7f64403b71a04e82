"""Thread counts in the query path: one BLAS thread inside MaxSim, query encoding on its own torch threads,
and nothing changed for other threads (an indexer encoding next to the search)."""
import os
import sys
import threading

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import findling.engine.search.maxsim
from findling.engine.index.indexer import Indexer
from findling.engine.search.maxsim import maxsim_scores
from findling.engine.search.searcher import Searcher
from findling.engine.threads import default_threads, single_threaded_blas, torch_threads


def blas_threads() -> list[int]:
    """Thread counts of numpy's BLAS (other BLAS libraries loaded by earlier tests are not the search's)."""
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    return [lib["num_threads"] for lib in [lib for lib in blas if "numpy" in lib["filepath"]] or blas]


@pytest.fixture
def two_blas_threads():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        yield


def test_default_threads_counts_usable_cores():
    assert 1 <= default_threads() <= (__import__("os").cpu_count() or 1)


def test_single_threaded_blas_limits_and_restores(two_blas_threads):
    assert blas_threads() == [2]
    with single_threaded_blas():
        assert blas_threads() == [1]
        with single_threaded_blas():  # nested: the inner exit does not restore yet
            pass
        assert blas_threads() == [1]
    assert blas_threads() == [2]


def test_overlapping_blocks_from_two_threads_restore_once(two_blas_threads):
    inside, release = threading.Event(), threading.Event()

    def other():
        with single_threaded_blas():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with single_threaded_blas():
        t.start()
        inside.wait(10)
    assert blas_threads() == [1]  # the other thread is still inside
    release.set()
    t.join()
    assert blas_threads() == [2]


def test_torch_threads_sets_and_restores_the_calling_threads_count():
    torch.set_num_threads(2)
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(1):  # already there: nothing to change
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_maxsim_runs_blas_single_threaded_on_worker_threads(monkeypatch, two_blas_threads):
    calls = []
    real = findling.engine.search.maxsim._block_scores

    def spy(*args):
        calls.append((threading.current_thread().name, blas_threads()))
        return real(*args)

    monkeypatch.setattr(findling.engine.search.maxsim, "_block_scores", spy)
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((2000, 8)).astype(np.float32)
    starts = np.arange(0, 2000, 10)
    got = maxsim_scores(np.ones((3, 8), np.float32), tokens, starts, block_rows=50, threads=2)
    assert len(calls) == 40
    assert all(b == [1] for _, b in calls)
    assert any(name.startswith("maxsim") for name, _ in calls)
    assert blas_threads() == [2]
    ref = (tokens.reshape(200, 10, 8) @ np.ones((8, 3), np.float32)).max(axis=1).sum(axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-5)


class _RecordingEncoder:
    """Wraps an encoder and records torch's thread count each time a query is encoded."""

    def __init__(self, inner) -> None:
        self.inner, self.info, self.tokenizer = inner, inner.info, inner.tokenizer
        self.query_threads: list[int] = []

    def encode_queries(self, texts):
        self.query_threads.append(torch.get_num_threads())
        return self.inner.encode_queries(texts)

    def encode_documents(self, texts):
        return self.inner.encode_documents(texts)


def test_searcher_encodes_queries_on_its_own_threads_and_scores_the_same(store, fake_encoder, config, docs):
    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    enc = _RecordingEncoder(fake_encoder)
    torch.set_num_threads(2)
    one = Searcher(store, enc, threads=1, query_threads=1).search("csv files", k=5, mode="maxsim")
    two = Searcher(store, enc, threads=2, query_threads=2).search("csv files", k=5, mode="maxsim")
    assert enc.query_threads == [1, 2]
    assert torch.get_num_threads() == 2  # put back after each search
    assert [(h.path, h.chunk_id) for h in one] == [(h.path, h.chunk_id) for h in two]
    assert [h.score for h in one] == pytest.approx([h.score for h in two], rel=1e-6)


def test_searches_next_to_an_encoding_thread_leave_its_threads_alone(store, fake_encoder, config, docs):
    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    searcher = Searcher(store, fake_encoder, threads=2)
    expected = [h.path for h in searcher.search("water the basil", k=3)]
    stop, loaded, seen = threading.Event(), threading.Event(), []

    def encode_loop():  # what the indexing worker does: torch on 2 threads, over and over
        torch.set_num_threads(2)
        seen.append(torch.get_num_threads())  # its model loaded and ran before (torch fixes the count then)
        loaded.set()
        x = torch.randn(256, 256)
        while not stop.is_set():
            x = torch.tanh(x @ x) / 16
            seen.append(torch.get_num_threads())

    t = threading.Thread(target=encode_loop)
    t.start()
    loaded.wait(10)
    try:
        answers = [[h.path for h in searcher.search("water the basil", k=3)] for _ in range(5)]
    finally:
        stop.set()
        t.join()
    assert answers == [expected] * 5
    assert seen and set(seen) == {2}


def test_a_search_aligns_its_hits_with_single_threaded_blas(two_blas_threads, store, fake_encoder, config, docs,
                                                             monkeypatch):
    """The hits' alignment products are small: split over OpenBLAS threads, those threads then spin waiting
    for more work, a core's worth of CPU for nothing while an indexer needs it."""
    import findling.engine.search.searcher as searcher_module

    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    seen = []
    align = searcher_module.maxsim_alignment
    monkeypatch.setattr(searcher_module, "maxsim_alignment", lambda q, d: seen.append(blas_threads()) or align(q, d))
    assert Searcher(store, fake_encoder).search("read write csv files", k=3, mode="maxsim")
    assert seen and all(threads == [1] for threads in seen)
    assert blas_threads() == [2]  # and restored after the search
