"""The folders dialog: watched folders with per-folder counts, add/remove, and the files that failed; tabs for
exclusions (``exclusions_panel``) and the model (``model_panel``). Removing a folder asks first."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from findling.engine import describe_ocr

from findling.app.backend import Backend
from findling.app.confirm import Chooser, Confirm, ask, choose_folder
from findling.app.exclusions_panel import ExclusionsPanel
from findling.app.model_panel import ModelPanel


class FoldersDialog(QDialog):
    """Lists what the backend watches; changes go through the backend and refresh the lists."""

    def __init__(self, backend: Backend, *, chooser: Chooser = choose_folder, confirm: Confirm = ask,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Folders – Findling")
        self.backend = backend
        self.chooser = chooser
        self.confirm = confirm
        self.folders = self._table(["Folder", "Indexed", "Failed", "Skipped", "Other"])
        self.problems = self._table(["File", "Status", "Reason"])
        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        self.add_button.clicked.connect(self.add_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.problems_title = QLabel()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        folders_page = QWidget()
        layout = QVBoxLayout(folders_page)
        layout.addWidget(QLabel("Watched folders (changes are picked up while Findling runs):"))
        layout.addWidget(self.folders, 2)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(self.problems_title)
        layout.addWidget(self.problems, 3)
        self.ocr_label = QLabel(describe_ocr(backend.config))
        self.ocr_label.setToolTip("OCR reads the text in images and in PDF pages scanned without a text layer")
        layout.addWidget(self.ocr_label)
        self.exclusions = ExclusionsPanel(backend)
        self.model_panel = ModelPanel(backend, confirm=confirm)
        self.tabs = QTabWidget()
        self.tabs.addTab(folders_page, "Folders")
        self.tabs.addTab(self.exclusions, "Exclusions")
        self.tabs.addTab(self.model_panel, "Model")
        outer = QVBoxLayout(self)
        outer.addWidget(self.tabs)
        outer.addWidget(buttons)
        self.folders.itemSelectionChanged.connect(self._update_buttons)
        backend.folders_changed.connect(self.refresh)
        backend.index_finished.connect(self.refresh)
        self.resize(760, 520)
        self.refresh()

    def _table(self, headers: list[str]) -> QTableWidget:
        table = QTableWidget(0, len(headers), self)
        table.setHorizontalHeaderLabels(headers)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(headers)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        if headers[-1] == "Reason":
            header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
            header.setSectionResizeMode(len(headers) - 1, QHeaderView.ResizeMode.Stretch)
        return table

    def refresh(self) -> None:
        summaries = self.backend.folder_summaries()
        self.folders.setRowCount(len(summaries))
        for r, s in enumerate(summaries):
            item = QTableWidgetItem(str(s.path))
            item.setData(Qt.ItemDataRole.UserRole, str(s.path))
            item.setToolTip(str(s.path))
            self.folders.setItem(r, 0, item)
            for c, value in enumerate((s.indexed, s.failed, s.skipped, s.other), start=1):
                cell = QTableWidgetItem(f"{value:,}")
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.folders.setItem(r, c, cell)
        problems = self.backend.problems()
        self.problems_title.setText(f"Files that could not be read ({len(problems)}):" if problems
                                    else "Every file could be read.")
        self.problems.setRowCount(len(problems))
        for r, state in enumerate(problems):
            for c, value in enumerate((str(state.path), state.status, state.reason or "")):
                cell = QTableWidgetItem(value)
                cell.setToolTip(value)
                self.problems.setItem(r, c, cell)
        self.problems.resizeColumnToContents(0)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self.selected_folder() is not None)

    def selected_folder(self) -> Path | None:
        rows = self.folders.selectionModel().selectedRows()
        if not rows:
            return None
        return Path(self.folders.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole))

    def add_folder(self) -> None:
        raw = self.chooser(self)
        if not raw:
            return
        try:
            folder = self.backend.add_folder(raw)
        except ValueError as exc:
            self.message.setText(str(exc))
            return
        self.message.setText(f"Added {folder}; indexing it in the background.")

    def remove_selected(self) -> None:
        folder = self.selected_folder()
        if folder is None:
            return
        summary = next((s for s in self.backend.folder_summaries() if s.path == folder), None)
        files = f"its {summary.total:,} files leave" if summary and summary.total else "its files leave"
        if not self.confirm(self, "Remove folder – Findling",
                            f"Stop watching {folder}?\n\nIt is no longer searched and {files} the index. "
                            "Nothing is deleted from disk; you can add it again later."):
            return
        self.backend.remove_folder(folder)
        self.message.setText(f"Removing {folder} and its files from the index…")
