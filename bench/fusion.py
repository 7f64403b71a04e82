"""Hybrid fusion: which way of merging the MaxSim and keyword rankings is best across data sets.

    findling eval ../shared/data/scifact --keep --json      # once per data set: prints "store_path"
    python bench/fusion.py ../shared/data/scifact=INDEX [../shared/data/cranfield=INDEX ...] [--model M] [--json]

For each data set, every test query is searched once through the real ``Searcher`` over the kept index
(``Searcher.ranked_lanes`` at ``lane_depth(100)``: each lane's file ranking as the evaluation's 100-result
searches fuse it; candidate search re-ranks more chunks for deeper lanes), the lanes are cached in ``--work``, and
then every fusion in the grid (``findling.engine.search.ranking.Fusion``: reciprocal-rank fusion, the relative (min-max) and
the z-score mix, MaxSim weights 0.2-0.8) is scored from the cache, nDCG@10 and Recall@100, against BM25 and MaxSim alone from
the same searches. The choice printed last has the best mean nDCG@10 among the fusions that are at least as
good as BM25 on every data set (a default must not lose to keywords anywhere); when none is, the one with
the smallest loss.

Peers: BM25 (the store's FTS5 index) and MaxSim alone, from the same lanes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine_summary  # noqa: E402

DEPTH = 100
WEIGHTS = (0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)
WORK = Path("/tmp/findling-bench/fusion")


def lanes_for(dataset: Path, index: Path, *, work: Path, model: str | None = None) -> dict:
    """``{"qrels", "lanes": {qid: {lane: [[doc_id, score], ...]}}}`` for the data set's test queries (cached)."""
    from findling.engine.search.searcher import lane_depth

    from findling.engine import Config, Searcher, Store, load_encoder
    from findling.evaluation.dataset import load_beir
    from findling.evaluation.harness import as_query, doc_id_of

    key = hashlib.sha1(f"{dataset.resolve()}|{index.resolve()}|{index.stat().st_mtime_ns}|{lane_depth(DEPTH)}".encode()).hexdigest()[:12]
    cache = work / f"{dataset.name}-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    data = load_beir(dataset)
    encoder = load_encoder(Config.default(**({"model": model} if model else {})))
    out: dict = {"qrels": {q: dict(r) for q, r in data.qrels.items()}, "lanes": {}}
    with Store(index) as store:
        searcher = Searcher(store, encoder)
        paths = {fid: doc_id_of(Path(p)) for fid, p in store.conn.execute("SELECT id, path FROM files")}
        for n, (qid, text) in enumerate(data.queries.items(), 1):
            lanes = searcher.ranked_lanes(as_query(text), depth=lane_depth(DEPTH))  # what search(k=100) fuses
            out["lanes"][qid] = {name: [[paths[r.file_id], r.score] for r in lane] for name, lane in lanes.items()}
            if n % 50 == 0:
                print(f"  {dataset.name}: {n}/{len(data.queries)} queries", file=sys.stderr)
    work.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


def scores(run: dict, fusion) -> dict[str, float]:
    """nDCG@10 and Recall@100 of one fusion (or one lane: ``fusion`` = "bm25" / "maxsim") over cached lanes."""
    from findling.evaluation.metrics import mean_metrics
    from findling.engine.search.ranking import Ranked, fuse

    ranked = {}
    for qid, lanes in run["lanes"].items():
        if isinstance(fusion, str):
            ranked[qid] = [d for d, _s in lanes.get(fusion, [])][:DEPTH]
            continue
        ids: dict[str, int] = {}
        as_ranked = {name: [Ranked(ids.setdefault(d, len(ids)), 0, s) for d, s in lane] for name, lane in lanes.items()}
        names = {i: d for d, i in ids.items()}
        ranked[qid] = [names[r.file_id] for r in fuse(as_ranked, fusion)][:DEPTH]
    m = mean_metrics(ranked, run["qrels"])
    return {"ndcg@10": m["ndcg@10"], "recall@100": m["recall@100"]}


def grid():
    from findling.engine.search.ranking import Fusion

    for method in ("rrf", "relative", "zscore"):
        for w in WEIGHTS:
            yield Fusion(method=method, weight=w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", nargs="+", metavar="DATASET=INDEX", help="a BEIR folder and its kept eval index")
    parser.add_argument("--work", type=Path, default=WORK, help="folder for the cached lanes")
    parser.add_argument("--model", help="the model the indexes were built with (default: the configured one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    print(machine_summary(), file=sys.stderr)
    runs = {}
    for item in args.sets:
        dataset, _, index = item.partition("=")
        if not index:
            parser.error(f"{item}: write DATASET=INDEX")
        runs[Path(dataset).name] = lanes_for(Path(dataset), Path(index), work=args.work, model=args.model)
    from findling.engine.search.ranking import DEFAULT_FUSION

    table = {name: {lane: scores(run, lane) for lane in ("bm25", "maxsim")} for name, run in runs.items()}
    rows = []
    for f in grid():
        per = {name: scores(run, f) for name, run in runs.items()}
        margin = min(per[n]["ndcg@10"] - table[n]["bm25"]["ndcg@10"] for n in runs)
        mean = sum(p["ndcg@10"] for p in per.values()) / len(per)
        rows.append({"method": f.method, "weight": f.weight, "sets": per, "min_gain_over_bm25": round(margin, 5),
                     "mean_ndcg@10": round(mean, 5), "default": f == DEFAULT_FUSION})
    safe = [r for r in rows if r["min_gain_over_bm25"] >= 0]
    best = max(safe, key=lambda r: r["mean_ndcg@10"]) if safe else max(rows, key=lambda r: r["min_gain_over_bm25"])
    if args.json:
        print(json.dumps({"peers": table, "fusions": rows, "best": best}))
        return 0
    names = list(runs)
    print(f"{'fusion':<16}" + "".join(f"{n:>14}" for n in names) + f"{'min gain':>10}{'mean':>8}")
    for lane in ("bm25", "maxsim"):
        print(f"{lane + ' alone':<16}" + "".join(f"{table[n][lane]['ndcg@10']:>14.4f}" for n in names))
    for r in rows:
        label = f"{r['method']} w={r['weight']:.2f}" + (" *" if r["default"] else "")
        print(f"{label:<16}" + "".join(f"{r['sets'][n]['ndcg@10']:>14.4f}" for n in names)
              + f"{r['min_gain_over_bm25']:>+10.4f}{r['mean_ndcg@10']:>8.4f}")
    print(f"best: {best['method']} w={best['weight']} (mean nDCG@10 {best['mean_ndcg@10']:.4f}, smallest gain over "
          f"BM25 {best['min_gain_over_bm25']:+.4f}); * = the engine's default")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
