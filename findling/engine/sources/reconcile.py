"""Start-up reconcile: what changed on disk while Findling was not watching.

Compares each watched folder's files with the index by size and mtime. A file that vanished from one path
and appeared at another with the same size and content hash is a move (it keeps its vectors); the rest are
additions, modifications and deletions. The output is a list of ``FileChange`` records for the indexer.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from findling.engine.extract import is_supported
from findling.engine.records import ChangeKind, FileChange, FileStatus
from findling.engine.store.store import Store
from findling.engine.store.files import FileState
from findling.engine.sources.walk import FileEntry, iter_files

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({"stale"})  # failed files are retried only when they change


@dataclass(frozen=True)
class ScanResult:
    """The changes found in one folder, and how many files needed nothing."""

    folder: Path
    changes: tuple[FileChange, ...]
    unchanged: int
    ignored: int  # unsupported types and other files never recorded
    entries: dict[Path, FileEntry] = field(default_factory=dict, compare=False, repr=False)


def file_digest(path: Path) -> str:
    """Content hash used to recognise moved and touched files."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "blake2b").hexdigest()[:32]


def scan_folder(store: Store, folder: Path, *, patterns: Sequence[str], max_file_bytes: int) -> ScanResult:
    """Diff one watched folder against the index (files ``findling.engine.extract`` can read)."""
    known = store.file_states(folder)
    on_disk: dict[Path, FileEntry] = {}
    ignored = 0
    walk = iter_files(folder, patterns=patterns, max_file_bytes=max_file_bytes, suffixes=None)
    for entry in walk:
        if not is_supported(entry.path):
            ignored += 1  # not a type we read: not recorded
            continue
        on_disk[entry.path] = entry
    unreadable = [s.path for s in walk.skipped]  # folders we could not list: their files are not "missing"
    changes: list[FileChange] = []
    unchanged = 0
    for path, entry in on_disk.items():
        state = known.get(path)
        if state is None:
            continue
        if _same(state, entry) and state.status not in RETRY_STATUSES:
            unchanged += 1
        else:
            changes.append(FileChange(ChangeKind.MODIFIED, path))
    missing = {p: s for p, s in known.items()
               if p not in on_disk and not any(d == p or d in p.parents for d in unreadable)}
    new = [e for p, e in on_disk.items() if p not in known]
    moves = _match_moves(missing, new)
    for old, entry in moves.items():
        changes.append(FileChange(ChangeKind.MOVED, entry.path, old_path=old))
    moved_to = {e.path for e in moves.values()}
    changes += [FileChange(ChangeKind.ADDED, e.path) for e in new if e.path not in moved_to]
    changes += [FileChange(ChangeKind.DELETED, p) for p in missing if p not in moves]
    return ScanResult(folder, tuple(changes), unchanged, ignored, on_disk)


def _same(state: FileState, entry: FileEntry) -> bool:
    return state.size == entry.size and abs(state.mtime - entry.mtime) < 1e-6


def _match_moves(missing: dict[Path, FileState], new: list[FileEntry]) -> dict[Path, FileEntry]:
    """Pair vanished index entries with new files of the same size and content hash."""
    by_size: dict[int, list[FileState]] = {}
    for state in missing.values():
        if state.hash and state.status == FileStatus.INDEXED:
            by_size.setdefault(state.size, []).append(state)
    moves: dict[Path, FileEntry] = {}
    for entry in new:
        candidates = [s for s in by_size.get(entry.size, ()) if s.path not in moves]
        if not candidates or entry.skip_reason:
            continue
        try:
            digest = file_digest(entry.path)
        except OSError:
            continue
        for state in candidates:
            if state.hash == digest:
                moves[state.path] = entry
                break
    return moves
