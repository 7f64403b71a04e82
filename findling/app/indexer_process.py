"""The app's indexer: a child process (``findling index --watch --progress json --control --background``).

The child runs ``findling.engine.index.service`` at the lowest CPU and I/O priority the platform offers; the
window's process only searches. This class starts it with ``QProcess``, turns its JSON-line events into Qt
signals on the GUI thread and writes jobs and controls (pause, resume, cancel, stop) to its standard input.
Its standard error goes to ``logs/indexer.log`` in the data folder.

If the child ends without being asked to (a crash, a runaway extractor killed by the system, ``kill -9``),
``crashed`` says so and a new child starts and syncs, which brings the index in step again (every file is
written in its own transaction, so the index holds every file finished before the end). At most
``MAX_RESTARTS`` restarts within ``RESTART_WINDOW_S``; then ``failed`` says that indexing stopped.

Bookkeeping for ``idle``: the child counts the jobs it has done and reports the count after every event of
those jobs, so ``idle`` is true exactly when every job sent has been done and its signals delivered.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from findling.engine import CHILD_ARGS, Config, Control, Event, Job, JobKind, model_from_json, progress_from_json

log = logging.getLogger(__name__)

MAX_RESTARTS = 3
RESTART_WINDOW_S = 120.0
STOP_WAIT_MS = 30_000


class IndexerProcess(QObject):
    """The child indexer; every method is called on the GUI thread."""

    ready = Signal(object)  # ModelInfo of the child's model
    failed = Signal(str)  # indexing cannot go on (model or store error, or too many crashes); for the user
    mismatch = Signal(str)  # the index was built with another model: offer a re-encode
    progress = Signal(object)  # Progress
    file_failed = Signal(str, str)  # path, reason (failed or skipped)
    finished = Signal(object)  # the last Progress of a job ("done", "cancelled" or "failed")
    folders_changed = Signal()
    model_switched = Signal(object, object)  # ModelInfo the index now uses, the choice (None: default order)
    crashed = Signal(str)  # the child ended unasked; a new one is starting (the message is for the user)

    def __init__(self, config: Config, *, encoder_factory: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self._factory_spec = encoder_factory
        self._process: QProcess | None = None
        self._buffer = b""
        self._sent = 0  # jobs sent to the current child
        self._done = 0  # jobs it reported done
        self._paused = False
        self._stopping = False
        self._gave_up = False
        self._restarts: list[float] = []
        self.pid: int | None = None

    # ------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Start the child and have it sync (returns at once)."""
        self._stopping = False
        self._spawn()
        self.submit(Job(JobKind.SYNC))

    def _spawn(self) -> None:
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("FINDLING_CONFIG", self.config.to_json())
        env.insert("HF_HUB_OFFLINE", "1")
        env.insert("TRANSFORMERS_OFFLINE", "1")
        env.insert("PYTHONPATH", os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
        process.setProcessEnvironment(env)
        logs = self.config.data_dir / "logs"
        try:
            logs.mkdir(parents=True, exist_ok=True)
            process.setStandardErrorFile(str(logs / "indexer.log"), QProcess.OpenModeFlag.Append)
        except OSError as exc:
            log.warning("no indexer log: %s", exc)
        process.readyReadStandardOutput.connect(self._read)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        args = list(CHILD_ARGS)
        if self._factory_spec:
            args += ["--encoder-factory", self._factory_spec]
        self._process, self._buffer, self._sent, self._done = process, b"", 0, 0
        process.start(sys.executable, args)
        self.pid = process.processId() or None
        if self._paused:
            self._write({"control": Control.PAUSE.value})

    def stop(self) -> None:
        """Ask the child to stop, wait for it (killing it after ``STOP_WAIT_MS``); safe to call twice."""
        self._stopping = True
        process = self._process
        if process is None or process.state() == QProcess.ProcessState.NotRunning:
            return
        self._write({"control": Control.STOP.value})
        process.closeWriteChannel()
        if not process.waitForFinished(STOP_WAIT_MS):
            log.error("the indexer did not stop in time; killing it")
            process.kill()
            process.waitForFinished(5_000)
        self._read()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    # ------------------------------------------------------------ jobs and controls
    def submit(self, job: Job) -> None:
        if self._gave_up or self._process is None:
            return
        self._sent += 1
        self._write(job.to_json())

    def pause(self) -> None:
        self._paused = True
        self._write({"control": Control.PAUSE.value})

    def resume(self) -> None:
        self._paused = False
        self._write({"control": Control.RESUME.value})

    def cancel(self) -> None:
        self._write({"control": Control.CANCEL.value})

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def idle(self) -> bool:
        """Every job sent to the child is done and its signals were delivered (or the child is gone for good)."""
        return self._gave_up or self._done >= self._sent

    def _write(self, data: dict) -> None:
        process = self._process
        if process is not None and process.state() != QProcess.ProcessState.NotRunning:
            process.write((json.dumps(data) + "\n").encode())

    # ------------------------------------------------------------ from the child
    def _read(self) -> None:
        process = self._process
        if process is None:
            return
        self._buffer += bytes(process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("indexer said something that is not an event: %r", line[:200])
                continue
            try:
                self._dispatch(event)
            except (KeyError, TypeError, ValueError):
                log.exception("malformed indexer event %r", line[:200])

    def _dispatch(self, event: dict) -> None:
        kind = Event(event["event"])
        if kind is Event.PROGRESS:
            self.progress.emit(progress_from_json(event["progress"]))
        elif kind is Event.FINISHED:
            self.finished.emit(progress_from_json(event["progress"]))
        elif kind is Event.FILE_FAILED:
            self.file_failed.emit(event["path"], event["reason"])
        elif kind is Event.JOB_DONE:
            self._done = int(event["jobs"])
        elif kind is Event.READY:
            self.ready.emit(model_from_json(event["model"]))
        elif kind is Event.FAILED:
            if event.get("fatal"):
                self._gave_up = True  # the child ends next; starting another would fail the same way
            self.failed.emit(event["message"])
        elif kind is Event.MISMATCH:
            self.mismatch.emit(event["message"])
        elif kind is Event.FOLDERS_CHANGED:
            self.folders_changed.emit()
        elif kind is Event.MODEL_SWITCHED:
            info = model_from_json(event["model"])
            self.config = replace(self.config, model=event.get("choice"))
            self.model_switched.emit(info, event.get("choice"))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._gave_up = True
            self.failed.emit(f"The indexer could not start ({sys.executable} -m findling.cli): "
                             f"{self._process.errorString() if self._process else error}")

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read()
        if self._stopping or self._gave_up:
            return
        how = "crashed" if status == QProcess.ExitStatus.CrashExit else f"ended with status {code}"
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S] + [now]
        if len(self._restarts) > MAX_RESTARTS:
            self._gave_up = True
            self.failed.emit(f"The indexer {how} {MAX_RESTARTS + 1} times in a row and was not restarted; "
                             f"searching still works. See {self.config.data_dir / 'logs' / 'indexer.log'}.")
            return
        log.warning("the indexer %s; starting it again", how)
        from findling.engine import Progress

        self.finished.emit(Progress("failed"))  # the job it was running ends here; the new child syncs
        self.crashed.emit(f"The indexer {how}; it was restarted and is catching up.")
        self._spawn()
        self.submit(Job(JobKind.SYNC))


def log_path(config: Config) -> Path:
    """Where the child indexer's messages go."""
    return config.data_dir / "logs" / "indexer.log"
