"""The status bar: model, indexing progress with pause/resume and cancel, and index counts."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QToolButton, QWidget

from findling.engine import ModelInfo, Phase, Progress


BUSY_PHASES = (Phase.INDEXING, Phase.SCANNING, Phase.REENCODING, Phase.SWAPPING)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_progress(p: Progress) -> str:
    """``Indexing 120/500 · 3.2 files/s · ETA 1:20`` (or what fits the phase)."""
    if p.phase == Phase.SCANNING:
        return f"Scanning {p.current}…" if p.current else "Scanning…"
    if p.phase == Phase.CANCELLED:
        return f"Indexing cancelled at {p.files_done}/{p.files_total}"
    if p.phase == Phase.FAILED:
        return "Indexing stopped by an error"
    if p.phase == Phase.SWAPPING:
        return "Switching to the new model…"
    if p.phase == Phase.REENCODING:
        text = f"Re-encoding for the new model {p.files_done}/{p.files_total}"
        return text + (f" · ETA {format_duration(p.eta_s)}" if p.eta_s is not None else "")
    if p.phase == Phase.DONE:
        text = f"Index up to date · {p.indexed} indexed" if p.files_total else "Index up to date"
        problems = p.failed + p.skipped
        return text + (f" · {problems} could not be read" if problems else "")
    text = f"Indexing {p.files_done}/{p.files_total}"
    if p.files_per_s > 0:
        text += f" · {p.files_per_s:.1f} files/s"
    if p.eta_s is not None:
        text += f" · ETA {format_duration(p.eta_s)}"
    return text


def format_model(info: ModelInfo) -> str:
    """The status bar's short model line; ``model_tooltip`` has the full story."""
    text = f"Model: {info.name}"
    if info.source == "bundled":
        text += " (bundled fallback: results are rougher than with the full model; hover for details)"
    return text


def model_tooltip(info: ModelInfo) -> str:
    return "\n".join(part for part in (f"{info.name} ({info.source})", info.path, info.note) if part)


def format_counts(stats: dict) -> str:
    files = stats.get("files", {}) or {}
    indexed = files.get("indexed", 0)
    problems = files.get("failed", 0) + files.get("skipped", 0)
    folders = stats.get("folders", 0)
    text = f"{indexed:,} files · {stats.get('chunks', 0):,} chunks · {folders} folder{'' if folders == 1 else 's'}"
    return text + (f" · {problems:,} unreadable" if problems else "")


class StatusBar(QStatusBar):
    """Emits ``pause_toggled(paused)`` and ``cancel_requested``; the window wires them to the backend."""

    pause_toggled = Signal(bool)
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_label = QLabel("Loading model…")
        self.model_label.setMinimumWidth(1)  # a long model name never widens the window
        self.model_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress_label = QLabel("")
        self.counts_label = QLabel("")
        self._last: Progress | None = None
        self.counts_label.setContentsMargins(12, 0, 4, 0)
        self.pause_button = QToolButton()
        self.pause_button.setText("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pause or resume indexing (searching keeps working)")
        self.pause_button.toggled.connect(self._on_pause)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop this indexing run; new changes are still picked up")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.addWidget(self.model_label, 1)
        self.addPermanentWidget(self.progress_label)
        self.addPermanentWidget(self.pause_button)
        self.addPermanentWidget(self.cancel_button)
        self.addPermanentWidget(self.counts_label)
        self.set_busy(False)

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)
        if self._last is not None:
            self.show_progress(self._last)

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setVisible(busy)
        self.pause_button.setVisible(busy or self.pause_button.isChecked())

    def show_model(self, info: ModelInfo) -> None:
        self.model_label.setText(format_model(info))
        self.model_label.setToolTip(model_tooltip(info))

    def show_progress(self, p: Progress) -> None:
        self._last = p
        text = format_progress(p)
        if self.pause_button.isChecked() and p.phase in BUSY_PHASES:
            text += " · paused"
        self.progress_label.setText(text)
        self.set_busy(p.phase in BUSY_PHASES)

    def show_counts(self, stats: dict) -> None:
        self.counts_label.setText(format_counts(stats))
