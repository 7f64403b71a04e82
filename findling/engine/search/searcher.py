"""Search: encode the query, score chunks by MaxSim, rank files by their best chunk.

Modes: ``maxsim`` (semantic, late interaction), ``bm25`` (the store's FTS5 keyword index) and ``hybrid``
(the two file rankings fused, ``Fusion``: scores scaled per lane and mixed by default). Each hit carries the MaxSim alignment: for each query
token, the document token it matched and how strongly, so a front end can highlight and explain.

Exact or candidate search, by the index's format and size: a float16 index, or a compressed one with fewer
than ``candidate_min_tokens`` token vectors, is scored exactly over one in-memory float32 matrix
(``findling.engine.search.exact``); a larger compressed index goes through candidate search (``findling.engine.search.candidates``:
inverted lists per centroid, then exact MaxSim over the decoded candidates), which keeps no float copy.

Threads: a search usually runs while an indexer keeps every core busy encoding. The query is encoded on
``query_threads`` torch threads (default 1: a 32-token query gains little from more, and a multi-threaded
operation waits for its slowest thread, which waits for a core), and exact MaxSim runs on ``threads``
workers that each use single-threaded BLAS and take blocks as cores come free (``findling.engine.threads``). In
``hybrid`` the keyword lane runs on a second thread (the searcher's own) while this one encodes the query
and scores MaxSim: SQLite lets go of the GIL inside FTS5, and encoding touches no SQL, so on two free cores
a hybrid search takes about as long as its longer lane instead of both. The keyword lane reads through a
``Store(path, reader=True)`` of its own on the same file, opened by the first hybrid search: SQLite runs one
statement of a connection at a time, so on a shared connection MaxSim's first read of candidate codes waited
for the whole FTS5 query (about 40 ms at 10M tokens) and the two lanes ran one after the other.
"""
from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np

from findling.engine.search.candidates import CandidateIndex, CandidateSettings
from findling.engine.store.codec import FP16
from findling.engine.store.dense_codec import dense_width
from findling.engine.encode.encoder import Encoder
from findling.engine.errors import ModelMismatch, StoreError
from findling.engine.search.exact import DenseMatrix, TokenMatrix
from findling.engine.search.ranking import (DEFAULT_FUSION, NORM_DEPTH, Fusion, Ranked, fuse, rank_files,
                                            rank_keyword_files)
from findling.engine.search.maxsim import maxsim_alignment, maxsim_scores
from findling.engine.search.query import Query, fts_expression, fts_words, parse_query, phrase_expression
from findling.engine.search.query import FIELD_FILTERS
from findling.engine.records import SearchHit, TokenMatch
from findling.engine.store.store import Store
from findling.engine.store.search_reads import ChunkRow
from findling.engine.threads import default_threads, single_threaded_blas, torch_threads

log = logging.getLogger(__name__)

Mode = Literal["maxsim", "bm25", "hybrid", "dense"]
MODES: tuple[str, ...] = ("hybrid", "maxsim", "bm25", "dense")
LANES: tuple[str, ...] = ("maxsim", "bm25", "dense")  # the lanes' names, as ``SearchHit.lanes`` reports them
CANDIDATE_MIN_TOKENS = 262_144
"""A compressed index this big or bigger is searched through candidates (``bench/candidates.py`` measures the
recall this keeps against exact MaxSim)."""
_MARKER = re.compile(r"^\[[A-Za-z0-9_]+\]$")


