"""Which files of a watched folder are candidates for indexing.

``iter_files`` walks a folder and yields a ``FileEntry`` for every regular file that no exclude pattern
hides. Files Findling will not read (over the size limit, an unsupported type) are still yielded, with a
``skip_reason``, so the caller can record why. Folders that cannot be listed never stop the walk: they are
logged and collected on ``FileWalk.skipped``.

Exclude patterns come in two kinds:

- without ``/`` (``.*``, ``node_modules``, ``*.egg-info``): matched with fnmatch against every component of
  the path relative to the watched folder, so ``node_modules`` hides such a folder at any depth;
- with ``/`` (``docs/build/*``, ``**/drafts/**``): matched against the whole relative POSIX path, anchored
  at the watched folder. ``*`` and ``?`` stay inside one component, ``**`` spans any number of them, and a
  leading or trailing ``/`` is ignored. A path is excluded when it or any folder above it matches.

Matching is case-sensitive on POSIX and case-insensitive on Windows, like ``fnmatch.fnmatch``.
"""
from __future__ import annotations

import fnmatch
import functools
import logging
import os
import re
import stat
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

UNSUPPORTED_TYPE = "unsupported file type"
"""``skip_reason`` of a file whose suffix is not among the readable ones."""

_FLAGS = re.IGNORECASE if os.name == "nt" else 0


@dataclass(frozen=True)
class FileEntry:
    """A regular file found by a walk; ``skip_reason`` is set when it should be recorded but not read."""

    path: Path  # absolute, as reached through the root (symlinks are not resolved)
    size: int
    mtime: float  # seconds since the epoch
    skip_reason: str | None = None


@dataclass(frozen=True)
class SkippedPath:
    """A folder or entry the walk could not look into, and why (e.g. "permission denied")."""

    path: Path
    reason: str


# --------------------------------------------------------------------------------------------- patterns


def _class_end(segment: str, start: int) -> int:
    """Index of the ``]`` closing a character class opened just before ``start``, or -1."""
    i = start + 1 if segment[start:start + 1] == "!" else start
    i = i + 1 if segment[i:i + 1] == "]" else i
    return segment.find("]", i)


