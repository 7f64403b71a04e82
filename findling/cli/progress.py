"""How the CLI shows an indexer's progress on a terminal: a bar on stderr and a summary at the end."""
from __future__ import annotations

import signal
import sys
import time

from findling.engine.index.indexer import CancelToken, Progress


def sigterm_token() -> CancelToken:
    token = CancelToken()
    try:
        signal.signal(signal.SIGTERM, lambda *_: token.cancel())
    except ValueError:  # not the main thread
        pass
    return token


def drive(progress, *, quiet: bool) -> Progress:
    last = Progress("done")
    shown = 0.0
    for last in progress:
        now = time.monotonic()
        if not quiet and (now - shown > 0.2 or last.phase in ("done", "cancelled")):
            shown = now
            bar(last)
    if not quiet:
        print(file=sys.stderr)
    return last


def bar(p: Progress) -> None:
    if p.phase == "scanning":
        line = f"scanning {p.current} ..."
    else:
        total = max(p.files_total, 1)
        filled = int(30 * p.files_done / total)
        eta = f"ETA {int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}" if p.eta_s else ""
        line = (f"[{'#' * filled}{'.' * (30 - filled)}] {p.files_done}/{p.files_total} files  "
                f"{p.files_per_s:.1f} files/s  {p.tokens_per_s:,.0f} tokens/s  {eta}")
    print("\r" + line[:150].ljust(110), end="", file=sys.stderr, flush=True)


def summary(p: Progress) -> None:
    print(f"{p.phase}: {p.indexed} indexed, {p.unchanged} unchanged, {p.moved} moved, {p.deleted} deleted, "
          f"{p.failed} failed, {p.skipped} skipped; {p.chunks_encoded} chunks / {p.tokens_encoded:,} tokens "
          f"encoded in {p.elapsed:.1f} s")
    for path, reason in p.errors[:20]:
        print(f"  {path}: {reason}")
    if len(p.errors) > 20:
        print(f"  ... and {len(p.errors) - 20} more (`findling status` lists them)")
