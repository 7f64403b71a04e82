"""Filter chips under the search box: file type (any of the checked) and date (at most one).

The chips produce keyword arguments for ``Query.with_filters``, so they combine with filters typed into
the query (``ext:py after:2024-01-01``). The row wraps onto more lines when the window is too narrow for
all the chips, so it never sets the window's minimum width.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLayout, QLayoutItem, QLabel, QToolButton, QWidget

TYPE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "PDF": (".pdf",),
    "Text": (".txt", ".text", ".md", ".markdown", ".rst", ".org", ".adoc", ".tex", ".csv", ".tsv", ".log",
             ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".xml", ".srt", ".vtt", ".epub"),
    "Code": (".py", ".pyi", ".c", ".h", ".cpp", ".hpp", ".cc", ".java", ".js", ".mjs", ".ts", ".tsx", ".jsx",
             ".go", ".rs", ".rb", ".php", ".sh", ".bash", ".sql", ".r", ".jl", ".lua", ".kt", ".swift",
             ".scala", ".cs", ".hs", ".ml", ".ex", ".erl", ".clj", ".dart", ".css", ".scss", ".vue", ".zig"),
    "HTML": (".html", ".htm", ".xhtml", ".xht"),
    "Office": (".docx", ".docm", ".odt", ".rtf"),
    "Slides": (".pptx", ".pptm", ".odp"),
    "Sheets": (".xlsx", ".xlsm", ".ods"),
    "Notebooks": (".ipynb",),
    "Mail": (".eml", ".mbox", ".msg"),
    "Images": (".png", ".jpg", ".jpeg", ".tif", ".tiff"),
}
"""Chip label -> suffixes it selects."""

DATE_RANGES: dict[str, int] = {"Past week": 7, "Past month": 31, "Past year": 366}
"""Chip label -> days back from now."""


def kind_of(suffix: str) -> str:
    """The chip label a suffix belongs to ("Text" for anything unknown)."""
    suffix = suffix.lower()
    for label, suffixes in TYPE_SUFFIXES.items():
        if suffix in suffixes:
            return label
    return "Text"


@dataclass(frozen=True)
class ChipFilters:
    """What the chips select, ready for ``Query.with_filters(**chips.as_kwargs())``."""

    types: tuple[str, ...] = ()
    days: int | None = None

    def as_kwargs(self, *, now: float | None = None) -> dict:
        exts = tuple(s for label in self.types for s in TYPE_SUFFIXES[label])
        after = None
        if self.days is not None:
            after = (time.time() if now is None else now) - self.days * 86400
        return {"exts": exts, "after": after}

    @property
    def active(self) -> bool:
        return bool(self.types) or self.days is not None


def chip_style(palette: QPalette) -> str:
    """Rounded chips; checked ones take the selection colours. Everything comes from the palette."""
    def hex_(role: QPalette.ColorRole) -> str:
        return palette.color(role).name()

    return (
        f"QToolButton {{ border: 1px solid {hex_(QPalette.ColorRole.Mid)}; border-radius: 9px;"
        f" padding: 1px 8px; color: {hex_(QPalette.ColorRole.ButtonText)}; }}"
        f" QToolButton:hover {{ border-color: {hex_(QPalette.ColorRole.Highlight)}; }}"
        f" QToolButton:checked {{ background: {hex_(QPalette.ColorRole.Highlight)};"
        f" color: {hex_(QPalette.ColorRole.HighlightedText)}; border-color: {hex_(QPalette.ColorRole.Highlight)}; }}"
    )


class FlowLayout(QLayout):
    """Lays its items out left to right and starts a new line when the next one does not fit.

    Its height follows its width (``heightForWidth``); its minimum width is that of its widest item.
    """

    def __init__(self, parent: QWidget | None = None, *, spacing: int = 4) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self._breaks: set[int] = set()  # indexes of items that get ``_gap`` extra pixels before them
        self._gap = 0

    def add_space(self, width: int) -> None:
        """Extra ``width`` pixels before the next item when it shares a line with the one before it
        (one width for the whole layout)."""
        self._breaks.add(len(self._items))
        self._gap = width

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 (Qt's name)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802
        width = sum(item.sizeHint().width() + self._spacing for item in self._items)
        width += len(self._breaks) * self._gap
        return QSize(width, self.minimumSize().height())

    def minimumSize(self) -> QSize:  # noqa: N802
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _arrange(self, rect: QRect, *, move: bool) -> int:
        """Place the items inside ``rect`` (when ``move``); return the height they need."""
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        x, y, line_height = area.x(), area.y(), 0
        for index, item in enumerate(self._items):
            hint = item.sizeHint()
            gap = self._gap if index in self._breaks and x > area.x() else 0
            if x + gap + hint.width() > area.right() + 1 and x > area.x():
                x, y, line_height = area.x(), y + line_height + self._spacing, 0
                gap = 0
            x += gap
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._spacing
            line_height = max(line_height, hint.height())
        return y + line_height - rect.y() + margins.bottom()


class FilterBar(QWidget):
    """A row of checkable chips; ``changed`` fires on every toggle."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = FlowLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.type_chips: dict[str, QToolButton] = {}
        self.date_chips: dict[str, QToolButton] = {}
        layout.addWidget(QLabel("Type:"))
        for label in TYPE_SUFFIXES:
            self.type_chips[label] = self._chip(label, layout)
        layout.add_space(12)
        layout.addWidget(QLabel("Modified:"))
        for label in DATE_RANGES:
            self.date_chips[label] = self._chip(label, layout, exclusive=True)
        self.setStyleSheet(chip_style(self.palette()))
        chip_height = next(iter(self.type_chips.values())).sizeHint().height()
        for label in self.findChildren(QLabel):  # centred on the chips' line
            label.setFixedHeight(chip_height)
            label.setAlignment(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)

    def _chip(self, label: str, layout: FlowLayout, *, exclusive: bool = False) -> QToolButton:
        chip = QToolButton(self)
        chip.setText(label)
        chip.setCheckable(True)
        chip.setAutoRaise(True)
        chip.setObjectName(f"chip-{label.lower().replace(' ', '-')}")
        chip.setFocusPolicy(chip.focusPolicy().NoFocus)  # keep keyboard focus in the search box
        chip.toggled.connect(lambda on, c=chip: self._toggled(c, on, exclusive))
        layout.addWidget(chip)
        return chip

    def _toggled(self, chip: QToolButton, on: bool, exclusive: bool) -> None:
        if exclusive and on:
            for other in self.date_chips.values():
                if other is not chip and other.isChecked():
                    other.blockSignals(True)
                    other.setChecked(False)
                    other.blockSignals(False)
        self.changed.emit()

    def filters(self) -> ChipFilters:
        types = tuple(label for label, chip in self.type_chips.items() if chip.isChecked())
        days = next((DATE_RANGES[label] for label, chip in self.date_chips.items() if chip.isChecked()), None)
        return ChipFilters(types, days)

    def clear(self) -> None:
        for chip in [*self.type_chips.values(), *self.date_chips.values()]:
            chip.blockSignals(True)
            chip.setChecked(False)
            chip.blockSignals(False)
        self.changed.emit()
