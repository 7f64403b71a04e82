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
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np

from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder
from findling.engine.errors import DatasetError, FindlingError, ModelError
from findling.engine.index.indexer import Indexer
from findling.engine.search.query import MAX_QUERY_CHARS, Query
from findling.engine.records import ExtractedText
from findling.engine.store import codec as codecs
from findling.engine.search.searcher import DEFAULT_FUSION, FUSION_METHODS, Fusion, Searcher
from findling.evaluation.dense_baseline import DenseBaseline, rank as dense_rank
from findling.engine.store.store import FileRecord, Store

log = logging.getLogger(__name__)

EVAL_MODES: tuple[str, ...] = ("bm25", "maxsim", "dense", "dense_lane", "hybrid")
SEARCH_DEPTH = 100  # for Recall@100
LATENCY_K = 10  # results a user sees; latency is timed at this k
BEIR_ROOT = Path("/beir")

Qrels = Mapping[str, Mapping[str, int]]  # query id -> doc id -> grade
Progress = Callable[[int, int], None]  # (documents done, documents in all)


@dataclass(frozen=True)
class Doc:
    """One corpus record."""

    id: str
    title: str
    text: str

    @property
    def body(self) -> str:
        return f"{self.title}\n\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class BeirSet:
    """A corpus, its queries (file order) and graded relevance judgements."""

    name: str
    docs: tuple[Doc, ...]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


# ------------------------------------------------------------------ loading
def load_beir(folder: Path | str, *, split: str = "test") -> BeirSet:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``; keep queries with a relevant doc."""
    folder = Path(folder)
    paths = beir_files(folder, split=split)
    docs: dict[str, Doc] = {}
    for row in _jsonl(paths[0]):
        doc_id = str(row["_id"])
        docs.setdefault(doc_id, Doc(doc_id, row.get("title") or "", row.get("text") or ""))
    qrels = read_qrels(paths[2])
    queries = {str(r["_id"]): r.get("text") or "" for r in _jsonl(paths[1])}
    queries = {q: t for q, t in queries.items() if any(g > 0 for g in qrels.get(q, {}).values())}
    return BeirSet(folder.name, tuple(docs.values()), queries, {q: qrels[q] for q in queries})


def beir_files(folder: Path, *, split: str = "test") -> list[Path]:
    """The corpus, queries and qrels files of a BEIR folder; ``DatasetError`` names the first one missing."""
    paths = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"]
    for p in paths:
        if not p.is_file():
            raise DatasetError(f"{p} is missing; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/{split}.tsv")
    return paths


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path} line {n} is not JSON ({exc})") from exc


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id<TAB>corpus-id<TAB>score`` lines (the header line is skipped) -> nested dict."""
    qrels: dict[str, dict[str, int]] = {}
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts or (n == 1 and parts[0] == "query-id"):
                continue
            try:
                qrels.setdefault(parts[0], {})[parts[1]] = int(float(parts[2]))
            except (IndexError, ValueError) as exc:
                raise DatasetError(f"{path} line {n}: expected 'query-id corpus-id score', got {line!r}") from exc
    return qrels


def subset(data: BeirSet, *, max_docs: int | None = None, max_queries: int | None = None) -> BeirSet:
    """The first ``max_queries`` queries; their relevant docs plus the corpus in order up to ``max_docs``."""
    queries = dict(list(data.queries.items())[:max_queries]) if max_queries is not None else data.queries
    qrels = {q: data.qrels[q] for q in queries}
    docs = data.docs
    if max_docs is not None:
        keep = {d for rel in qrels.values() for d, g in rel.items() if g > 0}
        for d in docs:
            if len(keep) >= max_docs:
                break
            keep.add(d.id)
        docs = tuple(d for d in docs if d.id in keep)
    return BeirSet(data.name, docs, queries, qrels)


# ------------------------------------------------------------------ metrics
def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k: gain = grade, discount log2(rank + 1); the ideal ranking uses every judged grade."""
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents (grade > 0) found in the first ``k``."""
    relevant = {d for d, g in qrels.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within the first ``k``, else 0."""
    for i, d in enumerate(ranked[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def mean_metrics(runs: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 averaged over the queries of ``runs``."""
    rows = [(ndcg_at_k(r, qrels[q], 10), recall_at_k(r, qrels[q], 100), mrr_at_k(r, qrels[q], 10))
            for q, r in runs.items()]
    means = np.mean(rows, axis=0) if rows else np.zeros(3)
    return {"ndcg@10": round(float(means[0]), 5), "recall@100": round(float(means[1]), 5),
            "mrr@10": round(float(means[2]), 5)}


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

    chunk_tokens: int
    n_docs: int = 0
    n_chunks: int = 0
    n_tokens: int = 0
    encode_s: float = 0.0
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


# -------------------------------------------------------------------- run
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


def load_model(config: Config) -> Encoder:
    """The configured encoder, named on stderr (as the CLI does)."""
    from findling.engine.encode.resolve import load_announced

    return load_announced(config)


def progress_printer(verb: str) -> Progress | None:
    """A progress line on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        print(f"\r{verb} {done}/{total} docs", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return show


def run_standalone(add_arguments: Callable[[argparse.ArgumentParser], None], argv: list[str] | None,
                   *, prog: str) -> int:
    """``python -m findling.evaluation.beir`` / ``findling.evaluation.passkey``: parse, build the config, run, report errors."""
    parser = argparse.ArgumentParser(prog=prog)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = Config.default(**({"model": args.model} if args.model else {}))
    try:
        return args.func(args, config) or 0
    except FindlingError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run_standalone(_eval_arguments, None, prog="python -m findling.evaluation.beir"))
