"""The main window: search box, filter chips, results with preview, status bar; keyboard first.

Typing searches after a short pause (debounced); each search carries a request id and only the answer to
the newest one is shown. Ctrl+L goes back to the search box; the keys on results are in ``result_actions``.
"""
from __future__ import annotations

import logging
import time

from PySide6.QtCore import QModelIndex, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QDesktopServices,
    QKeySequence,
    QPalette,
    QShortcut,
)
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from findling.engine import QueryError, SearchHit, parse_query

from findling.app.backend import Backend
from findling.app.delegate import ResultDelegate
from findling.app.filters import FilterBar
from findling.app.confirm import Chooser, Confirm, ask, choose_folder
from findling.app.folders_dialog import FoldersDialog
from findling.app.highlight import blend
from findling.app.preview import PreviewPane
from findling.app.result_actions import Opener, ResultActions
from findling.app.results_model import ResultsModel, Role
from findling.app.statusbar import StatusBar

log = logging.getLogger(__name__)

DEBOUNCE_MS = 200
REFRESH_WHILE_INDEXING_MS = 2000
RESULTS_K = 50
PLACEHOLDER = ('Search by meaning, e.g.  tax letter 2023   ·   filters: ext:pdf  dir:~/Notes  after:2024-01-01  '
               '"exact phrase"')
MODES = {"Best of both": "hybrid", "Meaning": "maxsim", "Keywords": "bm25"}


def banner_style(palette: QPalette) -> str:
    """A framed notice whose colours come from the palette (light or dark)."""
    window = palette.color(QPalette.ColorRole.Window)
    accent = palette.color(QPalette.ColorRole.Highlight)
    return (f"QLabel#banner {{ background: {blend(window, accent, 0.15).name()}; "
            f"border: 1px solid {blend(window, accent, 0.6).name()}; border-radius: 4px; padding: 6px; }}")


