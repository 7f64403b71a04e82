"""The folders dialog over a real index, and the status bar's texts."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from findling.app.statusbar import format_counts, format_duration, format_model, format_progress, model_tooltip
from findling.engine import ModelInfo, Progress
from tests.app.conftest import WAIT_MS


def test_folders_dialog_lists_counts_and_failed_files(make_window, docs, qtbot):
    (docs / "broken.pdf").write_bytes(b"not a pdf at all")
    window = make_window(docs)
    dialog = window.show_folders()
    assert dialog.folders.rowCount() == 1
    row = [dialog.folders.item(0, c).text() for c in range(5)]
    assert row == [str(docs), "4", "1", "0", "0"]
    assert dialog.problems.rowCount() == 1
    assert dialog.problems.item(0, 0).text() == str(docs / "broken.pdf")
    assert dialog.problems.item(0, 1).text() == "failed"
    assert "PDF" in dialog.problems.item(0, 2).text()

    dialog.folders.selectRow(0)
    assert dialog.remove_button.isEnabled()
    with qtbot.waitSignal(window.backend.folders_changed, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.folders.rowCount() == 0, timeout=WAIT_MS)
    assert window.pages.currentWidget() is window.empty_page


def test_folders_dialog_adds_through_the_chooser(make_window, docs, tmp_path, qtbot):
    window = make_window(wait_index=False)
    dialog = window.show_folders()
    dialog.chooser = lambda parent: str(docs)
    dialog.add_folder()
    assert dialog.folders.rowCount() == 1
    qtbot.waitUntil(lambda: window.backend.index_idle, timeout=WAIT_MS)
    dialog.chooser = lambda parent: str(tmp_path / "nowhere")
    dialog.add_folder()
    assert "not a folder" in dialog.message.text()


def test_progress_texts():
    p = Progress("indexing", files_total=500, files_done=120, elapsed=37.5)
    assert format_progress(p) == "Indexing 120/500 · 3.2 files/s · ETA 1:59"
    assert format_progress(Progress("scanning", current=Path("/docs"))) == "Scanning /docs…"
    assert format_progress(Progress("done", files_total=3, indexed=2, failed=1)) == \
        "Index up to date · 2 indexed · 1 could not be read"
    assert format_progress(Progress("cancelled", files_total=9, files_done=4)) == "Indexing cancelled at 4/9"
    assert format_duration(3725) == "1:02:05" and format_duration(None) == "–"


def test_model_text_warns_about_the_bundled_fallback():
    info = ModelInfo(name="mini", source="bundled", path="/m", fingerprint="f", dim=48, max_tokens=512,
                     note="the target model is not in the cache")
    text = format_model(info)
    assert "bundled fallback" in text and "not in the cache" in model_tooltip(info)
    assert format_model(ModelInfo("big", "hf-cache", "/m", "f", 48, 512)) == "Model: big"


def test_counts_text():
    stats = {"files": {"indexed": 1200, "failed": 2, "skipped": 1}, "chunks": 3400, "folders": 1}
    assert format_counts(stats) == "1,200 files · 3,400 chunks · 1 folder · 3 unreadable"


def test_status_bar_pause_button_drives_the_backend(make_window, docs, qtbot):
    window = make_window(docs)
    window.status.pause_button.setChecked(True)
    assert window.backend.paused and window.status.pause_button.text() == "Resume"
    window.status.pause_button.setChecked(False)
    assert not window.backend.paused


def test_pausing_shows_at_once_in_the_status_bar(qtbot):
    from findling.app.statusbar import StatusBar

    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.show_progress(Progress("indexing", files_total=10, files_done=2, elapsed=1.0))
    assert bar.cancel_button.isVisibleTo(bar)
    bar.pause_button.setChecked(True)
    assert bar.progress_label.text().endswith("· paused")
    bar.show_progress(Progress("done", files_total=10, indexed=10))
    assert not bar.cancel_button.isVisibleTo(bar)


def test_a_folder_given_with_dot_dot_is_indexed(make_window, docs, qtbot, monkeypatch):
    monkeypatch.chdir(docs / "notes")
    window = make_window(Path("..") / ".." / docs.name)  # as `findling-gui --add-folder ../../docs` gets it
    dialog = window.show_folders()
    assert [dialog.folders.item(0, c).text() for c in range(2)] == [str(docs), "4"]