class Searcher:
    """Answers queries over one store with one encoder. Not thread-safe: one per thread."""

    def __init__(self, store: Store, encoder: Encoder, *, threads: int | None = None, query_threads: int = 1,
                 candidate_min_tokens: int = CANDIDATE_MIN_TOKENS,
                 candidates: CandidateSettings = CandidateSettings(), fusion: Fusion | None = None) -> None:
        self.store = store
        self.fusion = fusion or DEFAULT_FUSION
        self.encoder = encoder
        self.index: TokenMatrix | CandidateIndex = TokenMatrix(encoder.info.dim)
        self.dense = DenseMatrix()  # the chunks' dense vectors, when the encoder pools them
        self.threads = threads or default_threads()
        self.query_threads = query_threads
        self.candidate_min_tokens = candidate_min_tokens
        self.candidate_settings = candidates
        self._index_key: tuple | None = None
        self._common: tuple[int, dict[str, bool]] = (-1, {})  # generation, word -> in half the chunks or more
        self._keyword_thread: ThreadPoolExecutor | None = None  # hybrid's keyword lane, made on first use
        self._keyword_store: Store | None = None  # that lane's own connection to the same file

    def search(self, query: str | Query, *, k: int = 10, mode: Mode = "hybrid", explain: bool = True) -> list[SearchHit]:
        """The ``k`` best files for ``query``. ``explain=False`` leaves out each hit's token alignment (and the
        snippet centred on it): for callers that only rank, such as the evaluation at depth 100."""
        q = parse_query(query) if isinstance(query, str) else query
        # the hits' alignment in single-threaded BLAS: small products OpenBLAS would split over threads that
        # then spin waiting for work
        with single_threaded_blas():
            lanes, qvec = self._lanes(q, mode=mode, depth=lane_depth(k), keep=2 * k if explain else 0)
            if not lanes:
                return []
            ranked = fuse(lanes, self.fusion) if len(lanes) > 1 else next(iter(lanes.values()))
            return self._hits(ranked[:k], q, qvec if explain else None, lanes)

    def ranked_lanes(self, query: str | Query, *, depth: int, mode: Mode = "hybrid") -> dict[str, list[Ranked]]:
        """Each lane's file ranking (best chunk per file, ``depth`` files) before fusion: what ``fuse`` takes.

        For measuring fusion methods on kept indexes (``bench/fusion.py``) without searching again per method;
        ``depth=lane_depth(k)`` gives the lanes ``search(query, k=k)`` fuses (candidate search re-ranks more
        chunks for deeper lanes, so other depths can give other lanes).
        """
        q = parse_query(query) if isinstance(query, str) else query
        return self._lanes(q, mode=mode, depth=depth)[0]

    def chunk_scores(self, query: str | Query, *, depth: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Each lane's chunk scores before files are ranked: ``lane -> (scores, file_ids, chunk_ids)``, non-finite
        for chunks a lane did not score. ``rank_files`` of each, with ``Fusion.decay`` (``rank_keyword_files`` and
        ``keyword_decay`` for "bm25"), gives the lanes ``ranked_lanes`` returns (the keyword lane's rows as it fetches them for
        ``depth``). For measuring file scorings without searching again per setting
        (``findling.evaluation.tune``)."""
        q = parse_query(query) if isinstance(query, str) else query
        allowed = self._allowed_chunks(q)
        out = {}
        with single_threaded_blas():
            rows = self._keyword_rows(q, allowed, depth=depth, store=self.store)
            out["bm25"] = (np.array([r[2] for r in rows], dtype=np.float64), np.array([r[1] for r in rows], dtype=np.int64),
                           np.array([r[0] for r in rows], dtype=np.int64))
            if not q.text:
                return out
            with torch_threads(self.query_threads):
                qvec = self.encoder.encode_queries([q.text])[0]
            m = self.index
            if isinstance(m, CandidateIndex):
                scores = m.search(self.store, qvec, allowed, depth=depth, threads=self.threads)
            else:
                scores = maxsim_scores(qvec, m.tokens, m.starts, threads=self.threads)
                scores = np.where(m.alive if allowed is None else allowed, scores, -np.inf)
            out["maxsim"] = (scores, m.file_ids, m.chunk_ids)
            pooled = getattr(qvec, "pooled", None)
            if pooled is not None and self._dense_ready():
                d = self.dense
                mask = None if allowed is None else np.isin(d.chunk_ids, self.index.chunk_ids[allowed])
                out["dense"] = (d.scores(pooled, mask), d.file_ids, d.chunk_ids)
        return out

    def _lanes(self, q: Query, *, mode: str, depth: int,
               keep: int = 0) -> tuple[dict[str, list[Ranked]], np.ndarray | None]:
        """Each lane's ranking and the query's vectors; ``keep``: how many of the MaxSim lane's best chunks
        candidate search keeps decoded for the hits' alignment."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if not q.text and not q.phrases:
            return {}, None
        allowed = self._allowed_chunks(q)
        qvec = None
        lanes: dict[str, list[Ranked]] = {}
        dense = (mode == "dense" or (mode == "hybrid" and self.fusion.dense > 0)) and bool(q.text) and self._dense_ready()
        # files are scored from several chunks in hybrid only: a lane searched alone ranks files by their best chunk
        decay, keyword_decay = (self.fusion.decay, self.fusion.keyword_decay) if mode == "hybrid" else (0.0, 0.0)
        semantic = (mode in ("maxsim", "hybrid") or dense) and bool(q.text)
        keywords = None
        if mode in ("bm25", "hybrid"):
            if semantic:  # both lanes: the keyword one on the searcher's thread meanwhile
                if self._keyword_thread is None:
                    self._keyword_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="findling-keywords")
                keywords = self._keyword_thread.submit(self._bm25_lane, q, allowed, depth=depth,
                                                       store=self._keyword_lane_store(), decay=keyword_decay)
            else:
                lanes["bm25"] = self._bm25_lane(q, allowed, depth=depth, decay=keyword_decay)
        try:
            if semantic:
                with torch_threads(self.query_threads):
                    qvec = self.encoder.encode_queries([q.text])[0]
                if mode != "dense":
                    lanes["maxsim"] = self._maxsim_lane(qvec, allowed, depth=depth, keep=keep, decay=decay)
                pooled = getattr(qvec, "pooled", None)
                if dense and pooled is not None:
                    lanes["dense"] = self._dense_lane(pooled, allowed, depth=depth, decay=decay)
        finally:
            if keywords is not None:  # waited for even when MaxSim failed: the thread uses this searcher's state
                lanes["bm25"] = keywords.result()
        return lanes, qvec

    def close(self) -> None:
        """Stop the keyword lane's thread and close its connection (a later hybrid search opens them again)."""
        if self._keyword_thread is not None:
            self._keyword_thread.shutdown(wait=True)
            self._keyword_thread = None
        if self._keyword_store is not None:
            self._keyword_store.close()
            self._keyword_store = None

    def _keyword_lane_store(self) -> Store:
        """The keyword lane's own ``Store`` on this searcher's file, opened on first use; this searcher's store
        when a second one cannot be opened (the lanes then take turns on one connection, as they once did)."""
        if self._keyword_store is None:
            try:
                self._keyword_store = Store(self.store.path, reader=True)
            except StoreError as exc:
                log.warning("the keyword lane shares the searcher's connection: %s", exc)
                return self.store
        return self._keyword_store

    def _check_model(self) -> None:
        """Refuse to compare query vectors with document vectors of another model."""
        ident = self.store.model_identity()
        if ident and ident.get("fingerprint") != self.encoder.info.fingerprint:
            raise ModelMismatch(
                f"This index was built with {ident.get('name')}, not {self.encoder.info.name}; re-encode it "
                f"(`findling index --reencode`) or switch back to {ident.get('name')}."
            )

    # ---------------------------------------------------------------- lanes
    def _refresh(self) -> None:
        """Bring the index up to date; pick exact or candidate search when the format or the size class changed."""
        generation = self.store.generation()
        if self.index.generation == generation:
            return
        self._check_model()
        codec = self.store.codec
        exact = codec.name == FP16 or self.store.token_count() < self.candidate_min_tokens
        key = (id(codec), exact)
        if key != self._index_key:
            self.index = (TokenMatrix(self.encoder.info.dim) if exact
                          else CandidateIndex(codec, settings=self.candidate_settings))
            self._index_key = key
            log.debug("search over %s: %s", codec.name, "exact" if exact else "candidates")
        self.index.refresh(self.store)

    def _dense_ready(self) -> bool:
        """Whether the dense lane runs: the encoder pools dense vectors and every live chunk has one (an index
        from before dense vectors, or one part-way through being encoded again, searches without the lane
        rather than with a lane that sees only some of its chunks)."""
        if not self.encoder.info.dense_dim:
            return False
        self.dense.refresh(self.store)
        live = self.dense.live_chunks
        return live > 0 and live == self.index.live_chunks and self.dense.vectors.shape[1] == dense_width(self.encoder.info.dense_dim)

    def _allowed_chunks(self, q: Query) -> np.ndarray | None:
        """Boolean mask over the index' chunks that pass the filters, or None for all."""
        self._refresh()
        if not q.has_filters and not q.phrases:
            return None
        mask = self.index.alive.copy()
        if q.has_filters:
            files = self.store.filtered_file_ids(folders=q.dirs, suffixes=q.exts, after=q.after, before=q.before,
                                                 fields=[(FIELD_FILTERS[key], words) for key, words in q.fields])
            mask &= np.isin(self.index.file_ids, np.fromiter(files, dtype=np.int64, count=len(files)))
        if q.phrases:
            hits = self.store.fts_search(phrase_expression(q), limit=1_000_000)
            ids = np.array([h[0] for h in hits], dtype=np.int64)
            mask &= np.isin(self.index.chunk_ids, ids)
        return mask

    def _maxsim_lane(self, qvec: np.ndarray, allowed: np.ndarray | None, *, depth: int,
                     keep: int = 0, decay: float = 0.0) -> list[Ranked]:
        m = self.index
        if not len(m.chunk_ids):
            return []
        if isinstance(m, CandidateIndex):
            scores = m.search(self.store, qvec, allowed, depth=depth, threads=self.threads, keep=keep)
        else:
            scores = maxsim_scores(qvec, m.tokens, m.starts, threads=self.threads)
            scores = np.where(m.alive if allowed is None else allowed, scores, -np.inf)
        return rank_files(scores, m.file_ids, m.chunk_ids, depth, decay=decay)

    def _dense_lane(self, pooled: np.ndarray, allowed: np.ndarray | None, *, depth: int,
                    decay: float = 0.0) -> list[Ranked]:
        """Files by the cosine of the query's dense vector with their chunks' (exact, over every chunk)."""
        d = self.dense
        mask = None
        if allowed is not None:  # the filters' mask is over the token index's chunks: carried over by chunk id
            mask = np.isin(d.chunk_ids, self.index.chunk_ids[allowed])
        with single_threaded_blas():
            scores = d.scores(pooled, mask)
        return rank_files(scores, d.file_ids, d.chunk_ids, depth, decay=decay)

    def _bm25_lane(self, q: Query, allowed: np.ndarray | None, *, depth: int,
                   store: Store | None = None, decay: float = 0.0) -> list[Ranked]:
        """The keyword lane's file ranking, read through ``store`` (default: the searcher's)."""
        rows = self._keyword_rows(q, allowed, depth=depth, store=store or self.store)
        if decay > 0 and rows:  # each file from its best matching chunks, as rank_files says
            file_ids = np.array([r[1] for r in rows], dtype=np.int64)
            counts = (store or self.store).chunk_counts(np.unique(file_ids).tolist())
            return rank_keyword_files(np.array([r[2] for r in rows], dtype=np.float64), file_ids,
                                      np.array([r[0] for r in rows], dtype=np.int64), depth, decay=decay,
                                      chunk_counts=counts)
        seen: set[int] = set()
        out = []
        for chunk_id, file_id, score in rows:
            if file_id not in seen:
                seen.add(file_id)
                out.append(Ranked(file_id, chunk_id, score))
        return out[:depth]

    def _keyword_rows(self, q: Query, allowed: np.ndarray | None, *, depth: int,
                      store: Store) -> list[tuple[int, int, float]]:
        """The keyword index's ``(chunk_id, file_id, score)`` rows for the lane of ``depth`` files, best first."""
        common = self._common_words(fts_words(q), store)
        expr = fts_expression(q)
        if not expr:
            return []
        limit = depth * 20
        pruned = fts_expression(q, skip=common)
        rows = store.fts_search(pruned, limit=limit) if pruned != expr else []
        if len(rows) < limit:  # the rare words fill no page: the common ones' near-nil scores follow, as before
            rows = store.fts_search(expr, limit=limit)
        if allowed is not None:
            ok = set(self.index.chunk_ids[allowed].tolist())
            rows = [r for r in rows if r[0] in ok]
        return rows

    def _common_words(self, words: list[str], store: Store) -> set[str]:
        """Which of ``words`` half the chunks or more contain. The keyword lane first matches without them
        (``Store.fts_common_words``: their BM25 weight is nil, their cost a score per chunk they are in: at
        10M tokens this halves the lane), and only when the other words fill fewer rows than it asks for
        does it match them all, so the rows it returns are the full match's (scores within 1e-5). Known
        answers are kept until the index changes."""
        generation = store.generation()
        if self._common[0] != generation:
            self._common = (generation, {})
        known = self._common[1]
        new = [w for w in words if w not in known]
        if new:
            common = store.fts_common_words(new)
            known.update((w, w in common) for w in new)
        return {w for w in words if known[w]}

    # ----------------------------------------------------------------- hits
    def _hits(self, ranked: list[Ranked], q: Query, qvec: np.ndarray | None,
              lanes: dict[str, list[Ranked]]) -> list[SearchHit]:
        rows = self.store.chunk_rows([r.chunk_id for r in ranked])
        found_by = {name: {r.file_id for r in lane} for name, lane in lanes.items()}
        labels = self.encoder.tokenizer.query_labels(q.text) if qvec is not None else []
        positions = {r.chunk_id: self._index_position(r.chunk_id) for r in ranked if r.chunk_id in rows}
        aligned = [cid for cid, index in positions.items() if qvec is not None and index is not None]
        spans = dict(zip(aligned, self.encoder.tokenizer.document_spans_many([rows[c].text for c in aligned])))
        hits = []
        for r in ranked:
            row = rows.get(r.chunk_id)
            if row is None:  # deleted between ranking and now
                continue
            alignment: tuple[TokenMatch, ...] = ()
            if r.chunk_id in spans:
                alignment = self._align(qvec, labels, row, positions[r.chunk_id], spans[r.chunk_id])
            hits.append(SearchHit(
                path=row.path, score=r.score, chunk_id=row.chunk_id, chunk_ordinal=row.ordinal, page=row.page,
                snippet=make_snippet(row.text, alignment, q), chunk_text=row.text, char_start=row.char_start,
                char_end=row.char_end, mtime=row.mtime, size=row.size, alignment=alignment,
                lanes=tuple(name for name in LANES if r.file_id in found_by.get(name, ())), ocr=row.ocr,
            ))
        return hits

    def _index_position(self, chunk_id: int) -> int | None:
        ids = self.index.chunk_ids  # ascending: the store never reuses or back-fills ids
        i = int(np.searchsorted(ids, chunk_id))
        return i if i < len(ids) and ids[i] == chunk_id and self.index.alive[i] else None

    def _align(self, qvec: np.ndarray, labels: list[str], row: ChunkRow, index: int,
               spans: list[tuple[int, int]]) -> tuple[TokenMatch, ...]:
        if isinstance(self.index, TokenMatrix):
            doc = self.index.chunk_vectors(index)
        else:  # as the candidate search decoded them, or else decoded again from the hit's own row
            doc = self.index.vectors_of(row.chunk_id)
            if doc is None:
                doc = self.store.read_vectors([row.chunk_id]).get(row.chunk_id, np.zeros((0, self.index.dim)))
        if len(spans) != len(doc) or len(labels) != len(qvec):
            log.debug("alignment skipped for chunk %d: %d spans for %d vectors", row.chunk_id, len(spans), len(doc))
            return ()
        idx, sims = maxsim_alignment(qvec, doc)
        out = []
        for label, j, sim in zip(labels, idx.tolist(), sims.tolist()):
            if _MARKER.match(label):
                continue
            s, e = spans[j]
            out.append(TokenMatch(query_token=label, doc_start=s, doc_end=e, similarity=float(sim),
                                  doc_token=row.text[s:e] if s >= 0 else ""))
        return tuple(out)


