"""The watcher: coalescing rules on their own, then a real watchdog observer on real files."""
from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from findling.engine.config import DEFAULT_EXCLUDES
from findling.engine.errors import FindlingError
from findling.engine.records import ChangeKind, FileChange
from findling.engine.sources.watcher import Debouncer, Watcher

ADDED, MODIFIED, DELETED, MOVED = ChangeKind.ADDED, ChangeKind.MODIFIED, ChangeKind.DELETED, ChangeKind.MOVED
A, B, C, T, X = (Path("/w") / name for name in ("a", "b", "c", "t", "x"))


def added(p: Path) -> FileChange:
    return FileChange(ADDED, p)


def modified(p: Path) -> FileChange:
    return FileChange(MODIFIED, p)


def deleted(p: Path) -> FileChange:
    return FileChange(DELETED, p)


def moved(old: Path, new: Path) -> FileChange:
    return FileChange(MOVED, new, old)


# ---------------------------------------------------------------------------------------- coalescing rules


def coalesce(*changes: FileChange) -> list[FileChange]:
    debouncer = Debouncer(quiet_seconds=1.0)
    for i, change in enumerate(changes):
        debouncer.add(change, now=i / 100)
    return debouncer.pop_all()


@pytest.mark.parametrize(("changes", "expected"), [
    ((added(A), modified(A), modified(A)), [added(A)]),
    ((added(A), deleted(A)), []),
    ((modified(A), modified(A)), [modified(A)]),
    ((modified(A), deleted(A)), [deleted(A)]),
    ((deleted(A), added(A)), [modified(A)]),
    ((deleted(A), added(A), deleted(A)), [deleted(A)]),
    ((moved(A, B), modified(B)), [moved(A, B), modified(B)]),
    ((moved(A, B), deleted(B)), [deleted(A), deleted(B)]),
    ((modified(A), moved(A, B)), [moved(A, B), modified(B)]),
    ((added(A), moved(A, B)), [modified(B)]),  # a new file renamed over B (an editor's save)
    ((moved(A, B), moved(B, C)), [moved(A, C), deleted(B)]),
    ((moved(A, B), moved(B, A)), [deleted(B)]),  # back where it was; whatever was at B is gone
    ((moved(A, B), modified(B), moved(B, A)), [modified(A), deleted(B)]),
    ((moved(A, B), moved(A, B)), [moved(A, B)]),  # the same event twice
    ((moved(X, B), moved(A, B)), [deleted(X), moved(A, B)]),  # B overwritten twice
])
def test_coalescing_rules(changes: tuple[FileChange, ...], expected: list[FileChange]) -> None:
    assert coalesce(*changes) == expected


def test_a_new_file_at_a_moved_files_old_path_turns_the_move_into_a_reindex() -> None:
    # The index entry of A is about to be replaced by the new A, so B must be read from disk.
    assert coalesce(moved(A, B), added(A)) == [modified(B), added(A)]


def test_swapping_two_files_through_a_temp_name_reindexes_both() -> None:
    result = coalesce(moved(A, T), moved(B, A), moved(T, B))
    assert result == [modified(A), moved(T, B), modified(B)]


def test_a_deleted_folder_drops_what_was_pending_below_it() -> None:
    d = Path("/w/d")
    result = coalesce(modified(d / "x"), added(d / "y"), moved(X, d / "z"), deleted(d))
    assert result == [deleted(X), deleted(d)]


def test_paths_flush_after_their_own_quiet_time() -> None:
    debouncer = Debouncer(quiet_seconds=1.0)
    debouncer.add(modified(A), now=0.0)
    debouncer.add(modified(B), now=0.5)
    assert debouncer.next_due() == 1.0
    assert debouncer.pop_due(now=0.9) == []
    assert debouncer.pop_due(now=1.0) == [modified(A)]
    debouncer.add(modified(B), now=1.2)  # touched again: waits anew
    assert debouncer.pop_due(now=1.6) == []
    assert debouncer.pop_due(now=2.2) == [modified(B)]
    assert len(debouncer) == 0 and debouncer.next_due() is None


def test_a_flushed_folder_deletion_turns_later_moves_out_of_it_into_reindexes() -> None:
    d, e = Path("/w/d"), Path("/w/e")
    debouncer = Debouncer(quiet_seconds=1.0)
    debouncer.add(moved(d / "x", e / "x"), now=0.0)
    debouncer.add(deleted(d), now=0.0)
    debouncer.add(modified(e / "x"), now=0.5)
    assert debouncer.pop_due(now=1.2) == [deleted(d)]
    assert debouncer.pop_all() == [modified(e / "x")]


