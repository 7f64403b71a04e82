"""Retrieval evaluation on a BEIR-format data set, through the engine's real path.

    findling eval ../shared/data/scifact --max-queries 50 --json

The corpus is chunked (model tokenizer, the indexer's chunk limit), encoded in large batches, written with
``Store.write_files`` into a temporary index and searched with ``Searcher`` in every mode; only extraction is
skipped (a record becomes ``title + "\n\n" + text``, stored as ``/beir/<percent-encoded doc id>``). Metrics,
by hand: nDCG@10 (gain = grade, log2 discount, ideal from all qrels of the query), Recall@100, MRR@10, over
the queries with at least one relevant document. Latency: hybrid search with query encoding, at k=10. Bytes
per token: the index file, WAL folded in, over the stored token vectors.

Modes: ``bm25``, ``maxsim`` and ``hybrid`` (the default ranking) are the searcher's; ``dense`` is the baseline
of ``findling.evaluation.dense_baseline`` (all-MiniLM-L6-v2, one vector per record, exact cosine), run
whatever the model; ``dense_lane`` is the searcher's dense lane alone (per-chunk pooled vectors), present when
the model pools them.

This module runs the modes, measures and reports, and registers ``findling eval``; its parts live beside it:
``dataset`` reads BEIR folders, ``harness`` indexes and searches a corpus through the engine, ``metrics``
scores rankings, ``command_line`` holds what the evaluation commands share.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder
from findling.engine.errors import DatasetError, ModelError
from findling.engine.search.ranking import DEFAULT_FUSION, FUSION_METHODS, Fusion
from findling.engine.search.searcher import Searcher
from findling.engine.store import codec as codecs
from findling.evaluation.command_line import load_model, progress_printer, run_standalone
from findling.evaluation.dataset import BeirSet, beir_files, load_beir, subset
from findling.evaluation.dense_baseline import DenseBaseline, rank as dense_rank
from findling.evaluation.harness import (SEARCH_DEPTH, Progress, as_query, index_documents, rank_queries,
                                         reused_store, settled_size, stored_build, temporary_store)
from findling.evaluation.metrics import mean_metrics

log = logging.getLogger(__name__)

EVAL_MODES: tuple[str, ...] = ("bm25", "maxsim", "dense", "dense_lane", "hybrid")
LATENCY_K = 10  # results a user sees; latency is timed at this k


@dataclass(frozen=True)
class EvalReport:
    """Everything ``findling eval`` measured; ``to_json()`` is what ``--json`` prints."""

    dataset: str
    model: str
    modes: dict[str, dict[str, float]]
    encode_tokens_per_s: float
    query_ms_p50: float
    query_ms_p95: float
    bytes_per_token: float
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "model": self.model, "modes": self.modes,
                "encode_tokens_per_s": self.encode_tokens_per_s, "query_ms_p50": self.query_ms_p50,
                "query_ms_p95": self.query_ms_p95, "bytes_per_token": self.bytes_per_token, **self.extra}


def evaluate_beir(folder: Path | str, encoder: Encoder, *, config: Config, split: str = "test",
                  max_docs: int | None = None, max_queries: int | None = None, keep: bool = False,
                  codec: str | None = None, index: Path | str | None = None, fusion: Fusion | None = None,
                  on_progress: Progress | None = None, baseline: DenseBaseline | None = None,
                  codec_seed: int = 0) -> EvalReport:
    """Index the (sub)corpus into a temporary store, search every query in every mode, measure.

    ``codec``: the vector format asked for (``findling index --codec``; default ``auto``, as a user's index).
    ``index``: an index kept by an earlier run (``keep``) of the same corpus and model, searched instead of
    building one (nothing is encoded, so the encode speed is not measured); with ``codec`` its vectors are
    converted to that format first, in place (its codec trained with ``codec_seed``). ``fusion``: the hybrid
    mode's fusion (default: the engine's). ``baseline``: what the ``dense`` mode encodes with (default: the
    backbone in float32 on ``config.threads``).
    """
    start = time.perf_counter()
    data = subset(load_beir(folder, split=split), max_docs=max_docs, max_queries=max_queries)
    if index is not None:
        store_cm = reused_store(Path(index), codec=codec, seed=codec_seed)
    else:
        store_cm = temporary_store(keep=keep)
    with store_cm as store:
        if index is None:
            if codec:
                store.set_codec_choice(codec)
            build = index_documents(store, encoder, data.docs, config=config, on_progress=on_progress)
        else:
            build = stored_build(store, config=config)
        searcher = Searcher(store, encoder, fusion=fusion)
        baseline = baseline or DenseBaseline(threads=config.threads)
        try:
            modes, latency = search_all(searcher, data)
            try:
                modes["dense"] = mean_metrics(dense_runs(baseline, data, cache=_baseline_cache(store.path)),
                                              data.qrels)
            except ModelError as exc:  # the backbone's wheel is missing: the other modes still count
                log.warning("no dense baseline: %s", exc)
        finally:
            searcher.close()  # its keyword lane's own connection too: the size below is read after the last close
        stats = store.stats()
        nbytes = settled_size(store)
    vectors = stats["vectors"]
    p50, p95 = _percentiles(latency[LATENCY_K])
    p50_deep, p95_deep = _percentiles(latency[SEARCH_DEPTH])
    used = fusion or DEFAULT_FUSION
    extra = {"split": split, "n_docs": build.n_docs, "n_queries": len(data.queries), "n_chunks": build.n_chunks,
             "n_tokens": build.n_tokens, "encoded_tokens": build.encoded_tokens, "chunk_tokens": build.chunk_tokens,
             "store_bytes": nbytes,
             "stored_vectors": vectors, "vector_format": stats["codec"], "vector_bytes": stats["vector_bytes"],
             "dense_bytes": stats["dense_bytes"],
             "dense_bytes_per_token": round(stats["dense_bytes"] / vectors, 2) if vectors else 0.0,
             "precision": getattr(encoder, "precision", "fp32"),
             "fusion": {"method": used.method, "weight": used.weight, "dense": used.dense, "decay": used.decay,
                        "keyword_decay": used.keyword_decay, "rrf_k": used.rrf_k},
             "dense_dim": encoder.info.dense_dim, "dense_baseline_precision": baseline.precision,
             "query_k": LATENCY_K, "query_ms_p50_k100": p50_deep,
             "query_ms_p95_k100": p95_deep, "elapsed_s": round(time.perf_counter() - start, 2),
             "store_path": str(store.path) if keep or index is not None else None,
             "reused_index": index is not None}
    modes = {m: modes[m] for m in EVAL_MODES if m in modes}
    return EvalReport(
        dataset=data.name, model=encoder.info.name, modes=modes,
        encode_tokens_per_s=round(build.encoded_tokens / build.encode_s, 1) if build.encode_s > 0 else 0.0,
        query_ms_p50=p50, query_ms_p95=p95,
        bytes_per_token=round(nbytes / vectors, 2) if vectors else 0.0, extra=extra)


def search_all(searcher: Searcher, data: BeirSet) -> tuple[dict[str, dict[str, float]], dict[int, list[float]]]:
    """Metrics per mode at depth 100, and hybrid search seconds at k=10 (what a user waits for: alignment and
    snippets included) and at k=100 (ranking only, as the metrics are taken)."""
    if data.queries:  # warm-up (loads the token matrix) so latency measures searches only
        searcher.search(as_query(next(iter(data.queries.values()))), k=SEARCH_DEPTH, mode="hybrid")
    modes, latency = {}, {}
    searched = ["bm25", "maxsim", "hybrid"] + (["dense"] if searcher.encoder.info.dense_dim else [])
    for mode in searched:
        runs, seconds = rank_queries(searcher, data.queries, mode=mode, k=SEARCH_DEPTH, explain=False)
        if mode == "dense":
            mode = "dense_lane"
        modes[mode] = mean_metrics(runs, data.qrels)
        if mode == "hybrid":
            latency[SEARCH_DEPTH] = seconds
    latency[LATENCY_K] = rank_queries(searcher, data.queries, mode="hybrid", k=LATENCY_K)[1]
    return modes, latency


def dense_runs(baseline: DenseBaseline, data: BeirSet, *, cache: Path | None = None,
               k: int = SEARCH_DEPTH) -> dict[str, list[str]]:
    """The ``dense`` baseline's ranking of every query of ``data`` (``findling.evaluation.dense_baseline``)."""
    ids = [d.id for d in data.docs]
    docs = baseline.document_vectors(ids, [d.body for d in data.docs], cache=cache)
    qids = list(data.queries)
    queries = dict(zip(qids, baseline.encode([as_query(data.queries[q]).text for q in qids])))
    return dense_rank(ids, docs, queries, k=k)


