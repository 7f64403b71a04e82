"""The index file on disk: the writer lock beside it, its health check, SQLite's errors in words, and how
file paths are written in it.

Only the store (``findling.engine.store.store`` and its parts) and the CLI use this. One process at a time indexes an index
file; any number search it. The writer holds ``index.sqlite.lock`` with ``flock`` (``msvcrt.locking`` on
Windows) and writes its process id into it, so a second writer can say who has it. The kernel drops the lock when the holder ends, however it ends
(kill -9 included), so a stale lock file never blocks. Within one process the lock is shared: the process is
the writer, not the connection (the app opens several stores on one index).
"""
from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Callable, TypeVar

from findling.engine.errors import IndexLocked, StoreError

DatabaseError = sqlite3.DatabaseError
"""What SQLite raises for a damaged or unreadable index file; callers outside the store catch it by this name
and turn it into a message with ``explain`` or ``damaged``."""

_ESCAPED_BYTE = re.compile(r"\\x([0-9a-f]{2})")


def path_to_db(path: Path | str) -> str:
    """Path as stored: undecodable bytes of a file name become ``\\xNN`` so SQLite gets valid UTF-8."""
    raw = os.fsencode(str(path))
    return raw.decode("utf-8", "backslashreplace")


def path_from_db(text: str) -> Path:
    """Inverse of ``path_to_db``."""
    if "\\x" not in text:
        return Path(text)
    raw = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text)
    return Path(raw)

log = logging.getLogger(__name__)

_HELD: dict[str, list[int]] = {}  # resolved lock path -> [file descriptor, users in this process]
_HELD_GUARD = threading.Lock()
_WINDOWS_LOCK_OFFSET = 1 << 30  # the byte locked on Windows; the pid stays readable at offset 0
_CHECKED: set[tuple[int, int, int, int]] = set()  # (dev, inode, size, mtime_ns) of files that passed quick_check

F = TypeVar("F", bound=Callable)


class WriterLock:
    """The lock that makes this process the only writer of one index file (see the module docstring)."""

    def __init__(self, db_path: Path) -> None:
        db_path = Path(db_path)
        self.path = db_path.with_name(db_path.name + ".lock")
        self.held = False

    def acquire(self) -> None:
        """Take the lock (a no-op when this object holds it); ``IndexLocked`` when another process has it."""
        if self.held:
            return
        key = os.path.realpath(self.path)
        with _HELD_GUARD:
            entry = _HELD.get(key)
            if entry is None:
                entry = _HELD[key] = [_lock_file(self.path), 0]
            entry[1] += 1
        self.held = True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        key = os.path.realpath(self.path)
        with _HELD_GUARD:
            entry = _HELD.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] <= 0:
                del _HELD[key]
                os.close(entry[0])  # closing the descriptor drops the lock


def _lock_file(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    try:
        _try_lock(fd)
    except OSError:
        holder = _read_pid(fd)
        os.close(fd)
        who = f"another Findling process (pid {holder})" if holder else "another Findling process"
        raise IndexLocked(
            f"{who} is indexing this index ({path.with_suffix('')}); searching still works. "
            "Wait until it finishes or close it, then try again."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _try_lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        os.lseek(fd, 0, os.SEEK_SET)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------------------ health
def check_health(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check`` once per version of the file per process; ``StoreError`` when it is damaged.

    Catches damage in the middle of a file whose header is intact, which SQLite would otherwise only
    notice when a query happens to read the bad page.
    """
    try:
        st = os.stat(path)
    except OSError:
        return
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _CHECKED:
        return
    result = conn.execute("PRAGMA quick_check(5)").fetchall()
    if [r[0] for r in result] != ["ok"]:
        log.error("quick_check of %s: %s", path, "; ".join(r[0] for r in result))
        raise damaged(path, "its pages fail SQLite's consistency check")
    _CHECKED.add(key)


def damaged(path: Path, detail: str) -> StoreError:
    return StoreError(
        f"The index {path} is damaged ({detail}). Run `findling index --rebuild` to move it aside and build a "
        "new one from your files (your folder list is kept)."
    )


# ------------------------------------------------------------------------------------------------ errors
def explain(exc: sqlite3.Error, path: Path) -> StoreError | None:
    """SQLite's error as a ``StoreError`` that says what to do, or None for a programming error."""
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    text = str(exc)
    if code == sqlite3.SQLITE_FULL or "disk is full" in text:
        return StoreError(
            f"The disk holding the index {path} is full. Free some space, then run the same command again: "
            "files indexed so far are kept and the rest are picked up."
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return damaged(path, text)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(f"The index {path} is busy in another program ({text}); try again in a moment.")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
        return StoreError(f"The index {path} cannot be written ({text}); check that its folder is writable.")
    if code == sqlite3.SQLITE_IOERR:
        return StoreError(f"Reading or writing the index {path} failed ({text}); check the disk it is on.")
    return None


def guarded(method: F) -> F:
    """Turn SQLite's operational errors inside a ``Store`` method into ``StoreError`` (see ``explain``)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            mapped = explain(exc, self.path)
            if mapped is None:
                raise
            raise mapped from exc

    return wrapper  # type: ignore[return-value]
