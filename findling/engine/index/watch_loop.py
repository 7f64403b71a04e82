"""Headless watching: feed the watcher's changes to the indexer on the calling thread.

The watcher's callback only queues changes; all store writes happen on the thread that runs
``run_watch`` (a store connection belongs to one thread).
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

from findling.engine.config import Config
from findling.engine.extract import is_supported
from findling.engine.index.indexer import Indexer, Progress
from findling.engine.records import FileChange
from findling.engine.sources.watcher import Watcher

log = logging.getLogger(__name__)


def run_watch(indexer: Indexer, *, config: Config, report: Callable[[Progress], None] | None = None,
              stop: threading.Event | None = None, on_watching: Callable[[], None] | None = None) -> None:
    """Apply changes as they arrive until ``stop`` is set (or Ctrl+C).

    ``on_watching`` runs on this thread once the watcher is up, typically the start-up sync: changes made
    while it runs are queued and applied after it, never lost between the two.
    """
    stop = stop or threading.Event()
    changes: queue.Queue[list[FileChange]] = queue.Queue()
    watcher = Watcher(indexer.store.folders(), on_changes=changes.put, patterns=indexer.exclude_patterns(),
                      debounce_seconds=config.debounce_seconds, accept=is_supported)
    with watcher:
        if on_watching is not None:
            on_watching()
        while not stop.is_set():
            try:
                batch = changes.get(timeout=0.2)
            except queue.Empty:
                continue
            while not changes.empty():
                batch = batch + changes.get_nowait()
            last = None
            for last in indexer.apply(batch):
                pass
            if report is not None and last is not None:
                report(last)
