"""The indexer killed with SIGKILL mid-run: the index stays consistent and the next run finishes the job."""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _corpus(folder: Path, n: int = 300) -> None:
    rng = random.Random(7)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma omega".split()
    folder.mkdir()
    for i in range(n):
        text = "\n\n".join(" ".join(rng.choice(words) for _ in range(60)) for _ in range(6))
        (folder / f"doc{i:03d}.md").write_text(f"# Document {i}\n\n{text}\n")


def _cli(home: Path, model: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "--home", str(home), *args, "--model", str(model)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _indexed(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM files WHERE status = 'indexed'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _snapshot(db: Path) -> dict:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # no file is half indexed: its recorded chunk count is what is stored, each chunk has its vectors
        bad = conn.execute(
            "SELECT f.path FROM files f LEFT JOIN chunks c ON c.file_id = f.id LEFT JOIN vectors v ON v.chunk_id = c.id"
            " GROUP BY f.id HAVING COUNT(c.id) != f.n_chunks OR COUNT(v.chunk_id) != COUNT(c.id)").fetchall()
        assert bad == []
        rows = conn.execute("SELECT f.path, c.ordinal, c.text, v.data FROM files f JOIN chunks c ON c.file_id = f.id"
                            " JOIN vectors v ON v.chunk_id = c.id ORDER BY f.path, c.ordinal").fetchall()
    return {(Path(p).name, o): (t, d) for p, o, t, d in rows}


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path, tiny_model_dir):
    docs = tmp_path / "docs"
    _corpus(docs)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for home in (killed, clean):
        subprocess.run([sys.executable, "-m", "engine.cli", "--home", str(home), "folders", "add", str(docs)],
                       cwd=ROOT, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    db = killed / "index.sqlite"
    kills = 0
    for attempt in range(3):
        proc = _cli(killed, tiny_model_dir, "index", "--quiet")
        before = _indexed(db)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _indexed(db) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            _snapshot(db)  # consistent after every kill
    assert kills >= 1, "the run finished before it could be killed; make the corpus larger"
    assert _indexed(db) < 300
    finish = _cli(killed, tiny_model_dir, "index", "--quiet")
    assert finish.wait(timeout=300) == 0, finish.stderr.read().decode()
    reference = _cli(clean, tiny_model_dir, "index", "--quiet")
    assert reference.wait(timeout=300) == 0
    got, want = _snapshot(db), _snapshot(clean / "index.sqlite")
    assert _indexed(db) == 300
    assert got.keys() == want.keys()
    assert all(got[k][0] == want[k][0] for k in want)  # same chunks
    import numpy as np

    for k in list(want)[:200]:
        a = np.frombuffer(got[k][1], dtype="<f2").astype(np.float32)
        b = np.frombuffer(want[k][1], dtype="<f2").astype(np.float32)
        np.testing.assert_allclose(a, b, atol=2e-2)
