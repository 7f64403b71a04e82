"""The backend's search thread and indexer process: indexing signals, pause/resume, cancel, a killed indexer,
model problems, search."""
from __future__ import annotations

import threading

import pytest

from findling.app.search_worker import SearchRequest, SearchWorker
from findling.engine import Store, parse_query
from tests.app.conftest import WAIT_MS, backend_of_another_model
from tests.fakes import FakeEncoder, broken_factory, fake_factory


def indexed_paths(config) -> set:
    with Store(config.db_path) as store:
        return {p for p, s in store.file_states().items() if s.status == "indexed"}


def test_indexing_reports_progress_failures_and_the_end(backend, docs, config, qtbot):
    (docs / "broken.pdf").write_bytes(b"not a pdf at all")
    backend.add_folder(docs)
    progress, failed = [], []
    backend.progress.connect(progress.append)
    backend.file_failed.connect(lambda path, reason: failed.append((path, reason)))
    with qtbot.waitSignal(backend.model_ready, timeout=WAIT_MS) as ready:
        backend.start()
    assert ready.args[0].name == "fake-encoder"
    with qtbot.waitSignal(backend.index_finished, timeout=WAIT_MS) as done:
        pass
    last = done.args[0]
    assert last.phase == "done" and last.indexed == 4 and last.failed == 1
    assert any(p.phase == "indexing" for p in progress)
    assert failed == [(str(docs / "broken.pdf"), failed[0][1])] and "PDF" in failed[0][1]
    assert indexed_paths(config) == {docs / "notes" / "csv.md", docs / "notes" / "json.md", docs / "garden.txt",
                                     docs / "code.py"}
    assert not backend.indexing


def test_pause_holds_indexing_until_resume(backend, docs, config, qtbot):
    backend.add_folder(docs)
    backend.pause()
    assert backend.paused
    with qtbot.waitSignal(backend.progress, timeout=WAIT_MS,
                          check_params_cb=lambda p: p.phase == "indexing" and p.files_total == 4):
        backend.start()
    assert indexed_paths(config) == set()  # held before the first file
    with qtbot.waitSignal(backend.index_finished, timeout=WAIT_MS) as done:
        backend.resume()
    assert done.args[0].indexed == 4 and not backend.paused
    assert len(indexed_paths(config)) == 4


def test_cancel_stops_the_run_and_later_jobs_still_work(backend, docs, config, qtbot):
    backend.add_folder(docs)
    backend.pause()
    with qtbot.waitSignal(backend.progress, timeout=WAIT_MS, check_params_cb=lambda p: p.phase == "indexing"):
        backend.start()
    with qtbot.waitSignal(backend.index_finished, timeout=WAIT_MS) as done:
        backend.cancel()
    assert done.args[0].phase == "cancelled"
    assert indexed_paths(config) == set()
    backend.resume()
    with qtbot.waitSignal(backend.index_finished, timeout=WAIT_MS) as again:
        backend.reindex_file(docs / "garden.txt")
    assert again.args[0].indexed == 1
    assert indexed_paths(config) == {docs / "garden.txt"}


def test_a_model_that_cannot_load_is_reported(make_backend, qtbot):
    backend = make_backend(factory=broken_factory)
    with qtbot.waitSignal(backend.model_failed, timeout=WAIT_MS) as failed:
        backend.start()
    assert "pip install" in failed.args[0]
    assert backend.model_info is None


def test_model_mismatch_offers_a_reencode(make_backend, docs, config, qtbot):
    other = backend_of_another_model(make_backend, docs, qtbot)
    with qtbot.waitSignal(other.model_mismatch, timeout=WAIT_MS) as mismatch:
        other.start()
    assert "fake-encoder" in mismatch.args[0]
    with qtbot.waitSignal(other.index_finished, timeout=WAIT_MS) as done:
        other.reencode()
    assert done.args[0].indexed == 4
    with Store(config.db_path) as store:
        assert store.model_identity()["name"] == "other-model"


def test_removing_a_folder_drops_its_files(backend, docs, config, qtbot):
    backend.add_folder(docs)
    backend.start()
    qtbot.waitUntil(lambda: backend.index_idle, timeout=WAIT_MS)
    with qtbot.waitSignal(backend.folders_changed, timeout=WAIT_MS):
        backend.remove_folder(docs)
    assert backend.folders() == [] and indexed_paths(config) == set()


