"""Live watching: watchdog events become ``FileChange`` records, coalesced per path, handed over in batches.

The event handler translates each watchdog event at once (created -> ADDED, modified or closed after
writing -> MODIFIED, deleted -> DELETED, moved -> MOVED), drops excluded paths, files of types not read
(``accept``: the indexer passes ``findling.engine.extract.is_supported``, which knows files by suffix, by
name such as ``Makefile``, and Thunderbird mail folders by the index beside them; a deleted mail folder leaves
the index at the next sync, as nothing is left to recognise it by) and folder-level "modified" events, and hands the changes to a ``Debouncer``. A single background thread flushes each path once it has
been quiet for ``debounce_seconds`` and calls ``on_changes`` with a batch (the coalescing rules are on
``Debouncer``). Moves are judged by the paths involved: a file moved in from outside the watched folders is
ADDED (watchdog reports it as created), one moved in from an excluded name (an editor's temp file) is
MODIFIED since it may replace an indexed file, and a file moved out or to an excluded name is DELETED.
Attribute-only events (``touch``, ``chmod``) are ignored.

Folders: a created folder is walked and yields ADDED for its files; a moved folder is walked at its new
place and yields one MOVED per file (old paths mapped), then DELETED for the old folder to drop whatever
the walk did not find there; a deleted folder yields a single DELETED for the folder path.

How to apply a batch (the contract with the consumer):

- apply the changes in list order;
- DELETED ``p`` removes ``p`` *and everything below it* (a folder's files get no events of their own);
- MOVED ``old_path -> path`` carries the index entry of ``old_path`` over to ``path``, replacing whatever
  was at ``path``; if ``old_path`` has no entry, index ``path`` as new;
- ADDED and MODIFIED both mean "(re-)index ``path`` from disk"; a file gone by then counts as deleted.

watchdog's own synthetic events for the contents of moved or created folders are ignored (the walk covers
them and honours the exclude patterns). Folder symlinks inside a watched folder are not watched.
"""
from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from findling.engine.errors import FindlingError
from findling.engine.records import ChangeKind, FileChange
from findling.engine.sources.walk import is_excluded, iter_files

logger = logging.getLogger(__name__)

ADDED, MODIFIED, DELETED, MOVED = ChangeKind.ADDED, ChangeKind.MODIFIED, ChangeKind.DELETED, ChangeKind.MOVED


# ----------------------------------------------------------------------------------------------- debouncer


@dataclass(frozen=True)
class _Pending:
    change: FileChange  # its ``path`` is the key it is pending under
    recheck: bool  # a MOVED whose content changed too: flushed as MOVED then MODIFIED
    seq: int  # order of the last update; a batch is sorted by it
    due: float  # monotonic time at which the path has been quiet long enough


def _below(path: Path, folder: Path) -> bool:
    return path != folder and path.is_relative_to(folder)


