"""No byte is written inside a watched folder: not by a full index, not by a watch cycle, not by a search.

Every entry below the folder is described before and after (type, mode, size, mtime, content digest, link
target; the folders' own mtimes reveal any file created and removed again). The only changes allowed are the
ones the test makes itself. The hostile corpus test checks the same for ``findling index`` in a subprocess.
"""
from __future__ import annotations

import os
import threading
import time

import pytest

from findling.engine.index.indexer import Indexer
from findling.engine.search.searcher import Searcher
from findling.engine.store.store import Store
from findling.engine.index.watch_loop import run_watch
from tests.waiting import wait_for
from tests.reliability.helpers import tree_snapshot

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the folder holds a FIFO and a symlink")


def _folder(tmp_path):
    docs = tmp_path / "watched"
    (docs / "notes" / "deep").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nAlpha notes about rivers.\n")
    (docs / "notes" / "b.txt").write_text("Beta text about mountains.\n")
    (docs / "notes" / "deep" / "c.html").write_text("<html><title>Gamma</title><p>Gamma page</p></html>")
    (docs / "notes" / "bad.pdf").write_bytes(b"%PDF-1.4 damaged")
    (docs / "notes" / "binary.txt").write_bytes(os.urandom(4096))
    (docs / ".hidden").mkdir()
    (docs / ".hidden" / "h.txt").write_text("hidden")
    os.symlink("a.md", docs / "link-to-a.md")
    os.mkfifo(docs / "pipe.txt")
    return docs


def test_index_and_watch_cycle_write_nothing_in_the_folder(tmp_path, config, fake_encoder):
    docs = _folder(tmp_path)
    assert not config.data_dir.is_relative_to(docs)
    before = tree_snapshot(docs)
    with Store(config.db_path) as setup:
        setup.add_folder(docs)
    stop = threading.Event()
    reports = []

    def watch():
        with Store(config.db_path) as store:  # as `findling watch`: index, then follow changes
            indexer = Indexer(store, fake_encoder, config=config)
            run_watch(indexer, config=config, report=reports.append, stop=stop,
                      on_watching=lambda: reports.append(indexer.run_to_end()))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    with Store(config.db_path) as reader:
        assert wait_for(lambda: reports)  # the full index is done
        assert tree_snapshot(docs) == before, "the full index wrote inside the watched folder"
        searcher = Searcher(reader, fake_encoder)
        assert searcher.search("mountains", k=3)
        # the test's own changes; the watcher indexes them
        (docs / "notes" / "new.md").write_text("Delta notes about glaciers.\n")
        (docs / "a.md").write_text("# Alpha\n\nAlpha notes about rivers and lakes.\n")
        (docs / "notes" / "b.txt").rename(docs / "notes" / "deep" / "b-moved.txt")
        after_edits = tree_snapshot(docs)
        assert wait_for(lambda: any(h.path.name == "new.md" for h in searcher.search("glaciers", k=3)))
        assert wait_for(lambda: any(h.path.name == "b-moved.txt" for h in searcher.search("mountains", k=3)))
        time.sleep(2 * config.debounce_seconds)  # let any late event settle
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert tree_snapshot(docs) == after_edits, "the watch cycle wrote inside the watched folder"