def _baseline_cache(index_path: Path) -> Path:
    """Where the dense baseline's document vectors are kept: beside the evaluation's index."""
    return index_path.with_name(index_path.name + ".dense-baseline.npz")


def _percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    ms = np.asarray(seconds or [0.0]) * 1000
    return round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 95)), 2)


def format_report(r: EvalReport) -> str:
    """The human-readable table."""
    x = r.extra
    lines = [(f"{r.dataset} ({x.get('split', 'test')}): {x.get('n_docs')} docs, {x.get('n_chunks')} chunks, "
              f"{x.get('n_tokens', 0):,} tokens, {x.get('n_queries')} queries; model {r.model}"),
             f"{'mode':<12}{'nDCG@10':>10}{'Recall@100':>12}{'MRR@10':>10}"]
    for mode, m in r.modes.items():
        lines.append(f"{mode:<12}{m['ndcg@10']:>10.4f}{m['recall@100']:>12.4f}{m['mrr@10']:>10.4f}")
    speed = "encode not measured (reused index)" if x.get("reused_index") else f"encode {r.encode_tokens_per_s:,.0f} tokens/s"
    lines.append(f"{speed} ({x.get('precision', 'fp32')}); vectors {x.get('vector_format', 'fp16')}; hybrid query (k={x.get('query_k')}) "
                 f"p50 {r.query_ms_p50:.1f} ms, p95 {r.query_ms_p95:.1f} ms; index {r.bytes_per_token:.1f} bytes/token "
                 f"({x.get('store_bytes', 0) / 1e6:.1f} MB); {x.get('elapsed_s')} s in all")
    if x.get("store_path"):
        lines.append(f"index kept at {x['store_path']}")
    return "\n".join(lines)


