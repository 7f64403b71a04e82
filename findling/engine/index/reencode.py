"""Switching models: re-encode the index into a new file beside it, then swap it in, in one step.

The old index keeps answering searches the whole time. ``switch_model`` copies folders, files and chunk
texts from the active index into ``index.sqlite.next`` and encodes the chunk texts with the new model: no
file is read or extracted again. A chunk longer than the new model takes is split with its tokenizer; other
chunks keep their boundaries (``findling index --rebuild`` re-chunks from the files). Each file is written
in one transaction, so an interrupted switch resumes where it stopped: files already copied, unchanged
since, are kept; files changed in the active index meanwhile are copied again.

The swap copies the new file into the active one with SQLite's backup API in one transaction, under the
writer lock, instead of renaming files: a connection still open on the old file (a search in another
process, the app's search thread) would otherwise pair the new file with the old file's -wal and -shm,
which SQLite documents as a way to corrupt a database. Readers see the old index or the new one, never a
mix. Chunk ids continue after the old index's highest, so an id is never reused, and the generation moves
on, so every reader's matrix reloads. The chosen model is recorded in the index (``Store.model_choice``);
``chosen_config`` applies it wherever no model was given explicitly.

Disk space: while switching, the new file sits beside the old one, and the swap writes the new contents
once more through the write-ahead log (checkpointed and truncated right after).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from findling.engine.encode.chunker import chunk_text
from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder, Tokenizer
from findling.engine.errors import StoreError
from findling.engine.index.indexer import CancelToken, Progress, chunk_limit
from findling.engine.records import Chunk, EncodedChunk, ExtractedText, FileStatus, Phase
from findling.engine.store.store import Store
from findling.engine.store.files import FileRecord, FileState

log = logging.getLogger(__name__)

PHASE = Phase.REENCODING
"""``Progress.phase`` while a switch encodes (then ``SWAPPING``, then ``DONE`` or ``CANCELLED``)."""


def next_path(db_path: Path) -> Path:
    """Where the re-encoded index is built, beside the active one."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".next")


def chosen_config(config: Config, store: Store) -> Config:
    """``config`` with the model recorded in the index, unless a model was given (``--model``, env)."""
    if config.model:
        return config
    choice = store.model_choice()
    return replace(config, model=choice) if choice else config


def already_active(store: Store, encoder: Encoder) -> bool:
    """True when the index was built with ``encoder``'s model (or holds no vectors yet)."""
    ident = store.model_identity()
    return store.vector_count() == 0 or (ident is not None and ident.get("fingerprint") == encoder.info.fingerprint)


@dataclass
class _Copy:
    record: FileRecord
    chunks: list[Chunk]


