"""Storage: bytes per stored token of the index file in each vector format, the nDCG@10 it costs, and the
resident memory of a searcher over it.

    python bench/run.py --only storage [--quick]
    python bench/storage.py [--quick] [--json] [--work DIR] [--probe DIR] [--codec-min-tokens N]

Data: BEIR SciFact (``../shared/data/scifact``: 5,183 records, 300 test queries) as real 48-dim token vectors of
the bundled model, without encoding anything: the frozen backbone's token vectors that ``python -m
findling.training.probe ../shared/data/scifact --work /tmp/probe`` caches (``--probe``, default ``/tmp/probe/scifact``;
computed there first when missing, about 25 minutes on 2 cores)
go through the bundled head (``findling.training.head.from_pylate``), once, into ``--work``. Each record is one chunk
(the probe cuts records at the backbone's 512 positions), its text ``title + "\\n\\n" + text`` as
``findling eval`` stores it.

1. Size. One index file per format, written as the indexer writes (``Store.write_files`` in batches of 256
   files, ``Store.compress_if_due`` after each at ``Config.codec_min_tokens`` or ``--codec-min-tokens``):
   ``fp16`` (choice "fp16": the old format, the peer), ``residual`` (choice "auto": the default) and ``compact``. Bytes per
   token = the file (write-ahead log checkpointed into it) over the stored token vectors; the split by table
   comes from SQLite's ``dbstat``.
2. Quality. nDCG@10 of exact MaxSim over the vectors read back from each file and decoded, against the fp16
   file's; and of candidate search (``findling.engine.search.candidates``, default settings) over the residual file.
3. Memory. A child process loads the bundled model, encodes a query (its resident set size then is the
   baseline: Python, torch, the model), opens a ``Searcher`` on the residual file and runs hybrid searches;
   the growth of its resident set is compared with the file's stored vector bytes, printed on stderr: the
   target (at most 1.2x) is at 10M tokens, measured by ``bench/candidates.py``; at 1.5M the fixed cost of
   the first searches outweighs 27 MB of vectors.

``--quick``: a smoke run on a synthetic set built here, offline, in seconds (``synthetic_set``: 300 records,
their texts SciFact's first ones where the shared data is present, else generated; random token vectors,
queries made of perturbed tokens of their one relevant record): no probe, no encoding; its figures only show
that the module runs.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Result, bench_parser, ratio, run_bench  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
PROBE = Path("/tmp/probe/scifact")
WORK = Path("/tmp/findling-bench")
SMOKE_MIN_TOKENS = 16_384  # the synthetic set is compressed once it holds this many token vectors
FORMATS = (("fp16", "fp16"), ("residual", "auto"), ("compact", "compact"))  # (name, codec choice)


# ------------------------------------------------------------------------------------ real vectors
class RealSet:
    """SciFact texts, their 48-dim token vectors (bundled head), the test queries' vectors and judgements."""

    def __init__(self, texts, offsets, vectors, query_texts, query_offsets, query_vectors, relevant):
        self.texts, self.offsets, self.vectors = texts, offsets, vectors
        self.query_texts, self.query_offsets, self.query_vectors = query_texts, query_offsets, query_vectors
        self.relevant = relevant

    def doc(self, i: int) -> np.ndarray:
        return self.vectors[self.offsets[i]:self.offsets[i + 1]]

    def query(self, i: int) -> np.ndarray:
        return np.asarray(self.query_vectors[self.query_offsets[i]:self.query_offsets[i + 1]], dtype=np.float32)

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])


