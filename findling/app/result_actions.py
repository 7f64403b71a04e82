"""What can be done with the current result, by key and by context menu.

Keys (also while the search box has focus): Up/Down/PageUp/PageDown move in the results, Enter opens
(right after typing: the first result, once the search is answered), Ctrl+Enter shows the file in its
folder, Ctrl+C copies the path (unless text is selected in the box), Esc clears. The context menu adds
"Re-index this file" and "Exclude this folder" (an exclude pattern kept in the index, listed in the
folders dialog).

A mixin for ``MainWindow``; it uses the window's ``search_box``, ``results`` view, ``model``, ``backend``,
``opener``, ``show_banner``, ``run_search``, ``search_pending`` and ``clear_search``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QMenu

from findling.engine import SearchHit

Opener = Callable[[QUrl], bool]
"""Opens a file or folder URL (``QDesktopServices.openUrl``; tests pass a recorder)."""
_NAV_KEYS = (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown)


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
        self.statusBar().showMessage(f"Excluded {path.parent} (pattern {pattern}); its files leave the index. "
                                     "Undo in Folders… › Exclusions.", 8000)
        QTimer.singleShot(0, self.run_search)

    # ------------------------------------------------------------------ keyboard
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and obj in (self.search_box, self.results):
            return self._key(obj, event)
        return super().eventFilter(obj, event)

    def _key(self, obj: QObject, event: QKeyEvent) -> bool:
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if ctrl:
                self.reveal_current()
            elif self.search_pending:
                if self.debounce.isActive():
                    self.run_search()
                self._open_when_answered = self.search_pending  # open the first result once answered
            else:
                self.open_current()
            return True
        if key == Qt.Key.Key_Escape:
            self.clear_search()
            return True
        if ctrl and key == Qt.Key.Key_C and not (obj is self.search_box and self.search_box.hasSelectedText()):
            self.copy_current_path()
            return True
        if obj is self.search_box and key in _NAV_KEYS and self.model.rowCount():
            if not self.results.currentIndex().isValid():
                self.results.setCurrentIndex(self.model.index(0))
            else:
                self.results.event(QKeyEvent(event.type(), key, mods, event.text()))
            return True
        return False
