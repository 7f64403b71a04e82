"""What can be done with the current result: open, show in folder, copy the path, re-index, exclude.

A mixin for ``MainWindow``; it uses the window's ``results`` view, ``model``, ``backend``, ``opener``,
``settings``, ``show_banner`` and ``run_search``. The same actions are in the results' context menu.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMenu

from engine import SearchHit

Opener = Callable[[QUrl], bool]
"""Opens a file or folder URL (``QDesktopServices.openUrl``; tests pass a recorder)."""


class ResultActions:
    """Actions on the current result; see the module docstring."""

    def current_hit(self) -> SearchHit | None:
        index = self.results.currentIndex()
        return self.model.hit(index.row()) if index.isValid() else None

    def current_path(self) -> Path | None:
        hit = self.current_hit()
        return hit.path if hit is not None else None

    def open_current(self) -> None:
        path = self.current_path()
        if path is not None:
            self.opener(QUrl.fromLocalFile(str(path)))

    def reveal_current(self) -> None:
        path = self.current_path()
        if path is not None:
            self.opener(QUrl.fromLocalFile(str(path.parent)))

    def copy_current_path(self) -> None:
        path = self.current_path()
        if path is not None:
            QGuiApplication.clipboard().setText(str(path))
            self.statusBar().showMessage(f"Copied {path}", 3000)

    def _context_menu(self, pos) -> None:
        index = self.results.indexAt(pos)
        if not index.isValid():
            return
        self.results.setCurrentIndex(index)
        menu = self.build_context_menu()
        menu.exec(self.results.viewport().mapToGlobal(pos))

    def build_context_menu(self) -> QMenu:
        menu = QMenu(self)
        for text, keys, slot in (("Open", "Return", self.open_current),
                                 ("Show in folder", "Ctrl+Return", self.reveal_current),
                                 ("Copy path", "Ctrl+C", self.copy_current_path)):
            action = QAction(text, menu)
            action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction("Re-index this file", self.reindex_current)
        menu.addAction("Exclude this folder", self.exclude_current_folder)
        return menu

    def reindex_current(self) -> None:
        path = self.current_path()
        if path is not None:
            self.backend.reindex_file(path)
            self.statusBar().showMessage(f"Re-indexing {path.name}…", 3000)

    def exclude_current_folder(self) -> None:
        path = self.current_path()
        if path is None:
            return
        pattern = self.backend.exclude_folder(path.parent)
        if pattern is None:
            self.show_banner(f"{path.parent} is a watched folder; remove it in Folders… instead.")
            return
        if self.settings is not None:
            patterns = list(self.settings.value("index/extra_excludes", [], type=list) or [])
            self.settings.setValue("index/extra_excludes", sorted(set(patterns) | {pattern}))
        self.statusBar().showMessage(f"Excluded {path.parent}; its files leave the index.", 5000)
        QTimer.singleShot(0, self.run_search)
