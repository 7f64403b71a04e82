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

import enum
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Literal

import numpy as np

from findling.engine.search.candidates import CandidateIndex, CandidateSettings
from findling.engine.store.codec import FP16, dense_width
from findling.engine.encode.encoder import Encoder
from findling.engine.errors import ModelMismatch, StoreError
from findling.engine.search.exact import DenseMatrix, TokenMatrix
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
RRF_K = 60
CANDIDATE_MIN_TOKENS = 262_144
"""A compressed index this big or bigger is searched through candidates (``bench/candidates.py`` measures the
recall this keeps against exact MaxSim)."""
_MARKER = re.compile(r"^\[[A-Za-z0-9_]+\]$")


@dataclass(frozen=True)
class Ranked:
    file_id: int
    chunk_id: int
    score: float


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


def rank_keyword_files(scores: np.ndarray, file_ids: np.ndarray, chunk_ids: np.ndarray, depth: int, *,
                       decay: float, chunk_counts: dict[int, int]) -> list[Ranked]:
    """``rank_files`` over the keyword lane's chunk rows (the best matching chunks only).

    A file's chunk that is not among the rows scores at most the lowest row (0 when every match was returned:
    it did not match), and counts so in the damped mean, as far as the file has such chunks
    (``chunk_counts``: each file's number of chunks, ``Store.chunk_counts``). Counting it as the file's best
    would rank a file with one matching chunk in view above one whose better chunk is followed by weak matches.
    """
    scores = np.asarray(scores, dtype=np.float64)
    floor = min(0.0, float(scores.min())) if len(scores) else 0.0
    return rank_files(scores, file_ids, chunk_ids, depth, decay=decay, floor=floor, chunk_counts=chunk_counts)


def rank_files(scores: np.ndarray, file_ids: np.ndarray, chunk_ids: np.ndarray, depth: int, *,
               decay: float = 0.0, floor: float | None = None,
               chunk_counts: dict[int, int] | None = None) -> list[Ranked]:
    """The ``depth`` best files, best first, each with its best chunk (non-finite scores: not found).

    With ``decay`` 0 a file's score is its best chunk's. With ``decay`` > 0 it is the damped mean of its best
    ``DECAY_CHUNKS`` chunks, ``(s1 + decay * s2 + decay**2 * s3) / (1 + decay + decay**2)``, where a file with
    fewer chunks counts its best one in their place: a long document that matches in one place only ranks below
    one that matches in several, and a short document is never behind a long one for having fewer chunks (a
    plain damped sum put every multi-chunk file ahead: -0.05 nDCG@10 on Cranfield at 0.5). Scores stay on the
    chunk scores' scale. Ties go to the lower file id.

    For a lane that scores only some chunks (the keyword lane), ``chunk_counts`` gives each file's number of
    chunks and ``floor`` what an unscored one counts as: a file's chunks beyond the scored ones count as
    ``floor`` as far as the file has them, and as its best only beyond its last chunk.
    """
    found = np.flatnonzero(np.isfinite(scores))
    if not len(found) or depth <= 0:
        return []
    # only the files with a chunk among the best ``k`` can rank (a file scores at most its best chunk), so the
    # work is over those; ``k`` grows until ``depth`` files are certain
    k = min(len(found), max(4 * depth, 256))
    while True:
        if k < len(found):
            cut = np.partition(scores[found], len(found) - k)[len(found) - k]
            near = found[scores[found] >= cut]  # every chunk tied at the cut too: the result does not depend on k
        else:
            cut, near = -np.inf, found
        ranked = _rank_chunks(scores, file_ids, chunk_ids, near if decay <= 0 else
                              found[np.isin(file_ids[found], file_ids[near])], depth, decay, floor, chunk_counts)
        if len(near) == len(found) or (len(ranked) >= depth and ranked[depth - 1].score >= cut):
            return ranked
        k = min(len(found), 4 * k)