def lane_depth(k: int) -> int:
    """How many files each lane ranks for a search of ``k`` results."""
    return max(k * 4, NORM_DEPTH)


def make_snippet(text: str, alignment: tuple[TokenMatch, ...], q: Query, *, width: int = 240) -> str:
    """A window of ``text`` around its strongest matches, whitespace collapsed."""
    centre = _snippet_centre(text, alignment, q)
    start = max(0, centre - width // 3)
    end = min(len(text), start + width)
    start = max(0, end - width)
    if start > 0:
        space = text.find(" ", start, start + 30)
        start = space + 1 if space >= 0 else start
    piece = " ".join(text[start:end].split())
    return ("… " if start > 0 else "") + piece + (" …" if end < len(text) else "")


def _snippet_centre(text: str, alignment: tuple[TokenMatch, ...], q: Query) -> int:
    matched = [m for m in alignment if m.doc_start >= 0]
    if matched:
        # the densest window: the match position with most other strong matches within 120 chars
        positions = [m.doc_start for m in sorted(matched, key=lambda m: -m.similarity)[:8]]
        return max(positions, key=lambda p: sum(abs(p - o) < 120 for o in positions))
    lowered = text.lower()
    for word in list(q.phrases) + q.text.split():
        at = lowered.find(word.lower())
        if at >= 0:
            return at
    return 0
