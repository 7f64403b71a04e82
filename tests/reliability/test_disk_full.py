"""A full disk (simulated with ``PRAGMA max_page_count``): a clear error, a consistent index, and a later run
that finishes the job once there is space again."""
from __future__ import annotations

from dataclasses import replace

import pytest

from findling.cli import commands, main as cli
from findling.engine.errors import StoreError
from findling.engine.index.indexer import Indexer
from findling.engine.store.store import Store
from tests.reliability.helpers import check_consistent


def _folder(root, n: int):
    root.mkdir()
    for i in range(n):
        (root / f"f{i:03d}.txt").write_text(f"file {i} " + " ".join(f"word{j}" for j in range(i, i + 300)))
    return root


def _fill_disk(store: Store, *, spare_pages: int = 6) -> None:
    """Let the database grow by only a few more pages, as if the disk were nearly full."""
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + spare_pages}")


def test_disk_full_stops_cleanly_and_the_next_run_resumes(tmp_path, config, fake_encoder):
    folder = _folder(tmp_path / "docs", 60)
    with Store(config.db_path) as store:
        store.add_folder(folder)
        small = replace(config, encode_batch_tokens=64)  # a commit every file or so
        _fill_disk(store)
        with pytest.raises(StoreError, match="full.*Free some space") as caught:
            Indexer(store, fake_encoder, config=small).run_to_end()
        assert "run the same command again" in str(caught.value)
        assert not store.conn.in_transaction  # rolled back: nothing half written
        written = {p for p, s in store.file_states().items() if s.status == "indexed"}
        assert 0 < len(written) < 60
    check_consistent(config.db_path)
    with Store(config.db_path) as store:  # space is back (the page limit belonged to that connection)
        last = Indexer(store, fake_encoder, config=config).run_to_end()
        assert last.phase == "done" and last.indexed == 60 - len(written)
        assert {s.status for s in store.file_states().values()} == {"indexed"}
    check_consistent(config.db_path)


def test_disk_full_in_the_cli_is_one_clear_line(tmp_path, config, fake_encoder, monkeypatch, capsys):
    import findling.engine.encode.resolve

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: fake_encoder)
    home = tmp_path / "home"
    folder = _folder(tmp_path / "docs", 40)
    assert cli.main(["--home", str(home), "folders", "add", str(folder)]) == 0
    opened = commands._open_store

    def nearly_full(config):
        store = opened(config)
        _fill_disk(store, spare_pages=3)
        return store

    monkeypatch.setattr(commands, "_open_store", nearly_full)
    assert cli.main(["--home", str(home), "index", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "disk" in err and "full" in err and "Free some space" in err and "Traceback" not in err
    check_consistent(home / "index.sqlite")
    monkeypatch.setattr(commands, "_open_store", opened)
    assert cli.main(["--home", str(home), "index", "--quiet"]) == 0
    with Store(home / "index.sqlite") as store:
        assert len(store.file_states()) == 40
        assert {s.status for s in store.file_states().values()} == {"indexed"}
