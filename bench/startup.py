"""Window start-up with an existing index: time until the window is on screen, against the model load.

Peer: the same process's model load (what a window that waited for its model would cost). Each run is a
fresh process started the way a user starts the app; the figures are wall-clock seconds from launch.

    python bench/startup.py --home DIR [--runs 3] [--json]

DIR must hold an index (build one with `findling folders add ...; findling index`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import os, sys, time
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from findling.app.main import build_config, parse_args
from findling.app.backend import Backend
from findling.app.window import MainWindow
from findling.engine import load_encoder
args = parse_args(["--home", sys.argv[1]])
app = QApplication([])
backend = Backend(build_config(args), encoder_factory=load_encoder)
window = MainWindow(backend, settings=None)
window.show()
app.processEvents()
print("shown", flush=True)
backend.model_ready.connect(lambda info: (print("model", flush=True), QTimer.singleShot(0, app.quit)))
backend.model_failed.connect(lambda msg: (print("failed", msg, flush=True), app.quit()))
backend.start()
app.exec()
backend.shutdown()
"""


def one_run(home: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(home)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    marks = {}
    for line in proc.stdout:
        marks[line.split()[0]] = time.monotonic() - start
    proc.wait()
    if "model" not in marks:
        raise SystemExit(f"the model did not load in the benchmark run (marks: {marks})")
    return marks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    runs = [one_run(args.home) for _ in range(args.runs)]
    shown = statistics.median(r["shown"] for r in runs)
    model = statistics.median(r["model"] for r in runs)
    result = [{"name": "window shown with an existing index", "value": round(shown, 3), "unit": "s",
               "peer": "model loaded (same run)", "peer_value": round(model, 3),
               "ratio": round(shown / model, 3), "target": "<= 2 s", "ok": shown <= 2.0}]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.runs} runs, median")
    print(f"window shown   {shown:6.2f} s   (target <= 2 s: {'ok' if shown <= 2 else 'MISSED'})")
    print(f"model loaded   {model:6.2f} s   (peer)")
    print(f"ratio shown/model  {shown / model:.2f}")


if __name__ == "__main__":
    main()