# -------------------------------------------------------------------- CLI
def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``findling eval`` on the CLI's subparsers."""
    p = subparsers.add_parser("eval", help="measure retrieval quality and speed on a BEIR-format data set")
    _eval_arguments(p)
    return p


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="DATASET_DIR", help="folder with corpus.jsonl, queries.jsonl, qrels/")
    p.add_argument("--model", help="model folder or hub name in the local cache (env FINDLING_MODEL)")
    p.add_argument("--split", default="test", help="qrels file to use (default test)")
    p.add_argument("--max-docs", type=int, help="index at most this many docs (plus every relevant one)")
    p.add_argument("--max-queries", type=int, help="evaluate only the first N queries")
    p.add_argument("--chunk-tokens", type=int, help="chunk size in tokens (default: the engine's default)")
    p.add_argument("--keep", action="store_true", help="keep the temporary index and print where it is")
    p.add_argument("--codec", choices=codecs.CHOICES,
                   help="vector format of the index (default auto: float16, then residual once big enough)")
    p.add_argument("--index", metavar="PATH",
                   help="search an index kept by an earlier --keep run of the same corpus and model instead of "
                        "building one (with --codec: its vectors are converted to that format first, in place)")
    p.add_argument("--fusion", choices=FUSION_METHODS, help=f"hybrid fusion (default {DEFAULT_FUSION.method})")
    p.add_argument("--fusion-weight", type=float,
                   help=f"MaxSim's share against BM25 in hybrid fusion, 0-1 (default {DEFAULT_FUSION.weight})")
    p.add_argument("--fusion-dense", type=float,
                   help=f"the dense lane's share in hybrid fusion, 0-1 (default {DEFAULT_FUSION.dense})")
    p.add_argument("--fusion-decay", type=float,
                   help=f"weight of a file's 2nd best chunk (3rd: squared), 0-1 (default {DEFAULT_FUSION.decay})")
    p.add_argument("--fusion-keyword-decay", type=float,
                   help=f"the same for the keyword lane (default {DEFAULT_FUSION.keyword_decay})")
    p.add_argument("--codec-seed", type=int, default=0,
                   help="seed of the compressed format's training, with --index and --codec (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=eval_command)


def eval_command(args, config: Config) -> int:
    """``findling eval``: signature ``func(args, config) -> int`` as the CLI expects."""
    beir_files(Path(args.dataset), split=args.split)  # a wrong folder fails before the model loads
    if getattr(args, "chunk_tokens", None):
        config = replace(config, max_chunk_tokens=args.chunk_tokens)
    encoder = load_model(config)
    fusion = None
    given = {name: getattr(args, f"fusion_{name}", None) for name in ("weight", "dense", "decay", "keyword_decay")}
    if getattr(args, "fusion", None) or any(v is not None for v in given.values()):
        try:
            fusion = replace(DEFAULT_FUSION, method=args.fusion or DEFAULT_FUSION.method,
                             **{k: v for k, v in given.items() if v is not None})
        except ValueError as exc:
            raise DatasetError(str(exc)) from None
    report = evaluate_beir(args.dataset, encoder, config=config, split=args.split, max_docs=args.max_docs,
                           max_queries=args.max_queries, keep=args.keep, codec=getattr(args, "codec", None),
                           index=getattr(args, "index", None), fusion=fusion,
                           on_progress=progress_printer("encoded"), codec_seed=getattr(args, "codec_seed", 0))
    print(json.dumps(report.to_json(), ensure_ascii=False) if args.json else format_report(report))
    return 0



if __name__ == "__main__":
    sys.exit(run_standalone(_eval_arguments, None, prog="python -m findling.evaluation.beir"))
