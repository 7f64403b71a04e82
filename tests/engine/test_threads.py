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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness is per thread on Linux only")
def test_indexing_lowers_its_own_threads_priority_and_no_other(store, fake_encoder, config, docs, monkeypatch):
    from dataclasses import replace

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    start = nice()
    if start >= 19:
        pytest.skip("this process already runs at the lowest priority")
    target = min(19, start + 5)
    store.add_folder(docs)
    readers = []
    read = Indexer._read
    monkeypatch.setattr(Indexer, "_read", lambda self, *a: readers.append((threading.get_native_id(), nice()))
                        or read(self, *a))
    seen = {}

    def index():
        seen["tid"] = threading.get_native_id()
        Indexer(store, fake_encoder, config=replace(config, indexing_nice=target)).run_to_end()
        seen["after"] = nice()

    worker = threading.Thread(target=index)
    worker.start()
    worker.join()
    assert seen["after"] == target
    assert readers and all(tid != seen["tid"] and level == target for tid, level in readers)  # the read-ahead too
    assert nice() == start  # the caller's thread (a search's, say) keeps its priority


def test_indexing_shortens_the_gil_switch_interval_and_never_lengthens_it(store, fake_encoder, config, docs):
    from findling.engine.threads import GIL_SWITCH_INTERVAL

    store.add_folder(docs)
    sys.setswitchinterval(0.005)
    Indexer(store, fake_encoder, config=config).run_to_end()
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL / 2)  # someone asked for shorter turns: kept
    Indexer(store, fake_encoder, config=config).run_to_end()
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL / 2)


# ------------------------------------------------------------------ searches first
def _on_thread(fn, *, background: bool):
    """Run ``fn`` on a new thread (marked background or not); returns (thread, result box)."""
    from findling.engine.threads import mark_background

    box: dict = {}

    def run():
        mark_background(background)
        box["value"] = fn()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_background_threads_wait_at_pause_points_while_any_search_runs():
    from findling.engine.threads import search_running, searches_running, yield_to_searches

    assert not yield_to_searches()  # no search: nobody waits
    first, second = threading.Event(), threading.Event()

    def search(release):
        with search_running():
            release.wait(10)

    a = threading.Thread(target=search, args=(first,))
    a.start()
    while not searches_running():
        pass
    assert not yield_to_searches()  # this thread is not background: it never waits
    waiter, box = _on_thread(yield_to_searches, background=True)
    waiter.join(0.3)
    assert waiter.is_alive()  # held while the search runs
    b = threading.Thread(target=search, args=(second,))
    b.start()
    while searches_running() < 2:
        pass
    first.set()
    a.join()
    waiter.join(0.3)
    assert waiter.is_alive()  # the second search still runs
    second.set()
    b.join()
    waiter.join(10)
    assert box["value"] is True and searches_running() == 0


def test_a_pause_point_waits_no_longer_than_its_limit_nor_inside_without_pauses():
    from findling.engine.threads import search_running, without_pauses, yield_to_searches

    with search_running():
        waiter, box = _on_thread(lambda: yield_to_searches(limit=0.05), background=True)
        waiter.join(10)
        assert box["value"] is True and not waiter.is_alive()  # gave up waiting, the search still running

        def unpaused():
            with without_pauses():
                inside = yield_to_searches()
            return inside

        waiter, box = _on_thread(unpaused, background=True)
        waiter.join(10)
        assert box["value"] is False


def test_a_search_holds_background_work_for_its_whole_run(store, fake_encoder, config, docs):
    from findling.engine.threads import searches_running

    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    seen = []
    enc = _RecordingEncoder(fake_encoder)
    plain = enc.encode_queries
    enc.encode_queries = lambda texts: seen.append(searches_running()) or plain(texts)
    searcher = Searcher(store, enc)
    assert searcher.search("csv files", k=3, mode="hybrid")
    assert searcher.ranked_lanes("json", depth=5, mode="maxsim")["maxsim"]
    assert seen == [1, 1] and searches_running() == 0


def test_an_indexer_on_a_background_thread_waits_for_a_search(store, fake_encoder, config, docs):
    """Indexing at a lower priority gives way: with a search running it encodes nothing (its reader and its loop
    stop at their pause points), and it finishes once the search ends."""
    from dataclasses import replace

    from findling.engine.threads import search_running

    store.add_folder(docs)
    indexer = Indexer(store, fake_encoder, config=replace(config, indexing_nice=1))
    with search_running():
        worker = threading.Thread(target=indexer.run_to_end, daemon=True)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and fake_encoder.documents_encoded == 0
    worker.join(30)
    assert not worker.is_alive() and fake_encoder.documents_encoded > 0
    assert {s.status for s in store.file_states().values()} == {"indexed"}


def test_a_background_thread_that_searches_does_not_wait_for_itself():
    """A thread that indexed (and so is background) and then searches, as ``findling eval`` does, passes its own
    pause points inside its search."""
    from findling.engine.threads import search_running, yield_to_searches

    def index_then_search():
        with search_running():
            return yield_to_searches(limit=5.0)

    waiter, box = _on_thread(index_then_search, background=True)
    waiter.join(10)
    assert box["value"] is False
