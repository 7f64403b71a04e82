"""The folders dialog's exclusions and model tabs, and the questions asked before destructive actions."""
from __future__ import annotations

from PySide6.QtCore import Qt

from findling.app.model_panel import describe
from findling.app.statusbar import format_progress
from findling.engine import ModelError, ModelInfo, Progress, Store
from tests.app.conftest import WAIT_MS, search
from tests.fakes import FakeEncoder, by_model_factory


def _indexed(backend):
    return {p for p, s in backend.store.file_states().items() if s.status == "indexed"}


def test_removing_a_folder_asks_first(make_window, docs, asked, qtbot):
    window = make_window(docs)
    dialog = window.show_folders()
    dialog.folders.selectRow(0)
    asked.answer = False
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and str(docs) in asked[0] and "4 files" in asked[0] and "Nothing is deleted" in asked[0]
    assert window.backend.folders() == [docs]
    asked.answer = True
    with qtbot.waitSignal(window.backend.folders_changed, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert window.backend.folders() == []


def test_a_pattern_added_in_the_dialog_prunes_the_index_and_the_tester_says_why(make_window, docs, config, qtbot):
    window = make_window(docs)
    panel = window.show_folders().exclusions
    panel.test_edit.setText(str(docs / "notes" / "json.md"))
    assert panel.verdict.text() == "Indexed."
    builtin = [panel.patterns.item(i).text() for i in range(panel.patterns.count())]
    assert "node_modules    (built in)" in builtin

    with qtbot.waitSignal(window.backend.index_finished, timeout=WAIT_MS):
        panel.pattern_edit.setText("notes")
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert panel.patterns.item(0).text() == "notes"
    assert panel.verdict.text() == 'Not indexed: excluded by the pattern "notes".'
    qtbot.waitUntil(lambda: window.backend.index_idle, timeout=WAIT_MS)
    assert _indexed(window.backend) == {docs / "garden.txt", docs / "code.py"}
    assert (docs / "notes" / "json.md").is_file()  # excluded from the index, never from disk
    with Store(config.db_path) as other:  # the CLI and the watcher read the same list
        assert other.exclude_patterns() == ("notes",)

    panel.patterns.setCurrentRow(0)
    with qtbot.waitSignal(window.backend.index_finished, timeout=WAIT_MS):
        qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.backend.index_idle, timeout=WAIT_MS)
    assert docs / "notes" / "json.md" in _indexed(window.backend)
    assert panel.verdict.text() == "Indexed."


def test_a_pattern_that_cannot_work_is_explained_and_not_added(make_window, docs):
    window = make_window(docs)
    panel = window.show_folders().exclusions
    panel.pattern_edit.setText("/home/someone/private")
    panel.add_pattern()
    assert "absolute path" in panel.message.text()
    assert window.backend.exclude_patterns()[1] == ()
    built_in = panel.patterns.item(0)
    assert not built_in.flags() & Qt.ItemFlag.ItemIsSelectable  # built-in patterns cannot be removed


def test_the_tester_browses_and_names_other_reasons(make_window, docs, tmp_path):
    (docs / "track.mp3").write_bytes(b"ID3\x03")
    window = make_window(docs)
    panel = window.show_folders().exclusions
    panel.file_chooser = lambda parent: str(docs / "track.mp3")
    qtbot_click = panel.browse_button.click
    qtbot_click()
    assert panel.test_edit.text() == str(docs / "track.mp3")
    assert panel.verdict.text() == "Not indexed: unsupported file type."
    panel.test_edit.setText(str(docs / ".hidden" / "secret.txt"))
    assert panel.verdict.text() == 'Not indexed: excluded by the pattern ".*".'
    panel.test_edit.setText(str(tmp_path / "elsewhere.txt"))
    assert panel.verdict.text() == "Not indexed: not inside a watched folder."
    (docs / "new.md").write_text("fresh")
    panel.test_edit.setText(str(docs / "new.md"))
    assert panel.verdict.text().startswith("Would be indexed")
    panel.test_edit.clear()
    assert panel.verdict.text() == ""


_by_model = by_model_factory


