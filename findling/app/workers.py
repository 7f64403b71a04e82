"""The indexing worker, and what both workers share (``load_model``, ``MODEL_LOCK``).

Each worker has its own encoder: the engine's tokenizer is not safe to use from two threads at once (the
Hugging Face fast tokenizer raises "Already borrowed"), and a search must not wait behind an encoding
batch. The search worker loads its model first; the indexing worker loads its own after that. Loading a
model is not thread-safe in transformers (it changes process-wide torch settings for a moment), so loads
and searches hold ``MODEL_LOCK``; encoding documents does not, so indexing and searching overlap.

Each worker runs as one long call, a plain loop over a thread-safe queue inside the slot connected to
``QThread.started``, instead of many queued slot calls. With PySide 6.12 and torch, a model first used in
the ``started`` slot and used again in a later queued slot call crashed the process (a segfault in
``Module.to``; the Python thread state of the first call is gone by the second). One loop per thread
keeps one thread state for the thread's whole life.

``IndexWorker`` is long-lived: it runs a sync of every watched folder, starts the
watcher and then applies whatever jobs arrive (watcher changes, a re-index, a folder added or removed),
one at a time, from a thread-safe queue. It runs a plain loop instead of a Qt event loop, so pause,
resume and cancel go straight to the ``CancelToken`` and never wait behind a running job.

It reports through Qt signals only; the window never touches its store.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from findling.engine import (
    CancelToken,
    ChangeKind,
    Config,
    Encoder,
    FileChange,
    FindlingError,
    Indexer,
    ModelMismatch,
    Progress,
    SUPPORTED_SUFFIXES,
    Store,
    Watcher,
    effective_patterns,
    reencode_beside,
    swap_in,
)
from findling.engine.threads import lower_thread_priority, torch_threads

log = logging.getLogger(__name__)

EncoderFactory = Callable[[Config], Encoder]


@dataclass(frozen=True)
class Job:
    """One unit of work for the indexing worker."""

    kind: str  # "sync" | "apply" | "reindex" | "remove_folder" | "prune" | "reencode" | "switch_model" | "stop"
    changes: tuple[FileChange, ...] = ()
    path: Path | None = None
    model: str | None = None  # for "switch_model": the folder or name chosen, None for the default order


@dataclass
class _Seen:
    problems: int = 0  # failed + skipped already reported for the running job


MODEL_LOCK = threading.Lock()
"""Held while a model loads and while a search runs (see the module docstring)."""


def load_model(factory: EncoderFactory, config: Config) -> Encoder:
    """The encoder from ``factory``, with its network loaded (factories may load lazily, on first use).

    The warm-up is a query, run on one torch thread as the searcher runs queries: a worker thread that ran torch
    on more would keep a team of OpenMP workers of its own, and with two teams in the process the indexing
    encoder's workers stop spinning between operations (``findling.engine.encode.pylate_encoder``)."""
    with MODEL_LOCK:
        encoder = factory(config)
        with torch_threads(1):
            encoder.encode_queries(["warm up"])
    return encoder


