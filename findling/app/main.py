"""``findling-gui``: open the search window (or render it offscreen to a PNG with ``--screenshot``).

    findling-gui [--home DIR] [--model PATH] [--add-folder PATH ...]
    findling-gui --home DIR --add-folder ~/Notes --wait-index 120 --query "tax letter" \\
                 --view preview --screenshot shot.png

The window appears at once; the model loads in the background and the status bar says which one is in use.
"""
from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from findling.engine import Config, FindlingError, load_encoder

from findling.app.search_worker import EncoderFactory

log = logging.getLogger(__name__)

VIEWS = ("results", "preview", "folders", "exclusions", "model")
DIALOG_TABS = {"folders": 0, "exclusions": 1, "model": 2}
SCREENSHOT_SIZE = (1280, 800)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="findling-gui", description="Search your documents by meaning, offline.")
    p.add_argument("--home", type=Path, help="data folder for the index and logs (default: FINDLING_HOME or the "
                                             "platform's data folder)")
    p.add_argument("--model", help="model folder or name to use instead of the default model")
    p.add_argument("--add-folder", action="append", default=[], metavar="PATH", help="watch this folder (repeatable)")
    p.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="render the window offscreen to OUT.png and exit")
    p.add_argument("--query", default="", help="with --screenshot: the text to search for")
    p.add_argument("--view", choices=VIEWS, default="results", help="with --screenshot: what to show")
    p.add_argument("--wait-index", type=float, nargs="?", const=300.0, default=None, metavar="SECONDS",
                   help="with --screenshot: wait until indexing has finished (at most SECONDS, default 300)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    overrides: dict = {}
    if args.home is not None:
        overrides["data_dir"] = args.home.expanduser().absolute()
    if args.model:
        overrides["model"] = args.model
    return Config.default(**overrides)


def setup_logging(config: Config, *, verbose: bool) -> None:
    """stderr (warnings, or everything with -v) and a rotating log file in the data folder."""
    root = logging.getLogger()
    if root.handlers:  # already configured (an embedding program or a test runner)
        return
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("findling-gui: %(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        logs = config.data_dir / "logs"
        old_umask = os.umask(0o077)  # the data folder and the log are readable by their owner only
        try:
            logs.mkdir(parents=True, exist_ok=True)
            file = logging.handlers.RotatingFileHandler(logs / "findling-gui.log", maxBytes=1_000_000,
                                                        backupCount=3, encoding="utf-8")
        finally:
            os.umask(old_umask)
        file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        root.addHandler(file)
    except OSError as exc:
        log.warning("no log file: %s", exc)


def main(argv: list[str] | None = None, *, encoder_factory: EncoderFactory | None = None,
         indexer_factory: str | None = None) -> int:
    """Run the window. ``encoder_factory`` and ``indexer_factory`` replace the model for searches and for the
    indexer process (see ``Backend``); the defaults resolve the model as usual."""
    args = parse_args(argv)
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    from findling.app.backend import Backend
    from findling.app.window import MainWindow

    config = build_config(args)
    setup_logging(config, verbose=args.verbose)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("Findling")
    app.setApplicationName("Findling")
    settings = None if args.screenshot is not None else QSettings()  # screenshots neither read nor write settings
    try:
        backend = Backend(config, encoder_factory=encoder_factory or load_encoder, indexer_factory=indexer_factory)
    except FindlingError as exc:
        QMessageBox.critical(None, "Findling", str(exc))
        return 1
    if settings is not None:
        move_old_excludes(settings, backend)
    problems = []
    for raw in args.add_folder:
        try:
            backend.add_folder(raw)
        except ValueError as exc:
            problems.append(str(exc))
    window = MainWindow(backend, settings=settings)
    for message in problems:
        window.show_banner(message)
    if args.screenshot is not None:
        return screenshot(app, window, backend, args)
    window.show()
    backend.start()
    app.aboutToQuit.connect(backend.shutdown)
    return app.exec()


def move_old_excludes(settings, backend) -> None:
    """Earlier versions kept "Exclude this folder" patterns in the app's settings; they now live in the index,
    where the CLI and the watcher see them too."""
    old = list(settings.value("index/extra_excludes", [], type=list) or [])
    for pattern in old:
        try:
            backend.add_exclude(pattern)
        except ValueError as exc:
            log.warning("dropped the old exclude pattern %r: %s", pattern, exc)
    if old:
        settings.remove("index/extra_excludes")


def wait_until(condition: Callable[[], bool], *, timeout: float) -> bool:
    """Run the Qt event loop until ``condition()`` holds or ``timeout`` seconds pass."""
    from PySide6.QtCore import QCoreApplication, QEventLoop, QThread

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        QThread.msleep(10)
    return True


def screenshot(app, window, backend, args: argparse.Namespace) -> int:
    """Render the real window offscreen, wait for what was asked, grab it to a PNG."""
    window.resize(*SCREENSHOT_SIZE)
    window.show()
    backend.start()
    failed: list[str] = []
    backend.model_failed.connect(failed.append)
    try:
        if not wait_until(lambda: backend.model_info is not None or bool(failed), timeout=600):
            log.warning("the model did not load in time; the screenshot shows the window as it is")
        if args.wait_index is not None and backend.model_info is not None:
            if not wait_until(lambda: backend.index_idle, timeout=args.wait_index):
                log.warning("indexing did not finish within %.0f s", args.wait_index)
        if args.query:
            window.search_box.setText(args.query)
            window.run_search()
            wait_until(lambda: not window.search_pending, timeout=120)
        if args.view == "preview":
            total = sum(window.splitter.sizes()) or SCREENSHOT_SIZE[0]
            window.splitter.setSizes([int(total * 0.4), total - int(total * 0.4)])
        target = window
        if args.view in DIALOG_TABS:
            target = window.show_folders()
            target.tabs.setCurrentIndex(DIALOG_TABS[args.view])
        wait_until(lambda: False, timeout=0.3)  # let layouts and paints settle
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        ok = target.grab().save(str(args.screenshot), "PNG")
    finally:
        window.close()
        backend.shutdown()
    if not ok:
        print(f"findling-gui: could not write {args.screenshot}", file=sys.stderr)
        return 1
    print(args.screenshot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
