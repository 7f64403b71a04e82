"""The main window over a real index: typing, stale answers, keyboard, filters, preview, settings."""
from __future__ import annotations

import os
import time

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication

from findling.app.highlight import EXACT
from findling.app.window import MainWindow
from findling.engine import Store
from tests.app.conftest import WAIT_MS, backend_of_another_model, search


def test_window_starts_focused_with_an_explained_search_box(make_window, qtbot):
    window = make_window(wait_index=False)
    qtbot.waitUntil(lambda: window.search_box.hasFocus(), timeout=WAIT_MS)
    assert "ext:" in window.search_box.placeholderText()
    assert "fake-encoder" in window.status.model_label.text()


def test_empty_state_until_a_folder_is_added(make_window, docs, qtbot):
    window = make_window(wait_index=False, chooser=lambda parent: str(docs))
    assert window.pages.currentWidget() is window.empty_page
    qtbot.mouseClick(window.add_folder_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentWidget() is window.splitter
    qtbot.waitUntil(lambda: window.backend.index_idle, timeout=WAIT_MS)
    assert search(qtbot, window, "tomatoes basil")[0] == docs / "garden.txt"


def test_typing_a_query_finds_the_right_file(make_window, docs, qtbot):
    window = make_window(docs)
    paths = search(qtbot, window, "read write csv files")
    assert paths[0] == docs / "notes" / "csv.md"
    assert all(p.name != "secret.txt" for p in paths)
    assert window.results.currentIndex().row() == 0  # the best hit is selected and previewed
    assert window.preview.hit.path == docs / "notes" / "csv.md"
    assert "result" in window.info_label.text()


def test_a_stale_answer_is_dropped(make_window, docs, qtbot):
    window = make_window(docs)
    backend = window.backend
    first = search(qtbot, window, "tomatoes")
    old_id = backend.latest_request
    old_hits = list(window.model.hits())
    assert first[0] == docs / "garden.txt"
    assert search(qtbot, window, "json documents")[0] == docs / "notes" / "json.md"
    backend.results.emit(old_id, old_hits)  # the older answer arrives last
    qtbot.wait(50)
    assert window.model.hits()[0].path == docs / "notes" / "json.md"


def test_answers_to_superseded_requests_are_ignored_even_when_they_come_first(make_window, docs, qtbot):
    window = make_window(docs)
    backend = window.backend
    search(qtbot, window, "tomatoes")
    garden_hits = list(window.model.hits())
    window.search_box.setText("json documents")
    window.run_search()
    newest = backend.latest_request
    backend.results.emit(newest - 1, garden_hits)  # an answer to an older request, before the newest one
    assert window.search_pending
    qtbot.waitUntil(lambda: not window.search_pending, timeout=WAIT_MS)
    assert window.model.hits()[0].path == docs / "notes" / "json.md"


def test_keyboard_down_enter_opens_the_right_file(make_window, docs, qtbot, opened):
    window = make_window(docs)
    paths = search(qtbot, window, "csv")
    assert len(paths) >= 2
    assert window.search_box.hasFocus()
    qtbot.keyClick(window.search_box, Qt.Key.Key_Down)
    assert window.results.currentIndex().row() == 1
    qtbot.keyClick(window.search_box, Qt.Key.Key_Up)
    qtbot.keyClick(window.search_box, Qt.Key.Key_Down)
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    assert opened == [paths[1]]
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert opened[-1] == paths[1].parent


def test_enter_right_after_typing_opens_the_first_result_once_answered(make_window, docs, qtbot, opened):
    window = make_window(docs)
    qtbot.keyClicks(window.search_box, "tomatoes sun water")
    qtbot.keyClick(window.search_box, Qt.Key.Key_Return)  # before the debounce fired
    qtbot.waitUntil(lambda: bool(opened), timeout=WAIT_MS)
    assert opened == [docs / "garden.txt"]


def test_ctrl_c_copies_the_path_and_esc_clears(make_window, docs, qtbot):
    window = make_window(docs)
    paths = search(qtbot, window, "tomatoes")
    window.search_box.deselect()
    qtbot.keyClick(window.search_box, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == str(paths[0])
    qtbot.keyClick(window.results, Qt.Key.Key_Escape)
    assert window.search_box.text() == ""
    assert window.model.rowCount() == 0
    assert window.search_box.hasFocus()


def test_ctrl_l_returns_to_the_search_box(make_window, docs, qtbot):
    window = make_window(docs)
    search(qtbot, window, "csv")
    window.results.setFocus()
    qtbot.waitUntil(window.results.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(window.results, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.search_box.hasFocus()
    assert window.search_box.selectedText() == "csv"


def test_type_chip_restricts_results(make_window, docs, qtbot):
    window = make_window(docs)
    assert len(search(qtbot, window, "csv")) >= 2
    window.filter_bar.type_chips["Code"].click()
    qtbot.waitUntil(lambda: not window.search_pending, timeout=WAIT_MS)
    assert [h.path.name for h in window.model.hits()] == ["code.py"]
    window.filter_bar.type_chips["Code"].click()
    qtbot.waitUntil(lambda: not window.search_pending and window.model.rowCount() >= 2, timeout=WAIT_MS)


def test_date_chip_hides_old_files(make_window, docs, qtbot):
    old = time.time() - 3 * 365 * 86400
    os.utime(docs / "code.py", (old, old))
    window = make_window(docs)
    assert docs / "code.py" in search(qtbot, window, "csv")
    window.filter_bar.date_chips["Past year"].click()
    qtbot.waitUntil(lambda: not window.search_pending, timeout=WAIT_MS)
    paths = [h.path for h in window.model.hits()]
    assert paths and docs / "code.py" not in paths
    window.filter_bar.date_chips["Past week"].click()  # date chips are exclusive
    assert not window.filter_bar.date_chips["Past year"].isChecked()


def test_bad_filter_value_is_shown_inline(make_window, docs, qtbot):
    window = make_window(docs)
    search(qtbot, window, "csv")
    qtbot.keyClicks(window.search_box, " after:someday")
    qtbot.waitUntil(lambda: window.query_error.isVisible(), timeout=WAIT_MS)
    assert "YYYY-MM-DD" in window.query_error.text()
    qtbot.keyClick(window.search_box, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.query_error.isVisible(), timeout=WAIT_MS)


def test_preview_highlights_matches_and_explains_the_score(make_window, docs, qtbot):
    window = make_window(docs)
    search(qtbot, window, "csv module")
    preview = window.preview
    assert preview.hit.path == docs / "notes" / "csv.md"
    text = preview.text.toPlainText()
    assert "csv module" in text
    assert preview.spans and all(text[s.start:s.end].lower() in ("csv", "module") for s in preview.spans)
    assert {s.kind for s in preview.spans} == {EXACT}
    assert len(preview.text.extraSelections()) == len(preview.spans)
    rows = preview.bars.rows()
    assert [r.query_token for r in rows] == ["csv", "module"]
    assert abs(sum(r.share for r in rows) - 1.0) < 1e-6
    first = preview.current
    qtbot.mouseClick(preview.next_button, Qt.MouseButton.LeftButton)
    assert preview.current == (first + 1) % len(preview.spans)
    qtbot.mouseClick(preview.prev_button, Qt.MouseButton.LeftButton)
    assert preview.current == first
    assert preview.text.textCursor().position() == preview.spans[first].start


def test_context_menu_offers_the_actions(make_window, docs, qtbot):
    window = make_window(docs)
    search(qtbot, window, "csv")
    texts = [a.text() for a in window.build_context_menu().actions() if a.text()]
    assert texts == ["Open", "Show in folder", "Copy path", "Re-index this file", "Exclude this folder"]


def test_reindex_this_file_encodes_it_again(make_window, docs, qtbot):
    window = make_window(docs)
    search(qtbot, window, "tomatoes")
    with qtbot.waitSignal(window.backend.index_finished, timeout=WAIT_MS) as blocker:
        window.reindex_current()
    assert blocker.args[0].indexed == 1


def test_exclude_this_folder_drops_its_files(make_window, docs, qtbot, settings, config):
    window = make_window(docs)
    paths = search(qtbot, window, "csv json module")
    row = paths.index(docs / "notes" / "csv.md")
    window.results.setCurrentIndex(window.model.index(row))
    with qtbot.waitSignal(window.backend.folders_changed, timeout=WAIT_MS):
        window.exclude_current_folder()
    assert settings.value("index/extra_excludes") is None  # kept in the index, where the CLI sees it too
    with Store(config.db_path) as other:
        assert other.exclude_patterns() == ("notes/**",)
    paths = search(qtbot, window, "csv json module")
    assert paths and all(docs / "notes" not in p.parents for p in paths)
    (docs / "notes" / "more.md").write_text("CSV and JSON module notes")  # the watcher honours it too
    (docs / "csv-too.md").write_text("CSV module again")
    qtbot.waitUntil(lambda: docs / "csv-too.md" in search(qtbot, window, "csv module"), timeout=WAIT_MS)
    assert docs / "notes" / "more.md" not in window.backend.store.file_states()


def test_results_appear_while_indexing(make_window, docs, qtbot):
    window = make_window(wait_index=False)
    search(qtbot, window, "tomatoes basil")
    assert window.model.rowCount() == 0
    window.backend.add_folder(docs)
    qtbot.waitUntil(lambda: window.model.rowCount() > 0, timeout=WAIT_MS)  # no new keystroke needed
    assert window.model.hits()[0].path == docs / "garden.txt"


def test_window_geometry_and_splitter_persist(make_backend, settings, qtbot, tmp_path):
    window = MainWindow(make_backend(), settings=settings)
    qtbot.addWidget(window)
    window.show()
    window.resize(900, 600)
    window.splitter.setSizes([300, 600])
    qtbot.wait(10)
    sizes = window.splitter.sizes()
    window.close()
    reread = QSettings(settings.fileName(), QSettings.Format.IniFormat)
    assert reread.value("window/geometry") is not None
    again = MainWindow(make_backend(), settings=reread)
    qtbot.addWidget(again)
    again.show()
    assert again.splitter.sizes() == sizes


def test_esc_on_an_empty_box_clears_the_chips(make_window, docs, qtbot):
    window = make_window(docs)
    window.filter_bar.type_chips["PDF"].click()
    assert window.filter_bar.filters().active
    qtbot.keyClick(window.search_box, Qt.Key.Key_Escape)
    assert not window.filter_bar.filters().active


def test_model_mismatch_banner_reencodes(make_backend, make_window, backend, docs, config, settings, asked, qtbot):
    other = backend_of_another_model(make_backend, docs, qtbot)
    window = MainWindow(other, settings=settings, confirm=asked)
    qtbot.addWidget(window)
    window.show()
    other.start()
    qtbot.waitUntil(lambda: window.reencode_button.isVisible(), timeout=WAIT_MS)
    assert "fake-encoder" in window.banner.text()
    qtbot.keyClicks(window.search_box, "tomatoes")
    qtbot.waitUntil(lambda: window.query_error.isVisible(), timeout=WAIT_MS)
    assert "re-encode" in window.query_error.text()
    asked.answer = False  # "no" leaves everything as it is
    qtbot.mouseClick(window.reencode_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and "Encode every file again" in asked[0]
    assert window.reencode_button.isVisible()
    asked.answer = True
    with qtbot.waitSignal(other.index_finished, timeout=WAIT_MS):
        qtbot.mouseClick(window.reencode_button, Qt.MouseButton.LeftButton)
    assert not window.reencode_button.isVisible()
    qtbot.waitUntil(lambda: window.model.rowCount() > 0, timeout=WAIT_MS)  # the search runs again by itself
    assert window.model.hits()[0].path == docs / "garden.txt"


def test_a_new_query_selects_its_best_hit_and_a_refresh_keeps_the_row(make_window, docs, qtbot):
    window = make_window(docs)
    search(qtbot, window, "csv")
    window.results.setCurrentIndex(window.model.index(1))
    second = window.current_path()
    window.refresh_results()  # same words again, e.g. after new files were indexed
    qtbot.waitUntil(lambda: not window.search_pending, timeout=WAIT_MS)
    assert window.current_path() == second
    paths = search(qtbot, window, "csv files rows")
    assert second in paths and window.results.currentIndex().row() == 0
