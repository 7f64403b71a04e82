"""Score heads on a BEIR set in seconds, over cached backbone vectors: for comparing training choices.

    python -m findling.training.probe ../shared/data/scifact --work /tmp/probe --head pca --head work/head.pt
    python -m findling.training.probe ../shared/data/scifact --split train --work /tmp/probe --head work/head.pt

``--split`` names the qrels file the queries come from (default ``test``). Choosing between training settings on
SciFact's ``train`` claims (809 queries over the same corpus, never trained on) leaves its ``test`` split for
the one measurement that is reported.

The corpus and the queries are encoded once by the frozen backbone (framed as the engine frames them, each
record cut at the backbone's document length) and kept in ``--work``; every later run only applies the heads.
Printed per head: MaxSim nDCG@10 and Recall@100, BM25 over the same records (SQLite FTS5, the engine's
tokenizer), the reciprocal-rank fusion of the two at the engine's ``RRF_K`` (``hybrid``) and the engine's
default fusion of the two (``default``: ``findling.engine.search.ranking.fuse`` over each lane's ``lane_depth(100)`` best,
BM25 by its scores). These figures are for choosing between heads; the figures the project reports come
from ``findling eval`` (chunking, the store and the searcher included). Evaluation sets are only ever
measured here, never trained on.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from findling.engine.search.ranking import Ranked, fuse
from findling.engine.search.searcher import lane_depth
from findling.training import features as feats
from findling.training.head import Head, from_pylate, sampled_pca
from findling.training.metrics import maxsim_matrix, ndcg_at_k, recall_at_k
from findling.training.pairs import bm25_rank_scores, bm25_scores
from findling.training.score import _normalise

DEPTH = 100


def load_set(folder: Path, split: str = "test"):
    from findling.evaluation.dataset import load_beir

    data = load_beir(folder, split=split)
    doc_ids = [d.id for d in data.docs]
    bodies = {d.id: d.body for d in data.docs}
    query_ids = [q for q in sorted(data.queries) if data.qrels.get(q)]
    position = {d: i for i, d in enumerate(doc_ids)}
    relevant = [{position[d]: g for d, g in data.qrels[q].items() if d in position and g > 0} for q in query_ids]
    return [bodies[d] for d in doc_ids], [data.queries[q] for q in query_ids], relevant


def rrf(*lanes: np.ndarray, k: int = 60, depth: int = DEPTH) -> np.ndarray:
    fused = np.zeros_like(lanes[0])
    for lane in lanes:
        order = np.argsort(-lane, axis=1, kind="stable")[:, :depth]
        for row in range(len(lane)):
            valid = order[row][lane[row, order[row]] > -1]
            fused[row, valid] += 1.0 / (k + np.arange(len(valid)) + 1)
    return fused


def engine_fusion(maxsim: np.ndarray, bm25: np.ndarray) -> np.ndarray:
    """Scores ``[queries, docs]`` that rank as ``findling.engine.search.ranking.fuse`` (the default fusion) ranks the two lanes
    (``bm25``: BM25 scores, 0 where a document did not match), each cut to the depth a 100-result search
    fetches; a document neither lane returned scores ``-inf``."""
    depth = lane_depth(DEPTH)
    out = np.full(maxsim.shape, -np.inf, dtype=np.float32)
    for row in range(len(maxsim)):
        lanes = {}
        for name, lane in (("maxsim", maxsim[row]), ("keyword", bm25[row])):
            order = np.argsort(-lane, kind="stable")[:depth]
            order = order[lane[order] > -np.inf] if name == "maxsim" else order[lane[order] > 0]
            lanes[name] = [Ranked(int(d), int(d), float(lane[d])) for d in order]
        ranked = fuse(lanes)
        out[row, [r.file_id for r in ranked]] = np.linspace(len(ranked), 1, len(ranked))
    return out


def projector(spec: str, passages: feats.FeatureSet):
    """``raw`` (no head), ``pca`` (the PCA head at 48), a ``head.pt`` file or a PyLate model folder."""
    if spec == "raw":
        return _normalise
    if spec.startswith("pca"):
        dim = int(spec[3:] or 48)
        weight, bias = sampled_pca(passages.vectors, dim)
        return lambda x: _normalise(np.asarray(x, np.float32) @ weight.T + bias)
    path = Path(spec)
    head = Head.load(path) if path.is_file() else from_pylate(path)
    return head.project


def backbone_features(docs: list[str], queries: list[str], *, cache: Path, models: Path,
                      model_dir: Path | None = None, query_name: str = "queries"):
    """The backbone's token vectors of ``queries`` and ``docs`` as ``FeatureSet``s, computed once into ``cache``
    (later calls read them back). ``model_dir``: a PyLate folder; default the bundled model, assembled in
    ``models``."""
    from findling.training.runtime import configure_threads

    configure_threads()
    if model_dir is None:
        from findling.engine.encode import bundled

        model_dir = bundled.assemble(models)
    model = feats.load_backbone_model(model_dir)
    q = feats.cached_features(model, queries, is_query=True, folder=cache, name=query_name)
    p = feats.cached_features(model, docs, is_query=False, folder=cache, name="corpus")
    return q, p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m findling.training.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="folder for the cached backbone vectors")
    parser.add_argument("--head", action="append", default=[], help="raw, pca, pcaN, head.pt or a model folder")
    parser.add_argument("--model", type=Path, help="PyLate model folder of the backbone (default: bundled)")
    parser.add_argument("--split", default="test", help="the qrels split whose queries are scored (default: test)")
    args = parser.parse_args(argv)
    docs, queries, relevant = load_set(args.dataset, args.split)
    name = "queries" if args.split == "test" else f"queries-{args.split}"
    q, p = backbone_features(docs, queries, cache=args.work / args.dataset.name, models=args.work / "models",
                             model_dir=args.model, query_name=name)
    bm25 = bm25_rank_scores(docs, queries, depth=DEPTH)
    keyword = bm25_scores(docs, queries, depth=lane_depth(DEPTH))
    results = {"dataset": args.dataset.name, "split": args.split, "queries": len(queries), "docs": len(docs),
               "bm25": round(ndcg_at_k(bm25, relevant), 4), "heads": {}}
    for spec in args.head or ["raw", "pca"]:
        project = projector(spec, p)
        scores = maxsim_matrix([project(np.asarray(q.text(i))) for i in range(len(q))], p, project=project)
        results["heads"][spec] = {"maxsim": round(ndcg_at_k(scores, relevant), 4),
                                  "recall@100": round(recall_at_k(scores, relevant), 4),
                                  "hybrid": round(ndcg_at_k(rrf(scores, bm25), relevant), 4),
                                  "default": round(ndcg_at_k(engine_fusion(scores, keyword), relevant), 4)}
        print(spec, results["heads"][spec], flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
