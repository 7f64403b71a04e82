"""How one result row is painted: type icon, name, folder, page and date, relevance bar, snippet.

The type icon is the system's (``file_icons``); where the system has none, a coloured badge with the
suffix is drawn instead.

Matched words in the snippet are highlighted, exact matches and meaning matches in two colours; every
colour is derived from the palette so the list follows the system's light or dark theme.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QFont, QFontMetrics, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from findling.app.file_icons import FileIcons
from findling.app.filters import kind_of
from findling.app.highlight import blend, match_colors, spans_to_html
from findling.app.results_model import Role

PAD = 8
BADGE = 34
SNIPPET_LINES = 2
BAR_WIDTH = 56
_BADGE_HUES = {"PDF": 0, "Text": 210, "Code": 130, "HTML": 30, "Office": 260, "Slides": 15, "Sheets": 100,
               "Notebooks": 45, "Mail": 190, "Images": 300}


def format_date(mtime: float) -> str:
    if not mtime:
        return ""
    return datetime.fromtimestamp(mtime).strftime("%d %b %Y").lstrip("0")


def meta_text(page_label: str, mtime: float) -> str:
    """``"slide 12 · 3 Mar 2024"``: where the hit is in its file (``SearchHit.page_label``) and its date."""
    parts = [page_label] if page_label else []
    if mtime:
        parts.append(format_date(mtime))
    return " · ".join(parts)


class ResultDelegate(QStyledItemDelegate):
    """Paints ``ResultsModel`` rows; see the module docstring."""

    def __init__(self, parent=None, *, icons: FileIcons | None = None) -> None:
        super().__init__(parent)
        self.icons = icons if icons is not None else FileIcons()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        fm = QFontMetrics(option.font)
        height = PAD * 2 + fm.height() * 2 + fm.lineSpacing() * SNIPPET_LINES + 8
        return QSize(240, max(height, BADGE + PAD * 2))  # the view gives each row its full width

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        painter.save()
        if style is not None:  # selection and hover background as the platform draws it
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        pal = opt.palette
        text_color = pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        dim_color = blend(text_color, pal.color(QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.Base),
                          0.4)
        rect = opt.rect.adjusted(PAD, PAD, -PAD, -PAD)
        path = Path(index.data(Role.Path) or "")
        self._paint_type(painter, QRect(rect.left(), rect.top(), BADGE, BADGE), path, pal)
        body = rect.adjusted(BADGE + PAD, 0, 0, 0)
        fm = QFontMetrics(opt.font)
        line = fm.height()

        meta = meta_text(index.data(Role.PageLabel) or "", index.data(Role.Mtime) or 0.0)
        meta_w = max(fm.horizontalAdvance(meta), BAR_WIDTH)
        painter.setPen(dim_color)
        painter.setFont(opt.font)
        painter.drawText(QRect(body.right() - meta_w, body.top(), meta_w, line),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, meta)
        self._paint_bar(painter, QRect(body.right() - BAR_WIDTH, body.top() + line + line // 2 - 2, BAR_WIDTH, 4),
                        float(index.data(Role.Relevance) or 0.0), pal, selected)

        bold = QFont(opt.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text_color)
        name_rect = QRect(body.left(), body.top(), body.width() - meta_w - PAD, line)
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         QFontMetrics(bold).elidedText(path.name, Qt.TextElideMode.ElideMiddle, name_rect.width()))
        painter.setFont(opt.font)
        painter.setPen(dim_color)
        folder_rect = QRect(body.left(), body.top() + line, body.width() - BAR_WIDTH - PAD, line)
        painter.drawText(folder_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(str(path.parent), Qt.TextElideMode.ElideMiddle, folder_rect.width()))

        snippet_rect = QRect(body.left(), body.top() + 2 * line + 4, body.width(),
                             fm.lineSpacing() * SNIPPET_LINES + 4)
        self._paint_snippet(painter, snippet_rect, index, opt, text_color)
        painter.restore()

    def _paint_type(self, painter: QPainter, rect: QRect, path: Path, pal: QPalette) -> None:
        icon = self.icons.icon_for(path)
        if icon is None:
            self._paint_badge(painter, rect, path.suffix, pal)
        else:
            icon.paint(painter, rect, Qt.AlignmentFlag.AlignCenter)

    def _paint_badge(self, painter: QPainter, rect: QRect, suffix: str, pal: QPalette) -> None:
        hue = _BADGE_HUES.get(kind_of(suffix), 210)
        dark = pal.color(QPalette.ColorRole.Base).lightness() < 128
        fill = QColor.fromHsl(hue, 120, 70 if dark else 205)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(rect), 6, 6)
        label = (suffix.lstrip(".") or "file").upper()[:4]
        font = QFont(painter.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.7))
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor.fromHsl(hue, 90, 225 if dark else 60))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)

    def _paint_bar(self, painter: QPainter, rect: QRect, relevance: float, pal: QPalette, selected: bool) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        track = blend(pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text), 0.15)
        painter.setBrush(track)
        painter.drawRoundedRect(QRectF(rect), 2, 2)
        fill = pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Highlight)
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(rect.left(), rect.top(), rect.width() * relevance, rect.height()), 2, 2)

    def _paint_snippet(self, painter: QPainter, rect: QRect, index, opt: QStyleOptionViewItem,
                       text_color: QColor) -> None:
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        doc.setDefaultFont(opt.font)
        doc.setTextWidth(rect.width())
        colors = match_colors(opt.palette)
        base_text = opt.palette.color(QPalette.ColorRole.Text)
        doc.setHtml(spans_to_html(index.data(Role.Snippet) or "", index.data(Role.SnippetSpans) or [], colors,
                                  text_color=base_text))
        doc.documentLayout()  # lays the text out
        layout = doc.firstBlock().layout()
        lines = min(SNIPPET_LINES, layout.lineCount())
        height = layout.lineAt(lines - 1).rect().bottom() if lines else 0  # whole lines only, never a sliver
        painter.save()
        painter.translate(rect.topLeft())
        clip = QRectF(0, 0, rect.width(), min(height, rect.height()))
        painter.setClipRect(clip)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette.setColor(QPalette.ColorRole.Text, text_color)
        ctx.clip = clip
        doc.documentLayout().draw(painter, ctx)
        painter.restore()
