"""The indexer killed with SIGKILL at 20 random moments: the index stays consistent and ends equal to a clean build.

Each run is ``findling index`` with the tiny model in its own process, forked from a server that has already
imported torch and transformers (``_forkserver``), and killed: the first few during start-up, store opening,
model resolution and model load; then, in turn, after a random delay up to the length of a full run (scanning,
model load, encoding or writing) or a random moment after the run's first commit (encoding and writing).
Settings make a run commit every file or two, so those kills land between or inside write transactions. Each
time a run gets to the end before its kill, the folder is edited (files changed, added, deleted, renamed) so
the next runs have work again. After every kill the index must pass SQLite's integrity check and hold no
half-indexed file; at the end it must equal an uninterrupted build of the final folder.

Set ``FINDLING_CRASH_SEED`` to replay a run; the seed is printed with every failure.
"""
from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest

from tests.reliability.helpers import ForkServer, assert_same_index, check_consistent, index_content

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server needs POSIX fork")

KILLS = 20
SMALL_BATCHES = {"encode_batch_tokens": 256, "max_chunk_tokens": 128, "threads": 1}  # a commit every file or two
EARLY = (0.0, 0.01, 0.05, 0.15, 0.4)  # start-up, store open, model resolution, tokenizer and model load
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma omega river stone".split()


def _text(rng: random.Random, paragraphs: int = 3) -> str:
    return "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(50)) for _ in range(paragraphs))


def _corpus(folder: Path, rng: random.Random, n: int = 30) -> None:
    folder.mkdir()
    (folder / "sub").mkdir()
    for i in range(n):
        where = folder / "sub" if i % 4 == 0 else folder
        (where / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{_text(rng)}\n")


def _generation(db: Path) -> int:
    """How many write transactions that change what search sees the index has committed."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else 0


def _mutate(folder: Path, rng: random.Random, round_: int) -> None:
    """Change, add, delete and rename a few files so the next runs have something to write."""
    files = sorted(folder.rglob("*.md"))
    *edits, gone, moved = rng.sample(files, 5)
    for path in edits:
        path.write_text(path.read_text() + f"\nedit {round_}: {_text(rng, 1)}\n")
    gone.unlink()
    moved.rename(moved.with_name(f"moved-{round_}-{moved.name}"))
    for k in range(6):
        (folder / f"new-{round_}-{k}.md").write_text(f"# New {round_}.{k}\n\n{_text(rng)}\n")


@pytest.mark.slow
def test_sigkill_at_random_points_keeps_the_index_consistent_and_complete(tmp_path, tiny_model_dir):
    seed = int(os.environ.get("FINDLING_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    docs = tmp_path / "docs"
    _corpus(docs, rng)
    killed, clean, fresh = tmp_path / "killed", tmp_path / "clean", tmp_path / "fresh"
    model = ("--model", tiny_model_dir)
    log = tmp_path / "runs.log"
    with ForkServer(config=SMALL_BATCHES, log=log) as server:
        for home in (killed, clean):
            assert server.run("--home", home, "folders", "add", docs)["rc"] == 0
        reference = server.run("--home", clean, "index", "--quiet", *model)
        assert reference["rc"] == 0, log.read_text()[-3000:]
        horizon = reference["elapsed"]  # how long a run with all files to do takes
        db = killed / "index.sqlite"
        kills, finished, attempts = 0, 0, 0
        mid_write = 0  # kills that came after the run had committed some files
        while kills < KILLS:
            attempts += 1
            assert attempts <= 4 * KILLS, f"seed {seed}: runs kept finishing before their kill"
            when: dict = {"kill_after": EARLY[kills]} if kills < len(EARLY) else (
                {"kill_after": rng.uniform(0.0, horizon)} if kills % 3 == 0 else
                {"after_commit": (db, rng.uniform(0.0, 0.25))})
            before = _generation(db)
            result = server.run("--home", killed, "index", "--quiet", *model, **when)
            if result["killed"]:
                kills += 1
                mid_write += _generation(db) > before
            else:
                assert result["rc"] == 0, f"seed {seed}: run failed\n{log.read_text()[-3000:]}"
                finished += 1
                _mutate(docs, rng, finished)
            if db.exists():
                try:
                    check_consistent(db)
                except AssertionError as exc:
                    raise AssertionError(f"seed {seed}, run {attempts} ({when}, {result}): {exc}") from exc
        assert mid_write >= KILLS // 2, f"seed {seed}: only {mid_write} kills interrupted indexing in progress"
        last = server.run("--home", killed, "index", "--quiet", *model)
        assert last["rc"] == 0, f"seed {seed}\n{log.read_text()[-3000:]}"
        assert server.run("--home", fresh, "folders", "add", docs)["rc"] == 0
        assert server.run("--home", fresh, "index", "--quiet", *model)["rc"] == 0
    got, want = index_content(db), index_content(fresh / "index.sqlite")
    assert set(want["files"].values()) == {"indexed"}
    assert len(want["files"]) == len(list(docs.rglob("*.md")))
    try:
        assert_same_index(got, want)
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}: {exc}") from exc
