import threading

import pytest

from findling.cli import main as cli
from findling.engine.sources.exclusions import (
    add_patterns,
    check_pattern,
    effective_patterns,
    folder_pattern,
    remove_patterns,
    why_not_indexed,
)
from findling.engine.index.indexer import Indexer
from findling.engine.records import ChangeKind, FileChange
from findling.engine.store.store import Store
from findling.engine.index.watch_loop import run_watch
from findling.engine.sources.walk import is_excluded
from tests.waiting import wait_for


def _indexed(store):
    return {p for p, s in store.file_states().items() if s.status == "indexed"}


def test_user_patterns_are_kept_in_the_index_after_the_defaults(config):
    with Store(config.db_path) as store:
        assert add_patterns(store, [" drafts ", "*.log", "drafts"]) == ["drafts", "*.log"]
        assert add_patterns(store, ["*.log"]) == []
    with Store(config.db_path) as store:  # another connection, as the CLI or the watcher would open
        assert store.exclude_patterns() == ("drafts", "*.log")
        patterns = effective_patterns(config, store)
        assert patterns[: len(config.exclude_patterns)] == config.exclude_patterns
        assert patterns[-2:] == ("drafts", "*.log")
        assert remove_patterns(store, ["drafts", "node_modules"]) == ["drafts"]  # a default stays
        assert store.exclude_patterns() == ("*.log",)


@pytest.mark.parametrize("bad", ["", "  ", "*", "/**", "/home/me/secret", "~/x", "C:/Users", "a\\b"])
def test_patterns_that_cannot_work_are_refused_with_a_reason(bad, store):
    with pytest.raises(ValueError, match=r"\S"):
        check_pattern(bad)
    with pytest.raises(ValueError):
        add_patterns(store, ["fine", bad])  # all or none
    assert store.exclude_patterns() == ()


def test_a_new_pattern_prunes_the_index_at_the_next_sync_and_never_touches_disk(store, fake_encoder, config, docs):
    store.add_folder(docs)
    indexer = Indexer(store, fake_encoder, config=config)
    indexer.run_to_end()
    assert docs / "notes" / "csv.md" in _indexed(store)
    add_patterns(store, ["notes", "*.py"])
    p = indexer.run_to_end()
    assert p.deleted == 3
    assert _indexed(store) == {docs / "garden.txt"}
    assert (docs / "notes" / "csv.md").is_file() and (docs / "code.py").is_file()  # still on disk
    remove_patterns(store, ["notes"])
    p = indexer.run_to_end()
    assert p.indexed == 2
    assert _indexed(store) == {docs / "garden.txt", docs / "notes" / "csv.md", docs / "notes" / "json.md"}


def test_a_watcher_change_to_an_excluded_file_drops_it(store, fake_encoder, config, docs):
    store.add_folder(docs)
    indexer = Indexer(store, fake_encoder, config=config)
    indexer.run_to_end()
    add_patterns(store, ["garden.*"])
    (docs / "garden.txt").write_text("Tomatoes and more tomatoes.")
    p = indexer.run_to_end([FileChange(ChangeKind.MODIFIED, docs / "garden.txt")])
    assert p.deleted == 1 and p.indexed == 0
    assert docs / "garden.txt" not in store.file_states()


def test_the_watch_loop_ignores_files_the_user_excluded(config, fake_encoder, docs):
    with Store(config.db_path) as setup:
        setup.add_folder(docs)
        add_patterns(setup, ["scratch"])
    stop = threading.Event()

    def watch():
        with Store(config.db_path) as store:
            indexer = Indexer(store, fake_encoder, config=config)
            run_watch(indexer, config=config, stop=stop, on_watching=indexer.run_to_end)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        with Store(config.db_path) as reader:
            assert wait_for(lambda: reader.stats()["files"].get("indexed") == 4)
            (docs / "scratch").mkdir()
            (docs / "scratch" / "idea.md").write_text("An idea about zebras.")
            (docs / "zebra.md").write_text("Zebras graze.")
            assert wait_for(lambda: docs / "zebra.md" in reader.file_states())
            assert docs / "scratch" / "idea.md" not in reader.file_states()
    finally:
        stop.set()
        thread.join(timeout=10)


def test_why_not_indexed_gives_the_reason(store, config, docs, tmp_path):
    store.add_folder(docs)
    add_patterns(store, ["notes/json.md"])
    (docs / "track.mp3").write_bytes(b"ID3\x03")
    (docs / "README").write_text("read me")
    assert why_not_indexed(docs / "garden.txt", store=store, config=config) is None
    assert why_not_indexed(docs / "README", store=store, config=config) is None  # a known name without suffix
    assert why_not_indexed(docs / "notes" / "json.md", store=store, config=config) == \
        'excluded by the pattern "notes/json.md"'
    assert why_not_indexed(docs / ".hidden" / "secret.txt", store=store, config=config) == \
        'excluded by the pattern ".*"'
    assert why_not_indexed(docs / "track.mp3", store=store, config=config) == "unsupported file type"
    assert why_not_indexed(docs / "nothing.txt", store=store, config=config) == "file not found"
    assert why_not_indexed(tmp_path / "elsewhere.txt", store=store, config=config) == "not inside a watched folder"


def test_folder_pattern_hides_that_folder_only(tmp_path):
    root = tmp_path / "docs"
    assert folder_pattern(root / "Mail" / "old", [root]) == "Mail/old/**"
    assert folder_pattern(root, [root]) is None
    assert folder_pattern(tmp_path / "other", [root]) is None
    pattern = folder_pattern(root / "sub", [root])
    assert is_excluded(root / "sub" / "a.txt", root=root, patterns=[pattern])
    assert is_excluded(root / "sub", root=root, patterns=[pattern])
    assert not is_excluded(root / "keep" / "sub" / "a.txt", root=root, patterns=[pattern])
    assert not is_excluded(root / "subway.txt", root=root, patterns=[pattern])


@pytest.fixture
def fake_models(monkeypatch, fake_encoder):
    import findling.engine.encode.resolve

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: fake_encoder)
    return fake_encoder


def test_cli_exclude_add_list_test_remove(tmp_path, docs, fake_models, capsys):
    home = tmp_path / "home"

    def run(*args):
        return cli.main(["--home", str(home), *map(str, args)])

    assert run("folders", "add", docs) == 0
    assert run("index", "--quiet") == 0
    assert run("exclude", "add", "notes") == 0
    assert run("exclude", "add", "/abs/path") == 2
    assert "absolute path" in capsys.readouterr().err
    assert run("exclude", "list") == 0
    listed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert listed["notes"] == "yours" and listed["node_modules"] == "built in"
    assert run("exclude", "test", docs / "notes" / "csv.md", docs / "garden.txt") == 1
    out = capsys.readouterr().out
    assert 'csv.md: not indexed: excluded by the pattern "notes"' in out
    assert "garden.txt: indexed" in out
    assert run("index", "--quiet") == 0
    assert "2 deleted" in capsys.readouterr().out
    assert run("exclude", "remove", "node_modules") == 2
    assert "built in" in capsys.readouterr().err
    assert run("exclude", "remove", "notes") == 0
    assert run("index", "--quiet") == 0
    assert "2 indexed" in capsys.readouterr().out
