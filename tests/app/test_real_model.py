"""The window over a real PyLate model (a tiny random one built locally): searching while indexing.

Guards the thread set-up: each worker loads its own model inside its thread's first call and keeps using
it there, and loads never overlap. Sharing one encoder between the threads failed with the tokenizer's
"Already borrowed", and using a model across PySide slot calls crashed the process.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from findling.engine import load_encoder
from tests.app.conftest import WAIT_MS

pytestmark = pytest.mark.slow

WORDS = "river mountain protein cell engine wing music letter invoice budget".split()


def test_searching_while_indexing_with_a_real_model(tiny_model_dir, config, make_backend, settings, tmp_path,
                                                     qtbot):
    from findling.app.window import MainWindow

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(80):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(120)]
        (folder / f"doc{i:02d}.txt").write_text(" ".join(words) + ".")
    backend = make_backend(factory=load_encoder, cfg=replace(config, model=str(tiny_model_dir)))
    backend.add_folder(folder)
    problems = []
    backend.search_error.connect(lambda rid, message: problems.append(message))
    backend.index_error.connect(problems.append)
    backend.model_failed.connect(problems.append)
    window = MainWindow(backend, settings=settings)
    qtbot.addWidget(window)
    window.show()
    backend.start()
    qtbot.waitUntil(lambda: backend.model_info is not None or bool(problems), timeout=120_000)
    assert problems == []
    n = 0
    while not backend.index_idle:  # searches overlap the indexing thread's encoding
        window.search_box.setText(f"{WORDS[n % len(WORDS)]} {WORDS[(n + 3) % len(WORDS)]}")
        window.run_search()
        qtbot.waitUntil(lambda: not window.search_pending, timeout=WAIT_MS)
        n += 1
    assert n > 0
    window.search_box.setText("river mountain")
    window.run_search()
    qtbot.waitUntil(lambda: not window.search_pending, timeout=WAIT_MS)
    assert problems == []
    assert window.model.rowCount() > 0
    hit = window.model.hits()[0]
    assert hit.alignment and all(0 <= m.doc_start < m.doc_end <= len(hit.chunk_text) for m in hit.alignment
                                 if m.doc_start >= 0)
