"""The ``findling`` command line: manage folders, index, watch, search, inspect.

Engine errors become one clear line on stderr and exit status 2 here, at the boundary; so do SQLite errors
that slip past the store (a page found damaged in the middle of a run). Every command except
``model download`` runs with the Hugging Face libraries in offline mode: nothing here opens a connection.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from findling.engine.store import codec as codecs
from findling.cli.progress import drive as _drive, sigterm_token as _sigterm_token, summary as _summary
from findling.cli.serve import add_serve_options, serve
from findling.cli.settings import add_exclude_parser, add_model_use_options, model_use
from findling.engine.config import Config
from findling.engine.store.index_file import DatabaseError, WriterLock, damaged, explain
from findling.engine.errors import FindlingError
from findling.engine.index.indexer import CancelToken, Indexer, Progress
from findling.engine.search.query import parse_date, parse_query
from findling.engine.records import SearchHit, page_unit
from findling.engine.search.searcher import MODES, Searcher
from findling.engine.store.store import Store, normal_folder
from findling.engine.index.reencode import chosen_config, next_path

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
    for name, fn in (("add", _folders_add), ("remove", _folders_remove)):
        a = fsub.add_parser(name)
        a.add_argument("paths", nargs="+")
        a.set_defaults(func=fn)
    fsub.add_parser("list").set_defaults(func=_folders_list)

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
    i.set_defaults(func=_index)

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
    s.set_defaults(func=_search)

    sub.add_parser("status", help="counts, model, and files that failed with their reasons").set_defaults(func=_status)

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
    m.set_defaults(func=_model)
    describe_commands(p)
    return p


COMMAND_HELP: dict[tuple[str, ...], tuple[str, str]] = {
    # command words after `findling` -> (one-line summary, examples); `findling CMD --help` shows both
    (): ("Offline semantic search over your own files.", """\
  findling folders add ~/Documents      # watch a folder
  findling index                        # index it
  findling search "read and write CSV files"
  findling status                       # counts, model, files that failed and why

Run `findling COMMAND --help` for a command's options and examples."""),
    ("folders",): ("Add, remove or list the folders Findling watches.", """\
  findling folders add ~/Documents ~/Notes
  findling folders list
  findling folders remove ~/Notes"""),
    ("folders", "add"): ("Watch one or more folders; `findling index` then indexes their files.", """\
  findling folders add ~/Documents
  findling folders add ~/Documents ~/Projects/notes"""),
    ("folders", "remove"): ("Stop watching folders: their files leave the index, nothing is deleted from disk.", """\
  findling folders remove ~/Projects/notes"""),
    ("folders", "list"): ("List the watched folders with how many of their files are indexed, failed or skipped.",
                          "  findling folders list"),
    ("index",): ("Bring the index up to date: index new and changed files, drop deleted ones.", """\
  findling index                        # with a progress bar: files/s, tokens/s, ETA
  findling index --quiet
  findling index --codec compact        # store the token vectors smaller
  findling index --rebuild              # after a "damaged index" message: move it aside, build anew
  findling index --reencode             # drop every vector and encode all files again"""),
    ("watch",): ("Index, then keep the index in step with the watched folders until Ctrl+C.", """\
  findling watch
  findling watch --background           # at the lowest CPU and I/O priority"""),
    ("search",): ("Search the index by meaning and by keywords; filters narrow the results.", """\
  findling search "read and write CSV files"
  findling search "tax letter" --ext pdf --after 2024-01-01 -k 5
  findling search 'invoice ext:pdf dir:~/Documents "due date"'   # filters and an exact phrase in the query
  findling search 'harbour budget from:ann subject:"quarterly review"'   # mail from Ann with that subject
  findling search "csv reader" --mode bm25 --json"""),
    ("status",): ("Show the index's size, model and counts, and every file that failed with its reason.",
                  "  findling status"),
    ("eval",): ("Measure retrieval quality and speed on a BEIR-format data set (nDCG@10, Recall@100, MRR@10).", """\
  findling eval ~/data/scifact
  findling eval ~/data/scifact --max-docs 1000 --max-queries 50 --json
  findling eval ~/data/scifact --keep   # then: findling eval ~/data/scifact --index PATH --codec compact"""),
    ("passkey",): ("Measure long-document retrieval with LongEmbed's Passkey task (nDCG@1 per length).", """\
  findling passkey
  findling passkey --lengths 256,1k,4k --docs 20 --queries 10 --json"""),
    ("exclude",): ("Keep files and folders out of the index by pattern (the app and the watcher use them too).", """\
  findling exclude list
  findling exclude add drafts '*.log' 'Archive/2019/**'
  findling exclude test ~/Documents/report.pdf
  findling exclude remove drafts"""),
    ("exclude", "add"): ("Exclude patterns: a name matches at any depth, a pattern with / starts at each watched "
                         "folder.", """\
  findling exclude add drafts
  findling exclude add '*.log' 'Archive/2019/**'
  findling index                        # drops the files they hide from the index (never from disk)"""),
    ("exclude", "remove"): ("Remove patterns of yours; `findling index` picks their files up again.", """\
  findling exclude remove drafts '*.log'"""),
    ("exclude", "test"): ("Say whether files would be indexed and, if not, why (exit status 1 if one would not).",
                          "  findling exclude test ~/Documents/report.pdf ~/Documents/drafts/plan.md"),
    ("exclude", "list"): ("List the patterns in effect: the built-in ones, then yours.", "  findling exclude list"),
    ("mcp",): ("Let an AI assistant search the index over the Model Context Protocol (read-only).", """\
  findling mcp                          # speaks MCP on standard input and output; an MCP client starts it
  findling --home ~/work-index mcp      # serve another index"""),
    ("model",): ("Show which model encodes and where it came from; download one, or switch to another.", """\
  findling model                        # name, source, folder, vector size
  findling model download mixedbread-ai/mxbai-edge-colbert-v0-17m   # the only command that uses the network
  findling model use ~/models/my-colbert   # re-encode the index with it, then switch
  findling model use --default"""),
}


