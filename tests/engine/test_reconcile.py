import shutil

from findling.engine.index.indexer import Indexer
from findling.engine.records import ChangeKind
from findling.engine.sources.reconcile import scan_folder


def _scan(store, config, folder):
    return scan_folder(store, folder, patterns=config.exclude_patterns, max_file_bytes=config.max_file_bytes)


def test_scan_classifies_changes(store, fake_encoder, config, docs):
    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    assert _scan(store, config, docs).changes == ()
    shutil.move(docs / "notes", docs / "moved-notes")  # a whole folder moved: two file moves
    (docs / "garden.txt").write_text("changed")
    (docs / "code.py").unlink()
    (docs / "fresh.md").write_text("new file")
    (docs / "track.mp3").write_bytes(b"ID3\x03")
    (docs / "README").write_text("an extensionless text file is read too")
    result = _scan(store, config, docs)
    kinds = sorted((c.kind.value, c.path.name, c.old_path.name if c.old_path else None) for c in result.changes)
    assert kinds == [("added", "README", None), ("added", "fresh.md", None), ("deleted", "code.py", None), ("modified", "garden.txt", None),
                     ("moved", "csv.md", "csv.md"), ("moved", "json.md", "json.md")]
    assert result.ignored == 1  # the mp3 is not recorded
    assert {c.path.parent.name for c in result.changes if c.kind is ChangeKind.MOVED} == {"moved-notes"}


def test_unreadable_folder_is_not_taken_for_deleted(store, fake_encoder, config, docs):
    import os

    import pytest

    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    store.add_folder(docs)
    Indexer(store, fake_encoder, config=config).run_to_end()
    (docs / "notes").chmod(0)
    try:
        assert not [c for c in _scan(store, config, docs).changes if c.kind is ChangeKind.DELETED]
    finally:
        (docs / "notes").chmod(0o755)
