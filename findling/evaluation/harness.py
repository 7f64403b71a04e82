"""The engine's real path for an evaluation: corpus records indexed as files, queries searched as a user's.

A record is written through ``Indexer.index_texts`` under ``/beir/<percent-encoded doc id>`` (``doc_path``;
``doc_id_of`` inverts it), so chunking, encoding, vector formats and the keyword index are the indexer's own;
only extraction is skipped. The index lives in a temporary folder (``temporary_store``, removed afterwards
unless kept) or is one kept by an earlier run (``reused_store``, converted to another vector format in place
when asked). Queries are taken literally (``as_query``: no filters, no phrases) and ranked by ``Searcher``.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder
from findling.engine.errors import DatasetError
from findling.engine.index.indexer import Indexer
from findling.engine.records import ExtractedText
from findling.engine.search.query import MAX_QUERY_CHARS, Query
from findling.engine.search.searcher import Searcher
from findling.engine.store.store import Store
from findling.engine.store.files import FileRecord
from findling.evaluation.dataset import Doc

SEARCH_DEPTH = 100  # for Recall@100
BEIR_ROOT = Path("/beir")

Progress = Callable[[int, int], None]  # (documents done, documents in all)


# --------------------------------------------------------------- indexing
def doc_path(doc_id: str) -> Path:
    """The path a corpus record is stored under; ``doc_id_of`` inverts it."""
    name = quote(doc_id, safe="")
    return BEIR_ROOT / ("%2E" + name[1:] if name.startswith(".") else name)


def doc_id_of(path: Path) -> str:
    return unquote(path.name)


@dataclass(frozen=True)
class BuildStats:
    """What indexing a corpus took: chunk limit, what the index holds, and what was encoded in how long.

    ``n_chunks``/``n_tokens`` count every chunk stored; ``encoded_tokens`` only those run through the model (the
    indexer encodes a chunk text once however often it occurs, as Passkey's filler does), which is what the
    encode speed is taken over."""

    chunk_tokens: int  # the indexer's chunk limit, in tokens
    n_docs: int = 0  # records indexed
    n_chunks: int = 0
    n_tokens: int = 0
    encode_s: float = 0.0  # seconds spent in the encoder's encode_documents
    encoded_tokens: int = 0


def index_documents(store: Store, encoder: Encoder, docs: Sequence[Doc], *, config: Config,
                    on_progress: Progress | None = None) -> BuildStats:
    """Chunk, encode and write ``docs`` into an empty ``store`` through the indexer (as files would be)."""
    timed = _TimedEncoder(encoder)
    indexer = Indexer(store, timed, config=config)
    items = [(FileRecord(path=doc_path(d.id), folder=BEIR_ROOT, size=len(d.body.encode()), mtime=0.0, hash=None,
                         status="indexed"),
              ExtractedText(path=doc_path(d.id), text=d.body, title=d.title, kind="beir")) for d in docs]
    last, shown = None, 0
    for last in indexer.index_texts(items):
        if on_progress and last.files_done != shown:
            shown = last.files_done
            on_progress(shown, len(docs))
    n_docs = last.indexed if last else 0
    st = store.stats()
    return BuildStats(indexer.max_tokens, n_docs, st["chunks"], st["tokens"], timed.seconds,
                      last.tokens_encoded if last else 0)


class _TimedEncoder:
    """The encoder with the seconds spent in ``encode_documents`` counted (for encode tokens/s)."""

    def __init__(self, encoder: Encoder) -> None:
        self.info, self.tokenizer, self._encoder, self.seconds = encoder.info, encoder.tokenizer, encoder, 0.0

    def encode_queries(self, texts):
        return self._encoder.encode_queries(texts)

    def encode_documents(self, texts):
        t0 = time.perf_counter()
        try:
            return self._encoder.encode_documents(texts)
        finally:
            self.seconds += time.perf_counter() - t0


@contextmanager
def temporary_store(*, keep: bool = False, prefix: str = "findling-eval-") -> Iterator[Store]:
    """A fresh index in a temporary folder, removed afterwards unless ``keep``."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    store = Store(folder / "index.sqlite")
    try:
        yield store
    finally:
        store.close()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def settled_size(store: Store) -> int:
    """Close ``store`` (SQLite folds the WAL into the file on the last close) and return the file's bytes."""
    store.close()
    return sum(p.stat().st_size for p in (store.path, store.path.with_name(store.path.name + "-wal")) if p.exists())

@contextmanager
def reused_store(path: Path, *, codec: str | None = None, seed: int = 0) -> Iterator[Store]:
    """An index kept by ``findling eval --keep``, converted to ``codec`` first when it is in another format (a
    compressed format trained with ``seed``)."""
    if not path.is_file():
        raise DatasetError(f"{path}: no index there (make one with `findling eval DATASET --keep`)")
    store = Store(path)
    try:
        if codec and codec != "auto" and store.codec.name != codec:
            store.recode(codec, seed=seed)
        if codec:
            store.set_codec_choice(codec)
        yield store
    finally:
        store.close()


def stored_build(store: Store, *, config: Config) -> BuildStats:
    """What a reused index holds, as ``BuildStats`` (no encoding time: nothing was encoded)."""
    st = store.stats()
    settings = json.loads(store.meta("chunk_settings") or "{}")
    limit = int(settings.get("max_chunk_tokens", config.max_chunk_tokens or 0))
    return BuildStats(limit, sum(st["files"].values()), st["chunks"], st["tokens"], 0.0)


# ---------------------------------------------------------------- searching
def as_query(text: str) -> Query:
    """A corpus query taken literally: no ``ext:``/``dir:`` filters, no quoted phrases."""
    return Query(text=" ".join(text[:MAX_QUERY_CHARS].replace('"', " ").split()))


def rank_queries(searcher: Searcher, queries: Mapping[str, str], *, mode: str, k: int = SEARCH_DEPTH,
                 explain: bool = True) -> tuple[dict[str, list[str]], list[float]]:
    """Doc ids ranked for each query, and each search's seconds (query encoding included)."""
    runs: dict[str, list[str]] = {}
    seconds: list[float] = []
    for qid, text in queries.items():
        t0 = time.perf_counter()
        hits = searcher.search(as_query(text), k=k, mode=mode, explain=explain)
        seconds.append(time.perf_counter() - t0)
        runs[qid] = [doc_id_of(h.path) for h in hits]
    return runs, seconds

