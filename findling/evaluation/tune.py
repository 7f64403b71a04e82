"""Choose the hybrid fusion's default by a fixed, scripted procedure on training and validation data.

    python -m findling.evaluation.tune ../shared/data/scifact=SCIFACT_INDEX@train \\
        ../shared/data/cranfield=CRANFIELD_INDEX ../shared/data/qmsum-test=QMSUM_INDEX --doc docs/quality-levers.md

Each ``FOLDER=INDEX[@SPLIT]`` is a BEIR set and an index of its corpus kept by ``findling eval FOLDER --keep``
(with the model under test); SPLIT is the qrels file (default ``test``). SciFact enters with its *train*
claims only: its test claims are the held-out figure and take no part in the choice.

Procedure (``tune``): for every query, each lane's chunk scores (MaxSim, keyword, dense;
``Searcher.chunk_scores``) are taken once; files are ranked from them for each file scoring of the grid
(``rank_files`` with ``decay``, ``keyword_decay``), and every ``Fusion`` of the grid (``grid``: method x MaxSim
weight x dense share x decay x keyword decay) is applied to those lanes and scored by nDCG@10 per set. A set's baseline is the better of BM25 and the dense baseline (``findling eval``'s ``dense`` mode: the
backbone's own sentence embedding, one vector per record). The chosen fusion is the one with the largest
smallest margin over the sets' baselines, ties going to the larger mean nDCG@10, then to the earlier grid
entry. ``Fusion``'s docstring states this contract; ``--doc`` writes the figures as Markdown.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from findling.engine.config import Config
from findling.engine.search.ranking import NORM_DEPTH, Fusion, Ranked, fuse, rank_files, rank_keyword_files
from findling.engine.search.searcher import Searcher, lane_depth
from findling.engine.store.store import Store
from findling.evaluation.beir import _baseline_cache, dense_runs
from findling.evaluation.dataset import BeirSet, load_beir
from findling.evaluation.harness import SEARCH_DEPTH, as_query, doc_id_of
from findling.evaluation.metrics import mean_metrics, ndcg_at_k
from findling.evaluation.dense_baseline import DenseBaseline

log = logging.getLogger(__name__)

METHODS = ("relative", "zscore", "rrf")
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6)
DENSE_SHARES = (0.0, 0.1, 0.2, 0.3, 0.4)
DECAYS = (0.0,)
"""MaxSim and dense score a file by its best chunk: a damped mean of the best three averages the one chunk
that holds a needle (Passkey) with filler that every document shares."""
KEYWORD_DECAYS = (0.0, 0.25)
"""How far the keyword lane may damp in a file's next best chunks. Long files gain from it (QMSum); above
0.25 the filler chunks of Passkey's long documents outweigh the needle in the fused ranking (nDCG@1 under 1.0
at 8k and 32k tokens), so the grid stops there."""

Lanes = dict[str, list[Ranked]]


@dataclass
class TuneSet:
    """One set of the procedure: its queries and judgements, the index searched, and its baselines."""

    name: str
    data: BeirSet
    index: Path
    chunks: dict[str, dict]  # query id -> lane -> (scores, file ids, chunk ids): Searcher.chunk_scores
    doc_ids: dict[int, str]  # file id -> doc id
    baselines: dict[str, float]  # "bm25", "dense", "maxsim", "dense_lane": nDCG@10
    chunk_counts: dict[int, int] = field(default_factory=dict)  # file id -> its chunks (the keyword lane's decay)
    _ranked: dict = field(default_factory=dict)  # (decay, keyword decay) -> query id -> lanes

    def lanes(self, decay: float, keyword_decay: float) -> dict[str, Lanes]:
        """Every query's lanes with files scored by ``decay`` (MaxSim, dense) and ``keyword_decay`` (keyword)."""
        key = (decay, keyword_decay)
        if key not in self._ranked:
            depth = lane_depth(SEARCH_DEPTH)
            self._ranked[key] = {
                q: {lane: rank_keyword_files(*arrays, depth, decay=keyword_decay, chunk_counts=self.chunk_counts)
                    if lane == "bm25" else rank_files(*arrays, depth, decay=decay)
                    for lane, arrays in by_lane.items()}
                for q, by_lane in self.chunks.items()}
        return self._ranked[key]


