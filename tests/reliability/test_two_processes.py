"""Two processes on one index: one indexes, the other gets a clear message for indexing and can still search.

The writer is a real second process (a slow fake encoder keeps it mid-run); the test process plays the second
app window or the CLI. Nothing is corrupted, and a writer killed with SIGKILL leaves no stale lock behind.
"""
from __future__ import annotations

import signal
import subprocess
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from findling.cli import main as cli
from findling.engine.errors import IndexLocked
from findling.engine.index.indexer import Indexer
from findling.engine.search.searcher import Searcher
from findling.engine.store.store import Store
from tests.reliability.helpers import PYTHON, ROOT, check_consistent, subprocess_env

WRITER = textwrap.dedent("""
    import sys, time
    from dataclasses import replace
    from pathlib import Path
    from findling.engine.config import Config
    from findling.engine.index.indexer import Indexer
    from findling.engine.store.store import Store
    from tests.fakes import FakeEncoder

    class SlowEncoder(FakeEncoder):
        def encode_documents(self, texts):
            time.sleep(0.05)
            return super().encode_documents(texts)

    config = replace(Config(data_dir=Path(sys.argv[1])), encode_batch_tokens=16, max_chunk_tokens=64, threads=1)
    with Store(config.db_path) as store:
        indexer = Indexer(store, SlowEncoder(), config=config)  # takes the writer lock
        print("locked", flush=True)
        for progress in indexer.sync():
            if progress.indexed:
                print("wrote", flush=True)
                sys.stdin.readline()  # hold the lock, mid-run, until the test has tried everything
        print("done", flush=True)
""")


@pytest.fixture
def writer_setup(tmp_path, config, fake_encoder, docs):
    """An index of ``docs`` (searchable), and a second folder with files still to index."""
    more = tmp_path / "more"
    more.mkdir()
    for i in range(12):
        (more / f"m{i:02d}.txt").write_text(f"meadow number {i}: " + "grass and clover " * 30)
    with Store(config.db_path) as store:
        store.add_folder(docs)
        Indexer(store, fake_encoder, config=config).run_to_end()
        store.add_folder(more)
    return config


def _start_writer(config) -> subprocess.Popen:
    proc = subprocess.Popen([PYTHON, "-c", WRITER, str(config.data_dir)], cwd=ROOT, env=subprocess_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read()
    assert proc.stdout.readline().strip() == "wrote", proc.stderr.read()
    return proc


@pytest.fixture
def fake_models(monkeypatch, fake_encoder):
    import findling.engine.encode.resolve

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: fake_encoder)


def test_second_indexer_is_refused_while_search_keeps_working(writer_setup, fake_encoder, fake_models, docs,
                                                              capsys):
    config = writer_setup
    writer = _start_writer(config)
    try:
        with Store(config.db_path) as store:
            with pytest.raises(IndexLocked, match=rf"pid {writer.pid}\).*searching still works"):
                Indexer(store, fake_encoder, config=config)
            hits = Searcher(store, fake_encoder).search("read write csv files", k=3)
            assert hits and hits[0].path == docs / "notes" / "csv.md"
        home = ("--home", config.data_dir)
        assert cli.main([*map(str, home), "index", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"pid {writer.pid}" in err and "searching still works" in err and "Traceback" not in err
        assert cli.main([*map(str, home), "index", "--rebuild", "--quiet"]) == 2  # nothing is moved aside
        assert not list(config.data_dir.glob("*.bak"))
        capsys.readouterr()
        assert cli.main([*map(str, home), "search", "csv module", "--json"]) == 0
        assert "csv.md" in capsys.readouterr().out
        assert cli.main([*map(str, home), "status"]) == 0
    finally:
        writer.stdin.close()
        assert writer.wait(timeout=60) == 0, writer.stderr.read()
    check_consistent(config.db_path)
    with Store(config.db_path) as store:  # the lock is free again: this process may index now
        Indexer(store, fake_encoder, config=config).run_to_end()
        states = store.file_states()
    assert {s.status for s in states.values()} == {"indexed"} and len(states) == 4 + 12


def test_a_killed_writer_leaves_no_stale_lock(writer_setup, fake_encoder):
    config = writer_setup
    writer = _start_writer(config)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    check_consistent(config.db_path)
    with Store(config.db_path) as store:
        Indexer(store, fake_encoder, config=config).run_to_end()
        assert len(store.file_states()) == 4 + 12


def test_stores_in_one_process_share_the_lock(config, fake_encoder, docs):
    """The app opens several stores on one index; its own indexer is never locked out by them."""
    with Store(config.db_path) as first, Store(config.db_path) as second:
        first.add_folder(docs)
        Indexer(first, fake_encoder, config=config)
        Indexer(second, fake_encoder, config=replace(config)).run_to_end()
        assert len(second.file_states()) == 4
    lock = Path(str(config.db_path) + ".lock")
    assert lock.exists() and oct(lock.stat().st_mode & 0o777) == oct(0o600)
