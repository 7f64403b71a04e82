"""The indexer as a long-running service: jobs in, events out; what the app's child indexer process runs.

``IndexService`` keeps one index in step with its watched folders. It syncs, starts the watcher and then
applies the jobs that arrive (``Job``: watcher changes, a re-index, a folder removed, a re-encode, a model
switch), one at a time, on the thread that calls ``run``. Pause, resume and cancel act on the running job
at once, from any thread. Everything it has to say goes out through ``emit(event)`` as a plain dict that
``json.dumps`` can write (``Event`` names the kinds), so the same service runs in-process or behind
``findling index --watch --progress json --control``, where ``serve_stdio`` reads commands as JSON lines
on standard input and writes the events as JSON lines on standard output.

Protocol (one JSON object per line):

* in: ``{"job": KIND, "path": ..., "model": ...}`` queues a job (``JobKind``);
  ``{"control": "pause" | "resume" | "cancel" | "stop"}`` acts at once. End of input means stop: a child
  whose parent has gone ends by itself.
* out: ``{"event": EVENT, ...}``; ``progress``/``finished`` carry ``progress`` (``progress_json``),
  ``file_failed`` carries ``path`` and ``reason``, ``job_done`` the count of jobs done so far (after every
  event of those jobs), ``ready`` and ``model_switched`` carry ``model`` (``ModelInfo`` fields).

Consistency does not depend on the service ending well: every file is written in its own transaction and a
killed service leaves the index as of its last finished file; the next sync picks up the rest.
"""
from __future__ import annotations

import json
import logging
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from enum import Enum
from pathlib import Path
from typing import IO

from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder, ModelInfo
from findling.engine.errors import FindlingError, ModelMismatch
from findling.engine.extract import is_supported
from findling.engine.index.indexer import CancelToken, Indexer, Progress
from findling.engine.index.reencode import reencode_beside, swap_in
from findling.engine.records import ChangeKind, FileChange, Phase
from findling.engine.sources.exclusions import effective_patterns
from findling.engine.sources.watcher import Watcher
from findling.engine.store.store import Store

log = logging.getLogger(__name__)

EncoderFactory = Callable[[Config], Encoder]


CHILD_ARGS: tuple[str, ...] = ("-m", "findling.cli", "index", "--watch", "--progress", "json", "--control",
                                "--background")
"""Interpreter arguments that run this service as a background child speaking the protocol above (the app's
indexer; ``bench/search.py`` starts the same)."""


class JobKind(str, Enum):
    """What a job does."""

    SYNC = "sync"  # bring the index in step with the watched folders (and (re)start the watcher)
    APPLY = "apply"  # apply watcher changes
    REINDEX = "reindex"  # read and encode one file again
    REMOVE_FOLDER = "remove_folder"  # stop watching a folder; its files leave the index
    PRUNE = "prune"  # drop a folder that a new exclude pattern hides
    REENCODE = "reencode"  # drop every vector and encode all files again
    SWITCH_MODEL = "switch_model"  # re-encode beside the index with another model, then swap


