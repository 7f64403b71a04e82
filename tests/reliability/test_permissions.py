"""The index and everything beside it are created readable by their owner only (0600), whatever the umask."""
from __future__ import annotations

import os
import stat
import subprocess
import textwrap

import pytest

from findling.cli import main as cli
from findling.engine.store.store import Store
from tests.reliability.helpers import PYTHON, ROOT, subprocess_env

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """The common default umask, which would leave new files readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def fake_models(monkeypatch, fake_encoder):
    import findling.engine.encode.resolve

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: fake_encoder)


def test_index_wal_shm_lock_and_folder_backup_are_owner_only(tmp_path, docs, open_umask, fake_models, capsys):
    home = tmp_path / "home"
    assert cli.main(["--home", str(home), "folders", "add", str(docs)]) == 0
    assert cli.main(["--home", str(home), "index", "--quiet"]) == 0
    db = home / "index.sqlite"
    with Store(db) as store, Store(db) as reader:  # two connections keep the -wal and -shm files in place
        store.add_folder(tmp_path)
        reader.stats()
        names = ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "index.sqlite.lock",
                 "index.sqlite.folders.json"]
        modes = {name: oct(_mode(home / name)) for name in names}
    assert modes == {name: oct(0o600) for name in names}
    assert _mode(home) == 0o700  # the data folder the store created
    assert cli.main(["--home", str(home), "index", "--rebuild", "--quiet"]) == 0
    for aside in home.glob("index.sqlite.*.bak*"):
        assert _mode(aside) == 0o600, aside
    assert _mode(db) == 0o600


LOGGING = textwrap.dedent("""
    import logging, os, sys
    from pathlib import Path
    os.umask(0o022)
    from findling.app.main import setup_logging
    from findling.engine import Config
    setup_logging(Config(data_dir=Path(sys.argv[1])), verbose=False)
    logging.getLogger("findling.test").warning("a line")
""")


def test_the_app_log_is_owner_only(tmp_path):
    done = subprocess.run([PYTHON, "-c", LOGGING, str(tmp_path / "data")], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    log = tmp_path / "data" / "logs" / "findling-gui.log"
    assert log.is_file()
    assert _mode(log) == 0o600
