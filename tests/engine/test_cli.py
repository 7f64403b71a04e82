import json
import sqlite3
from pathlib import Path

import pytest

from findling.cli import main as cli
from findling.engine.store.store import Store


@pytest.fixture
def fake_models(monkeypatch, fake_encoder):
    """The CLI's model loading replaced by the fake encoder (the process boundary of a model)."""
    import findling.engine.encode.resolve

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: fake_encoder)
    return fake_encoder


def run(home, *args):
    return cli.main(["--home", str(home), *map(str, args)])


def test_folders_index_search_status(tmp_path, docs, fake_models, capsys):
    home = tmp_path / "home"
    assert run(home, "folders", "add", docs) == 0
    assert run(home, "index", "--quiet") == 0
    capsys.readouterr()
    assert run(home, "search", "read and write CSV files", "--json", "-k", "3") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["path"] == str(docs / "notes" / "csv.md")
    assert out["results"][0]["alignment"]
    assert run(home, "search", "csv", "--ext", "py", "--json") == 0
    assert [Path(r["path"]).name for r in json.loads(capsys.readouterr().out)["results"]] == ["code.py"]
    assert run(home, "status") == 0
    assert "indexed" in capsys.readouterr().out
    assert run(home, "folders", "list") == 0
    assert "4 indexed" in capsys.readouterr().out


def test_a_folder_written_with_dot_dot_indexes_its_files(tmp_path, docs, fake_models, capsys, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.chdir(docs)
    roundabout = Path("..") / docs.name / "." / "notes" / ".."  # the docs folder, the long way round
    assert run(home, "folders", "add", roundabout) == 0
    assert run(home, "index", "--quiet") == 0
    assert run(home, "folders", "list") == 0
    listed = capsys.readouterr().out
    assert str(docs) in listed and ".." not in listed
    assert "4 indexed" in listed
    assert run(home, "search", "read and write CSV files", "--json", "-k", "1") == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["path"] == str(docs / "notes" / "csv.md")


def test_bad_date_is_a_clear_error(tmp_path, docs, fake_models, capsys):
    home = tmp_path / "home"
    run(home, "folders", "add", docs)
    assert run(home, "search", "x", "--after", "soon") == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_index_without_folders_says_what_to_do(tmp_path, fake_models, capsys):
    assert run(tmp_path / "home", "index") == 1
    assert "folders add" in capsys.readouterr().err


def test_rebuild_recovers_from_a_damaged_index(tmp_path, docs, fake_models, capsys):
    home = tmp_path / "home"
    run(home, "folders", "add", docs)
    run(home, "index", "--quiet")
    db = home / "index.sqlite"
    for side in ("index.sqlite-wal", "index.sqlite-shm"):
        (home / side).unlink(missing_ok=True)
    db.write_bytes(b"garbage" * 1000)
    assert run(home, "status") == 2
    assert "--rebuild" in capsys.readouterr().err
    assert run(home, "index", "--rebuild", "--quiet") == 0  # folder list recovered from its backup
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM files WHERE status='indexed'").fetchone()[0] == 4


def test_index_codec_choice_is_kept_and_converts(tmp_path, docs, fake_models, capsys, monkeypatch):
    from findling.engine.store import codec
    from findling.engine.store.store import Store

    monkeypatch.setattr(codec, "DEFAULT_CENTROIDS", 8)
    home = tmp_path / "home"
    run(home, "folders", "add", docs)
    assert run(home, "index", "--quiet", "--codec", "compact") == 0
    assert "stay float16 until" in capsys.readouterr().err  # a small index: nothing to train on yet
    run(home, "status")
    assert "vector format: fp16 (chosen: compact)" in capsys.readouterr().out
    with Store(home / "index.sqlite") as store:
        store.convert_vectors(store.train_codec("compact"))
    assert run(home, "search", "read and write CSV files", "--json", "-k", "1") == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["path"] == str(docs / "notes" / "csv.md")
    assert run(home, "index", "--quiet", "--codec", "fp16") == 0
    assert "--reencode" in capsys.readouterr().err
    run(home, "status")
    assert "vector format: fp16 (chosen: fp16)" in capsys.readouterr().out


def test_rebuild_keeps_exclusions_chosen_model_and_vector_format(tmp_path, docs, fake_models):
    home = tmp_path / "home"
    run(home, "folders", "add", docs)
    with Store(home / "index.sqlite") as store:
        store.set_exclude_patterns(["*.log", "drafts/"])
        store.set_model_choice(str(tmp_path / "my-model"))
        store.set_codec_choice("compact")
    assert run(home, "index", "--rebuild", "--quiet") == 0
    backups = list(home.glob("index.sqlite.*.bak"))
    assert len(backups) == 1  # the old index was moved aside, not lost
    with Store(home / "index.sqlite") as store:
        assert store.folders() == [docs.resolve()]
        assert store.exclude_patterns() == ("*.log", "drafts/")
        assert store.model_choice() == str(tmp_path / "my-model")
        assert store.codec_choice() == "compact"
