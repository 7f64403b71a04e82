"""What the evaluation commands share on the command line: the model, progress lines, a standalone entry.

``findling eval`` and ``findling passkey`` run as sub-commands of ``findling`` and as ``python -m`` modules;
``run_standalone`` gives the latter the same contract as the CLI: an engine error is one line on stderr and
exit status 2. Progress goes to stderr, and only when it is a terminal, so ``--json`` output stays one object.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder
from findling.engine.errors import FindlingError
from findling.evaluation.harness import Progress


def load_model(config: Config) -> Encoder:
    """The configured encoder, named on stderr (as the CLI does)."""
    from findling.engine.encode.resolve import load_announced

    return load_announced(config)


def progress_printer(verb: str) -> Progress | None:
    """A progress line on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        print(f"\r{verb} {done}/{total} docs", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return show


def run_standalone(add_arguments: Callable[[argparse.ArgumentParser], None], argv: list[str] | None,
                   *, prog: str) -> int:
    """``python -m findling.evaluation.beir`` / ``findling.evaluation.passkey``: parse, build the config, run, report errors."""
    parser = argparse.ArgumentParser(prog=prog)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = Config.default(**({"model": args.model} if args.model else {}))
    try:
        return args.func(args, config) or 0
    except FindlingError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2

