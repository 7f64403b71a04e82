"""System file-type icons in the results, with the drawn badge where the system has none."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPixmap

from findling.app.delegate import BADGE, PAD
from findling.app.file_icons import FileIcons
from tests.app.conftest import search

RED = QColor(220, 0, 0)


def _red_icon() -> QIcon:
    pixmap = QPixmap(64, 64)
    pixmap.fill(RED)
    return QIcon(pixmap)


class Theme(list):
    """A fake icon theme that has only ``names``; records what was asked."""

    def __init__(self, *names: str) -> None:
        super().__init__()
        self.names = names

    def __call__(self, name: str) -> QIcon:
        self.append(name)
        return _red_icon() if name in self.names else QIcon()


def test_icons_come_from_the_theme_by_mime_type_and_are_looked_up_once(qtbot):
    theme = Theme("application-pdf")
    icons = FileIcons(theme=theme, use_provider=False)
    assert icons.icon_for(Path("/x/report.PDF")) is not None
    assert icons.icon_for(Path("/y/other.pdf")) is not None
    assert theme == ["application-pdf"]  # once per suffix, and the file itself is never opened
    assert icons.icon_for(Path("/x/notes.txt")) is None  # the theme has no text icon: draw the badge
    assert theme[1:] == ["text-plain", "text-x-generic"]
    assert icons.icon_for(Path("/x/blob.zzqq")) is None  # unknown type: the badge, no theme lookup
    assert theme[-1] == "text-x-generic"


def _pixel_at_icon(window, row: int) -> QColor:
    rect = window.results.visualRect(window.model.index(row))
    image = window.results.viewport().grab().toImage()
    return image.pixelColor(rect.left() + PAD + BADGE // 2, rect.top() + PAD + BADGE // 2)


def test_rows_show_the_system_icon_or_fall_back_to_the_badge(make_window, docs, qtbot):
    window = make_window(docs)
    window.results.itemDelegate().icons = FileIcons(theme=Theme("text-plain"), use_provider=False)
    paths = search(qtbot, window, "tomatoes csv module")
    txt, md = paths.index(docs / "garden.txt"), paths.index(docs / "notes" / "csv.md")
    assert _pixel_at_icon(window, txt) == RED
    assert _pixel_at_icon(window, md) != RED  # the drawn badge