def test_switching_models_keeps_the_old_index_answering_until_the_swap(make_backend, make_window, docs, asked,
                                                                      qtbot, tmp_path, config):
    backend = make_backend(factory=_by_model)
    for name in ("a.md", "b.md", "c.md"):
        (docs / name).write_text(f"Tomatoes and basil, note {name}.")
    from findling.app.window import MainWindow

    backend.add_folder(docs)
    window = MainWindow(backend, confirm=asked)
    qtbot.addWidget(window)
    window.show()
    backend.start()
    qtbot.waitUntil(lambda: backend.model_info is not None and backend.index_idle, timeout=WAIT_MS)
    panel = window.show_folders().model_panel
    assert "fake-encoder" in panel.model_label.text()
    model_dir = tmp_path / "my-model"
    panel.chooser = lambda parent: str(model_dir)

    asked.answer = False
    panel.choose_model()
    assert "Re-encode the index with" in asked[-1] and backend.index_idle

    asked.answer = True
    backend.pause()  # hold the re-encoding at its first file
    panel.choose_model()
    qtbot.waitUntil(lambda: "re-encoding" in window.status.progress_label.text().lower(), timeout=WAIT_MS)
    assert search(qtbot, window, "tomatoes basil")  # answered by the old index with the old model
    assert backend.model_info.name == "fake-encoder"
    with qtbot.waitSignal(backend.model_switched, timeout=WAIT_MS):
        backend.resume()
    qtbot.waitUntil(lambda: backend.model_info.name == str(model_dir), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.status.cancel_button.isVisible(), timeout=WAIT_MS)
    assert window.status.progress_label.text().startswith("Index up to date")
    assert str(model_dir) in panel.model_label.text()
    assert "The index now uses" in panel.message.text()
    paths = search(qtbot, window, "tomatoes basil")
    assert docs / "garden.txt" in paths and not window.query_error.isVisible()
    assert backend.store.model_identity()["dim"] == 8
    assert backend.model_choice == str(model_dir)
    qtbot.waitUntil(lambda: backend.index_idle, timeout=WAIT_MS)

    (docs / "zebra.md").write_text("Zebras graze.")  # indexing goes on with the new model
    qtbot.waitUntil(lambda: docs / "zebra.md" in _indexed(backend), timeout=WAIT_MS)
    assert search(qtbot, window, "zebras")[0] == docs / "zebra.md"
    window.close()

    again = make_backend(factory=_by_model)  # the next start uses the recorded choice
    assert again.config.model == str(model_dir)


def test_a_model_that_cannot_load_leaves_everything_as_it_was(make_backend, docs, asked, qtbot, tmp_path):
    from findling.app.window import MainWindow

    backend = make_backend(factory=_by_model)
    backend.add_folder(docs)
    window = MainWindow(backend, confirm=asked)
    qtbot.addWidget(window)
    window.show()
    backend.start()
    qtbot.waitUntil(lambda: backend.model_info is not None and backend.index_idle, timeout=WAIT_MS)
    panel = window.show_folders().model_panel
    with qtbot.waitSignal(backend.index_error, timeout=WAIT_MS):
        panel.switch_to(str(tmp_path / "broken-model"))
    assert "did not happen" in panel.message.text() and "config.json" in panel.message.text()
    assert backend.store.model_identity()["name"] == "fake-encoder"
    assert search(qtbot, window, "tomatoes")[0] == docs / "garden.txt"


def test_a_cancelled_switch_keeps_the_current_model_and_resumes_later(make_backend, docs, asked, qtbot, tmp_path,
                                                                      config):
    from findling.app.window import MainWindow

    backend = make_backend(factory=_by_model)
    backend.add_folder(docs)
    window = MainWindow(backend, confirm=asked)
    qtbot.addWidget(window)
    window.show()
    backend.start()
    qtbot.waitUntil(lambda: backend.model_info is not None and backend.index_idle, timeout=WAIT_MS)
    panel = window.show_folders().model_panel
    backend.pause()
    panel.switch_to(str(tmp_path / "m2"))
    qtbot.waitUntil(lambda: window.status.cancel_button.isVisible(), timeout=WAIT_MS)
    with qtbot.waitSignal(backend.index_finished, timeout=WAIT_MS,
                          check_params_cb=lambda p: p.phase == "cancelled"):
        qtbot.mouseClick(window.status.cancel_button, Qt.MouseButton.LeftButton)
    assert "cancelled" in panel.message.text()
    assert backend.store.model_identity()["name"] == "fake-encoder"
    assert config.db_path.with_name(config.db_path.name + ".next").exists()  # kept for the resume
    backend.resume()
    with qtbot.waitSignal(backend.model_switched, timeout=WAIT_MS):
        panel.switch_to(str(tmp_path / "m2"))
    assert not config.db_path.with_name(config.db_path.name + ".next").exists()


def test_model_texts():
    info = ModelInfo(name="org/model", source="hf-cache", path="/cache/x", fingerprint="f", dim=48, max_tokens=512,
                     note="")
    assert "org/model" in describe(info, None) and "Hugging Face cache" in describe(info, None)
    assert describe(None, None) == "Loading the model…"
    p = Progress("re-encoding", files_total=10, files_done=4, elapsed=2.0)
    assert format_progress(p).startswith("Re-encoding for the new model 4/10 · ETA")
    assert format_progress(Progress("swapping")) == "Switching to the new model…"


def test_patterns_from_the_old_app_settings_move_into_the_index(backend, settings):
    from findling.app.main import move_old_excludes

    settings.setValue("index/extra_excludes", ["notes/", "/not/relative"])
    move_old_excludes(settings, backend)
    assert backend.store.exclude_patterns() == ("notes/",)  # the unusable one is dropped with a warning
    assert settings.value("index/extra_excludes") is None
