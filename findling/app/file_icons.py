"""File-type icons from the system, with the delegate's drawn badges as the fallback.

On Linux the icon comes from the desktop's icon theme, found through the file's MIME type (judged by its
name only: the file is never opened). On Windows and macOS ``QFileIconProvider`` asks the system. When the
theme has no icon for a type (or there is no theme, as offscreen), ``icon_for`` returns None and the
delegate draws its coloured badge. Icons are looked up once per suffix.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFileInfo, QMimeDatabase
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QFileIconProvider

ThemeLookup = Callable[[str], QIcon]
"""An icon by theme name (``QIcon.fromTheme``; tests pass their own)."""


class FileIcons:
    """``icon_for(path)``: the system's icon for the file's type, or None (then draw a badge)."""

    def __init__(self, *, theme: ThemeLookup | None = None, use_provider: bool | None = None) -> None:
        self._theme = theme if theme is not None else QIcon.fromTheme
        self._use_provider = sys.platform in ("win32", "darwin") if use_provider is None else use_provider
        self._mimes: QMimeDatabase | None = None  # made on first use: start-up stays quick
        self._provider: QFileIconProvider | None = None
        self._cache: dict[str, QIcon | None] = {}

    def icon_for(self, path: Path) -> QIcon | None:
        key = path.suffix.lower() or path.name.lower()
        if key not in self._cache:
            self._cache[key] = self._look_up(path)
        return self._cache[key]

    def _look_up(self, path: Path) -> QIcon | None:
        if self._use_provider:
            if self._provider is None:
                self._provider = QFileIconProvider()
            icon = self._provider.icon(QFileInfo(str(path)))
            return None if icon.isNull() else icon
        if self._mimes is None:
            self._mimes = QMimeDatabase()
        mime = self._mimes.mimeTypeForFile(str(path), QMimeDatabase.MatchMode.MatchExtension)
        for name in (mime.iconName(), mime.genericIconName()):
            if name and mime.name() != "application/octet-stream":
                icon = self._theme(name)
                if not icon.isNull():
                    return icon
        return None