class Debouncer:
    """Coalesces changes per path until each path has been quiet for ``quiet_seconds``. Not thread-safe.

    A path holds at most one pending state. A new change combines with it (``->`` is the result):

    - ADDED + MODIFIED -> ADDED; ADDED + DELETED -> nothing (the file came and went);
    - MODIFIED + MODIFIED -> MODIFIED; MODIFIED + DELETED -> DELETED;
    - DELETED + ADDED or MODIFIED -> MODIFIED (the file was replaced; the index may still hold the old one);
    - MOVED a->b + ADDED or MODIFIED at b -> MOVED a->b, flushed as MOVED a->b followed by MODIFIED b;
    - MOVED a->b + DELETED b -> DELETED a and DELETED b.

    A move a->b takes over what was pending at a:

    - nothing -> MOVED a->b; MODIFIED a -> MOVED a->b plus MODIFIED b; ADDED a -> MODIFIED b (never indexed,
      and b may have existed); DELETED a (a file reappeared unseen) stays, and b gets MODIFIED;
    - MOVED o->a -> MOVED o->b and DELETED a (the first move replaced whatever was at a); if b is o, the
      file went back: nothing for it, or MODIFIED o if its content changed on the way.

    Whatever was pending at b is replaced; if it was MOVED x->b, x's file is gone and DELETED x is added.
    DELETED p also drops what is pending below p (a folder went away; a MOVED x->p/... turns into DELETED x).

    Moves are kept order-safe: while MOVED a->b waits, any new change at a turns it into MODIFIED b (a's
    index entry is about to be replaced, so b is indexed from disk instead), and when DELETED p is flushed,
    moves still waiting whose old path lies below p turn into MODIFIED too.
    """

    def __init__(self, *, quiet_seconds: float) -> None:
        self.quiet_seconds = quiet_seconds
        self._pending: dict[Path, _Pending] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, change: FileChange, *, now: float) -> None:
        """Fold one change (MOVED needs ``old_path``) into the pending state; ``now`` is monotonic time."""
        if change.kind is MOVED and change.old_path is not None:
            self._move(change.old_path, change.path, now)
        elif change.kind is DELETED:
            self._delete(change.path, now)
        elif change.kind is not MOVED:
            self._touch(change.path, change.kind, now)

    def next_due(self) -> float | None:
        """The earliest time a pending path becomes due, or None when nothing is pending."""
        return min((p.due for p in self._pending.values()), default=None)

    def pop_due(self, *, now: float) -> list[FileChange]:
        """Remove and return the changes of every path quiet since ``now - quiet_seconds``, in order."""
        return self._pop([p for p in self._pending.values() if p.due <= now])

    def pop_all(self) -> list[FileChange]:
        """Remove and return every pending change, due or not."""
        return self._pop(list(self._pending.values()))

    # ----------------------------------------------------------------------- rules

    def _put(self, change: FileChange, now: float, *, recheck: bool = False) -> None:
        self._pending[change.path] = _Pending(change, recheck, next(self._counter), now + self.quiet_seconds)
        self._degrade_moves(lambda old: old == change.path, keep=change.path)

    def _degrade_moves(self, hit: Callable[[Path], bool], *, keep: Path | None = None) -> None:
        """Turn waiting moves whose old path ``hit`` accepts into MODIFIED (their source entry is going)."""
        for path, pending in list(self._pending.items()):
            old = pending.change.old_path
            if pending.change.kind is MOVED and path != keep and old is not None and hit(old):
                self._pending[path] = replace(pending, change=FileChange(MODIFIED, path), recheck=False)

    def _touch(self, path: Path, kind: ChangeKind, now: float) -> None:
        prev = self._pending.get(path)
        if prev is not None and prev.change.kind is MOVED:
            self._put(prev.change, now, recheck=True)
        elif prev is not None and prev.change.kind is ADDED:
            self._put(FileChange(ADDED, path), now)
        else:
            self._put(FileChange(kind if prev is None else MODIFIED, path), now)

    def _delete(self, path: Path, now: float) -> None:
        for below in [p for p in self._pending if _below(p, path)]:
            pending = self._pending.pop(below, None)
            old = pending.change.old_path if pending is not None else None
            if pending is not None and pending.change.kind is MOVED and old is not None and not _below(old, path):
                self._delete(old, now)
        prev = self._pending.pop(path, None)
        if prev is not None and prev.change.kind is ADDED:
            return
        if prev is not None and prev.change.kind is MOVED and prev.change.old_path is not None:
            self._delete(prev.change.old_path, now)
        self._put(FileChange(DELETED, path), now)

    def _move(self, src: Path, dest: Path, now: float) -> None:
        prev_src = self._pending.pop(src, None)
        prev_dest = self._pending.pop(dest, None)
        if prev_src is None and prev_dest is not None and prev_dest.change == FileChange(MOVED, dest, src):
            self._pending[dest] = replace(prev_dest, due=now + self.quiet_seconds)  # the same move twice
            return
        if prev_dest is not None and prev_dest.change.kind is MOVED and prev_dest.change.old_path is not None:
            self._delete(prev_dest.change.old_path, now)
        kind = prev_src.change.kind if prev_src is not None else None
        if kind is None or kind is MODIFIED:
            self._put(FileChange(MOVED, dest, src), now, recheck=kind is MODIFIED)
        elif kind is ADDED:
            self._put(FileChange(MODIFIED, dest), now)
        elif kind is DELETED:
            self._pending[src] = prev_src
            self._put(FileChange(MODIFIED, dest), now)
        else:
            self._move_on(prev_src, dest, now)

    def _move_on(self, prev: _Pending, dest: Path, now: float) -> None:
        """A file that had moved o->a moves again a->dest."""
        origin, via = prev.change.old_path, prev.change.path
        assert origin is not None
        if origin != dest:
            self._put(FileChange(MOVED, dest, origin), now, recheck=prev.recheck)
        elif prev.recheck:
            self._put(FileChange(MODIFIED, dest), now)
        self._delete(via, now)

    def _pop(self, chosen: list[_Pending]) -> list[FileChange]:
        out: list[FileChange] = []
        for pending in sorted(chosen, key=lambda p: p.seq):
            del self._pending[pending.change.path]
            out.append(pending.change)
            if pending.recheck:
                out.append(FileChange(MODIFIED, pending.change.path))
        for change in out:
            if change.kind is DELETED:
                self._degrade_moves(lambda old, folder=change.path: _below(old, folder))
        return out