def switch_model(active: Store, encoder: Encoder, *, config: Config, choice: str | None,
                 cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Re-encode ``active`` with ``encoder`` into a file beside it, then swap it in; yields progress.

    ``choice`` (a model folder or hub name, None for the default order) is recorded as the index's model.
    ``IndexLocked`` when another process is indexing. A cancelled switch leaves the new file for a resume.
    """
    start = time.monotonic()
    last = Progress(PHASE)
    for last in reencode_beside(active, encoder, config=config, cancel=cancel):
        yield last
    if last.phase == Phase.CANCELLED:
        return
    yield replace(last, phase=Phase.SWAPPING, elapsed=time.monotonic() - start)
    swap_in(active, choice=choice)
    yield replace(last, phase=Phase.DONE, elapsed=time.monotonic() - start)


def reencode_beside(active: Store, encoder: Encoder, *, config: Config,
                    cancel: CancelToken | None = None) -> Iterator[Progress]:
    """The first half of ``switch_model``: fill the file beside ``active``; the last progress says
    "re-encoding" when it is complete, "cancelled" when stopped."""
    active.lock_for_writing()
    nxt = _open_next(active, encoder)
    try:
        yield from _fill(active, nxt, encoder, config=config, cancel=cancel, start=time.monotonic())
    finally:
        nxt.close()


def swap_in(active: Store, *, choice: str | None) -> None:
    """The second half of ``switch_model``: make the completed file beside ``active`` the index."""
    active.lock_for_writing()
    nxt = Store(next_path(active.path))
    try:
        nxt.lock_for_writing()
        if nxt.model_identity() is None:
            raise StoreError(f"{nxt.path} holds no re-encoded index to switch to; run the switch again.")
        _swap(active, nxt, choice=choice)
    finally:
        nxt.close()
    discard_next(active.path)
    log.info("switched %s to %s", active.path, (active.model_identity() or {}).get("name"))


def discard_next(db_path: Path) -> None:
    """Delete a re-encoded index that was not swapped in (and its side files)."""
    base = next_path(db_path)
    for suffix in ("", "-wal", "-shm", ".lock", ".folders.json"):
        try:
            os.remove(base.with_name(base.name + suffix))
        except FileNotFoundError:
            pass


def _open_next(active: Store, encoder: Encoder) -> Store:
    """The new file: resumed when it was started for the same model, else started afresh."""
    path = next_path(active.path)
    nxt = Store(path)
    nxt.lock_for_writing()
    ident = nxt.model_identity()
    if ident is not None and ident.get("fingerprint") != encoder.info.fingerprint:
        log.info("discarding %s, started for %s", path, ident.get("name"))
        nxt.close()
        discard_next(active.path)
        nxt = Store(path)
        nxt.lock_for_writing()
    return nxt


def _fill(active: Store, nxt: Store, encoder: Encoder, *, config: Config, cancel: CancelToken | None,
          start: float) -> Iterator[Progress]:
    """Bring ``nxt`` in step with ``active``: folders, then every file not copied yet, in batches."""
    max_tokens = chunk_limit(encoder, config)
    nxt.bind_model(encoder.info, chunk_settings={"max_chunk_tokens": max_tokens,
                                                 "overlap": config.chunk_overlap_tokens})
    nxt.continue_ids_after(*active.last_ids())
    nxt.set_codec_choice(active.codec_choice())
    folders = active.folders()
    for folder in set(nxt.folders()) - set(folders):
        nxt.remove_folder(folder)
    for folder in folders:
        nxt.add_folder(folder)
    records = active.file_records()
    copied = nxt.file_states()
    nxt.delete_files([p for p in copied if p not in {r.path for r in records}])
    todo = [r for r in records if not _same(copied.get(r.path), r)]
    p = Progress(PHASE, files_total=len(records), files_done=len(records) - len(todo),
                 unchanged=len(records) - len(todo))
    yield p
    batch: list[_Copy] = []
    tokens = 0
    for record in todo:
        if cancel is not None:
            cancel.wait_if_paused()
            if cancel.cancelled:
                yield replace(p, phase=Phase.CANCELLED, elapsed=time.monotonic() - start)
                return
        chunks = rechunk(active.chunks_of(record.path), encoder.tokenizer, max_tokens=max_tokens,
                         overlap=config.chunk_overlap_tokens)
        if record.status == FileStatus.INDEXED and not chunks:
            record = replace(record, status=FileStatus.EMPTY)
        batch.append(_Copy(record, chunks))
        tokens += sum(c.token_count for c in chunks)
        if tokens >= 4 * config.encode_batch_tokens or len(batch) >= 256:
            p = _write(nxt, encoder, batch, p)
            nxt.compress_if_due(min_tokens=config.codec_min_tokens)  # the new model trains its own centroids
            batch, tokens = [], 0
            yield replace(p, elapsed=time.monotonic() - start, current=record.path)
    p = _write(nxt, encoder, batch, p)
    nxt.compress_if_due(min_tokens=config.codec_min_tokens)
    yield replace(p, elapsed=time.monotonic() - start, current=None)


def _same(state: FileState | None, record: FileRecord) -> bool:
    return (state is not None and state.size == record.size and state.mtime == record.mtime
            and state.hash == record.hash and state.status == record.status)


def _write(nxt: Store, encoder: Encoder, batch: Sequence[_Copy], p: Progress) -> Progress:
    """Encode a batch's chunk texts and write each file with its chunks in one transaction."""
    if not batch:
        return p
    chunks = [c for item in batch for c in item.chunks]
    vectors = iter(encoder.encode_documents([c.text for c in chunks]) if chunks else [])
    nxt.write_files([(item.record, [EncodedChunk(c, next(vectors)) for c in item.chunks]) for item in batch])
    return replace(p, files_done=p.files_done + len(batch),
                   indexed=p.indexed + sum(1 for item in batch if item.chunks),
                   chunks_encoded=p.chunks_encoded + len(chunks),
                   tokens_encoded=p.tokens_encoded + sum(c.token_count for c in chunks))


def rechunk(chunks: Sequence[Chunk], tokenizer: Tokenizer, *, max_tokens: int, overlap: int) -> list[Chunk]:
    """The same chunks counted in the new tokenizer's tokens; one longer than ``max_tokens`` is split.

    Pieces of a split chunk keep its page; ordinals are numbered afresh. A chunk with no token for the
    new tokenizer (only symbols it drops) is left out.
    """
    out: list[Chunk] = []
    for c in chunks:
        n = len(tokenizer.token_spans(c.text))
        if 0 < n <= max_tokens:
            out.append(replace(c, ordinal=len(out), token_count=n))
            continue
        doc = ExtractedText(Path(), c.text)
        for part in chunk_text(doc, tokenizer, max_tokens=max_tokens, overlap=overlap):
            out.append(Chunk(len(out), part.text, c.char_start + part.char_start, c.char_start + part.char_end,
                             part.token_count, c.page))
    return out


def _swap(active: Store, nxt: Store, *, choice: str | None) -> None:
    """Settings over, generation past the active one's, then one backup transaction into the active file."""
    nxt.set_exclude_patterns(active.exclude_patterns())
    nxt.set_model_choice(choice)
    nxt.set_meta("generation", str(active.generation() + nxt.generation() + 1))
    active.replace_contents_with(nxt)