def _rank_chunks(scores: np.ndarray, file_ids: np.ndarray, chunk_ids: np.ndarray, rows: np.ndarray, depth: int,
                 decay: float, floor: float | None = None, chunk_counts: dict[int, int] | None = None) -> list[Ranked]:
    """``rank_files`` over the chunks ``rows`` (every chunk of a file that should count with ``decay``)."""
    s = scores[rows].astype(np.float64)
    f = file_ids[rows]
    if decay <= 0:
        order = np.lexsort((f, -s))
        first = np.unique(f[order], return_index=True)[1]  # each file's first (best) entry in that order
        best = order[np.sort(first)][:depth]
        return [Ranked(int(f[i]), int(chunk_ids[rows[i]]), float(s[i])) for i in best]
    order = np.lexsort((-s, f))  # by file, best chunk first within it
    fs, ss = f[order], s[order]
    starts = np.flatnonzero(np.r_[True, fs[1:] != fs[:-1]])
    place = np.arange(len(fs)) - np.repeat(starts, np.diff(np.r_[starts, len(fs)]))
    weights = np.where(place < DECAY_CHUNKS, decay ** np.minimum(place, DECAY_CHUNKS), 0.0)
    counts = np.minimum(np.diff(np.r_[starts, len(fs)]), DECAY_CHUNKS)
    full = sum(decay ** i for i in range(DECAY_CHUNKS))
    partial = np.array([sum(decay ** i for i in range(c)) for c in range(DECAY_CHUNKS + 1)])
    if chunk_counts is None or floor is None:
        total = (np.add.reduceat(ss * weights, starts) + (full - partial[counts]) * ss[starts]) / full
    else:
        real = np.array([chunk_counts.get(int(x), 0) for x in fs[starts]], dtype=np.int64)
        real = np.clip(real, counts, DECAY_CHUNKS)  # a file has at least the chunks that scored
        total = (np.add.reduceat(ss * weights, starts) + (partial[real] - partial[counts]) * floor
                 + (full - partial[real]) * ss[starts]) / full
    top = np.lexsort((fs[starts], -total))[:depth]
    return [Ranked(int(fs[starts[t]]), int(chunk_ids[rows[order[starts[t]]]]), float(total[t])) for t in top]


DECAY_CHUNKS = 3  # chunks of a file that count towards its score when Fusion.decay > 0


class FusionMethod(enum.StrEnum):
    """How ``hybrid`` turns each lane's scores into shares it can add (see ``Fusion``)."""

    RRF = "rrf"
    RELATIVE = "relative"
    ZSCORE = "zscore"


FUSION_METHODS: tuple[str, ...] = tuple(m.value for m in FusionMethod)


@dataclass(frozen=True)
class Fusion:
    """How ``hybrid`` merges the lanes' file rankings (MaxSim, keyword, dense), and how a lane scores a file.

    * ``rrf``: reciprocal-rank fusion, ``sum share_lane / (rrf_k + rank)``: ranks only, blind to how far ahead a
      lane's first file is.
    * ``relative``: each lane's scores min-max scaled over its own list to [0, 1] (a file a lane did not return
      gets 0), then mixed by the lanes' shares. A lane that is sure (one file far ahead) keeps that lead; a
      lane whose scores are all close moves the order little.
    * ``zscore``: each lane's scores standardised by the mean and spread of its first ``NORM_DEPTH`` (how many
      standard deviations above its own typical result a file is, floored at -3 and shifted by 3, so a file a
      lane did not return counts as 3 below), then mixed as above. Like ``relative`` it keeps a confident
      lead, but one outlier at the top or bottom of a lane does not squash the others.

    Shares: the dense lane gets ``dense``; the rest, ``1 - dense``, is split ``weight`` to MaxSim and
    ``1 - weight`` to the keyword lane. Without a dense lane (a model without dense pooling, an index whose
    chunks lack dense vectors) that is the two-lane fusion of ``weight`` alone. ``decay``: how the MaxSim and
    dense lanes score a file from its chunks in ``hybrid`` (``rank_files``: the damped mean of its best three,
    ``decay`` the weight of the second, squared the third's; 0 is the best chunk alone); ``keyword_decay`` the
    same for the keyword lane. A lane searched alone (``maxsim``, ``bm25``, ``dense``) ranks files by their best
    chunk.

    The default is chosen by ``python -m findling.evaluation.tune`` (docs/quality-levers.md): every
    combination of method, weight, dense share and decay on a grid, scored by nDCG@10 on SciFact's train
    claims, Cranfield and QMSum (never on SciFact's test claims), and the one with the largest smallest margin
    over the better baseline of each set (BM25, and the backbone's dense cosine of ``findling eval``'s
    ``dense`` mode) wins, ties going to the larger mean nDCG@10. The grid keeps ``decay`` at 0 and
    ``keyword_decay`` at most 0.25, since more loses the one chunk that holds a needle in a long file
    (Passkey; ``findling.evaluation.tune.DECAYS``, ``KEYWORD_DECAYS``).
    ``DEFAULT_FUSION`` is the winner for the bundled model; docs/quality-levers.md has the grid's figures. The
    fields' own defaults (``relative``, 0.4, no dense lane, best chunk only) are the two-lane fusion.
    """

    method: FusionMethod = FusionMethod.RELATIVE
    weight: float = 0.4
    dense: float = 0.0
    decay: float = 0.0
    keyword_decay: float = 0.0
    rrf_k: int = RRF_K

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"fusion method must be one of {FUSION_METHODS}, not {self.method!r}")
        object.__setattr__(self, "method", FusionMethod(self.method))  # a name given as a string
        for name in ("weight", "dense", "decay", "keyword_decay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fusion {name} must be within [0, 1], not {value}")

    def share(self, lane: str) -> float:
        """The share of lane ``lane`` ("maxsim", "bm25" or "dense") in the fused score."""
        if lane == "dense":
            return self.dense
        rest = 1.0 - self.dense
        return rest * (self.weight if lane == "maxsim" else 1.0 - self.weight)


