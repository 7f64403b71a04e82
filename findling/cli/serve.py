"""``findling watch`` and ``findling index --watch``: the long-running indexer, on a terminal or as the app's child.

With ``--progress json`` the events of ``findling.engine.index.service`` go to standard output as JSON lines
and nothing else does: whatever a library prints is sent to standard error instead. With ``--control`` the
commands come from standard input (end of input stops the indexer). ``--background`` lowers the process's CPU
and I/O priority first, before any thread starts, so every thread of the indexer runs at that priority.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable

from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder
from findling.engine.index.service import Event, IndexService, json_lines, progress_from_json, serve_stdio

CONFIG_ENV = "FINDLING_CONFIG"
"""Environment variable with the settings (``Config.to_json``) a parent hands its child indexer."""


def add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", choices=["text", "json"], default="text",
                   help="text: a line per finished job on stderr; json: one JSON event per line on stdout")
    p.add_argument("--control", action="store_true",
                   help="read commands as JSON lines on stdin ({\"job\": \"sync\"}, {\"control\": \"pause\"}, ...); "
                        "end of input stops the indexer")
    p.add_argument("--background", action="store_true",
                   help="run at the lowest CPU and I/O priority the system offers (the app's indexer does)")
    p.add_argument("--encoder-factory", help=argparse.SUPPRESS)  # module:callable(config) -> Encoder, for tests


def factory_from_spec(spec: str) -> Callable[[Config], Encoder]:
    """The callable named ``module:attribute``; ``ValueError`` when it cannot be found."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--encoder-factory wants module:callable, not {spec!r}")
    return getattr(importlib.import_module(module), name)


def serve(args, config: Config) -> int:
    """Run the indexer until stopped (Ctrl+C, SIGTERM, ``{"control": "stop"}`` or the end of stdin)."""
    if os.environ.get(CONFIG_ENV):
        config = Config.from_json(os.environ[CONFIG_ENV])
    if args.background:
        from findling.engine.index.priority import lower_process_priority

        report = lower_process_priority(config.indexing_nice)
        print(f"findling indexer: CPU priority {report.cpu}, I/O priority {report.io}", file=sys.stderr)
    emit = _json_out() if args.progress == "json" else _text_out
    factory = factory_from_spec(args.encoder_factory) if args.encoder_factory else _load_encoder
    service = IndexService(_chosen(config), factory, emit)
    try:
        signal.signal(signal.SIGTERM, lambda *_: service.stop())
    except ValueError:  # not the main thread (an in-process caller)
        pass
    if args.control:
        return serve_stdio(service)
    from findling.engine.index.service import Job, JobKind

    service.submit(Job(JobKind.SYNC))
    if args.progress == "text":
        print("indexing, then watching for changes (Ctrl+C to stop)", file=sys.stderr)
    return service.run()


def _chosen(config: Config) -> Config:
    """``config`` with the model recorded by ``findling model use`` unless one was given."""
    from findling.engine.index.reencode import chosen_config
    from findling.engine.store.store import Store

    with Store(config.db_path) as store:
        if not store.folders():
            print("no folders to watch yet; add one with `findling folders add PATH`", file=sys.stderr)
        return chosen_config(config, store)


def _load_encoder(config: Config) -> Encoder:
    from findling.engine.encode.resolve import load_announced

    return load_announced(config)


def _json_out():
    """JSON lines on the real standard output; file descriptor 1 and ``sys.stdout`` then point at stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return json_lines(events)


def _text_out(event: dict) -> None:
    kind = event.get("event")
    if kind == Event.READY.value:
        model = event["model"]
        print(f"model: {model['name']} ({model['source']})", file=sys.stderr)
    elif kind == Event.FINISHED.value:
        from findling.cli.progress import summary

        p = progress_from_json(event["progress"])
        if p.files_done or p.phase != "done":
            summary(p)
    elif kind == Event.FILE_FAILED.value:
        print(f"  {event['path']}: {event['reason']}", file=sys.stderr)
    elif kind in (Event.FAILED.value, Event.MISMATCH.value):
        print(f"findling: {event['message']}", file=sys.stderr)
