"""The search worker: one ``Searcher`` (with its in-memory matrix) on its own thread for the window's life.

It loads its model first (then ``ready`` fires and the backend starts the indexer process). Requests
go into a thread-safe queue; when several wait, only the newest is answered (the others are stale before
they start). Every answer carries its request id, and the window drops any answer that is not the newest.

The worker runs as one long call, a plain loop over the queue inside the slot connected to
``QThread.started``, instead of many queued slot calls: with PySide 6.12 and torch, a model first used in the
``started`` slot and used again in a later queued slot call crashed the process (a segfault in ``Module.to``;
the Python thread state of the first call is gone by the second). One loop keeps one thread state.

After a model switch (done by the indexer process) the backend calls ``reload``: the next thing this worker
does, before any answer, is to load the new model and reopen the index (then ``ready`` fires again). Until
the swap, searches are answered from the old index with the old model.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, Signal, Slot

from findling.engine import Config, Encoder, FindlingError, ModelMismatch, Query, QueryError, Searcher, Store

log = logging.getLogger(__name__)

EncoderFactory = Callable[[Config], Encoder]


def load_model(factory: EncoderFactory, config: Config) -> Encoder:
    """The encoder from ``factory``, with its network loaded (factories may load lazily, on first use) by a
    warm-up query."""
    encoder = factory(config)
    encoder.encode_queries(["warm up"])
    return encoder


_WAKE = object()
"""Queued by ``reload`` so a waiting worker wakes up and reloads."""


@dataclass(frozen=True)
class SearchRequest:
    """One search the window asked for."""

    id: int
    query: Query
    k: int = 50
    mode: str = "hybrid"


class SearchWorker(QObject):
    """Answers ``SearchRequest``s; see the module docstring."""

    ready = Signal(object)  # ModelInfo of the loaded model
    failed = Signal(str)  # the model could not be loaded; the message is for the user
    results = Signal(int, object)  # request id, list[SearchHit]
    error = Signal(int, str)  # request id, message for the user

    def __init__(self, config: Config, encoder_factory: EncoderFactory) -> None:
        super().__init__()
        self.config = config
        self._factory = encoder_factory
        self._requests: queue.Queue[SearchRequest | None] = queue.Queue()
        self._store: Store | None = None
        self._searcher: Searcher | None = None
        self._reload_guard = threading.Lock()
        self._reload_to: Config | None = None

    # ------------------------------------------------------------ from any thread
    def submit(self, request: SearchRequest) -> None:
        self._requests.put(request)

    def reload(self, config: Config) -> None:
        """Load ``config``'s model and reopen the index before answering anything else."""
        with self._reload_guard:
            self._reload_to = config
        self._requests.put(_WAKE)

    def stop(self) -> None:
        self._requests.put(None)

    # ------------------------------------------------------------ on the worker thread
    @Slot()
    def run(self) -> None:
        try:
            self._setup()
            while (request := self._next()) is not None:
                self._answer(request)
        finally:
            self._close()

    def _close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def _reload_if_asked(self) -> None:
        with self._reload_guard:
            config, self._reload_to = self._reload_to, None
        if config is None:
            return
        self.config = config
        self._close()
        self._setup()

    def _setup(self) -> None:
        try:
            self._store = Store(self.config.db_path)
            # this encoder only encodes queries, on one torch thread
            encoder = load_model(self._factory, replace(self.config, threads=1))
            self._searcher = Searcher(self._store, encoder)
        except FindlingError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:
            log.exception("could not load the model")
            self.failed.emit(f"The model could not be loaded: {exc}")
            return
        self.ready.emit(encoder.info)

    def _next(self) -> SearchRequest | None:
        """The newest waiting request (older ones are dropped unanswered), or None to stop."""
        while True:
            self._reload_if_asked()
            items = [self._requests.get()]
            while True:
                try:
                    items.append(self._requests.get_nowait())
                except queue.Empty:
                    break
            if any(item is None for item in items):
                return None
            requests = [item for item in items if isinstance(item, SearchRequest)]
            if requests:
                return requests[-1]

    def _answer(self, request: SearchRequest) -> None:
        if self._searcher is None:
            self.error.emit(request.id, "The model is not loaded, so searching is not possible.")
            return
        try:
            hits = self._search(request)
        except (QueryError, ModelMismatch) as exc:  # a bad filter, or an index of another model
            self.error.emit(request.id, str(exc))
            return
        except Exception as exc:
            log.exception("search for %r failed", request.query)
            self.error.emit(request.id, f"Search failed: {exc}")
            return
        self.results.emit(request.id, hits)

    def _search(self, request: SearchRequest):
        """Search; a reload asked for meanwhile goes first."""
        while True:
            with self._reload_guard:
                reload_first = self._reload_to is not None
            if not reload_first:
                return self._searcher.search(request.query, k=request.k, mode=request.mode)
            self._reload_if_asked()
            if self._searcher is None:
                raise ModelMismatch("The new model could not be loaded, so searching is not possible.")

