"""The handlers of ``findling folders``, ``index``, ``search``, ``status`` and ``model``.

Each handler is ``func(args, config) -> int`` (the exit status) as ``findling.cli.main`` registers it; engine
errors propagate to ``main``, which turns them into one line on stderr. Every handler opens the index through
``_open_store``; those that encode load the model given with ``--model`` or ``FINDLING_MODEL``, else the one
chosen with ``findling model use``. ``findling index`` holds the index's writer lock from before anything is
moved aside or reset until the run ends.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from findling.cli.progress import drive as _drive, sigterm_token as _sigterm_token, summary as _summary
from findling.cli.serve import serve
from findling.cli.settings import model_use
from findling.engine.config import Config
from findling.engine.errors import FindlingError
from findling.engine.index.indexer import Indexer
from findling.engine.index.reencode import chosen_config, next_path
from findling.engine.records import SearchHit, page_unit
from findling.engine.search.query import parse_date, parse_query
from findling.engine.search.searcher import Searcher
from findling.engine.store import codec as codecs
from findling.engine.store.index_file import WriterLock
from findling.engine.store.store import Store
from findling.engine.store.folders import normal_folder


def _open_store(config: Config) -> Store:
    return Store(config.db_path)


def _encoder(config: Config, store: Store):
    """The model given with --model or FINDLING_MODEL, else the one chosen with `findling model use`."""
    from findling.engine.encode.resolve import load_announced

    return load_announced(chosen_config(config, store))


# ----------------------------------------------------------------- folders
def folders_add_command(args, config: Config) -> int:
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


def folders_remove_command(args, config: Config) -> int:
    with _open_store(config) as store:
        for raw in args.paths:
            path = Path(raw).expanduser().absolute()
            n = store.remove_folder(path)
            print(f"removed {path} ({n} files dropped from the index)")
    return 0


def folders_list_command(args, config: Config) -> int:
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
def index_command(args, config: Config) -> int:
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


# ------------------------------------------------------------------ search
def search_command(args, config: Config) -> int:
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
def status_command(args, config: Config) -> int:
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


def model_command(args, config: Config) -> int:
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
