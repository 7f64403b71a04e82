"""The watched folders of an index (table ``folders``) and their plain backup beside the index file.

``FolderList`` is a mixin of ``findling.engine.store.store.Store``. It relies on the store's ``conn`` (the
connection), ``db`` (its ``Database``, for ``atomic`` transactions), ``path`` (the index file: the backup
lies beside it, and ``guarded`` names it) and ``_bump()`` (the generation counter). Folders are kept as
absolute paths with ``.`` and ``..`` folded (``normal_folder``), as the walker reports file paths. After every
change to the list the backup is rewritten, best effort: ``findling index --rebuild`` recovers the list from it.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path

from findling.engine.store.index_file import guarded, path_from_db, path_to_db
from findling.engine.store.sqlite_lib import Database

log = logging.getLogger(__name__)

BACKUP_SUFFIX = ".folders.json"  # appended to the index file's name


def normal_folder(path: Path | str) -> Path:
    """``path`` made absolute with ``~``, ``.`` and ``..`` folded (lexically, links kept as written)."""
    return Path(os.path.abspath(Path(path).expanduser()))


class FolderList:
    """Adding and removing watched folders (removing one drops its files), and the folder list's backup."""

    conn: sqlite3.Connection
    db: Database
    path: Path

    @property
    def folders_backup(self) -> Path:
        """A plain copy of the folder list beside the index, so ``--rebuild`` can recover it."""
        return self.path.with_name(self.path.name + BACKUP_SUFFIX)

    def _save_folder_list(self) -> None:
        """Best effort: a full disk or a read-only folder costs only the backup, with a warning."""
        tmp = self.folders_backup.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner only, like the index
            with open(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps([path_to_db(p) for p in self.folders()], indent=1))
            os.replace(tmp, self.folders_backup)
        except OSError as exc:
            log.warning("the folder list backup %s was not written: %s", self.folders_backup, exc)

    @guarded
    def add_folder(self, path: Path) -> Path:
        """Watch ``path``, kept absolute with ``.`` and ``..`` folded away (as the walker reports file paths:
        a folder written ``docs/../docs`` would otherwise own none of its files). Returns the path kept."""
        folder = normal_folder(path)
        with self.db.atomic():
            self.conn.execute(
                "INSERT OR IGNORE INTO folders(path, added_at) VALUES (?, ?)", (path_to_db(folder), time.time())
            )
        self._save_folder_list()
        return folder

    @guarded
    def remove_folder(self, path: Path) -> int:
        """Stop watching a folder and drop its files from the index; returns the number of files dropped."""
        key = path_to_db(path)
        with self.db.atomic():
            cur = self.conn.execute("DELETE FROM files WHERE folder = ?", (key,))
            self.conn.execute("DELETE FROM folders WHERE path = ?", (key,))
            self._bump()
        self._save_folder_list()
        return cur.rowcount

    @staticmethod
    def read_folder_backup(db_path: Path) -> list[Path]:
        """The folder list saved beside an index file (empty when there is none)."""
        backup = Path(db_path).with_name(Path(db_path).name + BACKUP_SUFFIX)
        try:
            return [path_from_db(p) for p in json.loads(backup.read_text())]
        except (OSError, ValueError):
            return []

    @guarded
    def folders(self) -> list[Path]:
        return [path_from_db(r[0]) for r in self.conn.execute("SELECT path FROM folders ORDER BY path")]
