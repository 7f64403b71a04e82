"""Commit subjects stay within 72 characters (the convention in CONTRIBUTING.md).

Every commit after ``BASE`` is checked; ``BASE`` and the commits before it predate the convention and are
exempt. The check is skipped, with the reason, where it cannot be made: no ``git`` program, not a git checkout,
or a history that does not reach ``BASE`` (a shallow clone).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = "ef95ddc"  # the last commit made before the subject-length convention
MAX_SUBJECT = 72
EXEMPT: dict[str, str] = {}
"""Commits after BASE allowed a longer subject (full hash: subject); kept empty: reword before sharing instead."""


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)


def subjects_after(base: str) -> list[tuple[str, str]]:
    """``(short hash, subject)`` of every commit reachable from HEAD but not from ``base``, newest first."""
    done = _git("log", "--format=%h%x00%s", f"{base}..HEAD")
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return [tuple(line.split("\0", 1)) for line in done.stdout.splitlines() if line]


def too_long(subjects: list[tuple[str, str]], limit: int = MAX_SUBJECT) -> list[str]:
    """One line per subject longer than ``limit`` characters: hash, length, subject."""
    return [f"{sha} ({len(subject)} chars): {subject}" for sha, subject in subjects
            if len(subject) > limit and not any(sha.startswith(e) or e.startswith(sha) for e in EXEMPT)]


def test_too_long_names_each_offending_commit(monkeypatch):
    monkeypatch.setitem(EXEMPT, "d" * 40, "an exempt subject")
    subjects = [("aaaaaaa", "x" * MAX_SUBJECT), ("bbbbbbb", "y" * (MAX_SUBJECT + 1)), ("ccccccc", "short"),
                ("d" * 40, "z" * (MAX_SUBJECT + 5))]
    assert too_long(subjects) == [f"bbbbbbb ({MAX_SUBJECT + 1} chars): {'y' * (MAX_SUBJECT + 1)}"]


def test_commit_subjects_after_the_base_are_at_most_72_characters():
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if _git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip(f"{ROOT} is not a git checkout")
    if _git("cat-file", "-e", f"{BASE}^{{commit}}").returncode != 0:
        pytest.skip(f"commit {BASE} is not in this history (shallow clone?)")
    if _git("merge-base", "--is-ancestor", BASE, "HEAD").returncode != 0:
        pytest.skip(f"commit {BASE} is not an ancestor of HEAD")
    offending = too_long(subjects_after(BASE))
    assert not offending, (f"commit subjects longer than {MAX_SUBJECT} characters (say what changed for a user in "
                           "the subject; put figures and reasons in the body):\n" + "\n".join(offending))