def real_set(*, probe: Path = PROBE, work: Path = WORK, dataset: Path = SCIFACT, quick: bool = False) -> RealSet:
    """SciFact as 48-dim vectors of the bundled model (projected once into ``work``, then read back)."""
    from findling.engine.encode import bundled
    from findling.training.probe import load_set

    docs, queries, relevant = load_set(dataset)
    digest = hashlib.blake2b("\x1e".join(docs).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    stamp = json.loads((probe / "corpus.json").read_text()) if (probe / "corpus.json").is_file() else {}
    if stamp.get("digest") != digest:
        _backbone_vectors(probe, docs, queries)
        stamp = json.loads((probe / "corpus.json").read_text())
    head = bundled.head_dir()
    key = {"probe": stamp["digest"], "head": bundled._tree_digest(head)}
    work.mkdir(parents=True, exist_ok=True)
    if _read_json(work / "scifact48.json") != key:
        for stale in work.glob("scifact48-*-scores*.npy"):  # scores of the previous head's vectors
            stale.unlink()
        _project(probe, head, work)
        (work / "scifact48.json").write_text(json.dumps(key))
    corpus, qv = np.load(work / "corpus48.npy", mmap_mode="r"), np.load(work / "queries48.npy")
    offsets, q_offsets = np.load(work / "corpus48.offsets.npy"), np.load(work / "queries48.offsets.npy")
    if quick:
        keep_q = list(range(50))
        judged = sorted({d for q in keep_q for d in relevant[q]})
        keep = sorted(set(range(1000)) | set(judged))
        remap = {d: i for i, d in enumerate(keep)}
        lengths = np.diff(offsets)[keep]
        vectors = np.concatenate([corpus[offsets[d]:offsets[d + 1]] for d in keep])
        return RealSet([docs[d] for d in keep], np.concatenate([[0], np.cumsum(lengths)]), vectors,
                       [queries[q] for q in keep_q], q_offsets[:51], qv,
                       [{remap[d]: g for d, g in relevant[q].items()} for q in keep_q])
    return RealSet(docs, offsets, corpus, queries, q_offsets, qv, relevant)


def synthetic_set(*, records: int = 300, queries: int = 40, dim: int = 48, dataset: Path = SCIFACT,
                  seed: int = 0) -> RealSet:
    """A small stand-in for ``real_set``: ``records`` records of 24-320 random unit token vectors (float16) in
    ``dim`` dimensions around 64 shared centres (so that a codec has structure to learn), and ``queries``
    queries, each of 32 tokens drawn from one record (its only relevant one) with noise added. Texts: SciFact's
    first records and queries where ``dataset`` is present, else generated text."""
    rng = np.random.default_rng(seed)
    if (dataset / "corpus.jsonl").is_file():
        from findling.training.probe import load_set

        docs, query_texts, _ = load_set(dataset)
        docs, query_texts = docs[:records], query_texts[:queries]
    else:
        from tests.model_factory import generated_text

        docs = generated_text(paragraphs=records, seed=seed)
        query_texts = [" ".join(t.split()[:8]) for t in generated_text(paragraphs=queries, seed=seed + 1)]
    centres = rng.standard_normal((64, dim)).astype(np.float32)
    lengths = rng.integers(24, 321, size=len(docs))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    vectors = centres[rng.integers(0, len(centres), size=int(offsets[-1]))]
    vectors += 0.6 * rng.standard_normal(vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevant, qv = [], []
    for q in range(len(query_texts)):
        d = int(rng.integers(0, len(docs)))
        rows = vectors[offsets[d] + rng.integers(0, lengths[d], size=32)]
        rows = rows + 0.3 * rng.standard_normal(rows.shape).astype(np.float32)
        qv.append(rows / np.linalg.norm(rows, axis=1, keepdims=True))
        relevant.append({d: 1})
    q_offsets = np.arange(len(qv) + 1) * 32
    return RealSet(list(docs), offsets, vectors.astype(np.float16), list(query_texts), q_offsets,
                   np.concatenate(qv).astype(np.float16), relevant)


def _backbone_vectors(probe: Path, docs: list[str], queries: list[str]) -> None:
    """The bundled backbone's token vectors of SciFact, computed once into ``probe`` as ``python -m findling.training.probe
    ../shared/data/scifact --work PARENT`` caches them (about 25 minutes on 2 cores)."""
    from findling.training.probe import backbone_features

    print(f"computing SciFact's backbone vectors once into {probe} (about 25 minutes on 2 cores) ...",
          file=sys.stderr, flush=True)
    backbone_features(docs, queries, cache=probe, models=probe.parent / "models")


def _project(probe: Path, head_dir: Path, work: Path) -> None:
    from findling.training.features import FeatureSet
    from findling.training.head import from_pylate

    head = from_pylate(head_dir)
    for name in ("queries", "corpus"):
        fs = FeatureSet.load(probe, name)
        print(f"  projecting {name}: {len(fs.vectors):,} backbone vectors through the bundled head", file=sys.stderr)
        np.save(work / f"{name}48.npy", head.project(fs.vectors).astype(np.float16))
        np.save(work / f"{name}48.offsets.npy", fs.offsets)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------- the files
def model_info(model: str | None = None):
    """The identity of ``model`` (default: the one the engine picks, the bundled model here), as an index
    written by it records (no weights are loaded)."""
    from findling.engine import Config
    from findling.engine.encode.resolve import model_info as info_of, resolve_model

    config = Config(data_dir=WORK / "home", **({"model": str(model)} if model else {}))
    return info_of(resolve_model(config), config=config)


def write_index(path: Path, data: RealSet, *, choice: str, info, min_tokens: int | None = None) -> Path:
    """An index file holding ``data``'s records, written in indexer-sized batches under codec ``choice``."""
    from findling.engine import Config
    from findling.engine.records import Chunk, EncodedChunk
    from findling.engine.store.store import Store
    from findling.engine.store.files import FileRecord

    min_tokens = Config().codec_min_tokens if min_tokens is None else min_tokens
    for suffix in ("", "-wal", "-shm", ".lock", ".folders.json"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    folder = Path("/beir")
    with Store(path) as store:
        store.bind_model(info, chunk_settings={"max_chunk_tokens": 480, "overlap": 32})
        store.set_codec_choice(choice)
        store.add_folder(folder)
        batch = []
        for i, text in enumerate(data.texts):
            vec = np.asarray(data.doc(i), dtype=np.float32)
            chunk = Chunk(ordinal=0, text=text, char_start=0, char_end=len(text), token_count=len(vec))
            record = FileRecord(folder / f"{i:06d}", folder, len(text), 0.0, None, "indexed")
            batch.append((record, [EncodedChunk(chunk, vec)]))
            if len(batch) == 256 or i == len(data.texts) - 1:
                store.write_files(batch)
                store.compress_if_due(min_tokens=min_tokens)
                batch = []
        store.checkpoint()
    return path


def breakdown(path: Path) -> dict[str, int]:
    """Bytes of the file by what they hold: vectors, chunk text, the FTS index, free pages, the rest."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        pages = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0] * page_size
    finally:
        conn.close()
    out = {"vectors": 0, "text": 0, "fts": 0, "codec": 0, "other": 0}
    for name, size in pages.items():
        key = ("vectors" if name.startswith("vectors") or name == "sqlite_autoindex_vectors_1" else
               "fts" if name.startswith("chunks_fts") else
               "text" if name in ("chunks", "chunks_file") else
               "codec" if name.startswith("codec") or name == "sqlite_autoindex_codec_1" else "other")
        out[key] += size
    out["free"] = free
    return out


def read_back(path: Path) -> list[np.ndarray]:
    """Every chunk's decoded vectors, in record order (chunk ids follow the order written)."""
    from findling.engine.store.store import Store

    with Store(path) as store:
        ids = store.chunk_ids().tolist()
        vectors = store.read_vectors(ids)
    return [vectors[c] for c in ids]


def ndcg(data: RealSet, docs: list[np.ndarray], *, cache: Path | None = None) -> float:
    """nDCG@10 of exact MaxSim over ``docs``. ``cache``: where the scores of the float16 file are kept between
    runs; they are used only when ``docs`` are bit for bit the projected vectors they were computed from."""
    from findling.training.features import FeatureSet
    from findling.training.metrics import maxsim_matrix, ndcg_at_k

    flat = np.concatenate(docs)
    same = cache is not None and flat.shape == data.vectors.shape and np.array_equal(flat, data.vectors)
    if same and cache.is_file():
        return ndcg_at_k(np.load(cache), data.relevant)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
    scores = maxsim_matrix([data.query(i) for i in range(len(data.relevant))], FeatureSet(flat, offsets))
    if same:
        np.save(cache, scores)
    return ndcg_at_k(scores, data.relevant)


def candidate_ndcg(path: Path, data: RealSet) -> tuple[float, float]:
    """nDCG@10 of candidate search over a compressed file, and its CPU milliseconds per query."""
    from findling.engine.search.candidates import CandidateIndex
    from findling.engine.store.store import Store
    from findling.training.metrics import ndcg_at_k

    with Store(path) as store:
        index = CandidateIndex(store.codec)
        index.refresh(store)
        t0 = time.process_time()
        scores = np.stack([index.search(store, data.query(i), depth=25) for i in range(len(data.relevant))])
        per_query = (time.process_time() - t0) * 1e3 / len(data.relevant)
    return ndcg_at_k(scores, data.relevant), per_query


# ------------------------------------------------------------------------------------------ memory
MEMORY_CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from findling.engine import Config, Searcher, Store, load_encoder
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
queries = json.loads(Path(sys.argv[3]).read_text())
encoder = load_encoder(Config(data_dir=Path(sys.argv[4]), **({"model": sys.argv[5]} if sys.argv[5:] else {})))
encoder.encode_queries(["warm the model up"])
base = rss()
store = Store(Path(sys.argv[2]))
searcher = Searcher(store, encoder)
t0 = time.perf_counter()
searcher.search(queries[0], k=10)
load_s = time.perf_counter() - t0
peak = rss()
for q in queries:
    searcher.search(q, k=10)
    peak = max(peak, rss())
print(json.dumps({"base": base, "serving": rss(), "peak": peak, "vector_bytes": store.vector_bytes(),
                  "tokens": store.token_count(), "index": type(searcher.index).__name__,
                  "index_bytes": searcher.index.nbytes() if hasattr(searcher.index, "nbytes") else None,
                  "first_search_s": load_s}))
"""


def serving_memory(path: Path, queries: list[str], *, work: Path = WORK, model: str | None = None) -> dict:
    """Resident memory of a fresh process serving ``path`` (see the module docstring, step 3)."""
    qfile = work / "memory-queries.json"
    qfile.write_text(json.dumps(queries))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    command = [sys.executable, "-c", MEMORY_CHILD, str(ROOT), str(path), str(qfile), str(work / "home"),
               *([str(model)] if model else [])]
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"the serving-memory process failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_result(name: str, mem: dict) -> Result:
    grown = (mem["serving"] - mem["base"]) / 1e6
    allowed = 1.2 * mem["vector_bytes"] / 1e6
    print(f"  {name}: resident {mem['base'] / 1e6:.0f} MB with the model, {mem['serving'] / 1e6:.0f} MB serving "
          f"(peak {mem['peak'] / 1e6:.0f} MB); stored vectors {mem['vector_bytes'] / 1e6:.1f} MB; search index "
          f"{mem['index']} holds {(mem['index_bytes'] or 0) / 1e6:.1f} MB; first search {mem['first_search_s']:.1f} s",
          file=sys.stderr)
    return Result(name, grown, "MB", "1.2 x stored vector bytes", allowed, ratio(grown, allowed), "<= 1.0x peer",
                  grown <= allowed)


# ------------------------------------------------------------------------------------------- collect
def collect(args) -> list[Result]:
    quick = getattr(args, "quick", False)
    work = Path(getattr(args, "work", None) or WORK)
    work.mkdir(parents=True, exist_ok=True)
    info = model_info(getattr(args, "model", None))
    data = (synthetic_set(dim=info.dim) if quick else
            real_set(probe=Path(getattr(args, "probe", None) or PROBE), work=work))
    print(f"  {len(data.texts):,} records, {data.n_tokens:,} token vectors, {len(data.relevant)} queries",
          file=sys.stderr)
    sizes, quality, files = {}, {}, {}
    for name, choice in FORMATS:
        t0 = time.process_time()
        path = write_index(work / f"scifact-{name}{'-quick' if quick else ''}.sqlite", data, choice=choice, info=info,
                           min_tokens=getattr(args, "codec_min_tokens", None) or (SMOKE_MIN_TOKENS if quick else None))
        files[name] = path
        parts = breakdown(path)
        sizes[name] = path.stat().st_size / data.n_tokens
        cache = work / f"scifact48-fp16-scores{'-quick' if quick else ''}.npy" if name == "fp16" else None
        quality[name] = ndcg(data, read_back(path), cache=cache)
        split = ", ".join(f"{k} {v / data.n_tokens:.1f}" for k, v in parts.items())
        print(f"  {name}: {sizes[name]:.1f} B/token ({split}); nDCG@10 {quality[name]:.4f}; "
              f"{time.process_time() - t0:.0f} CPU s", file=sys.stderr)
    cand, cand_ms = candidate_ndcg(files["residual"], data)
    print(f"  residual + candidate search: nDCG@10 {cand:.4f}, {cand_ms:.1f} CPU ms a query", file=sys.stderr)
    base = quality["fp16"]
    results = [
        Result("index bytes/token, residual (default)", sizes["residual"], "B/token", "fp16 index file",
               sizes["fp16"], ratio(sizes["residual"], sizes["fp16"]), "<= 32 B/token", sizes["residual"] <= 32),
        Result("index bytes/token, compact", sizes["compact"], "B/token", "fp16 index file", sizes["fp16"],
               ratio(sizes["compact"], sizes["fp16"]), "<= 16 B/token", sizes["compact"] <= 16),
    ]
    for name, value, limit in (("residual", quality["residual"], 0.005), ("compact", quality["compact"], 0.01),
                               ("residual + candidates", cand, 0.005)):
        loss = base - value
        results.append(Result(f"nDCG@10 loss, {name}", loss, "nDCG", "fp16 exact MaxSim nDCG@10", base, None,
                              f"<= {limit}", loss <= limit))
    # the target is at 10M tokens (bench/candidates.py); at this size the growth is printed for reference only
    memory_result(f"RSS growth serving {data.n_tokens / 1e6:.2g}M tok, residual",
                  serving_memory(files["residual"], data.query_texts[:20], work=work,
                                 model=getattr(args, "model", None)))
    return results


def add_data_options(parser) -> None:
    """``--work`` and ``--probe``: where the real vectors come from and where the index files go."""
    parser.add_argument("--work", type=Path, default=WORK, help="folder for projected vectors and index files")
    parser.add_argument("--probe", type=Path, default=PROBE, help="the probe's cached backbone vectors of SciFact")


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="a small synthetic set built here, for a smoke run")
    add_data_options(parser)
    parser.add_argument("--codec-min-tokens", type=int,
                        help="token vectors written before the codec is trained (default: Config.codec_min_tokens)")
    return run_bench(parser, collect, argv)


if __name__ == "__main__":
    raise SystemExit(main())
