"""The model tab of the folders dialog: which model searches, where it came from, and switching to another.

Switching re-encodes the text already in the index with the new model, in the background, into a new file
beside the index; searches keep using the current model and index until the new one is swapped in (see
``findling.engine.index.reencode``). The choice is recorded in the index, so the CLI and the next start use it too.
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from findling.engine import ModelInfo, Phase

from findling.app.backend import Backend
from findling.app.confirm import Chooser, Confirm, ask, choose_model_folder

SOURCES = {
    "user": "chosen by you",
    "hf-cache": "the default model, from the Hugging Face cache on this computer",
    "bundled": "the bundled fallback model (the default model is not on this computer)",
}
SWITCH_TEXT = ("Re-encode the index with {name}?\n\nEvery piece of text in the index is encoded again with the "
               "new model, in the background; this can take about as long as the first indexing did. Searches keep "
               "using the current model until the new index is ready. While it is built, the new index needs about "
               "as much disk space as the current one.")


def describe(info: ModelInfo | None, choice: str | None) -> str:
    """Rich text: the model's name, where it came from, its folder, and any note."""
    if info is None:
        return "Loading the model…"
    source = SOURCES.get(info.source, info.source)
    if choice and info.source == "user":
        source = "chosen with “Use another model…” or <code>findling model use</code>"
    parts = [f"<b>{html.escape(info.name)}</b> — {source}", f"{info.dim}-dimensional token vectors"]
    if info.path:
        parts.append(f"Folder: <code>{html.escape(info.path)}</code>")
    if info.note:
        parts.append(html.escape(info.note))
    return "<br>".join(parts)


class ModelPanel(QWidget):
    """See the module docstring; ``chooser`` picks a model folder, ``confirm`` asks first (both injectable)."""

    def __init__(self, backend: Backend, *, chooser: Chooser = choose_model_folder, confirm: Confirm = ask,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.chooser = chooser
        self.confirm = confirm
        self.switching = False
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use another model…")
        self.use_button.setToolTip("Pick a PyLate (ColBERT) model folder; the index is re-encoded in the background")
        self.default_button = QPushButton("Back to the default model")
        self.message = QLabel()
        self.message.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.use_button)
        row.addWidget(self.default_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Searching with:"))
        layout.addWidget(self.model_label)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.use_button.clicked.connect(self.choose_model)
        self.default_button.clicked.connect(self.use_default)
        backend.model_ready.connect(lambda _info: self.refresh())
        backend.model_switched.connect(self._on_switched)
        backend.progress.connect(self._on_progress)
        backend.index_error.connect(self._on_error)
        backend.index_finished.connect(self._on_finished)
        self.refresh()

    def refresh(self) -> None:
        choice = self.backend.model_choice
        self.model_label.setText(describe(self.backend.model_info, choice))
        self.default_button.setEnabled(bool(choice))

    def choose_model(self) -> None:
        raw = self.chooser(self)
        if raw:
            self.switch_to(raw)

    def use_default(self) -> None:
        self.switch_to(None)

    def switch_to(self, choice: str | None) -> bool:
        """Ask, then start the switch; returns whether it was started."""
        name = choice or "the default model"
        if not self.confirm(self, "Switch model – Findling", SWITCH_TEXT.format(name=name)):
            self.message.setText("")
            return False
        self.backend.switch_model(choice)
        self.switching = True
        self.message.setText(f"Re-encoding the index with {name} in the background; searches use the current "
                             "model until it is done. Progress is in the status bar.")
        return True

    def _on_progress(self, p) -> None:
        if p.phase == Phase.REENCODING and p.files_total:
            self.message.setText(f"Re-encoding: {p.files_done:,} of {p.files_total:,} files. Searches use the "
                                 "current model until it is done.")

    def _on_error(self, message: str) -> None:
        if self.switching:
            self.switching = False
            self.message.setText(f"The switch did not happen: {message}")

    def _on_finished(self, p) -> None:
        if self.switching and p.phase == Phase.CANCELLED:
            self.switching = False
            self.message.setText("Re-encoding was cancelled; the current model stays. Choosing the same model "
                                 "again continues where it stopped.")

    def _on_switched(self, info) -> None:
        self.switching = False
        self.message.setText(f"The index now uses {info.name}.")
        self.refresh()