NORM_DEPTH = 50
Z_FLOOR = 3.0  # zscore: standard deviations below the mean that count as nothing
DEFAULT_FUSION = Fusion(method="zscore", weight=0.2, dense=0.1, decay=0.0, keyword_decay=0.25)
"""Chosen by ``python -m findling.evaluation.tune`` (docs/quality-levers.md); see ``Fusion``."""


def fuse(lanes: dict[str, list[Ranked]], fusion: Fusion = DEFAULT_FUSION) -> list[Ranked]:
    """One file ranking from the lanes' (each best first); a file keeps the chunk of the lane that ranked it
    highest. Ties go to the lower file id, so the order is reproducible.

    The ranking does not depend on how deep the lanes go: its head is fused from each lane's first
    ``NORM_DEPTH`` files (what a search always fetches), and the files that only deeper entries bring follow
    it, in their own fused order. So for the same lanes the first ten of a 100-result search (the
    evaluation, the window's 50) are the ten a 10-result search shows (``findling search``). (Candidate
    search scores more chunks for deeper lanes, so there the lanes themselves can improve with depth.) A
    tail file's score is capped at the last head score, so scores still fall down the list.
    """
    head = _fuse_lanes({name: lane[:NORM_DEPTH] for name, lane in lanes.items()}, fusion)
    if all(len(lane) <= NORM_DEPTH for lane in lanes.values()):
        return head
    shown = {r.file_id for r in head}
    floor = head[-1].score if head else float("inf")
    tail = [Ranked(r.file_id, r.chunk_id, min(r.score, floor)) for r in _fuse_lanes(lanes, fusion, tail=True)
            if r.file_id not in shown]
    return head + tail


def _fuse_lanes(lanes: dict[str, list[Ranked]], fusion: Fusion, *, tail: bool = False) -> list[Ranked]:
    fused: dict[int, float] = {}
    best: dict[int, tuple[int, Ranked]] = {}
    for name, lane in lanes.items():
        share = fusion.share(name)
        if name == "dense" and share == 0.0:  # a dense share of 0 is the two-lane fusion exactly
            continue
        for rank, value in enumerate(_lane_values(lane, fusion, tail=tail)):
            r = lane[rank]
            fused[r.file_id] = fused.get(r.file_id, 0.0) + share * value
            if r.file_id not in best or rank < best[r.file_id][0]:
                best[r.file_id] = (rank, r)
    order = sorted(fused, key=lambda f: (-fused[f], f))
    return [Ranked(f, best[f][1].chunk_id, fused[f]) for f in order]


def _lane_values(lane: list[Ranked], fusion: Fusion, *, tail: bool = False) -> list[float]:
    """What each entry of a lane (best first) adds before the lane's share is applied.

    ``relative`` scales between the lane's best score and its score at rank ``NORM_DEPTH`` (or its last, if
    shorter), clipped at 0 below that (for the ``tail``, the files after the fused head, down to its last); ``zscore`` standardises by the first ``NORM_DEPTH``. Either way the
    same files get the same values whether 10 or 100 results were asked for (a search always fetches at
    least ``NORM_DEPTH`` per lane). A lane whose scores are all equal gives every file the same value.
    """
    if fusion.method is FusionMethod.RRF:
        return [1.0 / (fusion.rrf_k + rank + 1) for rank in range(len(lane))]
    if not lane:
        return []
    if fusion.method is FusionMethod.ZSCORE:
        top = np.array([r.score for r in lane[:NORM_DEPTH]], dtype=np.float64)
        mean, spread = float(top.mean()), float(top.std())
        if spread <= 1e-9 * max(abs(mean), 1.0):
            return [Z_FLOOR] * len(lane)
        return [max(-Z_FLOOR, (r.score - mean) / spread) + Z_FLOOR for r in lane]
    # the tail (files after the fused head) is ordered by the scale down to each lane's last file: clipped at
    # the 50th, every file deeper in both lanes would tie at 0 and fall back to file-id order
    hi, lo = lane[0].score, lane[(len(lane) if tail else min(len(lane), NORM_DEPTH)) - 1].score
    if hi - lo <= 1e-9 * max(abs(hi), 1.0):
        return [1.0 if r.score >= hi else 0.0 for r in lane]
    return [max(0.0, (r.score - lo) / (hi - lo)) for r in lane]


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
