"""The CLI's commands for settings kept in the index: ``findling exclude ...`` and ``findling model use``.

    findling exclude list                 the patterns in effect (defaults, then yours)
    findling exclude add PATTERN ...      hide matching files and folders; `findling index` drops them
    findling exclude remove PATTERN ...   undo; `findling index` picks the files up again
    findling exclude test PATH ...        would PATH be indexed? if not, why
    findling model use PATH_OR_NAME       re-encode the index with another model, then switch to it
    findling model use --default          the same, back to the default model order
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from findling.engine.config import Config
from findling.engine.sources.exclusions import add_patterns, effective_patterns, remove_patterns, why_not_indexed
from findling.engine.store.store import Store


def add_exclude_parser(sub) -> None:
    e = sub.add_parser("exclude", help="patterns of files and folders not to index (kept in the index)")
    esub = e.add_subparsers(required=True, metavar="ACTION")
    for name, fn, what in (("add", _add, "pattern, e.g. drafts, *.log or Archive/2019/**"),
                           ("remove", _remove, "one of your patterns"),
                           ("test", _test, "a file path")):
        a = esub.add_parser(name)
        a.add_argument("items", nargs="+", metavar="PATH" if name == "test" else "PATTERN", help=what)
        a.set_defaults(func=fn)
    esub.add_parser("list").set_defaults(func=_list)


def _add(args, config: Config) -> int:
    with Store(config.db_path) as store:
        try:
            new = add_patterns(store, args.items)
        except ValueError as exc:
            print(f"findling: {exc}", file=sys.stderr)
            return 2
    for pattern in new:
        print(f"excluding {pattern}")
    if len(new) < len(args.items):
        print("(the others were already excluded)")
    print("run `findling index` to drop files it hides from the index (nothing is deleted from disk)")
    return 0


def _remove(args, config: Config) -> int:
    with Store(config.db_path) as store:
        gone = remove_patterns(store, args.items)
    for pattern in gone:
        print(f"no longer excluding {pattern}")
    missing = [p for p in args.items if p.strip() not in gone]
    if missing:
        built_in = [p for p in missing if p.strip() in config.exclude_patterns]
        for p in missing:
            why = "is built in and always applies" if p in built_in else "is not one of your patterns"
            print(f"findling: {p} {why}", file=sys.stderr)
        return 2 if not gone else 0
    print("run `findling index` to index the files it hid")
    return 0


def _list(args, config: Config) -> int:
    with Store(config.db_path) as store:
        yours = store.exclude_patterns()
        every = effective_patterns(config, store)
    for pattern in every:
        print(f"{pattern}\t{'yours' if pattern in yours and pattern not in config.exclude_patterns else 'built in'}")
    return 0


def _test(args, config: Config) -> int:
    worst = 0
    with Store(config.db_path) as store:
        for raw in args.items:
            path = Path(raw).expanduser().absolute()
            reason = why_not_indexed(path, store=store, config=config)
            print(f"{path}: {'indexed' if reason is None else 'not indexed: ' + reason}")
            worst = worst if reason is None else 1
    return worst


# ------------------------------------------------------------------------------------------ model use
def model_use(args, config: Config) -> int:
    """Re-encode the index with the named model (or the default order), swap it in and record the choice."""
    from findling.cli.progress import drive as _drive, sigterm_token as _sigterm_token, summary as _summary
    from findling.engine.encode.resolve import load_announced
    from findling.engine.index.reencode import already_active, discard_next, switch_model

    if not args.name and not args.default:
        print("findling: name the model folder or hub name to use, or --default", file=sys.stderr)
        return 2
    choice = None if args.default else args.name
    with Store(config.db_path) as store:
        store.lock_for_writing()  # IndexLocked before a model is loaded when another process is indexing
        encoder = load_announced(replace(config, model=choice))
        if already_active(store, encoder):
            store.set_model_choice(choice)
            discard_next(config.db_path)
            print(f"the index already uses {encoder.info.name}; recorded it as the model to use")
            return 0
        last = _drive(switch_model(store, encoder, config=config, choice=choice, cancel=_sigterm_token()),
                      quiet=args.quiet)
    _summary(last)
    if last.phase != "done":
        print("stopped; run the same command again to continue where it stopped", file=sys.stderr)
        return 1
    print(f"the index now uses {encoder.info.name}")
    return 0


def add_model_use_options(m: argparse.ArgumentParser) -> None:
    m.add_argument("--default", action="store_true", help="with `use`: go back to the default model order")
    m.add_argument("--quiet", action="store_true", help="with `use`: no progress bar")