def describe_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every command in ``COMMAND_HELP`` its summary (``description``, and its line in the parent's list
    when it has none) and its examples (``epilog``), shown as written. A description or epilog set where the
    command is defined is kept."""
    summary, examples = COMMAND_HELP.get(path, (None, None))
    if summary is not None:
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.description = parser.description or summary
        parser.epilog = parser.epilog or f"examples:\n{examples}"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice for choice in action._choices_actions}
            for name in action.choices:  # a command added without help= has no line in the list yet
                summary = COMMAND_HELP.get((*path, name), ("",))[0]
                if name not in listed and summary:
                    listed[name] = action._ChoicesPseudoAction(name, (), summary[0].lower() + summary[1:].rstrip("."))
            action._choices_actions[:] = [listed[name] for name in action.choices if name in listed]
            for name, child_parser in action.choices.items():
                describe_commands(child_parser, (*path, name))


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


def _open_store(config: Config) -> Store:
    return Store(config.db_path)


def _encoder(config: Config, store: Store):
    """The model given with --model or FINDLING_MODEL, else the one chosen with `findling model use`."""
    from findling.engine.encode.resolve import load_announced

    return load_announced(chosen_config(config, store))


# ----------------------------------------------------------------- folders
def _folders_add(args, config: Config) -> int:
    with _open_store(config) as store:
        for raw in args.paths:
            path = normal_folder(raw)
            if not path.is_dir():
                print(f"findling: {path} is not a folder", file=sys.stderr)
                return 2
            if config.data_dir == path or path in config.data_dir.parents:
                print(f"findling: {path} contains Findling's own data folder; pick a folder inside it",
                      file=sys.stderr)
                return 2
            store.add_folder(path)
            print(f"watching {path}")
    print("run `findling index` to index it")
    return 0


def _folders_remove(args, config: Config) -> int:
    with _open_store(config) as store:
        for raw in args.paths:
            path = Path(raw).expanduser().absolute()
            n = store.remove_folder(path)
            print(f"removed {path} ({n} files dropped from the index)")
    return 0


def _folders_list(args, config: Config) -> int:
    with _open_store(config) as store:
        folders = store.folders()
        if not folders:
            print("no folders yet; add one with `findling folders add PATH`")
        for f in folders:
            states = store.file_states(f)
            counts: dict[str, int] = {}
            for s in states.values():
                counts[s.status] = counts.get(s.status, 0) + 1
            detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "not indexed yet"
            print(f"{f}  ({detail})")
    return 0


# ------------------------------------------------------------------- index
def _index(args, config: Config) -> int:
    if args.watch or args.control:
        return serve(args, config)
    lock = WriterLock(config.db_path)
    lock.acquire()  # before anything is moved or reset: IndexLocked when another process is indexing
    try:
        if args.rebuild:
            _move_aside(config)
        with _open_store(config) as store:
            if not store.folders():
                print("no folders to index; add one with `findling folders add PATH`", file=sys.stderr)
                return 1
            enc = _encoder(config, store)
            if args.reencode:
                store.reset_vectors()
            indexer = Indexer(store, enc, config=config)
            if args.codec:
                _set_codec(store, args.codec, config)
            last = _drive(indexer.sync(cancel=_sigterm_token()), quiet=args.quiet)
    finally:
        lock.release()
    _summary(last)
    return 0 if last.phase == "done" else 1


def _set_codec(store: Store, choice: str, config: Config) -> None:
    """Record the vector format asked for and convert the stored vectors now where that applies."""
    store.set_codec_choice(choice)
    current = store.codec.name
    if choice == codecs.FP16 and current != codecs.FP16:
        store.recode(codecs.FP16)
        print("vectors stored as float16 again, with the compressed values; `findling index --reencode` "
              "restores the model's full precision", file=sys.stderr)
    elif choice not in ("auto", codecs.FP16) and current not in (codecs.FP16, choice):
        store.recode(choice)
        print(f"vectors re-coded from {current} to {choice}", file=sys.stderr)
    elif store.compress_if_due(min_tokens=config.codec_min_tokens) is None and current == codecs.FP16 \
            and choice != codecs.FP16:
        print(f"vectors stay float16 until the index holds {config.codec_min_tokens:,} token vectors "
              f"(now {store.token_count():,})", file=sys.stderr)


def _move_aside(config: Config) -> None:
    """Keep the folder list and, where the old index can still be read, the user's exclude patterns, chosen
    model and vector format; move the damaged or old index aside; start a fresh one with them."""
    db = config.db_path
    folders: list[Path] = []
    excludes: tuple[str, ...] = ()
    model: str | None = None
    codec_choice = "auto"
    try:
        with Store(db) as old:
            folders = old.folders()
            excludes, model, codec_choice = old.exclude_patterns(), old.model_choice(), old.codec_choice()
    except FindlingError:
        folders = Store.read_folder_backup(db)
        print(f"findling: the old index could not be read; rebuilding {len(folders)} folders from their files",
              file=sys.stderr)
    if db.exists():
        aside = db.with_name(f"{db.name}.{datetime.now():%Y%m%d-%H%M%S}.bak")
        db.rename(aside)
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            if side.exists():
                side.rename(aside.with_name(aside.name + suffix))
        print(f"old index moved to {aside}", file=sys.stderr)
    with Store(db) as new:
        for f in folders:
            new.add_folder(f)
        if excludes:
            new.set_exclude_patterns(excludes)
        if model:
            new.set_model_choice(model)
        if codec_choice != "auto":
            new.set_codec_choice(codec_choice)


# ------------------------------------------------------------------- watch
# ------------------------------------------------------------------ search
def _search(args, config: Config) -> int:
    query = parse_query(args.query).with_filters(
        exts=args.ext, dirs=args.dir,
        after=parse_date(args.after) if args.after else None,
        before=parse_date(args.before) if args.before else None,
    )
    with _open_store(config) as store:
        enc = _encoder(config, store)
        t0 = time.monotonic()
        hits = Searcher(store, enc).search(query, k=args.k, mode=args.mode)
        elapsed = time.monotonic() - t0
    if args.json:
        print(json.dumps({"query": args.query, "mode": args.mode, "model": enc.info.name,
                          "results": [hit_json(h) for h in hits]}, indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no results")
    for n, h in enumerate(hits, 1):
        page = f"  {h.page_label}" if h.page else ""
        print(f"{n:2d}. {h.path}{page}  ({h.score:.3f})\n    {h.snippet}")
    print(f"{len(hits)} results in {elapsed * 1000:.0f} ms", file=sys.stderr)
    return 0


def hit_json(h: SearchHit) -> dict:
    return {
        "path": str(h.path), "score": round(h.score, 5), "page": h.page, "ocr": h.ocr,
        "page_unit": page_unit(h.path.suffix) if h.page else None, "chunk": h.chunk_ordinal,
        "span": [h.char_start, h.char_end], "snippet": h.snippet, "lanes": list(h.lanes),
        "modified": datetime.fromtimestamp(h.mtime).isoformat(timespec="seconds"),
        "alignment": [{"query_token": m.query_token, "doc_token": m.doc_token, "span": [m.doc_start, m.doc_end],
                       "similarity": round(m.similarity, 4)} for m in h.alignment],
    }


# ------------------------------------------------------------ status/model
def _status(args, config: Config) -> int:
    with _open_store(config) as store:
        st = store.stats()
        problems = store.problems()
    model = st["model"] or {}
    print(f"index: {config.db_path} ({st['db_bytes'] / 1e6:.1f} MB)")
    print(f"model: {model.get('name', 'none yet')} ({model.get('source', '-')}, dim {model.get('dim', '-')})")
    print(f"folders: {st['folders']}; files: " + (", ".join(f"{n} {k}" for k, n in sorted(st["files"].items())) or "0"))
    print(f"chunks: {st['chunks']}; tokens: {st['tokens']:,}; stored vectors: {st['vectors']:,}")
    print(f"vector format: {st['codec']} (chosen: {st['codec_choice']}), {st['vector_bytes'] / 1e6:.1f} MB")
    from findling.engine.extract.ocr import describe as describe_ocr

    print(describe_ocr(config))
    for s in problems:
        print(f"  {s.status}: {s.path}: {s.reason}")
    if next_path(config.db_path).exists():
        print(f"an unfinished model switch waits in {next_path(config.db_path)}; `findling model use` with the "
              "same model continues it (another model starts afresh)")
    return 0


def _model(args, config: Config) -> int:
    from findling.engine.encode import resolve as models

    if args.action == "download":
        if not args.name:
            print("findling: name the model to download, e.g. mixedbread-ai/mxbai-edge-colbert-v0-17m", file=sys.stderr)
            return 2
        path = models.download_model(args.name, config=config)
        print(f"downloaded {args.name} to {path}")
        return 0
    if args.action == "use":
        return model_use(args, config)
    if config.db_path.exists():
        with _open_store(config) as store:
            config = chosen_config(config, store)
    enc = models.load_encoder(config)
    info = enc.info
    print(f"model: {info.name}\nsource: {info.source}\npath: {info.path}\ndim: {info.dim}\n"
          f"max tokens: {info.max_tokens}\nfingerprint: {info.fingerprint}")
    if info.note:
        print(f"note: {info.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