class MainWindow(ResultActions, QMainWindow):
    """See the module docstring. ``opener`` opens a URL, ``chooser`` asks for a folder and ``confirm`` asks
    before destructive actions (all injectable, so tests open and ask nothing)."""

    def __init__(self, backend: Backend, *, settings: QSettings | None = None,
                 opener: Opener = QDesktopServices.openUrl, chooser: Chooser = choose_folder,
                 confirm: Confirm = ask) -> None:
        super().__init__()
        self.setWindowTitle("Findling")
        self.backend = backend
        self.settings = settings
        self.opener = opener
        self.chooser = chooser
        self.confirm = confirm
        self.folders_dialog: FoldersDialog | None = None
        self.model = ResultsModel(self)
        self._request = 0  # id of the newest search we asked for (0: none)
        self._answered = 0  # id of the answer on screen
        self._asked_text = ""  # box text of the newest search
        self._shown_text = ""  # box text of the answer on screen
        self._asked_query = self._shown_query = ""  # the encoded text of those two queries
        self._open_when_answered = False
        self._build()
        self._wire()
        self._restore_settings()
        self._update_empty_state()
        self._update_counts()
        self.search_box.setFocus()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText(PLACEHOLDER)
        self.search_box.setClearButtonEnabled(True)
        font = self.search_box.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.search_box.setFont(font)
        self.mode_box = QComboBox()
        self.mode_box.addItems(list(MODES))
        self.mode_box.setToolTip("Best of both: meaning and keywords combined")
        self.mode_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.folders_button = QPushButton("Folders…")
        self.folders_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.filter_bar = FilterBar()
        self.query_error = QLabel()
        self.query_error.setObjectName("query-error")
        self.query_error.setWordWrap(True)
        self.query_error.hide()
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet(banner_style(self.palette()))
        self.banner.hide()
        self.reencode_button = QPushButton("Re-encode the index")
        self.reencode_button.hide()
        self.info_label = QLabel()

        self.results = QListView()
        self.results.setModel(self.model)
        self.results.setItemDelegate(ResultDelegate(self.results))
        self.results.setUniformItemSizes(True)
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results.setResizeMode(QListView.ResizeMode.Adjust)
        self.results.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.results.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.preview = PreviewPane()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.results)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)

        self.empty_page = QWidget()
        empty = QVBoxLayout(self.empty_page)
        title = QLabel("Add a folder to start")
        big = title.font()
        big.setPointSizeF(big.pointSizeF() * 1.6)
        title.setFont(big)
        hint = QLabel("Findling indexes the documents in the folders you choose and keeps them up to date.\n"
                      "Everything stays on this computer.")
        self.add_folder_button = QPushButton("Add a folder…")
        for w in (title, hint, self.add_folder_button):
            empty.addWidget(w, 0, Qt.AlignmentFlag.AlignHCenter)
        empty.insertStretch(0, 1)
        empty.addStretch(1)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty_page)
        self.pages.addWidget(self.splitter)

        top = QHBoxLayout()
        top.addWidget(self.search_box, 1)
        top.addWidget(self.mode_box)
        top.addWidget(self.folders_button)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.reencode_button)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(top)
        layout.addWidget(self.filter_bar)
        layout.addWidget(self.query_error)
        layout.addLayout(banner_row)
        layout.addWidget(self.info_label)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.resize(1100, 720)

    def _wire(self) -> None:
        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.debounce.timeout.connect(self.run_search)
        self.refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_WHILE_INDEXING_MS)
        self.refresh_timer.timeout.connect(self.refresh_results)
        self.search_box.textEdited.connect(self._schedule_search)
        self.search_box.textChanged.connect(lambda text: None if text else self._schedule_search())
        self.filter_bar.changed.connect(self.run_search)
        self.mode_box.currentIndexChanged.connect(lambda _: self.run_search())
        self.search_box.installEventFilter(self)
        self.results.installEventFilter(self)
        self.results.selectionModel().currentChanged.connect(self._on_current_changed)
        self.results.doubleClicked.connect(lambda _: self.open_current())
        self.results.customContextMenuRequested.connect(self._context_menu)
        self.preview.open_requested.connect(self.open_current)
        self.folders_button.clicked.connect(self.show_folders)
        self.add_folder_button.clicked.connect(self.add_folder)
        self.reencode_button.clicked.connect(self._reencode)
        shortcut = QShortcut(QKeySequence("Ctrl+L"), self)
        shortcut.activated.connect(self.focus_search)
        QShortcut(QKeySequence("Ctrl+,"), self).activated.connect(self.show_folders)

        b = self.backend
        b.model_ready.connect(self._on_model_ready)
        b.model_failed.connect(self._on_model_failed)
        b.results.connect(self.on_results)
        b.search_error.connect(self.on_search_error)
        b.progress.connect(self._on_progress)
        b.index_finished.connect(self._on_index_finished)
        b.index_error.connect(lambda msg: self.show_banner(msg))
        b.indexer_restarted.connect(lambda msg: self.show_banner(msg))
        b.model_mismatch.connect(self._on_mismatch)
        b.folders_changed.connect(self._on_folders_changed)
        b.model_switched.connect(self._on_model_switched)
        self.status.pause_toggled.connect(lambda paused: b.pause() if paused else b.resume())
        self.status.cancel_requested.connect(b.cancel)

    # ------------------------------------------------------------------ searching
    def _schedule_search(self, *_: object) -> None:
        self.debounce.start()

    def current_query(self):
        """The query in the box with the chips merged in; raises ``QueryError``."""
        return parse_query(self.search_box.text()).with_filters(**self.filter_bar.filters().as_kwargs())

    def run_search(self) -> None:
        """Search now for what is in the box (the debounce timer calls this)."""
        self.debounce.stop()
        raw = self.search_box.text().strip()
        try:
            query = self.current_query()
        except QueryError as exc:
            self.query_error.setText(str(exc))
            self.query_error.show()
            return
        self.query_error.hide()
        if not raw or not (query.text or query.phrases):
            self._request = self._answered = 0  # answers still on their way are dropped
            self._shown_text = ""
            self.model.clear()
            self.preview.clear()
            self.info_label.setText("")
            return
        self._asked_text = self.search_box.text()
        self._asked_query = query.text
        self._request = self.backend.search(query, k=RESULTS_K, mode=MODES[self.mode_box.currentText()])

    @property
    def search_pending(self) -> bool:
        """True while typed text waits for the debounce or a search has not been answered yet."""
        return self.debounce.isActive() or self._request != self._answered

    def refresh_results(self) -> None:
        if self.search_box.text().strip() and not self.debounce.isActive():
            self.run_search()

    def on_results(self, request_id: int, hits: list[SearchHit]) -> None:
        if request_id != self._request or request_id != self.backend.latest_request:
            log.debug("dropping stale answer %d (waiting for %d)", request_id, self._request)
            return
        self._answered = request_id
        refresh = self._asked_text == self._shown_text  # same words again (new files, filters): keep the row
        self._shown_text = self._asked_text
        self._shown_query = self._asked_query
        keep = self.current_path() if refresh else None
        self.model.set_hits(hits)
        row = self.model.row_of(keep) if keep is not None else -1
        if hits:
            self.results.setCurrentIndex(self.model.index(max(row, 0)))
        else:
            self.preview.clear()
        self.info_label.setText(f"{len(hits)} result{'s' if len(hits) != 1 else ''}" if hits
                                else self._no_results_text())
        if self._open_when_answered:
            self._open_when_answered = False
            self.open_current()

    def _no_results_text(self) -> str:
        if self.backend.indexing:
            return "No results yet — still indexing; results appear as files are added."
        return "No results. Try other words, or remove filters."

    def on_search_error(self, request_id: int, message: str) -> None:
        if request_id == self._request:
            self._answered = request_id
            self._open_when_answered = False
            self.query_error.setText(message)
            self.query_error.show()

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        hit = self.model.hit(current.row()) if current.isValid() else None
        if hit is None:
            self.preview.clear()
        else:
            self.preview.show_hit(hit, current.data(Role.ChunkSpans) or [], query_text=self._shown_query)

    def clear_search(self) -> None:
        """Esc: clear the box; on an empty box, clear the filter chips too."""
        if not self.search_box.text() and self.filter_bar.filters().active:
            self.filter_bar.clear()
        self.search_box.clear()
        self.run_search()
        self.focus_search()

    def focus_search(self) -> None:
        self.search_box.setFocus()
        self.search_box.selectAll()

    # ------------------------------------------------------------------ backend events
    def _on_model_ready(self, info) -> None:
        self.status.show_model(info)
        self._update_counts()
        if self.search_box.text().strip():
            self.run_search()

    def _on_model_failed(self, message: str) -> None:
        self.status.model_label.setText("No model")
        self.show_banner(message)

    def _on_progress(self, p) -> None:
        self.status.show_progress(p)
        now = time.monotonic()
        if p.indexed and now - self._counts_shown > 2.0:  # counts follow indexing, at most every 2 s
            self._counts_shown = now
            self._update_counts()
        if p.indexed and self.search_box.text().strip() and not self.refresh_timer.isActive():
            self.refresh_timer.start()  # let new files show up while indexing, at a calm pace

    _counts_shown = 0.0

    def _on_index_finished(self, p) -> None:
        self.status.show_progress(p)
        self._update_counts()
        if p.indexed or p.deleted or p.moved:
            self.refresh_results()

    def _on_mismatch(self, message: str) -> None:
        self.show_banner(message)
        self.reencode_button.show()

    def _reencode(self) -> None:
        if not self.confirm(self, "Re-encode – Findling",
                            "Encode every file again with the current model?\n\nThe index is emptied first and "
                            "filled again as files are read; this can take as long as the first indexing did."):
            return
        self.backend.reencode()
        self.reencode_button.hide()
        self.banner.hide()

    def _on_model_switched(self, info) -> None:
        self.statusBar().showMessage(f"The index now uses {info.name}.", 8000)
        self._update_counts()

    def _on_folders_changed(self) -> None:
        self._update_empty_state()
        self._update_counts()
        QTimer.singleShot(0, self.refresh_results)

    def show_banner(self, message: str) -> None:
        self.banner.setText(message)
        self.banner.show()

    def _update_counts(self) -> None:
        try:
            self.status.show_counts(self.backend.stats())
        except Exception:  # counts are cosmetic; never let them break the window
            log.exception("could not read index counts")

    def _update_empty_state(self) -> None:
        has_folders = bool(self.backend.folders())
        self.pages.setCurrentWidget(self.splitter if has_folders else self.empty_page)

    # ------------------------------------------------------------------ folders
    def add_folder(self) -> None:
        raw = self.chooser(self)
        if raw:
            try:
                self.backend.add_folder(raw)
            except ValueError as exc:
                self.show_banner(str(exc))

    def show_folders(self) -> FoldersDialog:
        if self.folders_dialog is None:
            self.folders_dialog = FoldersDialog(self.backend, chooser=self.chooser, confirm=self.confirm, parent=self)
        self.folders_dialog.refresh()
        self.folders_dialog.show()
        self.folders_dialog.raise_()
        return self.folders_dialog

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        if self.settings is None:
            return
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        splitter = self.settings.value("window/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def save_settings(self) -> None:
        if self.settings is not None:
            self.settings.setValue("window/geometry", self.saveGeometry())
            self.settings.setValue("window/splitter", self.splitter.saveState())
            self.settings.sync()

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.hide()  # gone at once, even if a batch has to finish encoding before the threads stop
        self.backend.shutdown()
        super().closeEvent(event)
