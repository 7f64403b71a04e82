"""The window's one door to the engine: the search thread, the indexer process, and their signals.

Start-up order: the search worker loads its model on a thread of this process (so the user can search as
soon as possible), then the indexer starts as a child process (``indexer_process``) and syncs the watched
folders. Searching never waits for indexing: the child runs at the lowest priority, in its own process.

The backend also keeps a ``Store`` on the GUI thread for quick look-ups (folders, counts, failed files) and
for the small writes that must show at once (adding a folder, exclude patterns); everything that touches
files or vectors is a job for the indexer.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from findling.engine import (
    Config,
    FileState,
    Job,
    JobKind,
    Query,
    Store,
    add_patterns,
    chosen_config,
    effective_patterns,
    folder_pattern,
    load_encoder,
    normal_folder,
    remove_patterns,
    why_not_indexed,
)

from findling.app.indexer_process import IndexerProcess
from findling.app.search_worker import EncoderFactory, SearchRequest, SearchWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderSummary:
    """A watched folder and how its files fared."""

    path: Path
    indexed: int = 0
    failed: int = 0
    skipped: int = 0
    other: int = 0  # empty files, or files waiting to be re-encoded

    @property
    def total(self) -> int:
        return self.indexed + self.failed + self.skipped + self.other


class Backend(QObject):
    """Owns the search worker and the indexer process; every method is called on the GUI thread."""

    model_ready = Signal(object)  # ModelInfo of the search model
    model_failed = Signal(str)
    results = Signal(int, object)  # request id, list[SearchHit]
    search_error = Signal(int, str)
    progress = Signal(object)  # Progress
    file_failed = Signal(str, str)
    index_finished = Signal(object)  # Progress
    index_error = Signal(str)
    model_mismatch = Signal(str)
    folders_changed = Signal()
    exclusions_changed = Signal()
    model_switched = Signal(object)  # ModelInfo the index now uses (the search model follows: model_ready)
    indexer_restarted = Signal(str)  # the indexer process ended unasked and was started again

    def __init__(self, config: Config, *, encoder_factory: EncoderFactory = load_encoder,
                 indexer_factory: str | None = None, parent: QObject | None = None) -> None:
        """``encoder_factory`` gives the search worker its encoder; ``indexer_factory`` (``module:callable``,
        for tests) names the one the indexer process imports instead of resolving the model itself."""
        super().__init__(parent)
        self.config = config
        self.store = Store(config.db_path)  # opened here first, so the schema exists before the workers open it
        config = self.config = chosen_config(config, self.store)  # the model recorded by a switch, unless given
        self._latest = 0
        self._started = False
        self._index_started = False
        self._stopped = False
        self.indexing = False
        self.model_info = None

        self._search_thread = QThread()
        self._search_thread.setObjectName("findling-search")
        self._searcher = SearchWorker(config, encoder_factory)
        self._searcher.moveToThread(self._search_thread)
        self._search_thread.started.connect(self._searcher.run)
        self._searcher.ready.connect(self._on_search_ready)
        self._searcher.failed.connect(self.model_failed)
        self._searcher.results.connect(self.results)
        self._searcher.error.connect(self.search_error)

        self._indexer = IndexerProcess(config, encoder_factory=indexer_factory, parent=self)
        self._indexer.progress.connect(self._on_progress)
        self._indexer.finished.connect(self._on_finished)
        self._indexer.file_failed.connect(self.file_failed)
        self._indexer.failed.connect(self.index_error)
        self._indexer.mismatch.connect(self.model_mismatch)
        self._indexer.folders_changed.connect(self.folders_changed)
        self._indexer.model_switched.connect(self._on_model_switched)
        self._indexer.crashed.connect(self.indexer_restarted)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Load the model in the background, then index; returns at once."""
        if self._started:
            return
        self._started = True
        self._search_thread.start()

    def _on_search_ready(self, info) -> None:
        if self._stopped:  # queued by the worker before it stopped: the store is closed, nobody may read it now
            return
        self.model_info = info
        self.model_ready.emit(info)
        if not self._stopped and not self._index_started:  # a model_ready listener may have shut us down
            self._index_started = True
            self._indexer.start()

    def shutdown(self) -> None:
        """Stop the indexer process and the search worker and wait for both (safe to call twice)."""
        if self._stopped:
            return
        self._stopped = True
        self._indexer.stop()
        self._searcher.stop()
        self._search_thread.quit()
        if self._search_thread.isRunning() and not self._search_thread.wait(60_000):
            log.error("thread %s did not stop in time", self._search_thread.objectName())
        self.store.close()

    # ------------------------------------------------------------------ search
    def search(self, query: Query, *, k: int = 50, mode: str = "hybrid") -> int:
        """Ask for results; the answer arrives on ``results`` with the returned request id."""
        self._latest += 1
        self._searcher.submit(SearchRequest(self._latest, query, k, mode))
        return self._latest

    @property
    def latest_request(self) -> int:
        return self._latest

    # ------------------------------------------------------------------ indexing
    def _on_progress(self, p) -> None:
        if self._stopped:
            return
        self.indexing = True
        self.progress.emit(p)

    def _on_finished(self, p) -> None:
        self.indexing = False
        self.index_finished.emit(p)

    def pause(self) -> None:
        self._indexer.pause()

    def resume(self) -> None:
        self._indexer.resume()

    def cancel(self) -> None:
        self._indexer.cancel()

    @property
    def paused(self) -> bool:
        return self._indexer.paused

    @property
    def index_idle(self) -> bool:
        """True once the indexer has started, has done every job sent to it, and every signal of those jobs has
        been delivered here."""
        return self._index_started and self._indexer.idle

    @property
    def indexer_pid(self) -> int | None:
        """The indexer process's id, while one runs."""
        return self._indexer.pid if self._indexer.running else None

    def reindex_file(self, path: Path) -> None:
        self._indexer.submit(Job(JobKind.REINDEX, path=Path(path)))

    def reencode(self) -> None:
        """Drop every vector and encode all files again with the current model (after a model change)."""
        self._indexer.submit(Job(JobKind.REENCODE))

    def switch_model(self, choice: str | None) -> None:
        """Re-encode the index with another model (a folder or hub name; None: the default order) in the
        background, then switch to it; searches use the current model until then."""
        self._indexer.submit(Job(JobKind.SWITCH_MODEL, model=choice))

    def _on_model_switched(self, info, choice) -> None:
        if self._stopped:
            return
        self.config = replace(self.config, model=choice)
        self._searcher.reload(self.config)
        self.model_switched.emit(info)

    @property
    def model_choice(self) -> str | None:
        return self.store.model_choice()

    # ------------------------------------------------------------------ folders
    def folders(self) -> list[Path]:
        return self.store.folders()

    def add_folder(self, path: Path | str) -> Path:
        """Watch a folder and index it; raises ``ValueError`` with a message for the user."""
        folder = normal_folder(path)
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder.")
        data = self.config.data_dir.absolute()
        if data == folder or folder in data.parents:
            raise ValueError(f"{folder} contains Findling's own data folder; pick a folder inside it.")
        self.store.add_folder(folder)
        self.folders_changed.emit()
        if self._index_started:  # otherwise the start-up sync picks it up
            self._indexer.submit(Job(JobKind.SYNC))
        return folder

    def remove_folder(self, path: Path) -> None:
        """Stop watching a folder; its files leave the index (in the background)."""
        self._indexer.submit(Job(JobKind.REMOVE_FOLDER, path=Path(path)))

    def exclude_folder(self, folder: Path) -> str | None:
        """Stop indexing ``folder`` (inside a watched folder) with an exclude pattern kept in the index.

        Returns the pattern, or None when ``folder`` is a watched folder itself (or outside them all).
        """
        pattern = folder_pattern(Path(folder), self.folders())
        if pattern is None:
            return None
        add_patterns(self.store, [pattern])
        self.exclusions_changed.emit()
        self._indexer.submit(Job(JobKind.PRUNE, path=Path(folder)))
        return pattern

    # ------------------------------------------------------------------ exclusions
    def exclude_patterns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the built-in patterns, the user's own), as in effect."""
        builtin = tuple(self.config.exclude_patterns)
        return builtin, tuple(p for p in effective_patterns(self.config, self.store) if p not in builtin)

    def add_exclude(self, pattern: str) -> str:
        """Add one of the user's patterns (``ValueError`` with a message when it cannot work); the files it
        hides leave the index in the background."""
        new = add_patterns(self.store, [pattern])
        self._patterns_changed()
        return new[0] if new else pattern.strip()

    def remove_exclude(self, pattern: str) -> None:
        if remove_patterns(self.store, [pattern]):
            self._patterns_changed()

    def _patterns_changed(self) -> None:
        self.exclusions_changed.emit()
        if self._index_started:  # a sync drops newly hidden files and picks up newly shown ones
            self._indexer.submit(Job(JobKind.SYNC))

    def file_state(self, path: Path | str) -> FileState | None:
        return self.store.file_state(Path(path).absolute())

    def why_not_indexed(self, path: Path | str) -> str | None:
        """None when ``path`` would be indexed, else why not (in words)."""
        return why_not_indexed(Path(path), store=self.store, config=self.config)

    def folder_summaries(self) -> list[FolderSummary]:
        out = []
        for folder in self.folders():
            counts = Counter(state.status for state in self.store.file_states(folder).values())
            out.append(FolderSummary(folder, indexed=counts.pop("indexed", 0), failed=counts.pop("failed", 0),
                                     skipped=counts.pop("skipped", 0), other=sum(counts.values())))
        return out

    def problems(self) -> list[FileState]:
        return self.store.problems()

    def stats(self) -> dict:
        return self.store.stats()
