"""The indexer: applies file changes to the store, one batch at a time, as a plain generator.

``Indexer.sync()`` reconciles every watched folder and applies what changed; ``Indexer.apply(changes)``
applies changes from the watcher. Both yield a ``Progress`` after every batch and stop cleanly when the
``CancelToken`` is set. Every file is written in one transaction with all its chunks and vectors, so a
killed run (or one stopped by a full disk) leaves each file either fully indexed or untouched, and the next
run picks up the rest. An ``Indexer`` holds the store's writer lock: a second process that tries to index the
same index gets ``IndexLocked`` while searches go on. One bad file never stops a run: it is recorded with the
reason, and a file that vanished before it could be read is dropped from the index.
"""
from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from findling.engine.encode.chunker import MAX_CHUNK_TOKENS, chunk_text
from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder
from findling.engine.errors import ExtractionError, FileVanished
from findling.engine.sources.exclusions import effective_patterns
from findling.engine.extract import extract
from findling.engine.index.read_ahead import read_ahead
from findling.engine.records import ChangeKind, Chunk, EncodedChunk, ExtractedText, FileChange, FileStatus, Phase
from findling.engine.sources.reconcile import file_digest, scan_folder
from findling.engine.store.store import Store
from findling.engine.store.files import FileRecord, FileState
from findling.engine.sources.walk import format_size, is_excluded

log = logging.getLogger(__name__)

T = TypeVar("T")
RECENT_VECTORS = 256  # chunk texts whose vectors are kept for re-use by an identical chunk


