"""Asking before destructive actions, through one injectable callable (tests answer it themselves)."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

Confirm = Callable[[QWidget, str, str], bool]
"""``confirm(parent, title, text)``: True when the user agrees."""

Chooser = Callable[[QWidget], str]
"""Asks the user for a path; returns "" when cancelled."""


def ask(parent: QWidget, title: str, text: str) -> bool:
    """A Yes/No question whose default answer is No."""
    answer = QMessageBox.question(parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def choose_folder(parent: QWidget) -> str:
    return QFileDialog.getExistingDirectory(parent, "Add a folder to search")


def choose_file(parent: QWidget) -> str:
    return QFileDialog.getOpenFileName(parent, "Would this file be indexed?")[0]


def choose_model_folder(parent: QWidget) -> str:
    return QFileDialog.getExistingDirectory(parent, "Choose a model folder (PyLate / ColBERT)")
