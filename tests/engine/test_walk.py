"""Which files a walk of a watched folder finds: exclusions, links, special files, odd names, limits."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from findling.engine.config import DEFAULT_EXCLUDES
from findling.engine.sources.walk import UNSUPPORTED_TYPE, FileEntry, is_excluded, iter_files, would_index

MB = 1024 * 1024
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file system features")


def make(root: Path, *relpaths: str, text: str = "x") -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def found(root: Path, patterns=DEFAULT_EXCLUDES, **options) -> list[str]:
    options.setdefault("max_file_bytes", 64 * MB)
    return sorted(e.path.relative_to(root).as_posix() for e in iter_files(root, patterns=patterns, **options))


# ------------------------------------------------------------------------------------------- is_excluded


@pytest.mark.parametrize(("rel", "excluded"), [
    ("notes.txt", False),
    ("a/b/notes.txt", False),
    (".git/config", True),
    ("a/.hidden.txt", True),
    ("web/node_modules/pkg/index.js", True),
    ("deep/er/findling.egg-info/PKG-INFO", True),
    ("src/__pycache__/m.cpython-311.pyc", True),
    ("docs/site/index.html", True),
    ("docs/site/sub/page.html", True),  # a folder above matches
    ("docs/site.txt", False),
    ("other/docs/site/index.html", False),  # patterns with "/" are anchored at the root
    ("drafts/one.md", True),
    ("a/b/drafts/two.md", True),
    ("drafts.md", False),
    ("a/drafts-old/x.md", False),
    ("top/x.md", True),
    ("a/top/x.md", False),
    ("Node_Modules/x.js", sys.platform == "win32"),  # case-sensitive on POSIX
])
def test_is_excluded(rel: str, excluded: bool) -> None:
    root = Path("/data/root")
    patterns = [*DEFAULT_EXCLUDES, "docs/site/*", "**/drafts/**", "/top"]
    assert is_excluded(root / rel, root=root, patterns=patterns) is excluded


def test_path_patterns_keep_star_inside_one_component() -> None:
    root = Path("/r")
    assert is_excluded(root / "a/x/c", root=root, patterns=["a/*/c"])
    assert not is_excluded(root / "a/x/y/c", root=root, patterns=["a/*/c"])
    assert is_excluded(root / "a/x/y/c", root=root, patterns=["a/**/c"])
    assert is_excluded(root / "a/c", root=root, patterns=["a/**/c"])
    assert is_excluded(root / "logs/2024/b.log", root=root, patterns=["logs/[0-9]*/*.log"])
    assert not is_excluded(root / "logs/old/b.log", root=root, patterns=["logs/[0-9]*/*.log"])


def test_the_root_itself_is_never_excluded(tmp_path: Path) -> None:
    root = tmp_path / ".hidden-root"
    make(root, "a.txt")
    assert not is_excluded(root, root=root, patterns=[".*"])
    assert found(root) == ["a.txt"]


# ------------------------------------------------------------------------------------------------- walking


def test_walk_skips_excluded_names_and_folders(tmp_path: Path) -> None:
    make(tmp_path, "a.txt", "sub/b.md", "sub/.hidden.txt", ".git/config", "web/node_modules/pkg/i.js",
         "x/y/pkg.egg-info/PKG-INFO", "src/__pycache__/m.pyc", "src/m.py", "backup.txt~", "~$report.docx")
    assert found(tmp_path) == ["a.txt", "src/m.py", "sub/b.md"]


def test_walk_honours_path_patterns(tmp_path: Path) -> None:
    make(tmp_path, "docs/build/x.html", "docs/build/deep/y.html", "docs/guide.md", "other/docs/build/z.html",
         "drafts/d.md", "a/b/drafts/e.md", "drafts.md")
    patterns = ["docs/build/*", "**/drafts/**"]
    assert found(tmp_path, patterns) == ["docs/guide.md", "drafts.md", "other/docs/build/z.html"]


def test_entries_carry_path_size_and_mtime(tmp_path: Path) -> None:
    make(tmp_path, "sub/a.txt", text="hello")
    [entry] = list(iter_files(tmp_path, patterns=(), max_file_bytes=MB))
    info = os.stat(tmp_path / "sub/a.txt")
    assert entry == FileEntry(tmp_path / "sub" / "a.txt", 5, info.st_mtime, None)
    assert entry.path.is_absolute()


def test_order_is_stable_files_first_then_folders_depth_first(tmp_path: Path) -> None:
    make(tmp_path, "b/2.txt", "a/z/1.txt", "a/0.txt", "c.txt")
    walked = [e.path.relative_to(tmp_path).as_posix() for e in iter_files(tmp_path, patterns=(), max_file_bytes=MB)]
    assert walked == ["c.txt", "a/0.txt", "a/z/1.txt", "b/2.txt"]


def test_start_walks_one_folder_with_patterns_relative_to_the_root(tmp_path: Path) -> None:
    make(tmp_path, "docs/build/x.html", "docs/a.md", "docs/sub/b.md", "other.md")
    walk = iter_files(tmp_path, patterns=["docs/build/*"], max_file_bytes=MB, start=tmp_path / "docs")
    assert sorted(e.path.relative_to(tmp_path).as_posix() for e in walk) == ["docs/a.md", "docs/sub/b.md"]


def test_size_limit_and_suffixes_set_a_skip_reason(tmp_path: Path) -> None:
    make(tmp_path, "small.txt", "Upper.TXT", "picture.bmp")
    with open(tmp_path / "huge.txt", "wb") as f:
        f.truncate(64 * MB + 1)  # sparse: no real disk use
    entries = {e.path.name: e for e in iter_files(tmp_path, patterns=(), max_file_bytes=64 * MB,
                                                  suffixes={".txt", "md"})}
    assert set(entries) == {"small.txt", "Upper.TXT", "picture.bmp", "huge.txt"}
    assert entries["small.txt"].skip_reason is None
    assert entries["Upper.TXT"].skip_reason is None
    assert entries["picture.bmp"].skip_reason == UNSUPPORTED_TYPE
    assert entries["huge.txt"].skip_reason == "over the 64 MB size limit"
    assert entries["huge.txt"].size == 64 * MB + 1


@posix_only
def test_symlink_loops_end_and_each_file_is_listed_once(tmp_path: Path) -> None:
    make(tmp_path, "a/f.txt", "a/b/g.txt", "top.txt")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "up")  # loop: a/b/up -> a
    os.symlink("..", tmp_path / "a" / "parent")  # loop: a/parent -> root
    os.symlink(tmp_path, tmp_path / "self")  # loop: self -> root
    assert found(tmp_path, ()) == ["a/b/g.txt", "a/f.txt", "top.txt"]


@posix_only
def test_folder_symlinks_are_followed_and_paths_kept_unresolved(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make(outside, "shared.txt")
    root = tmp_path / "root"
    make(root, "own.txt")
    os.symlink(outside, root / "linked")
    os.symlink(outside / "missing.txt", root / "broken.txt")
    assert found(root, ()) == ["linked/shared.txt", "own.txt"]


@posix_only
def test_fifo_is_not_yielded(tmp_path: Path) -> None:
    make(tmp_path, "a.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    assert found(tmp_path, ()) == ["a.txt"]


@posix_only
def test_odd_file_names(tmp_path: Path) -> None:
    undecodable = os.fsdecode(b"caf\xe9.txt")  # Latin-1 bytes: a lone surrogate in the str
    names = ["new\nline.txt", "emoji \U0001F4C4.txt", undecodable, " leading space.txt", "tab\t.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"abc")
    entries = list(iter_files(tmp_path, patterns=DEFAULT_EXCLUDES, max_file_bytes=MB))
    assert sorted(e.path.name for e in entries) == sorted(names)
    for entry in entries:
        assert entry.size == 3
        assert os.path.exists(entry.path)
        assert os.fsencode(entry.path).endswith(os.fsencode(entry.path.name))


@posix_only
def test_unreadable_folder_is_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    make(tmp_path, "ok.txt", "locked/secret.txt", "z/after.txt")
    (tmp_path / "locked").chmod(0)
    if os.geteuid() == 0 and os.access(tmp_path / "locked", os.R_OK):
        (tmp_path / "locked").chmod(0o755)
        pytest.skip("root reads every folder")
    try:
        walk = iter_files(tmp_path, patterns=(), max_file_bytes=MB)
        paths = sorted(e.path.relative_to(tmp_path).as_posix() for e in walk)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert paths == ["ok.txt", "z/after.txt"]
    assert [(s.path, s.reason) for s in walk.skipped] == [(tmp_path / "locked", "permission denied")]


def test_missing_root_is_reported_not_raised(tmp_path: Path) -> None:
    walk = iter_files(tmp_path / "gone", patterns=(), max_file_bytes=MB)
    assert list(walk) == []
    assert [(s.path, s.reason) for s in walk.skipped] == [(tmp_path / "gone", "disappeared while listing")]


# -------------------------------------------------------------------------------------------- would_index


def test_would_index_gives_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make(root, "ok.txt", ".hidden/h.txt", "pic.bmp", "sub/big.txt")
    make(tmp_path, "elsewhere.txt")
    with open(root / "sub" / "big.txt", "wb") as f:
        f.truncate(2 * MB)

    def ask(path: Path) -> str | None:
        return would_index(path, roots=[root], patterns=DEFAULT_EXCLUDES, max_file_bytes=MB,
                           suffixes={".txt"})

    assert ask(root / "ok.txt") is None
    assert ask(root / ".hidden" / "h.txt") == 'excluded by the pattern ".*"'
    assert ask(root / "pic.bmp") == UNSUPPORTED_TYPE
    assert ask(root / "sub" / "big.txt") == "over the 1 MB size limit"
    assert ask(root / "missing.txt") == "file not found"
    assert ask(root / "sub") == "is a folder"
    assert ask(tmp_path / "elsewhere.txt") == "not inside a watched folder"


@posix_only
def test_would_index_agrees_with_the_walk_through_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    make(real, "a.txt")
    os.symlink(real, tmp_path / "link")
    os.mkfifo(real / "pipe.txt")
    assert would_index(real / "a.txt", roots=[tmp_path / "link"], patterns=(), max_file_bytes=MB) is None
    assert would_index(real / "pipe.txt", roots=[real], patterns=(), max_file_bytes=MB) == "not a regular file"
