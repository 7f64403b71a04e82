"""``findling mcp``: Findling's index as a Model Context Protocol server on standard input and output.

An assistant (Claude Desktop, an IDE, any MCP client) starts ``findling mcp`` and calls three tools:

- ``search``: the query syntax and filters of ``findling search``, through the same ``parse_query`` and
  ``Searcher``; each result has its path, page, score, snippet, where its chunk lies in the file's text, and
  the matched tokens as character offsets in the chunk's text.
- ``read``: indexed text of a file in the index, by character offsets in the file's text (a hit's span, with
  context around it) or by chunk; assembled from the chunks stored in the index, never read from disk.
- ``status``: watched folders, file counts by status, failed and skipped files, chunks, model, OCR.

Read-only: the index is opened as a reader (``Store(reader=True)``: ``PRAGMA query_only``, nothing written
even on opening), nothing is indexed, no folder is added, nothing is written anywhere. The encoder is loaded
once, on the first search. Standard output carries only the protocol; messages go to standard error.
"""
from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from findling.engine.config import Config
from findling.engine.errors import FindlingError

MAX_READ_CHARS = 20_000
"""Most characters one ``read`` returns; ask again from where it stopped for more."""

MAX_RESULTS = 100
"""Most results one ``search`` returns."""

PROBLEMS_LISTED = 20
"""Failed or skipped files ``status`` names (with their reasons); the counts cover all of them."""

