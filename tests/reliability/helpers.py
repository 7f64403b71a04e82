"""Shared tools of the reliability tests: subprocess runs, index and folder snapshots, the fork server."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np

from findling.engine.store.schema import register_functions

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python that imports this checkout (Hugging Face offline unless overridden)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``findling ARGS`` in a fresh process."""
    return subprocess.run([PYTHON, "-m", "findling.cli.main", *map(str, args)], cwd=ROOT, env=env or subprocess_env(),
                          capture_output=True, text=True, errors="replace", timeout=timeout)


def run_measured(argv: list[str], *, env: dict[str, str], timeout: float = 300) -> tuple[int, str, int]:
    """Run ``argv`` under a small parent that reports its peak resident memory: (exit status, stderr, bytes).

    The parent's ``RUSAGE_CHILDREN`` sees only this one child, so earlier subprocesses of the test run do not
    count.
    """
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "sys.stderr.buffer.write(p.stderr)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run([PYTHON, "-c", wrapper, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          errors="replace", timeout=timeout)
    rc, kib = done.stdout.split()
    return int(rc), done.stderr, int(kib) * 1024  # ru_maxrss is in KiB on Linux


# ------------------------------------------------------------------------------------------ index snapshots
def check_consistent(db: Path) -> None:
    """The index file passes SQLite's checks and holds no half-indexed file."""
    with sqlite3.connect(db, timeout=30) as conn:
        register_functions(conn)  # the keyword index reads the chunks' text through findling_text
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")  # keyword index in step
        # every file has exactly the chunks it records, and every chunk has its vectors
        bad = conn.execute(
            "SELECT f.path, f.n_chunks, COUNT(c.id), COUNT(v.chunk_id) FROM files f"
            " LEFT JOIN chunks c ON c.file_id = f.id LEFT JOIN vectors v ON v.chunk_id = c.id"
            " GROUP BY f.id HAVING COUNT(c.id) != f.n_chunks OR COUNT(v.chunk_id) != COUNT(c.id)").fetchall()
        assert bad == [], f"half-indexed files: {bad}"
        orphans = conn.execute("SELECT COUNT(*) FROM vectors v LEFT JOIN chunks c ON c.id = v.chunk_id"
                               " WHERE c.id IS NULL").fetchone()[0]
        assert orphans == 0


def index_content(db: Path) -> dict:
    """``{(path, ordinal): (text, vectors)}`` and ``{path: status}`` of an index, after checking it."""
    check_consistent(db)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT f.path, c.ordinal, c.text, v.data FROM files f JOIN chunks c ON c.file_id = f.id"
                            " JOIN vectors v ON v.chunk_id = c.id ORDER BY f.path, c.ordinal").fetchall()
        files = dict(conn.execute("SELECT path, status FROM files").fetchall())
    return {"chunks": {(p, o): (t, d) for p, o, t, d in rows}, "files": files}


def assert_same_index(got: dict, want: dict, *, atol: float = 2e-2) -> None:
    """Same files, same chunks, vectors equal within float16 and batching tolerance."""
    assert got["files"] == want["files"]
    assert got["chunks"].keys() == want["chunks"].keys()
    for key, (text, blob) in want["chunks"].items():
        got_text, got_blob = got["chunks"][key]
        assert got_text == text, key
        a = np.frombuffer(got_blob, dtype="<f2").astype(np.float32)
        b = np.frombuffer(blob, dtype="<f2").astype(np.float32)
        assert a.shape == b.shape, key
        np.testing.assert_allclose(a, b, atol=atol, err_msg=str(key))


def file_rows(db: Path) -> dict[str, tuple[str, str | None]]:
    """``{path as stored: (status, reason)}``."""
    with sqlite3.connect(db) as conn:
        return {p: (s, r) for p, s, r in conn.execute("SELECT path, status, reason FROM files")}


# ----------------------------------------------------------------------------------------- folder snapshots
def tree_snapshot(root: Path) -> dict[bytes, tuple]:
    """Every entry below ``root`` (never following links): type, mode, size, mtime and a content digest.

    Pipes are not opened; unreadable files are described by their metadata only.
    """
    out: dict[bytes, tuple] = {}
    raw_root = os.fsencode(root)
    for folder, dirs, files in os.walk(raw_root, followlinks=False):
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(folder, name)
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                try:
                    with open(path, "rb") as fh:
                        digest = hashlib.file_digest(fh, "sha256").hexdigest()
                except PermissionError:
                    digest = "unreadable"
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(path)
            out[os.path.relpath(path, raw_root)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                                    st.st_size, st.st_mtime_ns, digest)
    st = os.lstat(raw_root)
    out[b"."] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return out


# ------------------------------------------------------------------------------------------- fork server
class ForkServer:
    """Talks to ``python -m tests.reliability._forkserver`` (see that module)."""

    def __init__(self, *, config: dict | None = None, log: Path) -> None:
        env = subprocess_env(FINDLING_TEST_CONFIG=json.dumps(config or {}))
        self.log = log
        self.proc = subprocess.Popen([PYTHON, "-m", "tests.reliability._forkserver"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()
        assert json.loads(ready or "{}").get("ready"), "the fork server did not start"

    def run(self, *argv: str, kill_after: float | None = None, after_commit: tuple[Path, float] | None = None) -> dict:
        """Run ``findling ARGV`` in a forked child; kill it after ``kill_after`` seconds, or ``after_commit[1]``
        seconds after the index ``after_commit[0]`` committed its first write of the run."""
        request = {"argv": [str(a) for a in argv], "kill_after": kill_after, "log": str(self.log)}
        if after_commit is not None:
            request["after_commit"] = {"db": str(after_commit[0]), "extra": after_commit[1]}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def __enter__(self) -> "ForkServer":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.close()
