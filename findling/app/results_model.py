"""The result list: one row per ``SearchHit``, exposed through named roles."""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QByteArray, QModelIndex, QPersistentModelIndex, Qt

from findling.engine import SearchHit

from findling.app.highlight import Span, chunk_spans, snippet_spans


class Role(enum.IntEnum):
    """Named roles; ``roleNames()`` gives them to views and QML alike."""

    Path = Qt.ItemDataRole.UserRole + 1
    Name = enum.auto()
    Folder = enum.auto()
    Page = enum.auto()
    Snippet = enum.auto()
    Score = enum.auto()
    Relevance = enum.auto()  # score relative to the best hit, 0..1
    Mtime = enum.auto()
    Lanes = enum.auto()
    Alignment = enum.auto()
    SnippetSpans = enum.auto()  # list[Span] inside the snippet
    ChunkSpans = enum.auto()  # list[Span] inside the chunk text
    Hit = enum.auto()
    PageLabel = enum.auto()  # "p. 3", "slide 12", "sheet 2", "cell 7" (SearchHit.page_label)


@dataclass(frozen=True)
class _Row:
    hit: SearchHit
    relevance: float
    chunk_spans: list[Span]
    snippet_spans: list[Span]


class ResultsModel(QAbstractListModel):
    """Holds the hits of the newest answered search; replaced as a whole by ``set_hits``."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[_Row] = []

    # ------------------------------------------------------------------ Qt API
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.parent().isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        hit = row.hit
        if role in (Qt.ItemDataRole.DisplayRole, Role.Name):
            return hit.path.name
        if role in (Qt.ItemDataRole.ToolTipRole, Role.Path):
            return str(hit.path)
        values = {
            Role.Folder: lambda: str(hit.path.parent),
            Role.Page: lambda: hit.page,
            Role.Snippet: lambda: hit.snippet,
            Role.Score: lambda: hit.score,
            Role.Relevance: lambda: row.relevance,
            Role.Mtime: lambda: hit.mtime,
            Role.Lanes: lambda: list(hit.lanes),
            Role.Alignment: lambda: list(hit.alignment),
            Role.SnippetSpans: lambda: row.snippet_spans,
            Role.ChunkSpans: lambda: row.chunk_spans,
            Role.Hit: lambda: hit,
            Role.PageLabel: lambda: hit.page_label,
        }
        get = values.get(role)
        return get() if get is not None else None

    def roleNames(self) -> dict[int, QByteArray]:
        names = {int(r): QByteArray(r.name[0].lower() + r.name[1:]) for r in Role}
        names[int(Qt.ItemDataRole.DisplayRole)] = QByteArray(b"display")
        names[int(Qt.ItemDataRole.ToolTipRole)] = QByteArray(b"toolTip")
        return names

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    # ------------------------------------------------------------------ ours
    def set_hits(self, hits: Sequence[SearchHit]) -> None:
        top = max((h.score for h in hits), default=0.0)
        rows = []
        for h in hits:
            spans = chunk_spans(h.alignment)
            rel = h.score / top if top > 0 else 0.0
            rows.append(_Row(h, max(0.0, min(1.0, rel)), spans, snippet_spans(h, spans)))
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def clear(self) -> None:
        self.set_hits([])

    def hit(self, row: int) -> SearchHit | None:
        return self._rows[row].hit if 0 <= row < len(self._rows) else None

    def hits(self) -> list[SearchHit]:
        return [r.hit for r in self._rows]

    def row_of(self, path: Path) -> int:
        for i, r in enumerate(self._rows):
            if r.hit.path == path:
                return i
        return -1