def _translate_segment(segment: str) -> str:
    """Regex for one path component of a glob: ``*``, ``?`` and ``[!...]`` never match a ``/``."""
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        i += 1
        end = _class_end(segment, i) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif end >= 0:
            body = segment[i:end].replace("\\", "\\\\")
            if body.startswith("!"):
                out.append("[^/" + body[1:] + "]")
            else:
                out.append("[" + ("\\" + body if body.startswith("^") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def _translate_path_pattern(pattern: str) -> str:
    """Regex for a glob with ``/`` in it, matched against a whole relative POSIX path."""
    segments: list[str] = []
    for segment in pattern.strip("/").split("/"):
        if not (segment == "**" and segments and segments[-1] == "**"):
            segments.append(segment)
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**" and not last:
            out.append("(?:[^/]+/)*")
        elif segment == "**" and out:
            out[-1] = out[-1].removesuffix("/")
            out.append("(?:/.*)?")
        elif segment == "**":
            out.append(".*")
        else:
            out.append(_translate_segment(segment) + ("" if last else "/"))
    return "".join(out) + r"\Z"


@dataclass(frozen=True)
class _Matcher:
    components: tuple[tuple[str, re.Pattern[str]], ...]
    paths: tuple[tuple[str, re.Pattern[str]], ...]

    def match_entry(self, name: str, rel: str) -> str | None:
        """The first pattern that hides ``rel`` (whose last component is ``name``), given its folder passed."""
        for pattern, regex in self.components:
            if regex.match(name):
                return pattern
        for pattern, regex in self.paths:
            if regex.match(rel):
                return pattern
        return None

    def first_match(self, parts: Sequence[str]) -> str | None:
        """The first pattern that hides the relative path made of ``parts``, or None."""
        for depth in range(1, len(parts) + 1):
            found = self.match_entry(parts[depth - 1], "/".join(parts[:depth]))
            if found is not None:
                return found
        return None


@functools.lru_cache(maxsize=32)
def _matcher(patterns: tuple[str, ...]) -> _Matcher:
    components, paths = [], []
    for pattern in patterns:
        if "/" in pattern.rstrip("/"):
            paths.append((pattern, re.compile(_translate_path_pattern(pattern), _FLAGS)))
        elif pattern.strip("/"):
            components.append((pattern, re.compile(fnmatch.translate(pattern.strip("/")), _FLAGS)))
    return _Matcher(tuple(components), tuple(paths))


def _relative_parts(path: Path, root: Path) -> tuple[str, ...]:
    return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).parts


def is_excluded(path: Path, *, root: Path, patterns: Sequence[str]) -> bool:
    """Whether an exclude pattern hides ``path``, which must lie inside ``root`` (ValueError otherwise)."""
    return _matcher(tuple(patterns)).first_match(_relative_parts(path, root)) is not None


# ------------------------------------------------------------------------------------------ skip reasons


def format_size(n_bytes: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n_bytes >= size:
            return f"{round(n_bytes / size, 1):g} {unit}"
    return f"{n_bytes} bytes"


def _normalize_suffixes(suffixes: Collection[str] | None) -> tuple[str, ...] | None:
    if suffixes is None:
        return None
    return tuple(s.lower() if s.startswith(".") else "." + s.lower() for s in suffixes)


def _skip_reason(name: str, size: int, max_file_bytes: int, suffixes: tuple[str, ...] | None) -> str | None:
    if suffixes is not None and not name.lower().endswith(suffixes):
        return UNSUPPORTED_TYPE
    if size > max_file_bytes:
        return f"over the {format_size(max_file_bytes)} size limit"
    return None


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "disappeared while listing"
    return exc.strerror or str(exc)


# ----------------------------------------------------------------------------------------------- walking


class FileWalk(Iterator[FileEntry]):
    """The iterator ``iter_files`` returns; ``skipped`` lists what could not be read so far."""

    def __init__(self, root: Path, *, patterns: Sequence[str], max_file_bytes: int,
                 suffixes: Collection[str] | None, start: Path | None) -> None:
        self.root = Path(os.path.abspath(root))
        self.skipped: list[SkippedPath] = []
        self._matcher = _matcher(tuple(patterns))
        self._max_file_bytes = max_file_bytes
        self._suffixes = _normalize_suffixes(suffixes)
        start_path = self.root if start is None else Path(os.path.abspath(start))
        self._files = self._walk(str(start_path), start_path.relative_to(self.root).parts)

    def __next__(self) -> FileEntry:
        return next(self._files)

    def _skip(self, path: str, exc: OSError) -> None:
        reason = _os_reason(exc)
        logger.debug("skipped %r: %s", path, reason)
        self.skipped.append(SkippedPath(Path(path), reason))

    def _listing(self, folder: str) -> list[os.DirEntry[str]] | None:
        try:
            with os.scandir(folder) as entries:
                return sorted(entries, key=lambda entry: entry.name)
        except OSError as exc:
            self._skip(folder, exc)
            return None

    def _walk(self, start: str, start_parts: tuple[str, ...]) -> Iterator[FileEntry]:
        if self._matcher.first_match(start_parts) is not None:
            return
        try:
            start_stat = os.stat(start)
        except OSError as exc:
            self._skip(start, exc)
            return
        if not stat.S_ISDIR(start_stat.st_mode):
            self.skipped.append(SkippedPath(Path(start), "not a folder"))
            return
        visited = {(start_stat.st_dev, start_stat.st_ino)}
        stack = [(start, "/".join(start_parts))]
        while stack:
            folder, rel = stack.pop()
            subfolders: list[tuple[str, str]] = []
            for entry in self._listing(folder) or ():
                entry_rel = f"{rel}/{entry.name}" if rel else entry.name
                if self._matcher.match_entry(entry.name, entry_rel) is not None:
                    continue
                found = self._examine(entry, visited)
                if isinstance(found, FileEntry):
                    yield found
                elif found:
                    subfolders.append((entry.path, entry_rel))
            stack.extend(reversed(subfolders))

    def _examine(self, entry: os.DirEntry[str], visited: set[tuple[int, int]]) -> FileEntry | bool:
        """A FileEntry for a regular file, True for a folder not walked yet, False for anything else."""
        try:
            info = entry.stat()  # follows symlinks
            if stat.S_ISDIR(info.st_mode) and info.st_ino == 0:  # Windows leaves it out of DirEntry.stat
                info = os.stat(entry.path)
        except FileNotFoundError:
            logger.debug("skipped %r: broken link or gone", entry.path)
            return False
        except OSError as exc:
            self._skip(entry.path, exc)
            return False
        if stat.S_ISDIR(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if key in visited:
                logger.debug("skipped %r: folder already walked (symlink loop or second link)", entry.path)
                return False
            visited.add(key)
            return True
        if not stat.S_ISREG(info.st_mode):
            logger.debug("skipped %r: not a regular file", entry.path)
            return False
        reason = _skip_reason(entry.name, info.st_size, self._max_file_bytes, self._suffixes)
        return FileEntry(Path(entry.path), info.st_size, info.st_mtime, reason)


def iter_files(root: Path, *, patterns: Sequence[str], max_file_bytes: int,
               suffixes: Collection[str] | None = None, start: Path | None = None) -> FileWalk:
    """Walk ``root`` and yield its candidate files, in a stable order (names sorted, folders depth-first).

    Folder symlinks are followed, each folder is walked once (so symlink loops end), excluded folders are
    not entered, and only regular files are yielded. ``suffixes`` (e.g. ``{".txt", ".pdf"}``, None = all)
    and ``max_file_bytes`` only set ``skip_reason``. ``start`` walks just that folder inside ``root`` while
    patterns stay relative to ``root``. Unreadable folders end up on the returned walk's ``skipped``.
    """
    return FileWalk(root, patterns=patterns, max_file_bytes=max_file_bytes, suffixes=suffixes, start=start)


# -------------------------------------------------------------------------------------- single-file test


def _root_of(path: Path, roots: Sequence[Path]) -> tuple[Path, Path] | None:
    """(root, path) with path inside root, the innermost root: as written first, then with links resolved."""
    for candidates in ([(Path(os.path.abspath(r)), path) for r in roots],
                       [(Path(r).resolve(), path.resolve()) for r in roots]):
        inside = [(root, p) for root, p in candidates if p.is_relative_to(root)]
        if inside:
            return max(inside, key=lambda pair: len(pair[0].parts))
    return None


def _unreadable_folder(path: Path, root: Path) -> str | None:
    for folder in reversed(path.parents):
        if folder.is_relative_to(root) and not os.access(folder, os.R_OK | os.X_OK):
            return f'the folder "{folder}" cannot be read (permission denied)'
    return None


def would_index(path: Path, *, roots: Sequence[Path], patterns: Sequence[str], max_file_bytes: int,
                suffixes: Collection[str] | None = None) -> str | None:
    """None if a walk of ``roots`` would find ``path`` and index it, else the reason why not."""
    found = _root_of(Path(os.path.abspath(path)), roots)
    if found is None:
        return "not inside a watched folder"
    root, inside = found
    pattern = _matcher(tuple(patterns)).first_match(inside.relative_to(root).parts)
    if pattern is not None:
        return f'excluded by the pattern "{pattern}"'
    try:
        info = os.stat(inside)
    except OSError as exc:
        return "file not found" if isinstance(exc, FileNotFoundError) else _os_reason(exc)
    if stat.S_ISDIR(info.st_mode):
        return "is a folder"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    reason = _skip_reason(inside.name, info.st_size, max_file_bytes, _normalize_suffixes(suffixes))
    if reason is not None:
        return reason
    if not os.access(inside, os.R_OK):
        return "permission denied"
    return _unreadable_folder(inside, root)