INSTRUCTIONS = (
    "Findling searches the user's own documents on this computer (the folders they chose to index), by meaning "
    "and by keywords. Call `search` with a natural-language query; quote \"exact phrases\"; filter with ext=, "
    "dir=, after=, before=. Call `read` with a result's path and its span (file_start, file_end) and some context "
    "to see more of the indexed text. Call `status` to see which folders are indexed."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``findling mcp`` on the ``findling`` command's subparsers."""
    p = sub.add_parser(
        "mcp", help="serve search to AI assistants over the Model Context Protocol (stdio), read-only; "
                    "e.g. {\"mcpServers\": {\"findling\": {\"command\": \"findling\", \"args\": [\"mcp\"]}}}",
        description="Run an MCP server on standard input and output with the tools search, read and status. "
                    "It only reads the index: it never indexes, adds folders or writes files. "
                    "Example client configuration: "
                    "{\"mcpServers\": {\"findling\": {\"command\": \"/path/to/findling\", \"args\": [\"mcp\"]}}}",
    )
    p.add_argument("--model", help="model folder or hub name in the local cache (env FINDLING_MODEL)")
    p.add_argument("--encoder-factory", help=argparse.SUPPRESS)  # module:callable(config) -> Encoder, for tests
    p.set_defaults(func=run)


def run(args, config: Config) -> int:
    """Serve until the client closes standard input."""
    factory = None
    if args.encoder_factory:
        from findling.cli.serve import factory_from_spec

        factory = factory_from_spec(args.encoder_factory)
    build_server(Index(config, encoder_factory=factory)).run("stdio")
    return 0


class Index:
    """The read-only view of one index that the tools share: the store opened as a reader on first use, the
    encoder and searcher made on the first search. Calls are serialised (one SQLite connection)."""

    def __init__(self, config: Config, *, encoder_factory: Callable[[Config], Any] | None = None) -> None:
        self.config = config
        self.encoder_factory = encoder_factory
        self._lock = threading.Lock()
        self._store = None
        self._searcher = None
        self.encoder = None

    # --------------------------------------------------------------- opening
    def store(self):
        from findling.engine.store.store import Store

        if self._store is None:
            if not self.config.db_path.exists():
                raise FindlingError(f"there is no index at {self.config.db_path} yet; add folders and index them "
                                    "with the Findling app, or `findling folders add PATH` and `findling index`")
            self._store = Store(self.config.db_path, reader=True)
        return self._store

    def searcher(self):
        if self._searcher is None:
            from findling.engine.index.reencode import chosen_config
            from findling.engine.search.searcher import Searcher

            store = self.store()
            config = chosen_config(self.config, store)
            if self.encoder_factory is not None:
                self.encoder = self.encoder_factory(config)
            else:
                from findling.engine.encode.resolve import load_announced

                self.encoder = load_announced(config)
            self._searcher = Searcher(store, self.encoder)
        return self._searcher

    # ----------------------------------------------------------------- tools
    def search(self, query: str, *, k: int = 10, mode: str = "hybrid", ext: list[str] | None = None,
               dir: list[str] | None = None, after: str | None = None, before: str | None = None,
               include_text: bool = False) -> dict:
        from findling.engine.search.query import parse_date, parse_query
        from findling.engine.search.searcher import MODES

        if mode not in MODES:
            raise FindlingError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        k = max(1, min(int(k), MAX_RESULTS))
        q = parse_query(query).with_filters(
            exts=list(ext or []), dirs=list(dir or []),
            after=parse_date(after) if after else None, before=parse_date(before) if before else None,
        )
        with self._lock:
            hits = self.searcher().search(q, k=k, mode=mode)
        return {"query": query, "mode": mode, "model": self.encoder.info.name,
                "results": [hit_result(h, include_text=include_text) for h in hits]}

    def read(self, path: str, *, start: int | None = None, end: int | None = None, context: int = 0,
             chunk: int | None = None) -> dict:
        with self._lock:
            store = self.store()
            file = Path(path).expanduser()
            state = store.file_state(file)
            if state is None or state.status != "indexed":
                why = f" (it is {state.status}: {state.reason})" if state is not None and state.reason else ""
                raise FindlingError(f"{file} is not in the index{why}; `read` gives only indexed text")
            chunks = store.chunks_of(file)
        return read_chunks(file, chunks, start=start, end=end, context=context, chunk=chunk)

    def status(self) -> dict:
        from findling.engine.extract import ocr

        with self._lock:
            store = self.store()
            stats = store.stats()
            folders = store.folders()
            problems = store.problems(limit=PROBLEMS_LISTED)
        files = dict(stats["files"])
        return {
            "index": str(self.config.db_path),
            "folders": [str(f) for f in folders],
            "files": files,
            "indexed_files": files.get("indexed", 0),
            "failed_files": files.get("failed", 0),
            "skipped_files": files.get("skipped", 0),
            "chunks": stats["chunks"],
            "model": stats["model"] or {},
            "ocr": ocr.describe(self.config),
            "problems": [{"path": str(p.path), "status": p.status, "reason": p.reason or ""} for p in problems],
        }


def hit_result(hit, *, include_text: bool = False) -> dict:
    """One search hit for the client: matched tokens as offsets in the chunk's text, the chunk's place in the
    file's text (``file_start``/``file_end``: what ``read`` takes)."""
    best: dict[tuple[int, int], Any] = {}
    for match in hit.alignment:
        if match.doc_start < 0:
            continue  # a marker token: nothing in the text
        key = (match.doc_start, match.doc_end)
        if key not in best or match.similarity > best[key].similarity:
            best[key] = match
    matches = [{"start": s, "end": e, "text": hit.chunk_text[s:e], "query_token": m.query_token,
                "similarity": round(float(m.similarity), 4)} for (s, e), m in sorted(best.items())]
    result = {
        "path": str(hit.path), "page": hit.page, "ocr": hit.ocr, "score": round(float(hit.score), 5), "snippet": hit.snippet,
        "chunk": hit.chunk_ordinal, "file_start": hit.char_start, "file_end": hit.char_end,
        "matches": matches, "found_by": list(hit.lanes),
        "modified": datetime.fromtimestamp(hit.mtime).isoformat(timespec="seconds") if hit.mtime else None,
    }
    if include_text:
        result["text"] = hit.chunk_text
    return result


def read_chunks(path: Path, chunks: list, *, start: int | None, end: int | None, context: int,
                chunk: int | None) -> dict:
    """Characters ``[start - context, end + context)`` of a file's indexed text (``start`` defaults to the
    beginning, ``end`` to the end), or chunk ``chunk`` whole; at most ``MAX_READ_CHARS``, assembled from the
    file's ``chunks``.

    Offsets are those of the file's extracted text, as in search results. Characters between two chunks
    (white space where the text was cut) are not stored: they come back as a line break each when there are
    two or more, else a space, so every offset stays where it was."""
    if not chunks:
        return {"path": str(path), "start": 0, "end": 0, "text": "", "pages": [], "indexed_chars": 0,
                "more": False}
    total = max(c.char_end for c in chunks)
    if chunk is not None:
        found = next((c for c in chunks if c.ordinal == chunk), None)
        if found is None:
            raise FindlingError(f"{path} has chunks 0 to {len(chunks) - 1} in the index, not {chunk}")
        lo, hi = found.char_start, found.char_end
    else:
        if start is not None and end is not None and start > end:
            raise FindlingError(f"start ({start}) is after end ({end})")
        context = max(0, int(context))
        lo = min(total, max(0, (start or 0) - context))
        hi = total if end is None else max(lo, min(total, end + context))
    more = hi - lo > MAX_READ_CHARS
    hi = min(hi, lo + MAX_READ_CHARS)
    buffer = [None] * (hi - lo)
    pages: set[int] = set()
    for c in chunks:
        if c.char_end <= lo or c.char_start >= hi:
            continue
        if c.page is not None:
            pages.add(c.page)
        a, b = max(lo, c.char_start), min(hi, c.char_end)
        buffer[a - lo:b - lo] = c.text[a - c.char_start:b - c.char_start]
    text = _fill_gaps(buffer)
    return {"path": str(path), "start": lo, "end": hi, "text": text, "pages": sorted(pages),
            "indexed_chars": total, "more": more or hi < total}


def _fill_gaps(buffer: list) -> str:
    out: list[str] = []
    i = 0
    while i < len(buffer):
        if buffer[i] is not None:
            out.append(buffer[i])
            i += 1
            continue
        j = i
        while j < len(buffer) and buffer[j] is None:
            j += 1
        out.append("\n" * (j - i) if j - i >= 2 else " ")
        i = j
    return "".join(out)


def build_server(index: Index):
    """The MCP server with the tools ``search``, ``read`` and ``status`` over ``index``."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("findling", instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                 open_world_hint=False)

    @server.tool(annotations=read_only)
    def search(query: str, k: int = 10, mode: str = "hybrid", ext: list[str] | None = None,
               dir: list[str] | None = None, after: str | None = None, before: str | None = None,
               include_text: bool = False) -> dict:
        """Search the user's indexed documents; the best file first, each with its best passage.

        query: words or a question; "quoted phrases" must appear as written; the filters of `findling search`
        may also be written in it (ext:pdf, dir:PATH, after:YYYY-MM-DD, before:YYYY-MM-DD, and for e-mail
        from:, to:, subject:).
        k: how many files (1-100). mode: hybrid (default), maxsim (meaning only) or bm25 (keywords only).
        ext: only these file types (e.g. ["pdf", "md"]). dir: only files under these folders.
        after / before: modified on or after / before a date (YYYY-MM-DD).
        include_text: also return each result's whole passage (its chunk's text).

        Each result: path, page (PDF page or section, if any), score, snippet, chunk (its number in the file),
        file_start/file_end (the passage's character offsets in the file's indexed text: pass them to `read`),
        matches (tokens that matched: start/end offsets in the passage's text, the text, the query token and
        its similarity), found_by (maxsim and/or bm25), modified.
        """
        return _call(index.search, query, k=k, mode=mode, ext=ext, dir=dir, after=after, before=before,
                     include_text=include_text)

    @server.tool(annotations=read_only)
    def read(path: str, start: int | None = None, end: int | None = None, context: int = 0,
             chunk: int | None = None) -> dict:
        """Read the indexed text of a file in the index (as it was indexed; the file itself is not opened).

        path: a result's path. start/end: character offsets in the file's indexed text (a result's
        file_start/file_end); context: characters to add on each side. chunk: a result's chunk number, to get
        that passage whole. With start only, reads from there; with nothing, from the beginning. At most
        20,000 characters a call; `more` says whether text follows.

        Returns path, start, end, text, pages (page numbers the text spans), indexed_chars, more.
        """
        return _call(index.read, path, start=start, end=end, context=context, chunk=chunk)

    @server.tool(annotations=read_only)
    def status() -> dict:
        """What is indexed: the index file, watched folders, file counts by status (indexed, failed, skipped,
        empty), chunks, the model, whether OCR is on, and the first failed or skipped files with their reasons."""
        return _call(index.status)

    return server


def _call(tool: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """Run a tool; the engine's errors reach the client as their message (a failed tool call), not a trace."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        return tool(*args, **kwargs)
    except FindlingError as exc:
        raise ToolError(str(exc)) from exc