class Control(str, Enum):
    """Commands that act at once rather than wait their turn."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"  # the running job stops; the next one starts as usual
    STOP = "stop"  # the service ends after the running job's current file


class Event(str, Enum):
    """The kinds of events the service emits."""

    READY = "ready"
    PROGRESS = "progress"
    FINISHED = "finished"
    FILE_FAILED = "file_failed"
    FAILED = "failed"
    MISMATCH = "mismatch"
    FOLDERS_CHANGED = "folders_changed"
    MODEL_SWITCHED = "model_switched"
    JOB_DONE = "job_done"


@dataclass(frozen=True)
class Job:
    """One unit of work."""

    kind: JobKind
    changes: tuple[FileChange, ...] = ()
    path: Path | None = None
    model: str | None = None  # SWITCH_MODEL: the folder or name chosen, None for the default order

    def to_json(self) -> dict:
        out: dict = {"job": self.kind.value}
        if self.path is not None:
            out["path"] = str(self.path)
        if self.kind is JobKind.SWITCH_MODEL:
            out["model"] = self.model
        if self.changes:
            out["changes"] = [[c.kind.value, str(c.path), str(c.old_path) if c.old_path else None]
                              for c in self.changes]
        return out

    @classmethod
    def from_json(cls, data: dict) -> "Job":
        """The job ``data`` describes; ``ValueError`` for an unknown kind or malformed fields."""
        kind = JobKind(data["job"])
        path = Path(data["path"]) if data.get("path") else None
        changes = tuple(FileChange(ChangeKind(k), Path(p), Path(o) if o else None)
                        for k, p, o in data.get("changes", ()))
        return cls(kind, changes=changes, path=path, model=data.get("model"))


def progress_json(p: Progress) -> dict:
    """``p`` as JSON-ready fields; its error list is left out (each error goes out once, as ``file_failed``)."""
    out = {f.name: getattr(p, f.name) for f in fields(p) if f.name != "errors"}
    out["current"] = str(p.current) if p.current is not None else None
    return out


def progress_from_json(data: dict) -> Progress:
    known = {f.name for f in fields(Progress)} - {"errors"}
    values = {k: v for k, v in data.items() if k in known}
    if values.get("current") is not None:
        values["current"] = Path(values["current"])
    if "phase" in values:
        values["phase"] = Phase(values["phase"])
    return Progress(**values)


def model_json(info: ModelInfo) -> dict:
    return asdict(info)


def model_from_json(data: dict) -> ModelInfo:
    known = {f.name for f in fields(ModelInfo)}
    return ModelInfo(**{k: v for k, v in data.items() if k in known})


class IndexService:
    """Keeps one index in step with its watched folders; see the module docstring."""

    def __init__(self, config: Config, encoder_factory: EncoderFactory, emit: Callable[[dict], None], *,
                 paused: bool = False) -> None:
        self.config = config
        self._factory = encoder_factory
        self._emit_raw = emit
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._stop = threading.Event()
        self._paused = paused
        self._token = CancelToken()
        self._jobs_done = 0
        self._store: Store | None = None
        self._indexer: Indexer | None = None
        self._watcher: Watcher | None = None
        self.encoder: Encoder | None = None

    # ------------------------------------------------------------ from any thread
    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def control(self, command: Control) -> None:
        if command is Control.PAUSE:
            self._paused = True
            self._token.pause()
        elif command is Control.RESUME:
            self._paused = False
            self._token.resume()
        elif command is Control.CANCEL:
            self._token.cancel()
        elif command is Control.STOP:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._token.cancel()
        self._jobs.put(None)  # wakes the loop

    def _emit(self, event: Event, **fields_) -> None:
        self._emit_raw({"event": event.value, **fields_})

    # ------------------------------------------------------------ on the service's thread
    def run(self) -> int:
        """Open the index, load the model and apply jobs until ``stop``; 0 when it stopped as asked, 1 when it
        could not go on (the reason went out as a ``failed`` event)."""
        try:
            self._store = Store(self.config.db_path)
            self._store.lock_for_writing()
            self.encoder = self._factory(self.config)
            self._emit(Event.READY, model=model_json(self.encoder.info))
            self._make_indexer()
            self._loop()
            return 0
        except FindlingError as exc:
            log.warning("indexing stopped: %s", exc)
            self._emit(Event.FAILED, message=str(exc), fatal=True)
            return 1
        except Exception as exc:  # a bug: say so and end; the parent decides whether to start another
            log.exception("the indexer crashed")
            self._emit(Event.FAILED, message=f"Indexing stopped after an unexpected error: {exc}", fatal=True)
            return 1
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
            if job is None:
                break
            merged = 1
            if job.kind is JobKind.APPLY:  # coalesce a burst of watcher batches into one job
                job, merged = self._merge_applies(job)
            try:
                self._handle(job)
            except FindlingError as exc:  # one failed job (a locked or damaged index) must not stop the service
                log.warning("indexing job %s failed: %s", job.kind.value, exc)
                self._emit(Event.FAILED, message=f"Indexing failed: {exc}", fatal=False)
            except Exception as exc:
                log.exception("indexing job %s failed", job.kind.value)
                self._emit(Event.FAILED, message=f"Indexing failed: {exc}", fatal=False)
            finally:
                self._jobs_done += merged
                self._emit(Event.JOB_DONE, jobs=self._jobs_done)

    def _merge_applies(self, job: Job) -> tuple[Job, int]:
        """``job`` with the changes of the apply jobs queued right behind it; and how many jobs that is."""
        changes = list(job.changes)
        merged = 1
        with self._jobs.mutex:  # peek without reordering: only leading apply jobs are taken
            waiting = self._jobs.queue
            while waiting and waiting[0] is not None and waiting[0].kind is JobKind.APPLY:
                changes += waiting.popleft().changes
                merged += 1
        return replace(job, changes=tuple(changes)), merged

    def _make_indexer(self) -> bool:
        try:
            self._indexer = Indexer(self._store, self.encoder, config=self.config)
            return True
        except ModelMismatch as exc:
            self._indexer = None
            self._emit(Event.MISMATCH, message=str(exc))
            return False

    def _handle(self, job: Job) -> None:
        store = self._store
        kind = job.kind
        if kind is JobKind.REENCODE:
            store.reset_vectors()
            if self._make_indexer():
                self._run(self._indexer.sync)
            return
        if kind is JobKind.REMOVE_FOLDER and job.path is not None:
            store.remove_folder(job.path)
            self._restart_watcher()
            self._emit(Event.FOLDERS_CHANGED)
            return
        if kind is JobKind.PRUNE and job.path is not None:
            store.delete_files([job.path])
            self._restart_watcher()
            self._emit(Event.FOLDERS_CHANGED)
            return
        if kind is JobKind.SWITCH_MODEL:
            self._switch(job.model)
            return
        if self._indexer is None:  # waiting for a re-encode after a model mismatch
            return
        if kind is JobKind.SYNC:
            self._restart_watcher()
            self._run(self._indexer.sync)
        elif kind is JobKind.APPLY:
            self._run(lambda cancel: self._indexer.apply(list(job.changes), cancel=cancel))
        elif kind is JobKind.REINDEX and job.path is not None:
            store.delete_files([job.path])  # forget it, so unchanged content is read and encoded again
            self._run(lambda cancel: self._indexer.apply([FileChange(ChangeKind.ADDED, job.path)], cancel=cancel))

    def _switch(self, choice: str | None) -> None:
        """Re-encode beside the index (searches go on against it meanwhile), then swap it in."""
        config = replace(self.config, model=choice)
        encoder = self._factory(config)
        last = self._run(lambda cancel: reencode_beside(self._store, encoder, config=self.config, cancel=cancel),
                         finish=False)
        if last.phase != "re-encoding" or self._stop.is_set():
            return  # cancelled: the file beside the index stays, and the next switch resumes it
        self._emit(Event.PROGRESS, progress=progress_json(replace(last, phase=Phase.SWAPPING)))
        try:
            swap_in(self._store, choice=choice)
        except BaseException:
            self._emit(Event.FINISHED, progress=progress_json(replace(last, phase=Phase.FAILED)))
            raise
        self._emit(Event.FINISHED, progress=progress_json(replace(last, phase=Phase.DONE)))
        self.config, self.encoder = config, encoder
        self._make_indexer()
        self._restart_watcher()
        self._emit(Event.MODEL_SWITCHED, model=model_json(encoder.info), choice=choice)

    def _run(self, make_job: Callable[..., object], *, finish: bool = True) -> Progress:
        """Drive one indexer generator to its end, relaying progress and problems; returns the last progress.
        ``finished`` goes out at the end, or with ``finish=False`` only when the job was cancelled or failed."""
        self._token = CancelToken()
        if self._paused:
            self._token.pause()
        if self._stop.is_set():
            self._token.cancel()
        reported = 0
        last = Progress(Phase.DONE)
        try:
            for last in make_job(cancel=self._token):
                problems = last.failed + last.skipped
                if problems > reported:
                    for path, reason in last.errors[-(problems - reported):]:
                        self._emit(Event.FILE_FAILED, path=str(path), reason=reason)
                    reported = problems
                self._emit(Event.PROGRESS, progress=progress_json(last))
        except BaseException:
            last = replace(last, phase=Phase.FAILED)
            raise
        finally:
            if finish or last.phase in (Phase.CANCELLED, Phase.FAILED):
                self._emit(Event.FINISHED, progress=progress_json(last))
        return last

    # ------------------------------------------------------------ watching
    def _start_watcher(self) -> None:
        folders = self._store.folders()
        if not folders:
            return
        try:
            patterns = effective_patterns(self.config, self._store)
            self._watcher = Watcher(folders, on_changes=self._on_changes, patterns=patterns,
                                    debounce_seconds=self.config.debounce_seconds, accept=is_supported)
            self._watcher.start()
        except Exception:  # e.g. the system's limit on watches: indexing still works, only live updates stop
            log.exception("could not watch %s", ", ".join(map(str, folders)))
            self._watcher = None

    def _on_changes(self, changes: list[FileChange]) -> None:  # on the watcher's thread: queue only
        if changes:
            self.submit(Job(JobKind.APPLY, changes=tuple(changes)))

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


# ---------------------------------------------------------------- standard input and output
def serve_stdio(service: IndexService, *, stdin: IO[str] | None = None) -> int:
    """Feed ``service`` the commands read from ``stdin`` (a thread of its own) and run it on this thread;
    end of input stops it. Its events must already go to standard output (``json_lines``)."""
    stdin = stdin or sys.stdin

    def read() -> None:
        try:
            for line in stdin:
                line = line.strip()
                if not line:
                    continue
                try:
                    data = json.loads(line)
                    if "control" in data:
                        service.control(Control(data["control"]))
                    else:
                        service.submit(Job.from_json(data))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("ignored a command the indexer does not understand: %r (%s)", line[:200], exc)
        finally:
            service.stop()

    threading.Thread(target=read, name="findling-commands", daemon=True).start()
    return service.run()


def json_lines(out: IO[str] | None = None) -> Callable[[dict], None]:
    """An ``emit`` that writes each event as one JSON line on ``out`` (standard output), flushed at once."""
    out = out or sys.stdout
    lock = threading.Lock()

    def emit(event: dict) -> None:
        line = json.dumps(event, ensure_ascii=False)
        with lock:
            try:
                out.write(line + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):  # the parent has gone: the end of input stops the service
                pass

    return emit
