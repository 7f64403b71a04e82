"""The app survives its indexer: a child killed mid-file is restarted, catches up, and leaves a consistent
index; the window says what happened; a child that keeps dying is given up on while searching still works."""
from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace

import pytest

from findling.engine import Store
from tests.app.conftest import WAIT_MS, search
from tests.fakes import slow_factory

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="kills the child with SIGKILL")


def _many_docs(root, n: int = 12):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"note{i:02d}.txt").write_text(f"Note {i}: the heron number {i} waits by the pond at dawn.\n")
    return root


def _index_state(config):
    """(indexed paths, chunks per indexed path, integrity) as the index file holds them."""
    with Store(config.db_path) as store:
        states = store.file_states()
        indexed = {p for p, s in states.items() if s.status == "indexed"}
        chunks = {p: len(store.chunks_of(p)) for p in indexed}
        return indexed, chunks, store.integrity_check()


def test_a_child_killed_mid_file_is_restarted_and_the_index_stays_whole(make_backend, tmp_path, config, qtbot):
    docs = _many_docs(tmp_path / "herons")
    # small batches (a few files each), so files are written while others still wait for the encoder
    backend = make_backend(factory=slow_factory, cfg=replace(config, encode_batch_tokens=8))
    backend.add_folder(docs)
    restarted = []
    backend.indexer_restarted.connect(restarted.append)
    backend.start()
    # kill it once some files are in and more are in the encoder (0.25 s a document there)
    qtbot.waitUntil(lambda: len(_index_state(config)[0]) >= 2, timeout=WAIT_MS)
    first_pid = backend.indexer_pid
    assert first_pid is not None
    restarted_with_work_left = [len(_index_state(config)[0])]
    os.kill(first_pid, signal.SIGKILL)
    with qtbot.waitSignal(backend.indexer_restarted, timeout=WAIT_MS):
        pass
    assert restarted and "restarted" in restarted[0]
    qtbot.waitUntil(lambda: backend.indexer_pid not in (None, first_pid), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: backend.index_idle and len(_index_state(config)[0]) == 12, timeout=60_000)
    indexed, chunks, integrity = _index_state(config)
    assert indexed == {docs / f"note{i:02d}.txt" for i in range(12)}
    assert set(chunks.values()) == {1}  # no file half-written, none written twice
    assert integrity == "ok"
    assert restarted_with_work_left[0] < 12  # it was killed before the end, not after


def test_the_window_says_the_indexer_was_restarted_and_still_searches(make_window, backend, tmp_path, qtbot):
    docs = _many_docs(tmp_path / "herons", n=4)
    window = make_window(docs)
    assert search(qtbot, window, "heron number 3")[0] == docs / "note03.txt"
    pid = backend.indexer_pid
    os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "restarted" in window.banner.text(), timeout=WAIT_MS)
    assert search(qtbot, window, "heron number 2")[0] == docs / "note02.txt"


def test_an_indexer_that_keeps_dying_is_given_up_on(make_backend, docs, qtbot):
    from findling.app import indexer_process

    backend = make_backend()
    backend.add_folder(docs)
    failed = []
    backend.index_error.connect(failed.append)
    backend.start()
    qtbot.waitUntil(lambda: backend.indexer_pid is not None, timeout=WAIT_MS)
    for _ in range(indexer_process.MAX_RESTARTS + 1):
        pid = backend.indexer_pid
        qtbot.waitUntil(lambda: backend.indexer_pid not in (None,), timeout=WAIT_MS)
        os.kill(pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: backend.indexer_pid != pid or bool(failed), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(failed), timeout=WAIT_MS)
    assert "was not restarted" in failed[-1] and "searching still works" in failed[-1]