# ----------------------------------------------------------------------------------------- live watching


class Recorder:
    """The ``on_changes`` callback: keeps every batch; can be told to fail first."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.batches: list[list[FileChange]] = []
        self._fail = fail_first
        self._lock = threading.Lock()

    def __call__(self, batch: list[FileChange]) -> None:
        with self._lock:
            self.batches.append(list(batch))
            if self._fail:
                self._fail = False
                raise RuntimeError("callback failed on purpose")

    @property
    def changes(self) -> list[FileChange]:
        with self._lock:
            return [change for batch in self.batches for change in batch]


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Session:
    """A started watcher on ``root`` and what it delivered."""

    def __init__(self, root: Path, recorder: Recorder, **options) -> None:
        options.setdefault("patterns", DEFAULT_EXCLUDES)
        options.setdefault("debounce_seconds", 0.2)
        self.root = root
        self.recorder = recorder
        self.watcher = Watcher([root], on_changes=recorder, **options)
        self._markers = 0
        self._seen = 0

    def new_changes(self) -> list[FileChange]:
        """Changes delivered since the last call, once everything done before this call has come through.

        A marker file is created last: the debouncer flushes paths in the order they went quiet, so when
        the marker arrives, every earlier change has been delivered.
        """
        self._markers += 1
        marker = self.root / f"marker-{self._markers}.txt"
        marker.write_text("m")
        assert wait_for(lambda: added(marker) in self.recorder.changes), self.recorder.changes
        changes = self.recorder.changes
        fresh, self._seen = changes[self._seen:], len(changes)
        return [c for c in fresh if not c.path.name.startswith("marker-")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def session(root: Path):
    sessions: list[Session] = []

    def start(recorder: Recorder | None = None, **options) -> Session:
        s = Session(root, recorder or Recorder(), **options)
        s.watcher.start()
        sessions.append(s)
        return s

    yield start
    for s in sessions:
        s.watcher.stop()


def test_create_modify_delete(root: Path, session) -> None:
    s = session()
    (root / "a.txt").write_text("one")
    assert s.new_changes() == [added(root / "a.txt")]
    with open(root / "a.txt", "a") as f:
        f.write(" two")
    assert s.new_changes() == [modified(root / "a.txt")]
    (root / "a.txt").unlink()
    assert s.new_changes() == [deleted(root / "a.txt")]


def test_rename(root: Path, session) -> None:
    (root / "a.txt").write_text("one")
    s = session()
    (root / "a.txt").rename(root / "b.txt")
    assert s.new_changes() == [moved(root / "a.txt", root / "b.txt")]


def test_a_moved_folder_yields_a_move_per_file(root: Path, session) -> None:
    for rel in ("d/x.txt", "d/sub/y.txt", "d/.hidden.txt", "d/node_modules/m.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    s = session()
    (root / "d").rename(root / "e")
    assert s.new_changes() == [
        moved(root / "d/x.txt", root / "e/x.txt"),
        moved(root / "d/sub/y.txt", root / "e/sub/y.txt"),
        deleted(root / "d"),  # drops anything the index still holds below the old folder
    ]


def test_a_deleted_folder_yields_one_deletion(root: Path, session) -> None:
    for rel in ("d/x.txt", "d/sub/y.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    s = session()
    shutil.rmtree(root / "d")
    assert s.new_changes() == [deleted(root / "d")]


def test_moves_across_the_tree_boundary(root: Path, tmp_path: Path, session) -> None:
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "in.txt").write_text("in")
    (outside / "folder" / "f.txt").write_text("f")
    (root / "out.txt").write_text("out")
    s = session()
    (outside / "in.txt").rename(root / "in.txt")
    (outside / "folder").rename(root / "folder")
    (root / "out.txt").rename(outside / "out.txt")
    assert s.new_changes() == [added(root / "in.txt"), added(root / "folder/f.txt"), deleted(root / "out.txt")]


def test_a_burst_of_writes_is_one_change(root: Path, session) -> None:
    (root / "old.txt").write_text("v0")
    s = session(debounce_seconds=1.0)
    for i in range(20):
        (root / "old.txt").write_text(f"v{i + 1}")
        (root / "new.txt").write_text(f"v{i}")
    assert sorted(s.new_changes(), key=str) == sorted([modified(root / "old.txt"), added(root / "new.txt")], key=str)


@pytest.mark.parametrize("temp_name", [".notes.txt.swp", "notes.txt.part", "notes.new.txt"])
def test_an_editor_save_through_a_temp_file_is_one_change(root: Path, session, temp_name: str) -> None:
    (root / "notes.txt").write_text("draft")
    s = session(accept=lambda p: p.suffix == ".txt", debounce_seconds=1.0)
    (root / temp_name).write_text("final")
    os.replace(root / temp_name, root / "notes.txt")
    assert s.new_changes() == [modified(root / "notes.txt")]


def test_an_editor_save_through_a_backup_rename_is_one_change(root: Path, session) -> None:
    (root / "notes.txt").write_text("draft")
    s = session(debounce_seconds=1.0)
    (root / "4913").write_text("")  # vim checks that it may create files here
    (root / "4913").unlink()
    (root / "notes.txt").rename(root / "notes.txt~")  # backup, excluded by "*~"
    (root / "notes.txt").write_text("final")
    (root / "notes.txt~").unlink()
    assert s.new_changes() == [modified(root / "notes.txt")]


def test_files_read_by_name_are_watched_like_the_indexer_reads_them(root: Path, session) -> None:
    """With the indexer's own test (``is_supported``), a suffix-less file it reads by name (``Makefile``) is
    reported as it changes; one it does not read (``LICENSE.bin``, ``notes``) is not."""
    from findling.engine.extract import is_supported

    s = session(accept=is_supported)
    makefile = root / "Makefile"
    makefile.write_text("all:\n\techo hi\n")
    (root / "notes").write_text("no suffix, not a name read as text")
    (root / "LICENSE.bin").write_bytes(b"\x00\x01")
    assert s.new_changes() == [added(makefile)]
    makefile.write_text("all:\n\techo bye\n")
    assert {(c.kind, c.path) for c in s.new_changes()} == {(MODIFIED, makefile)}


def test_excluded_paths_and_other_suffixes_are_ignored(root: Path, session) -> None:
    (root / "node_modules").mkdir()
    (root / "keep.txt").write_text("k")
    s = session(accept=lambda p: p.suffix == ".txt")
    (root / "node_modules" / "x.txt").write_text("x")
    (root / ".cache").mkdir()
    (root / ".cache" / "y.txt").write_text("y")
    (root / "z.txt~").write_text("z")
    (root / "picture.bmp").write_bytes(b"BM")
    (root / "keep.txt").rename(root / "keep.bmp")  # renamed to a type we do not read: gone from the index
    assert s.new_changes() == [deleted(root / "keep.txt")]


def test_a_failing_callback_does_not_stop_the_watcher(root: Path, session, caplog) -> None:
    s = session(Recorder(fail_first=True))
    (root / "first.txt").write_text("1")
    assert wait_for(lambda: s.recorder.batches)
    (root / "second.txt").write_text("2")
    assert s.new_changes() == [added(root / "first.txt"), added(root / "second.txt")]
    assert "on_changes failed" in caplog.text


def test_stop_delivers_pending_changes(root: Path, session) -> None:
    s = session(debounce_seconds=60)
    (root / "a.txt").write_text("a")
    assert wait_for(lambda: s.watcher.pending == 1)
    s.watcher.stop()
    assert s.recorder.changes == [added(root / "a.txt")]
    s.watcher.stop()  # a second stop is harmless


def test_context_manager_and_nested_roots(root: Path) -> None:
    (root / "sub").mkdir()
    recorder = Recorder()
    with Watcher([root, root / "sub"], on_changes=recorder, patterns=(), debounce_seconds=0.1) as watcher:
        assert watcher.roots == (root,)
        (root / "sub" / "a.txt").write_text("a")
        assert wait_for(lambda: recorder.changes)
    assert recorder.changes == [added(root / "sub" / "a.txt")]  # once, not once per root


def test_a_missing_folder_cannot_be_watched(tmp_path: Path) -> None:
    watcher = Watcher([tmp_path / "missing"], on_changes=Recorder(), patterns=())
    with pytest.raises(FindlingError, match="Cannot watch"):
        watcher.start()
