"""The exclusions tab of the folders dialog: the patterns in effect, your own to add and remove, and a tester.

Patterns live in the index (the engine's ``Store.exclude_patterns``), so ``findling exclude`` on the command
line and this tab edit the same list. The tester answers "would this file be indexed?" with the engine's own
reason: a pattern (named), an unsupported type, the size limit, permissions, or outside the watched folders.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from findling.engine import FileStatus

from findling.app.backend import Backend
from findling.app.confirm import Chooser, choose_file

INTRO = ("Files and folders matching these patterns are not indexed (they stay on disk). A name such as "
         "<code>drafts</code> or <code>*.log</code> matches at any depth; a pattern with <code>/</code>, such "
         "as <code>Archive/2019/**</code>, starts at each watched folder.")


class ExclusionsPanel(QWidget):
    """See the module docstring; ``file_chooser`` picks a file for the tester (injectable)."""

    def __init__(self, backend: Backend, *, file_chooser: Chooser = choose_file,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.file_chooser = file_chooser
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.patterns = QListWidget()
        self.pattern_edit = QLineEdit()
        self.pattern_edit.setPlaceholderText("New pattern, e.g. drafts  or  *.log  or  Archive/2019/**")
        self.add_button = QPushButton("Exclude")
        self.remove_button = QPushButton("Remove")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.test_edit = QLineEdit()
        self.test_edit.setPlaceholderText("Path of a file")
        self.browse_button = QPushButton("Browse…")
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        edit_row = QHBoxLayout()
        edit_row.addWidget(self.pattern_edit, 1)
        edit_row.addWidget(self.add_button)
        edit_row.addWidget(self.remove_button)
        tester = QGroupBox("Would this file be indexed?")
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_edit, 1)
        test_row.addWidget(self.browse_button)
        test_layout = QVBoxLayout(tester)
        test_layout.addLayout(test_row)
        test_layout.addWidget(self.verdict)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.patterns, 1)
        layout.addLayout(edit_row)
        layout.addWidget(self.message)
        layout.addWidget(tester)

        self.add_button.clicked.connect(self.add_pattern)
        self.pattern_edit.returnPressed.connect(self.add_pattern)
        self.remove_button.clicked.connect(self.remove_selected)
        self.browse_button.clicked.connect(self.browse)
        self.test_edit.textChanged.connect(lambda _: self.check_path())
        self.patterns.itemSelectionChanged.connect(self._update_buttons)
        backend.exclusions_changed.connect(self.refresh)
        backend.folders_changed.connect(self.check_path)
        backend.index_finished.connect(lambda _p: self.check_path())
        self.refresh()

    def refresh(self) -> None:
        builtin, yours = self.backend.exclude_patterns()
        self.patterns.clear()
        grey = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        for pattern in yours:
            item = QListWidgetItem(pattern)
            item.setData(Qt.ItemDataRole.UserRole, pattern)
            self.patterns.addItem(item)
        for pattern in builtin:
            item = QListWidgetItem(f"{pattern}    (built in)")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)  # shown, not selectable: built-in patterns always apply
            item.setForeground(grey)
            self.patterns.addItem(item)
        self._update_buttons()
        self.check_path()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self.selected_pattern() is not None)

    def selected_pattern(self) -> str | None:
        items = self.patterns.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def add_pattern(self) -> None:
        text = self.pattern_edit.text()
        try:
            pattern = self.backend.add_exclude(text)
        except ValueError as exc:
            self.message.setText(str(exc))
            return
        self.pattern_edit.clear()
        self.message.setText(f"Excluding {pattern}: matching files leave the index (they stay on disk).")

    def remove_selected(self) -> None:
        pattern = self.selected_pattern()
        if pattern is None:
            return
        self.backend.remove_exclude(pattern)
        self.message.setText(f"No longer excluding {pattern}: matching files are indexed again.")

    def browse(self) -> None:
        raw = self.file_chooser(self)
        if raw:
            self.test_edit.setText(raw)

    def check_path(self) -> None:
        raw = self.test_edit.text().strip()
        if not raw:
            self.verdict.setText("")
            return
        path = Path(raw).expanduser()
        reason = self.backend.why_not_indexed(path)
        if reason is not None:
            self.verdict.setText(f"Not indexed: {reason}.")
            return
        state = self.backend.file_state(path)
        if state is not None and state.status == FileStatus.INDEXED:
            self.verdict.setText("Indexed.")
        elif state is not None and state.status in (FileStatus.FAILED, FileStatus.SKIPPED):
            self.verdict.setText(f"Would be indexed, but it could not be read: {state.reason}.")
        else:
            self.verdict.setText("Would be indexed; it is not in the index yet (indexing picks it up).")
