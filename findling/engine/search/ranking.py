"""How lanes become one ranking of files: a file's score from its chunks (``rank_files``, and
``rank_keyword_files`` for the keyword lane, which sees only matching chunks), and the fusion of the lanes' file
rankings (``Fusion``, ``fuse``). Pure functions over arrays and ``Ranked`` lists: no store, no model, so the
tuning procedure (``findling.evaluation.tune``) applies them to recorded lane scores exactly as a search does.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

RRF_K = 60


@dataclass(frozen=True)
class Ranked:
    file_id: int
    chunk_id: int
    score: float


def rank_keyword_files(scores: np.ndarray, file_ids: np.ndarray, chunk_ids: np.ndarray, depth: int, *,
                       decay: float, chunk_counts: dict[int, int]) -> list[Ranked]:
    """``rank_files`` over the keyword lane's chunk rows (the best matching chunks only).

    A file's chunk that is not among the rows scores at most the lowest row (0 when every match was returned:
    it did not match), and counts so in the damped mean, as far as the file has such chunks
    (``chunk_counts``: each file's number of chunks, ``Store.chunk_counts``). Counting it as the file's best
    would rank a file with one matching chunk in view above one whose better chunk is followed by weak matches.
    With ``decay`` 0 a file is its best row, as in ``rank_files``.
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
