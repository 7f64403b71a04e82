"""A damaged index file is found on open with a clear message, and ``findling index --rebuild`` recovers.

Damage with a valid header (garbage pages in the middle, a truncated file) passes SQLite's open and is only
noticed by a query that reads a bad page, so the store runs ``PRAGMA quick_check`` on open; any SQLite error
that still slips through becomes the same message at the CLI boundary.
"""
from __future__ import annotations

import os
import random
import sqlite3

import pytest

from findling.cli import main as cli
from findling.engine.errors import StoreError
from findling.engine.store.store import Store
from tests.reliability.helpers import check_consistent

PAGE = 4096


@pytest.fixture
def fake_models(monkeypatch, fake_encoder):
    import findling.engine.encode.resolve

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: fake_encoder)


@pytest.fixture
def home(tmp_path, docs, fake_models):
    """An index of ``docs`` (plus some bulk, so the file has pages to damage), all in the main file."""
    for i in range(30):
        (docs / f"bulk{i:02d}.txt").write_text(" ".join(f"term{i}x{j}" for j in range(400)))
    home = tmp_path / "home"
    assert cli.main(["--home", str(home), "folders", "add", str(docs)]) == 0
    assert cli.main(["--home", str(home), "index", "--quiet"]) == 0
    with sqlite3.connect(home / "index.sqlite") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return home


def _damage_middle(db) -> None:
    size = db.stat().st_size
    assert size > 20 * PAGE
    rng = random.Random(5)
    with open(db, "r+b") as fh:  # page 1 (header and schema) stays intact
        for page in range(3, size // PAGE - 2, 3):
            fh.seek(page * PAGE + 100)
            fh.write(rng.randbytes(PAGE // 2))


def _truncate(db) -> None:
    os.truncate(db, db.stat().st_size // 2)


@pytest.mark.parametrize("damage", [_damage_middle, _truncate], ids=["garbage-pages", "truncated"])
def test_damage_with_a_valid_header_is_caught_on_open(home, damage, capsys):
    db = home / "index.sqlite"
    damage(db)
    with pytest.raises(StoreError, match=r"damaged.*findling index --rebuild"):
        Store(db)
    capsys.readouterr()
    for command in (["status"], ["search", "csv"], ["index", "--quiet"], ["folders", "list"]):
        assert cli.main(["--home", str(home), *command]) == 2, command
        err = capsys.readouterr().err
        assert "--rebuild" in err and "Traceback" not in err, (command, err)
    assert cli.main(["--home", str(home), "index", "--rebuild", "--quiet"]) == 0
    assert list(home.glob("index.sqlite.*.bak")), "the damaged file is kept aside"
    check_consistent(db)
    with Store(db) as store:
        states = store.file_states()
    assert len(states) == 4 + 30 and {s.status for s in states.values()} == {"indexed"}


def test_a_sqlite_error_found_later_is_the_same_clear_message(home, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(cli.Searcher, "search", broken)
    capsys.readouterr()
    assert cli.main(["--home", str(home), "search", "csv"]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "findling index --rebuild" in err and "Traceback" not in err


def test_garbage_in_the_write_ahead_log_loses_nothing_committed(home):
    db = home / "index.sqlite"
    (home / "index.sqlite-wal").write_bytes(random.Random(1).randbytes(64 * 1024))
    with Store(db) as store:
        assert len(store.file_states()) == 34
    check_consistent(db)
