"""A process that imports the engine and its model libraries once, then forks one ``findling`` run per request.

The crash test kills many indexer processes. Starting each from scratch would spend most of the time importing
torch and transformers; a forked child starts in milliseconds and is still a separate process that SIGKILL ends
without warning. The parent never opens the index, never encodes and never starts a thread, so each child
starts as clean as a fresh one.

Run as ``python -m tests.reliability._forkserver``. ``FINDLING_TEST_CONFIG`` (JSON) overrides settings of
``Config.default`` in the children. Protocol, one JSON object per line: the parent prints ``{"ready": true}``,
then for each request ``{"argv": [...], "kill_after": seconds or null, "log": path}`` it answers
``{"pid": n, "killed": bool, "rc": exit status or null, "elapsed": seconds}``. With ``"after_commit": {"db":
path, "extra": seconds}`` instead of ``kill_after``, the child is killed ``extra`` seconds after the index's
``meta.generation`` first moves during the run (after its first committed write).
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
import traceback
from dataclasses import replace


def _child(argv: list[str], log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    rc = 99
    try:
        from findling.cli import main as cli

        rc = cli.main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def _generation(db: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:
        return -1


def _serve(request: dict) -> dict:
    watch = request.get("after_commit")
    first = _generation(watch["db"]) if watch else None
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(request["argv"], request["log"])
    kill_after = request.get("kill_after")
    deadline = start + (kill_after if kill_after is not None else 600.0)
    killed = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if watch and first is not None and _generation(watch["db"]) > first:
            deadline, first = time.monotonic() + watch["extra"], None
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            killed = True
            break
        time.sleep(0.002)
    code = os.waitstatus_to_exitcode(status)
    return {"pid": pid, "killed": killed, "rc": None if killed else code, "elapsed": time.monotonic() - start}


def main() -> None:
    import pylate.models  # noqa: F401  (the slow imports, done once)
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import findling.cli.main  # noqa: F401
    import findling.engine.encode.resolve  # noqa: F401
    import findling.engine.encode.pylate_encoder  # noqa: F401
    from findling.engine.config import Config

    overrides = json.loads(os.environ.get("FINDLING_TEST_CONFIG") or "{}")
    if overrides:
        plain = Config.default.__func__

        def default(cls, **kw):
            return replace(plain(cls, **kw), **overrides)

        Config.default = classmethod(default)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(_serve(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