# ------------------------------------------------------------------------------------------------- events


def _absolute(path: Path | str | bytes) -> Path:
    return Path(os.path.abspath(os.fsdecode(path)))


def _outermost(roots: Sequence[Path]) -> tuple[Path, ...]:
    """The roots without those nested in another root (which would report every event twice)."""
    unique = sorted({_absolute(r) for r in roots}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for root in unique:
        if any(root.is_relative_to(outer) for outer in kept):
            logger.info("%s is inside another watched folder; watched through that one", root)
        else:
            kept.append(root)
    return tuple(kept)


class _Translator(FileSystemEventHandler):
    """Turns each watchdog event into FileChange records at once and hands them to ``sink``."""

    def __init__(self, roots: tuple[Path, ...], *, patterns: Sequence[str], accept: Callable[[Path], bool],
                 sink: Callable[[list[FileChange]], None]) -> None:
        self._roots = roots
        self._patterns = tuple(patterns)
        self._readable = accept
        self._sink = sink

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            changes = self.translate(event)
        except Exception:  # a bad event must not stop the observer thread
            logger.exception("could not handle %r", event)
            return
        if changes:
            self._sink(changes)

    def translate(self, event: FileSystemEvent) -> list[FileChange]:
        if event.is_synthetic:
            return []
        src = _absolute(event.src_path)
        dest = _absolute(event.dest_path) if event.dest_path else None
        kind = event.event_type
        if event.is_directory:
            return self._folder_event(kind, src, dest)
        if kind == "moved" and dest is not None:
            return self._file_moved(src, dest)
        simple = {"created": ADDED, "modified": MODIFIED, "closed": MODIFIED, "deleted": DELETED}.get(kind)
        return [FileChange(simple, src)] if simple is not None and self._wanted_file(src) else []

    def _root_of(self, path: Path) -> Path | None:
        inside = [root for root in self._roots if path.is_relative_to(root)]
        return max(inside, key=lambda root: len(root.parts)) if inside else None

    def _wanted_folder(self, path: Path) -> bool:
        root = self._root_of(path)
        return root is not None and not is_excluded(path, root=root, patterns=self._patterns)

    def _wanted_file(self, path: Path) -> bool:
        return self._readable(path) and self._wanted_folder(path)

    def _file_moved(self, src: Path, dest: Path) -> list[FileChange]:
        src_ok, dest_ok = self._wanted_file(src), self._wanted_file(dest)
        if src_ok and dest_ok:
            return [FileChange(MOVED, dest, src)]
        if src_ok:
            return [FileChange(DELETED, src)]
        if dest_ok:  # from an excluded name (an editor's temp file, say): it may replace an indexed file
            return [FileChange(MODIFIED, dest)]
        return []

    def _folder_event(self, kind: str, src: Path, dest: Path | None) -> list[FileChange]:
        if kind == "created" and self._wanted_folder(src):
            return [FileChange(ADDED, path) for path in self._files_in(src)]
        if kind == "deleted" and self._wanted_folder(src):
            return [FileChange(DELETED, src)]
        if kind != "moved" or dest is None:
            return []
        src_ok = self._wanted_folder(src)
        changes = []
        if self._wanted_folder(dest):
            for path in self._files_in(dest):
                old = src / path.relative_to(dest)
                changes.append(FileChange(MOVED, path, old) if src_ok and self._wanted_file(old)
                               else FileChange(MODIFIED, path))
        if src_ok:
            changes.append(FileChange(DELETED, src))
        return changes

    def _files_in(self, folder: Path) -> list[Path]:
        root = self._root_of(folder)
        assert root is not None
        walk = iter_files(root, patterns=self._patterns, max_file_bytes=sys.maxsize, suffixes=None, start=folder)
        paths = [entry.path for entry in walk if entry.skip_reason is None and self._readable(entry.path)]
        for skipped in walk.skipped:
            logger.info("not watched: %s (%s)", skipped.path, skipped.reason)
        return paths


# ------------------------------------------------------------------------------------------------ watcher


class Watcher:
    """Watches folders and calls ``on_changes(batch)`` from one background thread as paths settle.

    ``patterns`` are exclude patterns (see ``findling.engine.sources.walk``); ``accept(path)`` says which files
    are watched (None = all). ``on_changes`` should be quick (queue the batch); its exceptions are logged and the
    batch is dropped. ``stop()`` flushes whatever is still pending before it returns.
    """

    def __init__(self, roots: Sequence[Path], *, on_changes: Callable[[list[FileChange]], None],
                 patterns: Sequence[str], debounce_seconds: float = 0.5,
                 accept: Callable[[Path], bool] | None = None) -> None:
        self.roots = _outermost(roots)
        self._on_changes = on_changes
        self._debouncer = Debouncer(quiet_seconds=debounce_seconds)
        self._translator = _Translator(self.roots, patterns=patterns, accept=accept or (lambda _path: True),
                                       sink=self._receive)
        self._cond = threading.Condition()
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._flusher: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """How many paths are waiting for their quiet time."""
        with self._cond:
            return len(self._debouncer)

    def start(self) -> None:
        """Start watching; raises FindlingError when a folder cannot be watched."""
        if self._observer is not None:
            raise RuntimeError("this Watcher was already started; make a new one")
        observer = Observer()
        try:
            for root in self.roots:
                observer.schedule(self._translator, str(root), recursive=True)
            observer.start()
        except OSError as exc:
            observer.stop()
            where = exc.filename or ", ".join(str(root) for root in self.roots)
            raise FindlingError(f"Cannot watch {where}: {exc.strerror or exc}. Check that the folder exists "
                                "and is readable (on Linux, a full inotify watch limit can be raised with "
                                "the sysctl fs.inotify.max_user_watches).") from exc
        self._observer = observer
        self._flusher = threading.Thread(target=self._run, name="findling-watch-flush", daemon=True)
        self._flusher.start()
        logger.info("watching %s", ", ".join(str(r) for r in self.roots))

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop watching, deliver what is still pending, and wait up to ``timeout`` seconds per thread."""
        observer, flusher = self._observer, self._flusher
        if observer is None or flusher is None:
            return
        observer.stop()
        observer.join(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        flusher.join(timeout)
        if observer.is_alive() or flusher.is_alive():
            logger.warning("watcher threads did not stop within %.1f s", timeout)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _receive(self, changes: list[FileChange]) -> None:
        now = time.monotonic()
        with self._cond:
            for change in changes:
                self._debouncer.add(change, now=now)
            self._cond.notify_all()

    def _run(self) -> None:
        last = False
        while not last:
            batch, last = self._next_batch()
            if batch:
                self._deliver(batch)

    def _next_batch(self) -> tuple[list[FileChange], bool]:
        """The next due batch (blocking until one is due), or everything left and True once stopping."""
        with self._cond:
            while not self._stopping:
                batch = self._debouncer.pop_due(now=time.monotonic())
                if batch:
                    return batch, False
                due = self._debouncer.next_due()
                self._cond.wait(None if due is None else max(0.0, due - time.monotonic()) + 0.005)
            return self._debouncer.pop_all(), True

    def _deliver(self, batch: list[FileChange]) -> None:
        try:
            self._on_changes(batch)
        except Exception:
            logger.exception("on_changes failed; %d changes dropped", len(batch))
