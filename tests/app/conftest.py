"""GUI fixtures: a real backend (real store and files in tmp_path, the fake encoder, a real indexer child
process) and the real window.

Every thread and process the backend starts is stopped at teardown.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QSettings, QUrl  # noqa: E402

from findling.app.backend import Backend  # noqa: E402
from findling.app.window import MainWindow  # noqa: E402
from tests.fakes import fake_factory, other_model_factory  # noqa: E402

WAIT_MS = 20_000  # generous: waits end as soon as the condition holds; CI machines can be slow


def indexer_spec(factory) -> str | None:
    """How the indexer process imports ``factory``: ``module:name`` for the factories of ``tests.fakes``, None
    (the usual model resolution) for the engine's own ``load_encoder``."""
    from findling.engine import load_encoder

    if factory is load_encoder:
        return None
    assert factory.__module__ == "tests.fakes", "the indexer process can only import named factories"
    return f"{factory.__module__}:{factory.__name__}"


class Opened(list):
    """Records what the window asked to open instead of opening it."""

    def __call__(self, url: QUrl) -> bool:
        self.append(Path(url.toLocalFile()))
        return True


class Asked(list):
    """Answers the window's confirmation questions with ``answer`` and records their texts."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = True

    def __call__(self, parent, title: str, text: str) -> bool:
        self.append(text)
        return self.answer


@pytest.fixture
def asked() -> Asked:
    return Asked()


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_backend(config, qtbot):
    made: list[Backend] = []

    def make(*, factory=fake_factory, cfg=None) -> Backend:
        b = Backend(cfg or config, encoder_factory=factory, indexer_factory=indexer_spec(factory))
        made.append(b)
        return b

    yield make
    for b in made:
        b.shutdown()


@pytest.fixture
def backend(make_backend) -> Backend:
    return make_backend()


@pytest.fixture
def opened() -> Opened:
    return Opened()


@pytest.fixture
def make_window(backend, settings, opened, asked, qtbot):
    """A window over ``backend``; ``folders`` are added before the backend starts."""

    def make(*folders: Path, wait_index: bool = True, chooser=lambda parent: "") -> MainWindow:
        for folder in folders:
            backend.add_folder(folder)
        window = MainWindow(backend, settings=settings, opener=opened, chooser=chooser, confirm=asked)
        qtbot.addWidget(window)
        window.show()
        backend.start()
        qtbot.waitUntil(lambda: backend.model_info is not None, timeout=WAIT_MS)
        if wait_index:
            qtbot.waitUntil(lambda: backend.index_idle, timeout=WAIT_MS)
        return window

    return make


def search(qtbot, window: MainWindow, text: str) -> list[Path]:
    """Type ``text`` into the search box and wait for its answer; returns the result paths."""
    window.search_box.clear()
    qtbot.keyClicks(window.search_box, text)
    qtbot.waitUntil(lambda: not window.search_pending, timeout=WAIT_MS)
    return [h.path for h in window.model.hits()]


def backend_of_another_model(make_backend, docs: Path, qtbot) -> Backend:
    """Index ``docs`` with the fake encoder, then return a (not started) backend whose model is another one."""
    first = make_backend()
    first.add_folder(docs)
    first.start()
    qtbot.waitUntil(lambda: first.index_idle, timeout=WAIT_MS)
    first.shutdown()
    return make_backend(factory=other_model_factory)
