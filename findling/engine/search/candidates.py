"""Candidate search over a compressed index: inverted lists per centroid, centroid scores, exact re-ranking.

In the spirit of PLAID (ColBERTv2's engine). A compressed index (``findling.engine.store.codec``) stores each token as a
centroid id plus a residual code. For a query ``Q`` ``[m, d]``:

1. ``S = Q @ centroids.T`` ``[m, K]``: every query token against every centroid (one small product).
2. Centroid interaction, pruned: for each query token ``i`` only its ``probe`` best centroids are looked up.
   The inverted list of a centroid holds every chunk with at least one token assigned to it, so a chunk's
   approximate score is ``sum_i max`` over its probed centroids of ``S[i, c]``; where a chunk has none of
   token ``i``'s probed centroids, the best unprobed score ``S[i, (probe + 1)th]`` stands in (an upper bound of
   what that token could match there, so a chunk is never ruled out for lacking one word).
3. The ``candidates`` best chunks by that score are read from the store (one row per chunk), decoded and
   scored by exact MaxSim; every other chunk scores ``-inf``.

When the chunks that pass the filters are no more than ``candidates``, step 2 is skipped and all of them are
re-ranked: below that size the result is exact MaxSim over the decoded vectors.

Memory: only the inverted lists (``int32`` chunk positions, one per distinct (chunk, centroid) pair), the
centroids and per-chunk ids live in memory; codes are read from the store for the candidates of each query,
so nothing holds a float copy of the index. The decoded vectors of a search's best chunks (as many as the caller
asks for) are kept until the next search (``recent``), so the searcher's token alignment of its hits reads
no row twice. The lists are built from the centroid ids inside the stored
BLOBs (the codes need them anyway), on first use and then only for chunks added since, like
``findling.engine.search.exact.TokenMatrix``. Chunk ids are never reused by the store, which makes that diff exact.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from findling.engine.store.codec import ResidualCodec
from findling.engine.search.maxsim import maxsim_scores
from findling.engine.store.store import Store
from findling.engine.threads import single_threaded_blas

log = logging.getLogger(__name__)

RERANK_TOKENS = 1 << 16  # decoded tokens per exact-scoring step (bounds the float32 buffer: 12 MB at 48 dims)


@dataclass(frozen=True)
class CandidateSettings:
    """How wide candidate search looks; the defaults were chosen by ``bench/candidates.py``."""

    probe: int = 8
    """Centroids looked up per query token."""

    candidates: int = 512
    """Chunks decoded and scored exactly per query (at least four per file asked for): wide enough that
    recall@10 against exact MaxSim stays at 0.99 or more at 10M stored tokens (``bench/candidates.py`` checks
    it)."""


class CandidateIndex:
    """Inverted lists of a compressed store, kept in step with it, and the search over them."""

    def __init__(self, codec: ResidualCodec, *, settings: CandidateSettings = CandidateSettings()) -> None:
        self.codec = codec
        self.settings = settings
        self.dim = codec.dim
        self.chunk_ids = np.zeros(0, dtype=np.int64)
        self.file_ids = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.lists: list[np.ndarray] = [np.zeros(0, dtype=np.int32) for _ in range(len(codec.centroids))]
        self.pairs = 0
        self.generation = -1
        self.recent: dict[int, np.ndarray] = {}  # chunk id -> decoded vectors (codec order), last search's best
        self._centroids_t = np.ascontiguousarray(codec.centroids[:, codec.order].T)  # [d, K], codec order

    @property
    def live_chunks(self) -> int:
        return int(self.alive.sum())

    def nbytes(self) -> int:
        """Memory held: the lists, the per-chunk arrays and the centroids."""
        arrays = (self.chunk_ids, self.file_ids, self.lengths, self.alive, self._centroids_t)
        return sum(lst.nbytes for lst in self.lists) + sum(a.nbytes for a in arrays)

    # ---------------------------------------------------------------- keeping in step
    def refresh(self, store: Store) -> bool:
        """Catch up with the store; returns True when anything changed."""
        gen = store.generation()
        if gen == self.generation:
            return False
        in_db = store.chunk_ids()
        gone = np.setdiff1d(self.chunk_ids[self.alive], in_db, assume_unique=True)
        new = np.setdiff1d(in_db, self.chunk_ids, assume_unique=True)
        if len(gone):
            self.alive[np.isin(self.chunk_ids, gone)] = False
        if len(self.chunk_ids) and self.lengths[~self.alive].sum() > self.lengths.sum() / 3:
            self._reset()  # mostly dead: rebuild from scratch
            new = in_db
        if len(new):
            self._append(store, new)
        self.generation = gen
        log.debug("candidate index: %d chunks, %d lists entries (+%d, -%d)", self.live_chunks, self.pairs,
                  len(new), len(gone))
        return True

    def _reset(self) -> None:
        self.__init__(self.codec, settings=self.settings)

    def _append(self, store: Store, new_ids: np.ndarray) -> None:
        first = len(self.chunk_ids)
        ids, files, lengths, cents, counts = [], [], [], [], []
        source = store.iter_vectors(None if not first else new_ids.tolist())
        per_token = self.codec.bytes_per_token
        for chunk_id, file_id, blob in source:
            n = len(blob) // per_token
            unique = np.unique(self.codec.centroid_ids(blob, n))
            ids.append(chunk_id)
            files.append(file_id)
            lengths.append(n)
            cents.append(unique)
            counts.append(len(unique))
        if not ids:
            return
        positions = np.repeat(np.arange(first, first + len(ids), dtype=np.int32), counts)
        flat = np.concatenate(cents)  # uint16: the stable sort below is a radix sort
        order = np.argsort(flat, kind="stable")  # by centroid, positions ascending within each
        bounds = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=len(self.lists)))])
        sorted_positions = positions[order]
        del order, positions
        for c in np.flatnonzero(np.diff(bounds)):
            part = sorted_positions[bounds[c]:bounds[c + 1]]
            self.lists[c] = np.concatenate([self.lists[c], part]) if len(self.lists[c]) else part
        self.pairs += len(flat)
        self.chunk_ids = np.concatenate([self.chunk_ids, np.array(ids, dtype=np.int64)])
        self.file_ids = np.concatenate([self.file_ids, np.array(files, dtype=np.int64)])
        self.lengths = np.concatenate([self.lengths, np.array(lengths, dtype=np.int64)])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])

    # --------------------------------------------------------------------- search
    def search(self, store: Store, query: np.ndarray, allowed: np.ndarray | None = None, *, depth: int = 0,
               threads: int = 1, keep: int = 0) -> np.ndarray:
        """MaxSim scores float32 ``[C]`` over this index's chunks: exact for the candidates, ``-inf`` elsewhere.

        ``allowed``: a boolean mask over the chunks (filters), or None for every live chunk. ``depth``: how
        many results the caller keeps; at least ``4 * depth`` chunks are re-ranked. ``keep``: how many of the
        best chunks' decoded vectors to keep in ``recent`` (``vectors_of``) until the next search.
        """
        live = self.alive if allowed is None else allowed & self.alive
        out = np.full(len(self.chunk_ids), -np.inf, dtype=np.float32)
        self.recent = {}
        if not live.any() or len(query) == 0:
            return out
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32)[:, self.codec.order])
        wanted = max(self.settings.candidates, 4 * depth)
        with single_threaded_blas():  # see findling.engine.threads: a search shares the cores with the indexer
            if live.sum() <= wanted:
                picked = np.flatnonzero(live)
            else:
                approx = self.approximate(q)
                approx[~live] = -np.inf
                picked = np.sort(np.argpartition(-approx, wanted - 1)[:wanted])
            out[picked] = self.rerank(store, q, picked, threads=threads, keep=keep)
        return out

    def vectors_of(self, chunk_id: int) -> np.ndarray | None:
        """A chunk's decoded vectors ``[n, dim]`` in the original dimension order, when the last search kept
        them (one of its best), else None."""
        got = self.recent.get(int(chunk_id))
        return None if got is None else got[:, self.codec.inverse]

    def approximate(self, q: np.ndarray) -> np.ndarray:
        """Centroid-interaction scores ``[C]`` (float32) of a query already in the codec's dimension order."""
        sims = q @ self._centroids_t  # [m, K]
        m, k = sims.shape
        p = min(self.settings.probe, k - 1)
        top = np.argpartition(-sims, p, axis=1)[:, : p + 1]
        vals = np.take_along_axis(sims, top, axis=1)
        rank = np.argsort(-vals, axis=1)
        top, vals = np.take_along_axis(top, rank, axis=1), np.take_along_axis(vals, rank, axis=1)
        n = len(self.chunk_ids)
        best = np.repeat(vals[:, p : p + 1], n, axis=1)  # [m, C]: the best unprobed score stands in
        lists = [self.lists[c] for c in top[:, :p].ravel()]
        sizes = np.fromiter((len(lst) for lst in lists), dtype=np.int64, count=len(lists))
        if sizes.sum():
            rows = np.repeat(np.arange(m, dtype=np.int64), sizes.reshape(m, p).sum(axis=1)) * n
            np.maximum.at(best.ravel(), rows + np.concatenate(lists), np.repeat(vals[:, :p].ravel(), sizes))
        return best.sum(axis=0)

    def rerank(self, store: Store, q: np.ndarray, picked: np.ndarray, *, threads: int = 1,
               keep: int = 0) -> np.ndarray:
        """Exact MaxSim of the chunks at ``picked`` (ascending positions) over their decoded vectors; the
        decoded vectors of the ``keep`` best go to ``recent``."""
        scores = np.full(len(picked), -np.inf, dtype=np.float32)
        where = {int(cid): i for i, cid in enumerate(self.chunk_ids[picked].tolist())}
        kept: dict[int, tuple[float, np.ndarray]] = {}
        group: list[tuple[int, int, bytes]] = []
        tokens = 0
        for row in store.read_codes(self.chunk_ids[picked].tolist()):
            group.append(row)
            tokens += row[1]
            if tokens >= RERANK_TOKENS:
                self._score_group(q, group, scores, where, threads, kept, keep)
                group, tokens = [], 0
        self._score_group(q, group, scores, where, threads, kept, keep)
        self.recent = {cid: vectors for cid, (_score, vectors) in _best(kept, keep)}
        return scores

    def _score_group(self, q: np.ndarray, group: list[tuple[int, int, bytes]], scores: np.ndarray,
                     where: dict[int, int], threads: int, kept: dict[int, tuple[float, np.ndarray]],
                     keep: int) -> None:
        if not group:
            return
        split = [self.codec.split(blob, n) for _cid, n, blob in group]
        ids = np.concatenate([s[0] for s in split])
        codes = np.concatenate([s[1] for s in split])
        tokens = self.codec.decode_codes(ids, codes, ordered=True)
        starts = np.cumsum([0] + [n for _c, n, _b in group[:-1]])
        got = maxsim_scores(q, tokens, starts, threads=threads)
        scores[[where[cid] for cid, _n, _b in group]] = got
        if keep <= 0:
            return
        best = _best(kept, keep)  # the group's chunks must beat these to be worth a copy
        floor = best[-1][1][0] if len(best) == keep else -np.inf
        kept.clear()
        kept.update(best)
        for (cid, n, _b), start, score in zip(group, starts.tolist(), got.tolist()):
            if score >= floor:  # copies: a view would keep the whole group's buffer alive
                kept[cid] = (score, tokens[start:start + n].copy())


def _best(kept: dict[int, tuple[float, np.ndarray]], keep: int) -> list[tuple[int, tuple[float, np.ndarray]]]:
    """The ``keep`` entries of ``kept`` with the highest scores, best first."""
    return sorted(kept.items(), key=lambda item: -item[1][0])[:keep]
