"""The preview pane: the matching chunk with every match highlighted, match navigation, and
"Why this result" (each query word's share of the MaxSim score, as small bars)."""
from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from findling.engine import IMAGE_SUFFIXES, SearchHit

from findling.app.delegate import meta_text
from findling.app.highlight import EXACT, Contribution, Span, best_span_index, blend, match_colors, word_contributions

LANE_NAMES = {"maxsim": "meaning (MaxSim)", "bm25": "keywords (BM25)", "dense": "overall topic (dense)"}
OCR_NOTE = "text recognised by OCR; it may hold misread words"


def found_by_text(lanes: Sequence[str]) -> str:
    """The lanes that found a hit, as a reader says them: "a", "a and b", "a, b and c" ("" for none)."""
    names = [LANE_NAMES.get(lane, lane) for lane in lanes]
    return " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]


class ContributionBars(QWidget):
    """One row per query token: "query → document token", a bar for its share, and the percentage."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Contribution] = []
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_rows(self, rows: Sequence[Contribution]) -> None:
        self._rows = list(rows)
        self.updateGeometry()
        self.update()

    def rows(self) -> list[Contribution]:
        return list(self._rows)

    def _row_height(self) -> int:
        return QFontMetrics(self.font()).height() + 6

    def sizeHint(self) -> QSize:
        return QSize(240, max(1, len(self._rows)) * self._row_height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pal = self.palette()
        fm = QFontMetrics(self.font())
        colors = match_colors(pal)
        text = pal.color(QPalette.ColorRole.WindowText)
        track = blend(pal.color(QPalette.ColorRole.Window), text, 0.12)
        h = self._row_height()
        label_w = int(self.width() * 0.42)
        pct_w = fm.horizontalAdvance("100%") + 6
        bar_w = max(20, self.width() - label_w - pct_w - 8)
        for i, row in enumerate(self._rows):
            y = i * h
            label = row.query_token + (f" → {row.doc_token}" if row.doc_token else "")
            painter.setPen(text)
            painter.drawText(0, y, label_w, h, Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(label, Qt.TextElideMode.ElideRight, label_w - 4))
            bar = QRectF(label_w, y + h / 2 - 4, bar_w, 8)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRoundedRect(bar, 3, 3)
            fill = blend(colors[row.kind], text, 0.25) if row.kind == EXACT else colors[row.kind].darker(115)
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(bar.left(), bar.top(), bar.width() * row.share, bar.height()), 3, 3)
            painter.setPen(text)
            painter.drawText(int(bar.right()) + 6, y, pct_w, h, Qt.AlignmentFlag.AlignVCenter,
                             f"{row.share * 100:.0f}%")
        painter.end()


class PreviewPane(QWidget):
    """Shows one hit; ``open_requested`` fires when the user asks to open the file."""

    open_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hit: SearchHit | None = None
        self.spans: list[Span] = []
        self.current = -1
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.path_label = QLabel()
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        self.meta_label = QLabel()
        self.prev_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next ▶")
        self.counter = QLabel()
        self.open_button = QPushButton("Open")
        for b in (self.prev_button, self.next_button, self.open_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.prev_button.clicked.connect(self.previous_match)
        self.next_button.clicked.connect(self.next_match)
        self.open_button.clicked.connect(self.open_requested)
        self.text = QTextEdit()
        self.text.setReadOnly(True)
        self.text.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.why_title = QLabel("Why this result")
        self.why_title.setFont(font)
        self.lanes_label = QLabel()
        self.lanes_label.setWordWrap(True)
        self.bars = ContributionBars()
        self._build_layout()
        self.clear()

    def _build_layout(self) -> None:
        nav = QHBoxLayout()
        nav.addWidget(self.prev_button)
        nav.addWidget(self.next_button)
        nav.addWidget(self.counter)
        nav.addStretch(1)
        nav.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.path_label)
        layout.addWidget(self.meta_label)
        layout.addLayout(nav)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.why_title)
        layout.addWidget(self.lanes_label)
        layout.addWidget(self.bars)

    # ------------------------------------------------------------------ content
    def clear(self) -> None:
        self.hit = None
        self.spans = []
        self.current = -1
        self.title.setText("No result selected")
        self.path_label.setText("")
        self.meta_label.setText("")
        self.text.clear()
        self.lanes_label.setText("")
        self.bars.set_rows([])
        self.why_title.hide()
        self._update_nav()

    def show_hit(self, hit: SearchHit, spans: Sequence[Span], *, query_text: str = "") -> None:
        """Show ``hit``'s chunk with ``spans`` highlighted, scrolled to the strongest match.

        ``query_text`` (the encoded text of the query) lets "Why this result" sum token pieces per word.
        """
        self.hit = hit
        self.spans = list(spans)
        self.title.setText(hit.path.name)
        self.path_label.setText(str(hit.path))
        meta = meta_text(hit.page_label, hit.mtime)
        if hit.ocr or hit.path.suffix.lower() in IMAGE_SUFFIXES:  # recognised from a scan, not read
            meta = " · ".join(filter(None, (meta, OCR_NOTE)))
        self.meta_label.setText(meta)
        self.meta_label.setVisible(bool(meta))
        self.text.setPlainText(hit.chunk_text or hit.snippet)
        found_by = found_by_text(hit.lanes)
        self.lanes_label.setText(f"Found by {found_by}." if found_by else "")
        rows = word_contributions(query_text, hit.alignment)
        self.bars.set_rows(rows)
        self.why_title.show()
        if not rows:
            self.lanes_label.setText(self.lanes_label.text() + " Matched on keywords only; no word-level"
                                     " explanation for this result.")
        self.current = best_span_index(self.spans)
        self._apply_selections()
        self._scroll_to_current()
        self._update_nav()

    # ------------------------------------------------------------------ navigation
    def next_match(self) -> None:
        if self.spans:
            self.current = (self.current + 1) % len(self.spans)
            self._apply_selections()
            self._scroll_to_current()
            self._update_nav()

    def previous_match(self) -> None:
        if self.spans:
            self.current = (self.current - 1) % len(self.spans)
            self._apply_selections()
            self._scroll_to_current()
            self._update_nav()

    def _update_nav(self) -> None:
        n = len(self.spans)
        self.prev_button.setEnabled(n > 1)
        self.next_button.setEnabled(n > 1)
        self.open_button.setEnabled(self.hit is not None)
        self.counter.setText(f"match {self.current + 1} of {n}" if n else ("no highlighted matches"
                                                                            if self.hit else ""))

    def _apply_selections(self) -> None:
        colors = match_colors(self.palette())
        text_color = self.palette().color(QPalette.ColorRole.Text)
        selections = []
        for i, span in enumerate(self.spans):
            sel = QTextEdit.ExtraSelection()
            cursor = QTextCursor(self.text.document())
            cursor.setPosition(span.start)
            cursor.setPosition(span.end, QTextCursor.MoveMode.KeepAnchor)
            fmt = QTextCharFormat()
            color = QColor(colors[span.kind])
            if i == self.current:
                color = blend(color, self.palette().color(QPalette.ColorRole.Highlight), 0.6)
                fmt.setFontUnderline(True)
            fmt.setBackground(color)
            fmt.setForeground(text_color)
            if span.kind == EXACT:
                fmt.setFontWeight(600)
            else:
                fmt.setFontItalic(True)
            sel.cursor = cursor
            sel.format = fmt
            selections.append(sel)
        self.text.setExtraSelections(selections)

    def _scroll_to_current(self) -> None:
        cursor = QTextCursor(self.text.document())
        if 0 <= self.current < len(self.spans):
            cursor.setPosition(self.spans[self.current].start)
        self.text.setTextCursor(cursor)
        bar = self.text.verticalScrollBar()
        rect = self.text.cursorRect(cursor)
        bar.setValue(bar.value() + rect.center().y() - self.text.viewport().height() // 2)

    def current_span(self) -> Span | None:
        return self.spans[self.current] if 0 <= self.current < len(self.spans) else None
