"""``findling-gui``: arguments, and the offscreen screenshot that renders the real window."""
from __future__ import annotations

import pytest
from PySide6.QtGui import QImage

from findling.app.main import build_config, main, parse_args
from tests.fakes import fake_factory


def test_arguments_build_the_config(tmp_path):
    args = parse_args(["--home", str(tmp_path), "--model", "/models/x", "--add-folder", "a", "--add-folder", "b",
                       "--wait-index"])
    config = build_config(args)
    assert config.data_dir == tmp_path and config.model == "/models/x"
    assert args.add_folder == ["a", "b"] and args.wait_index == 300.0 and args.view == "results"


@pytest.mark.parametrize("view", ["results", "preview", "folders", "exclusions", "model"])
def test_screenshot_writes_a_png(tmp_path, docs, view, qapp):
    out = tmp_path / "shots" / f"{view}.png"
    code = main(["--home", str(tmp_path / "home"), "--add-folder", str(docs), "--wait-index", "60",
                 "--query", "csv module", "--view", view, "--screenshot", str(out)],
                encoder_factory=fake_factory, indexer_factory="tests.fakes:fake_factory")
    assert code == 0
    image = QImage(str(out))
    assert not image.isNull() and image.width() > 300 and image.height() > 200
    assert out.stat().st_size > 5_000