class CancelToken:
    """Set by the caller to stop (``cancel``) or hold (``pause``/``resume``) a running job."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self) -> None:
        self._running.wait()


@dataclass(frozen=True)
class Progress:
    """Where a job stands; yielded after every batch."""

    phase: Phase
    files_total: int = 0
    files_done: int = 0
    indexed: int = 0
    unchanged: int = 0
    moved: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    chunks_encoded: int = 0
    tokens_encoded: int = 0
    elapsed: float = 0.0
    current: Path | None = None
    errors: tuple[tuple[Path, str], ...] = field(default=(), repr=False)

    @property
    def files_per_s(self) -> float:
        return self.files_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_encoded / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        left = self.files_total - self.files_done
        return left / self.files_per_s if self.files_per_s > 0 and left > 0 else None


@dataclass
class _Pending:
    record: FileRecord
    chunks: list[Chunk]

    @property
    def tokens(self) -> int:
        return sum(c.token_count for c in self.chunks)


@dataclass(frozen=True)
class _Read:
    """What reading one item gave (at most one field set; none: the file is outside every watched folder)."""

    pending: _Pending | None = None  # extracted and chunked, to encode
    problem: FileRecord | None = None  # failed or skipped, with the reason
    unchanged: FileRecord | None = None  # same content as indexed: only its modification time is new
    vanished: Path | None = None  # deleted before it could be read

    def tokens(self) -> int:
        """What it holds in memory while it waits, in tokens (the read-ahead budget's unit)."""
        return self.pending.tokens if self.pending is not None else 0


class Indexer:
    """Keeps one store in step with the watched folders, encoding with one encoder."""

    def __init__(self, store: Store, encoder: Encoder, *, config: Config) -> None:
        store.lock_for_writing()  # IndexLocked when another process is indexing this index
        self.store = store
        self.encoder = encoder
        self.config = config
        self.max_tokens = chunk_limit(encoder, config)
        self._recent_vectors: dict[str, np.ndarray] = {}  # chunk text -> vectors, the newest RECENT_VECTORS
        self.chunk_settings = {"max_chunk_tokens": self.max_tokens, "overlap": config.chunk_overlap_tokens}
        store.bind_model(encoder.info, chunk_settings=self.chunk_settings)

    # ------------------------------------------------------------ entry points
    def sync(self, *, cancel: CancelToken | None = None) -> Iterator[Progress]:
        """Reconcile every watched folder with the index, then index what changed."""
        start = time.monotonic()
        changes: list[FileChange] = []
        unchanged = 0
        for folder in self.store.folders():
            yield Progress(Phase.SCANNING, current=folder, elapsed=time.monotonic() - start)
            if not folder.is_dir():
                log.warning("watched folder %s is missing; its files stay in the index until it returns", folder)
                continue
            result = scan_folder(self.store, folder, patterns=self.exclude_patterns(),
                                 max_file_bytes=self.config.max_file_bytes)
            changes.extend(result.changes)
            unchanged += result.unchanged
        yield from self.apply(changes, cancel=cancel, unchanged=unchanged, start=start)

    def exclude_patterns(self) -> tuple[str, ...]:
        """The patterns in effect: the settings' defaults and the user's, read from the index each time."""
        return effective_patterns(self.config, self.store)

    def apply(self, changes: Sequence[FileChange], *, cancel: CancelToken | None = None,
              unchanged: int = 0, start: float | None = None) -> Iterator[Progress]:
        """Apply file changes: deletions and moves first, then (re-)index in batches.

        A change to a path that an exclude pattern now hides drops it from the index instead (a watcher
        started before the pattern was added still reports it).
        """
        start = time.monotonic() if start is None else start
        folders = self.store.folders()
        changes = _hide_excluded(changes, folders, self.exclude_patterns())
        p = Progress(Phase.INDEXING, files_total=len(changes), unchanged=unchanged)
        to_index: list[Path] = []
        for ch in changes:
            if ch.kind is ChangeKind.DELETED:
                p = replace(p, deleted=p.deleted + self.store.delete_files([ch.path]), files_done=p.files_done + 1)
            elif ch.kind is ChangeKind.MOVED and ch.old_path is not None and self._move(ch, folders):
                p = replace(p, moved=p.moved + 1, files_done=p.files_done + 1)
            elif ch.kind is ChangeKind.MOVED:
                self.store.delete_files([ch.old_path] if ch.old_path else [])
                to_index.append(ch.path)
            else:
                to_index.append(ch.path)
        yield replace(p, elapsed=time.monotonic() - start)
        to_index = list(dict.fromkeys(to_index))  # a path reported twice is read once
        known = {path: self.store.file_state(path) for path in to_index}  # read here: the reader has no store
        yield from self._in_batches(to_index, lambda path: self._read(path, folders, known[path]), p, start,
                                    cancel)

    def index_texts(self, items: Sequence[tuple[FileRecord, ExtractedText]], *,
                    cancel: CancelToken | None = None) -> Iterator[Progress]:
        """Index text that was extracted elsewhere (corpus records, for instance): chunk, encode, write,
        in the same batches and transactions as files from disk."""
        start = time.monotonic()
        p = Progress(Phase.INDEXING, files_total=len(items))
        yield from self._in_batches(items, lambda item: self._chunk(item[0], item[1]), p, start, cancel)

    def _in_batches(self, items: Iterable[T], read: Callable[[T], _Read], p: Progress, start: float,
                    cancel: CancelToken | None) -> Iterator[Progress]:
        """Read each item (on the read-ahead thread), settle it with the store, then encode and write them in
        batches of about ``4 * encode_batch_tokens``."""
        batch: list[_Pending] = []
        pending_tokens = 0
        shown = time.monotonic()
        current = None
        reads = read_ahead(items, read, ahead=self.config.read_ahead_files, cost=_Read.tokens,
                           budget=self.config.encode_batch_tokens * 8,
                           before_each=cancel.wait_if_paused if cancel is not None else None)
        try:
            for item in reads:
                if cancel is not None:
                    cancel.wait_if_paused()
                    if cancel.cancelled:
                        yield replace(p, phase=Phase.CANCELLED, elapsed=time.monotonic() - start)
                        return
                prepared, p = self._settle(item, p)
                if prepared is not None:
                    current = prepared.record.path
                    batch.append(prepared)
                    pending_tokens += prepared.tokens
                if pending_tokens >= self.config.encode_batch_tokens * 4 or len(batch) >= 256:
                    for p in self._flush(batch, p):
                        yield replace(p, elapsed=time.monotonic() - start, current=current)
                    batch, pending_tokens, shown = [], 0, time.monotonic()
                elif time.monotonic() - shown > 0.5:  # reading and chunking: keep the caller informed
                    shown = time.monotonic()
                    yield replace(p, elapsed=shown - start, current=current)
        finally:
            reads.close()
        for p in self._flush(batch, p):
            yield replace(p, elapsed=time.monotonic() - start, current=None)
        yield replace(p, phase=Phase.DONE, elapsed=time.monotonic() - start, current=None)

    def run_to_end(self, changes: Sequence[FileChange] | None = None) -> Progress:
        """Drive ``sync()`` (or ``apply(changes)``) to the end; returns the last progress."""
        last = Progress(Phase.DONE)
        for last in (self.sync() if changes is None else self.apply(changes)):
            pass
        return last

    # --------------------------------------------------------------- steps
    def _move(self, ch: FileChange, folders: list[Path]) -> bool:
        """Move a file's rows if its content is what the index holds for the old path."""
        old = self.store.file_state(ch.old_path)
        folder = owning_folder(ch.path, folders)
        if old is None or folder is None or old.status != "indexed":
            return False
        try:
            st = ch.path.stat()
            if st.st_size != old.size or file_digest(ch.path) != old.hash:
                return False
        except OSError:
            return False
        self.store.move_file(ch.old_path, ch.path, folder=folder, mtime=st.st_mtime)
        return True

    def _read(self, path: Path, folders: list[Path], known: FileState | None) -> _Read:
        """Hash, extract and chunk one file (no encoding yet). Runs on the read-ahead thread, so it never
        touches the store: ``known`` is what the index held for ``path`` when the run started."""
        folder = owning_folder(path, folders)
        if folder is None:  # no longer under a watched folder
            return _Read()
        record = _bare(path, folder)
        try:
            st = path.stat()
            record = FileRecord(path, folder, st.st_size, st.st_mtime, None, "indexed")
            if not stat.S_ISREG(st.st_mode):
                return _Read(problem=replace(record, status=FileStatus.SKIPPED, reason="not a regular file"))
            if st.st_size > self.config.max_file_bytes:
                reason = f"over the {format_size(self.config.max_file_bytes)} size limit"
                return _Read(problem=replace(record, status=FileStatus.SKIPPED, reason=reason))
            digest = file_digest(path)
            if known is not None and known.hash == digest and known.status == FileStatus.INDEXED:
                return _Read(unchanged=record)
            record = replace(record, hash=digest)
            doc = extract(path, config=self.config)
        except ExtractionError as exc:
            if not os.path.lexists(path):
                return _Read(vanished=path)
            return _Read(problem=replace(record, status=FileStatus.FAILED, reason=str(exc)))
        except OSError as exc:
            if not os.path.lexists(path):
                return _Read(vanished=path)
            reason = str(FileVanished(f"could not read the file ({exc.strerror or exc})"))
            return _Read(problem=replace(record, status=FileStatus.FAILED, reason=reason))
        return self._chunk(record, doc)

    def _chunk(self, record: FileRecord, doc: ExtractedText) -> _Read:
        """Cut extracted text into chunks for ``record``; the file is empty when no chunk comes out."""
        try:
            chunks = chunk_text(doc, self.encoder.tokenizer, max_tokens=self.max_tokens,
                                overlap=self.config.chunk_overlap_tokens)
        except Exception as exc:  # a tokenizer tripping over odd text must not stop the run
            log.warning("could not chunk %s", record.path, exc_info=True)
            reason = f"could not split the text into chunks ({type(exc).__name__}: {exc})"[:200]
            return _Read(problem=replace(record, status=FileStatus.FAILED, reason=reason))
        status = "indexed" if chunks else "empty"
        reason = "; ".join(doc.warnings) or None
        return _Read(pending=_Pending(replace(record, status=status, reason=reason, title=doc.title,
                                              kind=doc.kind, fields=doc.fields), chunks))

    def _settle(self, read: _Read, p: Progress) -> tuple[_Pending | None, Progress]:
        """What a read item means for the store and the counts (on the indexer's own thread)."""
        if read.pending is not None:
            return read.pending, p
        if read.problem is not None:
            return self._problem(read.problem, p)
        if read.vanished is not None:
            return self._vanished(read.vanished, p)
        if read.unchanged is not None:
            self.store.touch_file(read.unchanged.path, mtime=read.unchanged.mtime)
            return None, replace(p, files_done=p.files_done + 1, unchanged=p.unchanged + 1)
        return None, replace(p, files_done=p.files_done + 1)

    def _vanished(self, path: Path, p: Progress) -> tuple[None, Progress]:
        """Deleted between listing and reading: forget it (a later event or scan brings it back if it returns)."""
        log.info("%s disappeared before it could be read", path)
        gone = self.store.delete_files([path])
        return None, replace(p, files_done=p.files_done + 1, deleted=p.deleted + gone)

    def _problem(self, record: FileRecord, p: Progress) -> tuple[None, Progress]:
        log.info("%s %s: %s", record.status, record.path, record.reason)
        self.store.record_problem(record)
        errors = (p.errors + ((record.path, record.reason or ""),))[-200:]
        if record.status == FileStatus.SKIPPED:
            return None, replace(p, files_done=p.files_done + 1, skipped=p.skipped + 1, errors=errors)
        return None, replace(p, files_done=p.files_done + 1, failed=p.failed + 1, errors=errors)

    def _flush(self, batch: list[_Pending], p: Progress) -> Iterator[Progress]:
        """Encode every chunk of the batch, then write each file's rows in one transaction.

        Yields after each slice of about ``4 * encode_batch_tokens`` encoded tokens (a single large PDF can
        take minutes), then once more after the write; the last yield carries the final counts.
        """
        if not batch:
            yield p
            return
        chunks = [c for item in batch for c in item.chunks]
        # identical chunk texts (copies of a file, boilerplate, repeated sections) are encoded once: the
        # encoder is deterministic, so the vectors are the same ones
        known = self._recent_vectors
        todo: dict[str, int] = {}
        for c in chunks:
            if c.text not in known and c.text not in todo:
                todo[c.text] = c.token_count
        texts = list(todo)
        for lo, hi in _slices([todo[t] for t in texts], self.config.encode_batch_tokens * 4):
            for text, vec in zip(texts[lo:hi], self.encoder.encode_documents(texts[lo:hi])):
                known[text] = vec
            tokens = sum(todo[t] for t in texts[lo:hi])
            p = replace(p, chunks_encoded=p.chunks_encoded + hi - lo, tokens_encoded=p.tokens_encoded + tokens)
            if hi < len(texts):
                yield p
        vectors = [known[c.text] for c in chunks]
        for text in list(known)[: max(0, len(known) - RECENT_VECTORS)]:  # keep the newest entries only
            del known[text]
        it = iter(vectors)
        self.store.write_files([(item.record, [EncodedChunk(c, next(it)) for c in item.chunks]) for item in batch])
        if self.store.compress_if_due(min_tokens=self.config.codec_min_tokens):
            log.info("the index passed %d token vectors: its vectors are now stored compressed (%s)",
                     self.config.codec_min_tokens, self.store.codec.name)
        yield replace(p, files_done=p.files_done + len(batch), indexed=p.indexed + len(batch))


def _slices(sizes: Sequence[int], budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive ``[lo, hi)`` ranges whose sizes sum to about ``budget`` (at least one item each)."""
    lo, total = 0, 0
    for i, size in enumerate(sizes):
        total += size
        if total >= budget:
            yield lo, i + 1
            lo, total = i + 1, 0
    if lo < len(sizes):
        yield lo, len(sizes)


def chunk_limit(encoder: Encoder, config: Config) -> int:
    """Largest chunk, in content tokens, that both the settings and the model allow."""
    markers = len(encoder.tokenizer.document_spans("a")) - len(encoder.tokenizer.token_spans("a"))
    return max(16, min(config.max_chunk_tokens, MAX_CHUNK_TOKENS, encoder.info.max_tokens - max(markers, 0)))


def owning_folder(path: Path, folders: Sequence[Path]) -> Path | None:
    """The watched folder a path lies in (the deepest, if folders nest)."""
    best = None
    for folder in folders:
        if path == folder or folder in path.parents:
            if best is None or len(folder.parts) > len(best.parts):
                best = folder
    return best


def _hide_excluded(changes: Sequence[FileChange], folders: list[Path], patterns: Sequence[str]) -> list[FileChange]:
    """``changes`` with every change to an excluded path turned into its deletion."""
    out = []
    for ch in changes:
        folder = owning_folder(ch.path, folders)
        if ch.kind is not ChangeKind.DELETED and folder is not None and is_excluded(ch.path, root=folder,
                                                                                      patterns=patterns):
            out += [FileChange(ChangeKind.DELETED, p) for p in (ch.old_path, ch.path) if p is not None]
        else:
            out.append(ch)
    return out


def _bare(path: Path, folder: Path) -> FileRecord:
    return FileRecord(path, folder, 0, 0.0, None, "failed")