def test_adding_a_bad_folder_says_why(backend, tmp_path, config):
    with pytest.raises(ValueError, match="not a folder"):
        backend.add_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="own data folder"):
        backend.add_folder(tmp_path)  # holds config.data_dir


def test_watcher_changes_are_indexed_live(backend, docs, config, qtbot):
    watcher = pytest.importorskip("findling.engine.sources.watcher")
    if not hasattr(watcher, "Watcher"):
        pytest.skip("findling.engine.sources.watcher.Watcher is not there yet")
    backend.add_folder(docs)
    backend.start()
    qtbot.waitUntil(lambda: backend.index_idle, timeout=WAIT_MS)
    qtbot.wait(200)  # the observer is started by the sync job; give it a moment to attach
    (docs / "new.txt").write_text("Peppers grow in the greenhouse.")
    qtbot.waitUntil(lambda: docs / "new.txt" in indexed_paths(config), timeout=WAIT_MS)


def test_search_worker_answers_only_the_newest_waiting_request(config, docs, qtbot):
    from findling.engine import Indexer

    with Store(config.db_path) as store:
        store.add_folder(docs)
        Indexer(store, FakeEncoder(), config=config).run_to_end()
    worker = SearchWorker(config, fake_factory)
    answered, errors = [], []
    worker.results.connect(lambda rid, hits: answered.append((rid, hits)))
    worker.error.connect(lambda rid, message: errors.append(rid))
    for rid, text in ((1, "csv"), (2, "json"), (3, "tomatoes")):  # all waiting before the worker starts
        worker.submit(SearchRequest(rid, parse_query(text)))
    worker.submit(SearchRequest(4, parse_query("x"), mode="no-such-mode"))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        qtbot.waitUntil(lambda: errors == [4], timeout=WAIT_MS)  # only the newest ran
        assert answered == []
        worker.submit(SearchRequest(5, parse_query("tomatoes")))
        qtbot.waitUntil(lambda: bool(answered), timeout=WAIT_MS)
        assert answered[0][0] == 5 and answered[0][1][0].path == docs / "garden.txt"
    finally:
        worker.stop()
        thread.join(timeout=WAIT_MS / 1000)
    assert not thread.is_alive()


def test_window_shows_model_failure(make_backend, settings, qtbot):
    from findling.app.window import MainWindow

    backend = make_backend(factory=broken_factory)
    window = MainWindow(backend, settings=settings)
    qtbot.addWidget(window)
    window.show()
    backend.start()
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=WAIT_MS)
    assert "no model found" in window.banner.text()
    assert window.status.model_label.text() == "No model"


def test_signals_queued_before_shutdown_reach_no_one_after_it(backend, docs, qtbot):
    backend.add_folder(docs)
    backend.start()
    qtbot.waitUntil(lambda: backend.model_info is not None and backend.index_idle, timeout=WAIT_MS)
    info = backend.model_info
    backend.shutdown()  # closes the store
    with qtbot.assertNotEmitted(backend.model_ready), qtbot.assertNotEmitted(backend.model_switched), \
            qtbot.assertNotEmitted(backend.progress):
        backend._searcher.ready.emit(info)  # as a worker's queued signal lands after the shutdown
        backend._indexer.model_switched.emit(info, None)
        backend._indexer.progress.emit(None)
        qtbot.wait(50)


def test_the_index_is_idle_only_once_its_jobs_signals_have_arrived(backend, docs, qtbot):
    from findling.engine import Job, JobKind

    backend.add_folder(docs)
    backend.start()
    qtbot.waitUntil(lambda: backend.index_idle, timeout=WAIT_MS)
    finished = []
    backend.index_finished.connect(finished.append)
    backend._indexer.submit(Job(JobKind.SYNC))
    assert not backend.index_idle  # sent, not yet reported done
    qtbot.waitUntil(lambda: backend.index_idle, timeout=WAIT_MS)
    assert [p.phase for p in finished] == ["done"]  # heard before idle


def test_the_search_encoder_is_made_for_one_thread_and_warmed_up(config):
    made, warm = [], []

    def factory(cfg):
        made.append(cfg.threads)
        encoder = FakeEncoder()
        plain = encoder.encode_queries
        encoder.encode_queries = lambda texts: warm.append(list(texts)) or plain(texts)
        return encoder

    worker = SearchWorker(config, factory)
    worker._setup()
    worker._close()
    assert made == [1] and len(warm) == 1