def grid() -> list[Fusion]:
    """Every fusion the procedure tries, in a fixed order."""
    out = []
    for method, weight, dense, decay, keyword_decay in itertools.product(METHODS, WEIGHTS, DENSE_SHARES, DECAYS,
                                                                         KEYWORD_DECAYS):
        out.append(Fusion(method=method, weight=weight, dense=dense, decay=decay, keyword_decay=keyword_decay))
    return out


def collect(folder: Path, index: Path, *, split: str, encoder, baseline: DenseBaseline) -> TuneSet:
    """The lanes' chunk scores for every query of ``folder``'s ``split`` over the kept ``index``, and the set's
    baselines."""
    data = load_beir(folder, split=split)
    store = Store(index)
    try:
        searcher = Searcher(store, encoder)
        try:
            chunks = {q: searcher.chunk_scores(as_query(t), depth=lane_depth(SEARCH_DEPTH))
                      for q, t in data.queries.items()}
        finally:
            searcher.close()
        s = TuneSet(f"{data.name}@{split}", data, index, chunks, {}, {})
        s.doc_ids = _doc_ids(store, chunks)
        s.chunk_counts = store.chunk_counts(sorted({int(f) for lanes in chunks.values() for f in lanes["bm25"][1]}))
    finally:
        store.close()
    runs = dense_runs(baseline, data, cache=_baseline_cache(index))
    first = s.lanes(0.0, 0.0)
    s.baselines = {"bm25": _ndcg(data, {q: _ids(l.get("bm25", []), s.doc_ids) for q, l in first.items()}),
                   "dense": mean_metrics(runs, data.qrels)["ndcg@10"],
                   "maxsim": _ndcg(data, {q: _ids(l.get("maxsim", []), s.doc_ids) for q, l in first.items()}),
                   "dense_lane": _ndcg(data, {q: _ids(l.get("dense", []), s.doc_ids) for q, l in first.items()})}
    return s


def _doc_ids(store: Store, chunks: dict[str, dict]) -> dict[int, str]:
    """file id -> corpus doc id, for every file the lanes' chunk scores name (read through one chunk's row each)."""
    chunk_of: dict[int, int] = {}
    for by_lane in chunks.values():
        for _scores, files, chunk_ids in by_lane.values():
            for f, c in zip(files.tolist(), chunk_ids.tolist()):
                chunk_of.setdefault(f, c)
    ids = sorted(chunk_of.values())
    out = {}
    for lo in range(0, len(ids), 900):
        for row in store.chunk_rows(ids[lo:lo + 900]).values():
            out[row.file_id] = doc_id_of(row.path)
    return out


def _ids(ranked: list[Ranked], doc_ids: dict[int, str]) -> list[str]:
    return [doc_ids[r.file_id] for r in ranked[:SEARCH_DEPTH]]


def _ndcg(data: BeirSet, runs: dict[str, list[str]]) -> float:
    return round(float(np.mean([ndcg_at_k(r, data.qrels[q], 10) for q, r in runs.items()])), 5) if runs else 0.0


def score(s: TuneSet, fusion: Fusion) -> float:
    """nDCG@10 of ``fusion`` on set ``s`` (its lanes as taken with the fusion's decay)."""
    by_query = s.lanes(fusion.decay, fusion.keyword_decay)
    runs = {}
    for q, lanes in by_query.items():
        # the first NORM_DEPTH of each lane: what the head of ``fuse`` (every file nDCG@10 sees) is made from
        used = {name: lane[:NORM_DEPTH] for name, lane in lanes.items() if name != "dense" or fusion.dense > 0}
        runs[q] = _ids(fuse(used, fusion) if len(used) > 1 else next(iter(used.values()), []), s.doc_ids)
    return _ndcg(s.data, runs)


def tune(sets: list[TuneSet], fusions: list[Fusion] | None = None) -> dict:
    """Score every fusion on every set; the chosen one and the full table (``--json``)."""
    rows = []
    for fusion in fusions or grid():
        scores = {s.name: score(s, fusion) for s in sets}
        margins = {s.name: round(scores[s.name] - max(s.baselines["bm25"], s.baselines["dense"]), 5) for s in sets}
        rows.append({"fusion": asdict(fusion), "ndcg@10": scores, "margin": margins,
                     "worst_margin": min(margins.values()), "mean": round(float(np.mean(list(scores.values()))), 5)})
    best = max(range(len(rows)), key=lambda i: (rows[i]["worst_margin"], rows[i]["mean"], -i))
    return {"sets": {s.name: {"index": str(s.index), "queries": len(s.data.queries), "baselines": s.baselines}
                     for s in sets},
            "chosen": rows[best], "rows": rows}


