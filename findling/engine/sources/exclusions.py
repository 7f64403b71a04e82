"""Exclude patterns: the defaults from ``Config`` plus the user's own, kept in the index.

The user's patterns live in the index (``Store.exclude_patterns``), so ``findling exclude``, the app's
folders dialog, the indexer's scans and the watcher all use the same list. The patterns in effect are
``config.exclude_patterns`` (the defaults) followed by the user's. A pattern hides files from indexing only;
nothing on disk is touched. Files already in the index that a new pattern hides leave it at the next sync
(the scan no longer finds them, so they count as deleted) or as soon as the watcher sees them change.

Pattern syntax is ``findling.engine.sources.walk``'s: a name pattern (``drafts``, ``*.log``) hides matching files and folders
at any depth; a pattern with ``/`` (``Archive/2019/**``) is anchored at each watched folder.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from findling.engine.config import Config
from findling.engine.extract import is_supported
from findling.engine.store.store import Store
from findling.engine.sources.walk import UNSUPPORTED_TYPE, would_index


def effective_patterns(config: Config, store: Store) -> tuple[str, ...]:
    """The defaults followed by the user's patterns, without repeats."""
    return tuple(dict.fromkeys((*config.exclude_patterns, *store.exclude_patterns())))


def check_pattern(pattern: str) -> str:
    """``pattern`` tidied (spaces around it dropped); ``ValueError`` saying what is wrong with it."""
    text = pattern.strip()
    if not text.strip("/*"):
        raise ValueError(f'"{pattern}" would hide every file; give a name such as "drafts" or "*.log".')
    if text.startswith(("/", "~")) or (len(text) > 1 and text[1] == ":"):
        raise ValueError(f'"{pattern}" is an absolute path; patterns are relative to each watched folder, '
                         'e.g. "Archive/2019/**" or "drafts".')
    if "\\" in text:
        raise ValueError(f'"{pattern}" contains "\\"; write folders with "/", e.g. "Archive/2019/**".')
    if "\n" in text or "\0" in text:
        raise ValueError("A pattern is one line of text.")
    return text


def add_patterns(store: Store, patterns: Sequence[str]) -> list[str]:
    """Add the user's patterns (checked first, all or none); returns those that were new."""
    checked = [check_pattern(p) for p in patterns]
    current = list(store.exclude_patterns())
    new = [p for p in dict.fromkeys(checked) if p not in current]
    if new:
        store.set_exclude_patterns(current + new)
    return new


def remove_patterns(store: Store, patterns: Sequence[str]) -> list[str]:
    """Remove some of the user's patterns; returns those that were there. Defaults cannot be removed."""
    current = list(store.exclude_patterns())
    gone = [p for p in dict.fromkeys(x.strip() for x in patterns) if p in current]
    if gone:
        store.set_exclude_patterns([p for p in current if p not in gone])
    return gone


def folder_pattern(folder: Path, roots: Sequence[Path]) -> str | None:
    """The anchored pattern that hides ``folder`` (inside a watched folder), e.g. ``"Mail/old/**"``.

    None when ``folder`` is a watched folder itself or lies outside them all. The pattern is relative, so
    it hides a folder of that name at the same place in every watched folder.
    """
    folder = Path(folder)
    inside = [r for r in roots if folder != r and folder.is_relative_to(r)]
    if not inside:
        return None
    root = max(inside, key=lambda r: len(r.parts))
    return folder.relative_to(root).as_posix() + "/**"


def why_not_indexed(path: Path, *, store: Store, config: Config) -> str | None:
    """None if ``path`` would be indexed, else the reason in words (pattern, type, size, permissions...)."""
    path = Path(path).expanduser()
    reason = would_index(path, roots=store.folders(), patterns=effective_patterns(config, store),
                         max_file_bytes=config.max_file_bytes, suffixes=None)
    if reason is None and not is_supported(path):
        return UNSUPPORTED_TYPE
    return reason