class IndexWorker(QObject):
    """Keeps the index in step with the watched folders; see the module docstring."""

    failed = Signal(str)  # the worker cannot go on (model or store error); the message is for the user
    mismatch = Signal(str)  # the index was built with another model: offer a re-encode
    progress = Signal(object)  # Progress
    file_failed = Signal(str, str)  # path, reason (failed or skipped)
    finished = Signal(object)  # the last Progress of a job ("done" or "cancelled")
    folders_changed = Signal()
    model_switched = Signal(object)  # ModelInfo of the model the index now uses
    drained = Signal(int)  # the worker ran out of jobs for the n-th time; emitted after every signal of them

    def __init__(self, config: Config, encoder_factory: EncoderFactory, *, paused: bool = False) -> None:
        super().__init__()
        self.config = config
        self._factory = encoder_factory
        self.encoder: Encoder | None = None
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._outstanding = 0  # jobs submitted and not yet done
        self._drains = 0  # how many times the outstanding count fell to zero
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = paused
        self._token = CancelToken()
        self._store: Store | None = None
        self._indexer: Indexer | None = None
        self._watcher = None
        self.on_swap: Callable[[Config], None] | None = None
        """Called on this thread, holding ``MODEL_LOCK``, right after a model switch is swapped in."""

    # ------------------------------------------------------------ from any thread
    def submit(self, job: Job) -> None:
        with self._count_lock:
            self._outstanding += 1
        self._jobs.put(job)

    @property
    def idle(self) -> bool:
        """True when no job is waiting or running."""
        with self._count_lock:
            return self._outstanding == 0

    @property
    def drains(self) -> int:
        """How many times the worker has run out of jobs (``drained`` carries the same count)."""
        with self._count_lock:
            return self._drains

    def _done(self, n: int = 1) -> None:
        with self._count_lock:
            self._outstanding -= n
            drained = self._outstanding == 0
            if drained:
                self._drains += 1
                count = self._drains
        if drained:
            self.drained.emit(count)

    def pause(self) -> None:
        self._paused = True
        self._token.pause()

    def resume(self) -> None:
        self._paused = False
        self._token.resume()

    def cancel(self) -> None:
        """Stop the running job (the next one starts as usual)."""
        self._token.cancel()

    def stop(self) -> None:
        self._stop.set()
        self._token.cancel()
        self._jobs.put(Job("stop"))  # not counted: it only wakes the loop

    @property
    def paused(self) -> bool:
        return self._paused

    # ------------------------------------------------------------ on the worker thread
    @Slot()
    def run(self) -> None:
        try:
            # first: the threads torch starts for this one when it loads the model inherit the lower priority
            lower_thread_priority(self.config.indexing_nice)
            self._store = Store(self.config.db_path)
            self.encoder = load_model(self._factory, self.config)
            self._make_indexer()
            self._loop()  # the first job, a sync, starts the watcher
        except FindlingError as exc:
            log.warning("indexing stopped: %s", exc)
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must not take the window down with it
            log.exception("indexing worker crashed")
            self.failed.emit(f"Indexing stopped after an unexpected error: {exc}")
        finally:
            self._stop_watcher()
            if self._store is not None:
                self._store.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            if job.kind == "stop":
                break
            merged = 1
            if job.kind == "apply":  # coalesce a burst of watcher batches into one job
                job, merged = self._merge_applies(job)
            try:
                self._handle(job)
            except Exception as exc:  # one failed job (a locked or damaged index) must not stop the worker
                log.exception("indexing job %s failed", job.kind)
                self.failed.emit(f"Indexing failed: {exc}")
            finally:
                self._done(merged)

    def _merge_applies(self, job: Job) -> tuple[Job, int]:
        """``job`` with the changes of the apply jobs queued right behind it; and how many jobs that is."""
        changes = list(job.changes)
        merged = 1
        with self._jobs.mutex:  # peek without reordering: only leading apply jobs are taken
            waiting = self._jobs.queue
            while waiting and waiting[0].kind == "apply":
                changes += waiting.popleft().changes
                merged += 1
        return replace(job, changes=tuple(changes)), merged

    def _make_indexer(self) -> bool:
        try:
            self._indexer = Indexer(self._store, self.encoder, config=self.config)
            return True
        except ModelMismatch as exc:
            self._indexer = None
            self.mismatch.emit(str(exc))
            return False

    def _handle(self, job: Job) -> None:
        store = self._store
        if job.kind == "reencode":
            store.reset_vectors()
            if self._make_indexer():
                self._run(self._indexer.sync)
            return
        if job.kind == "remove_folder" and job.path is not None:
            store.remove_folder(job.path)
            self._restart_watcher()
            self.folders_changed.emit()
            return
        if job.kind == "prune" and job.path is not None:
            self._prune(job.path)
            return
        if job.kind == "switch_model":
            self._switch(job.model)
            return
        if self._indexer is None:  # waiting for a re-encode after a model mismatch
            return
        if job.kind == "sync":
            self._restart_watcher()
            self._run(self._indexer.sync)
        elif job.kind == "apply":
            self._run(lambda cancel: self._indexer.apply(list(job.changes), cancel=cancel))
        elif job.kind == "reindex" and job.path is not None:
            store.delete_files([job.path])  # forget it, so unchanged content is read and encoded again
            self._run(lambda cancel: self._indexer.apply([FileChange(ChangeKind.ADDED, job.path)], cancel=cancel))

    def _prune(self, folder: Path) -> None:
        """Drop a folder that a new exclude pattern hides from the index at once, and watch with the pattern."""
        self._store.delete_files([folder])
        self._restart_watcher()
        self.folders_changed.emit()

    def _switch(self, choice: str | None) -> None:
        """Re-encode beside the index while searches go on, then swap and hand the search thread the news."""
        config = replace(self.config, model=choice)
        encoder = load_model(self._factory, config)
        last = self._run(lambda cancel: reencode_beside(self._store, encoder, config=self.config, cancel=cancel),
                         finish=False)
        if last.phase != "re-encoding" or self._stop.is_set():
            return  # cancelled: the file beside the index stays, and the next switch resumes it
        self.progress.emit(replace(last, phase="swapping"))
        try:
            with MODEL_LOCK:  # no search runs across the swap
                swap_in(self._store, choice=choice)
                if self.on_swap is not None:
                    self.on_swap(config)
        except BaseException:
            self.finished.emit(replace(last, phase="failed"))
            raise
        self.finished.emit(replace(last, phase="done"))
        self.config, self.encoder = config, encoder
        self._make_indexer()
        self._restart_watcher()
        self.model_switched.emit(encoder.info)

    def _run(self, make_job: Callable[..., object], *, finish: bool = True) -> Progress:
        """Drive one indexer generator to its end, relaying progress and problems; returns the last progress.

        ``finished`` is emitted at the end, or with ``finish=False`` only when the job was cancelled or
        failed (the caller has more to do and emits it itself).
        """
        self._token = CancelToken()
        if self._paused:
            self._token.pause()
        seen = _Seen()
        last = Progress("done")
        try:
            for last in make_job(cancel=self._token):
                self._report_problems(last, seen)
                self.progress.emit(last)
                if self._stop.is_set():
                    break
        except BaseException:
            last = replace(last, phase="failed")
            raise
        finally:
            if finish or last.phase in ("cancelled", "failed"):
                self.finished.emit(last)
        return last

    def _report_problems(self, p: Progress, seen: _Seen) -> None:
        new = p.failed + p.skipped - seen.problems
        if new <= 0:
            return
        seen.problems = p.failed + p.skipped
        for path, reason in p.errors[-new:]:
            self.file_failed.emit(str(path), reason)

    # ------------------------------------------------------------ watching
    def _start_watcher(self) -> None:
        folders = self._store.folders()
        if not folders:
            return
        try:
            patterns = effective_patterns(self.config, self._store)
            self._watcher = Watcher(folders, on_changes=self._on_changes, patterns=patterns,
                                    debounce_seconds=self.config.debounce_seconds, suffixes=SUPPORTED_SUFFIXES)
            self._watcher.start()
        except Exception:  # e.g. the system's limit on watches: indexing still works, only live updates stop
            log.exception("could not watch %s", ", ".join(map(str, folders)))
            self._watcher = None

    def _on_changes(self, changes: list[FileChange]) -> None:  # on the watcher's thread: queue only
        if changes:
            self.submit(Job("apply", changes=tuple(changes)))

    def _stop_watcher(self) -> None:
        if self._watcher is not None:
            try:
                self._watcher.stop()
            except Exception:
                log.exception("stopping the watcher failed")
            self._watcher = None

    def _restart_watcher(self) -> None:
        self._stop_watcher()
        self._start_watcher()