def markdown(result: dict, *, command: str) -> str:
    """The figures as the generated page docs/quality-levers.md."""
    sets = list(result["sets"])
    chosen = result["chosen"]
    lines = ["# Quality levers: how the default ranking was chosen", "",
             "Generated by `python -m findling.evaluation.tune` (do not edit by hand):", "", "```", command, "```", "",
             "nDCG@10 on the tuning sets (SciFact's *train* claims, Cranfield, QMSum; SciFact's test claims take no",
             "part). Baseline = the better of BM25 and the dense baseline (all-MiniLM-L6-v2, one vector per record).",
             "", "## Baselines and single lanes", "",
             "| set | queries | BM25 | dense (baseline) | MaxSim | dense lane (per chunk) |", "|---|---|---|---|---|---|"]
    for name, s in result["sets"].items():
        b = s["baselines"]
        lines.append(f"| {name} | {s['queries']} | {b['bm25']:.4f} | {b['dense']:.4f} | {b['maxsim']:.4f} | "
                     f"{b['dense_lane']:.4f} |")
    lines += ["", "## Chosen fusion", "", f"`{_label(chosen['fusion'])}`: " + ", ".join(
        f"{n} {chosen['ndcg@10'][n]:.4f} (margin {chosen['margin'][n]:+.4f})" for n in sets), ""]
    lines += ["## Best of each kind", "", "| fusion | " + " | ".join(sets) + " | worst margin | mean |",
              "|---|" + "---|" * (len(sets) + 2)]
    for row in _notable(result["rows"]):
        lines.append(f"| `{_label(row['fusion'])}` | " + " | ".join(f"{row['ndcg@10'][n]:.4f}" for n in sets)
                     + f" | {row['worst_margin']:+.4f} | {row['mean']:.4f} |")
    return "\n".join(lines) + "\n"


def _label(f: dict) -> str:
    return f"{f['method']} weight {f['weight']} dense {f['dense']} decay {f['decay']} keyword decay {f['keyword_decay']}"


def _notable(rows: list[dict]) -> list[dict]:
    """The best row (by worst margin, then mean) for each method x (dense share > 0) x decay, best first."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        f = row["fusion"]
        key = (f["method"], f["dense"] > 0, f["decay"], f["keyword_decay"])
        if key not in groups or (row["worst_margin"], row["mean"]) > (groups[key]["worst_margin"], groups[key]["mean"]):
            groups[key] = row
    return sorted(groups.values(), key=lambda r: (-r["worst_margin"], -r["mean"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m findling.evaluation.tune", description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+", metavar="FOLDER=INDEX[@SPLIT]")
    parser.add_argument("--model", help="model folder or hub name (default: the engine's resolution)")
    parser.add_argument("--json", metavar="PATH", help="write every row of the grid as JSON")
    parser.add_argument("--doc", metavar="PATH", help="write the figures as Markdown (docs/quality-levers.md)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = Config.default(**({"model": args.model} if args.model else {}))
    from findling.engine.encode.resolve import load_announced

    encoder = load_announced(config)
    baseline = DenseBaseline(threads=config.threads)
    sets = []
    for spec in args.sets:
        folder, _, rest = spec.partition("=")
        index, _, split = rest.partition("@")
        t0 = time.perf_counter()
        sets.append(collect(Path(folder), Path(index), split=split or "test", encoder=encoder, baseline=baseline))
        print(f"{sets[-1].name}: lanes in {time.perf_counter() - t0:.0f} s; baselines {sets[-1].baselines}",
              file=sys.stderr)
    result = tune(sets)
    command = "python -m findling.evaluation.tune " + " ".join(args.sets)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    if args.doc:
        Path(args.doc).write_text(markdown(result, command=command), encoding="utf-8")
    print(json.dumps({"sets": result["sets"], "chosen": result["chosen"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
