"""The ``findling`` command line: manage folders, index, watch, search, inspect.

Engine errors become one clear line on stderr and exit status 2 here, at the boundary; so do SQLite errors
that slip past the store (a page found damaged in the middle of a run). Every command except
``model download`` runs with the Hugging Face libraries in offline mode: nothing here opens a connection.

This module is the entry point (``main``) and the parser (``_parser``: every command, its options and its
handler); the handlers of the core commands are in ``findling.cli.commands``, the help texts in
``findling.cli.help_texts``, the other commands' parsers and handlers beside them (``settings``, ``serve``,
``mcp_server``, ``findling.evaluation``, ``findling.training.cli``).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from findling.cli.commands import (folders_add_command, folders_list_command, folders_remove_command,
                                   index_command, model_command, search_command, status_command)
from findling.cli.help_texts import describe_commands
from findling.cli.serve import add_serve_options, serve
from findling.cli.settings import add_exclude_parser, add_model_use_options
from findling.engine.config import Config
from findling.engine.errors import FindlingError
from findling.engine.search.searcher import MODES, Searcher
from findling.engine.store import codec as codecs
from findling.engine.store.index_file import DatabaseError, damaged, explain

__all__ = ["Searcher", "main"]  # Searcher: the class the search command runs

log = logging.getLogger("findling")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "action", None) != "download":  # set before huggingface_hub is imported: it reads it once
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    overrides = {}
    if args.home:
        overrides["data_dir"] = Path(args.home).expanduser().absolute()
    if getattr(args, "model", None):
        overrides["model"] = args.model
    config = Config.default(**overrides)
    try:
        return args.func(args, config) or 0
    except FindlingError as exc:
        print(f"findling: {exc}", file=sys.stderr)
        return 2
    except DatabaseError as exc:
        log.debug("SQLite error", exc_info=True)
        print(f"findling: {explain(exc, config.db_path) or damaged(config.db_path, str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail
        return 1
    except KeyboardInterrupt:
        print("\nfindling: stopped; run the same command again to continue.", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="findling", description="Offline semantic search over your own files.")
    p.add_argument("--home", help="data folder holding the index (default: the user data folder; env FINDLING_HOME)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    f = sub.add_parser("folders", help="add, remove or list watched folders")
    fsub = f.add_subparsers(required=True, metavar="ACTION")
    for name, fn in (("add", folders_add_command), ("remove", folders_remove_command)):
        a = fsub.add_parser(name)
        a.add_argument("paths", nargs="+")
        a.set_defaults(func=fn)
    fsub.add_parser("list").set_defaults(func=folders_list_command)

    i = sub.add_parser("index", help="bring the index up to date with the watched folders")
    _model_opt(i)
    i.add_argument("--reencode", action="store_true", help="drop all vectors and encode again (after a model change)")
    i.add_argument("--rebuild", action="store_true", help="move the index aside and build a new one from the files")
    i.add_argument("--quiet", action="store_true", help="no progress bar")
    i.add_argument("--codec", choices=codecs.CHOICES,
                   help="how token vectors are stored, kept in the index: auto (the default: float16 until the "
                        "index is big enough, then residual), fp16, residual (18 bytes a token at 48 dims) or "
                        "compact (8 bytes)")
    i.add_argument("--watch", action="store_true", help="then keep the index in step with the folders until stopped")
    add_serve_options(i)
    i.set_defaults(func=index_command)

    w = sub.add_parser("watch", help="index, then keep the index in step with the folders until Ctrl+C")
    _model_opt(w)
    add_serve_options(w)
    w.set_defaults(func=serve)

    s = sub.add_parser("search", help="search the index")
    _model_opt(s)
    s.add_argument("query", help='words to look for, with optional filters: ext:pdf dir:FOLDER after:YYYY-MM-DD '
                                 'before:YYYY-MM-DD "exact phrase", and for mail from:WORDS to:WORDS (To and Cc) '
                                 'subject:WORDS (quote several words: subject:"budget review")')
    s.add_argument("-k", type=_positive, default=10, help="number of results (default 10)")
    s.add_argument("--ext", action="append", default=[], help="only this file type (repeatable), e.g. pdf")
    s.add_argument("--dir", action="append", default=[], help="only files under this folder (repeatable)")
    s.add_argument("--after", help="modified on or after YYYY-MM-DD")
    s.add_argument("--before", help="modified before YYYY-MM-DD")
    s.add_argument("--mode", choices=MODES, default="hybrid", help="ranking (default hybrid)")
    s.add_argument("--json", action="store_true", help="print results as JSON")
    s.set_defaults(func=search_command)

    st = sub.add_parser("status", help="counts, model, and files that failed with their reasons")
    st.set_defaults(func=status_command)

    from findling.cli.mcp_server import add_parser as add_mcp_parser

    add_mcp_parser(sub)  # findling mcp: the index for AI assistants (Model Context Protocol), read-only

    from findling.evaluation.beir import add_eval_parser
    from findling.evaluation.passkey import add_passkey_parser

    add_eval_parser(sub)
    add_passkey_parser(sub)
    add_exclude_parser(sub)

    from findling.training.cli import add_train_parser

    add_train_parser(sub)

    m = sub.add_parser("model", help="which model is used and where it came from; `model download NAME`; "
                                     "`model use PATH_OR_NAME` re-encodes the index with another model")
    _model_opt(m)
    m.add_argument("action", nargs="?", choices=["show", "download", "use"], default="show")
    m.add_argument("name", nargs="?", help="hub name to download, or the model folder or name to use")
    add_model_use_options(m)
    m.set_defaults(func=model_command)
    describe_commands(p)
    return p


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not a positive whole number")
    return number


def _model_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model folder or hub name in the local cache (env FINDLING_MODEL)")



if __name__ == "__main__":
    sys.exit(main())
