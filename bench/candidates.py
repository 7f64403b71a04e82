"""Candidate search at 10M stored tokens: query latency with query encoding, recall@10 against exact MaxSim,
and resident memory.

    python bench/run.py --only candidates [--quick]
    python bench/candidates.py [--quick] [--json] [--work DIR] [--tokens N] [--queries N]
                               [--probe-centroids P] [--candidates C]

The index (cached in ``--work``, rebuilt when missing): SciFact's real 48-dim token vectors of the bundled
model (``bench.storage.real_set``). First its 5,183 records are written as the indexer writes them
(``bench.storage.write_index``, codec choice "auto"), which trains the residual codec on a sample once the
index passes ``Config.codec_min_tokens`` and compresses everything from then on. Then the index is filled
to ``--tokens`` (default 10M) with spliced chunks: a random span of one record followed by a random span of
another (each 40-100% of its record, 480 tokens at most), their codes copied from the records' stored codes
(the bytes encoding those same vectors again would give) and their texts cut in the same proportions.

1. Recall@10: the top 10 chunks of ``Searcher.search(mode="maxsim")`` (candidate search, the default at this
   size) against exact MaxSim over every decoded vector (the same ``Searcher`` with ``candidate_min_tokens``
   above the index size: one float32 matrix, 192 bytes a token), the same query vectors. A returned chunk
   counts when its score reaches the exact 10th score (ties at the cut are not misses).
2. Latency: wall-clock and process-CPU milliseconds per ``search(text, k=10)``, query encoding included, in
   ``hybrid`` (the default mode) and ``maxsim``; peer: the exact search of step 1. Each query runs every
   contender in turn. The targets are the wall-clock p50s (latency is what a user waits); the CPU figures go
   to stderr (a hybrid search runs its two lanes on two threads, so its CPU time is their sum).
3. Memory: ``bench.storage.serving_memory`` on the same file (a fresh process; growth of its resident set
   while serving, against 1.2x the stored vector bytes).

``--quick``: a smoke run on ``bench.storage.synthetic_set`` (built here, offline: no probe, no encoding), filled
to 1M tokens (``--tokens``), 10 queries.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Result, bench_parser, ratio, run_bench  # noqa: E402
from bench.storage import (PROBE, WORK, add_data_options, memory_result, real_set, serving_memory,  # noqa: E402
                           SMOKE_MIN_TOKENS, synthetic_set, write_index)

MAX_SPLICE = 480
BUILD_VERSION = 1


def build(path: Path, data, *, tokens: int, info, seed: int = 0, min_tokens: int | None = None) -> None:
    """The records, then spliced chunks up to ``tokens`` stored token vectors (see the module docstring)."""
    from findling.engine.records import Chunk, EncodedChunk
    from findling.engine.store.store import FileRecord, Store

    t0 = time.process_time()
    if not _copy_records(path.parent / "scifact-residual.sqlite", path, data, info):
        write_index(path, data, choice="auto", info=info, min_tokens=min_tokens)
    rng = np.random.default_rng(seed)
    folder = Path("/beir")
    with Store(path) as store:
        codec = store.codec
        base = store.read_codes(store.chunk_ids().tolist())  # record order
        split = [codec.split(blob, n) for _cid, n, blob in base]
        total = store.token_count()
        print(f"  {total:,} record tokens written ({codec.name}); splicing up to {tokens:,}"
              f" ({time.process_time() - t0:.0f} CPU s)", file=sys.stderr)
        batch, blobs, i = [], [], 0
        while total < tokens:
            a, b = rng.integers(0, len(split), size=2)
            ids, codes, text = [], [], []
            for r in (a, b):
                n = len(split[r][0])
                take = max(1, int(n * rng.uniform(0.4, 1.0)))
                lo = int(rng.integers(0, n - take + 1))
                ids.append(split[r][0][lo:lo + take])
                codes.append(split[r][1][lo:lo + take])
                t = data.texts[r]
                text.append(t[len(t) * lo // n:len(t) * (lo + take) // n])
            ids, codes = np.concatenate(ids)[:MAX_SPLICE], np.concatenate(codes)[:MAX_SPLICE]
            body = " ".join(text)
            n = len(ids)
            chunk = Chunk(ordinal=0, text=body, char_start=0, char_end=len(body), token_count=n)
            record = FileRecord(folder / f"splice-{i:07d}", folder, len(body), 0.0, None, "indexed")
            batch.append((record, [EncodedChunk(chunk, np.zeros((n, 0), dtype=np.float32))]))
            blobs.append(codec.pack(ids, codes))
            total += n
            i += 1
            if len(batch) == 256 or total >= tokens:
                store.write_files(batch, blobs=blobs)
                batch, blobs = [], []
        store.checkpoint()
    print(f"  built {path} ({path.stat().st_size / 1e6:.0f} MB, {total:,} tokens, "
          f"{time.process_time() - t0:.0f} CPU s)", file=sys.stderr)


def _copy_records(source: Path, path: Path, data, info) -> bool:
    """Start from ``bench.storage``'s residual file of the same records when there is one (same bytes as
    writing them again)."""
    import shutil

    from findling.engine.store.codec import RESIDUAL, CodecSpec
    from findling.engine.store.store import Store

    if not source.is_file():
        return False
    with Store(source) as store:
        ok = (store.token_count() == data.n_tokens and store.codec.name == RESIDUAL
              and store.codec.groups == CodecSpec.named(RESIDUAL, info.dim).groups
              and (store.model_identity() or {}).get("fingerprint") == info.fingerprint)
        if ok:
            store.checkpoint()
    if ok:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        shutil.copyfile(source, path)
    return ok


def cached_index(work: Path, data, *, tokens: int, info, synthetic: bool = False) -> Path:
    path = work / f"synthetic-{tokens}{'-smoke' if synthetic else ''}.sqlite"
    stamp = path.with_suffix(".json")
    from dataclasses import asdict

    from findling.engine import Config
    from findling.engine.store.codec import RESIDUAL, CodecSpec

    codec = {"min_tokens": Config().codec_min_tokens, **asdict(CodecSpec.named(RESIDUAL, info.dim))}
    key = {"tokens": tokens, "fingerprint": info.fingerprint, "version": BUILD_VERSION, "records": len(data.texts),
           "codec": codec, "synthetic": synthetic}  # a new codec default rebuilds the file
    try:
        if path.is_file() and json.loads(stamp.read_text()) == key:
            return path
    except (OSError, ValueError):
        pass
    build(path, data, tokens=tokens, info=info, min_tokens=SMOKE_MIN_TOKENS if synthetic else None)
    stamp.write_text(json.dumps(key))
    return path


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - w) * 1e3, (time.process_time() - c) * 1e3


def measure(path: Path, queries: list[str], *, work: Path, settings=None, model: str | None = None) -> dict:
    """Latency of each contender and recall@10 of candidate search, query by query."""
    from findling.engine import Config, Searcher, Store, load_encoder

    encoder = load_encoder(Config(data_dir=work / "home", **({"model": str(model)} if model else {})))
    encoder.encode_queries(["warm the model up"])
    out = {name: {"wall": [], "cpu": []} for name in ("hybrid", "maxsim", "exact maxsim", "encode")}
    recalls = []
    with Store(path) as store:
        n_tokens = store.token_count()
        candidates = Searcher(store, encoder, **({"candidates": settings} if settings else {}))
        exact = Searcher(store, encoder, candidate_min_tokens=n_tokens + 1)
        for s in (candidates, exact):
            _, wall, cpu = timed(lambda: s.search(queries[0], k=10, mode="maxsim"))  # loads its index
            print(f"  {type(s.index).__name__}: first search {wall / 1e3:.1f} s ({cpu / 1e3:.1f} CPU s)",
                  file=sys.stderr)
        for text in queries:
            _, wall, cpu = timed(lambda: encoder.encode_queries([text]))
            out["encode"]["wall"].append(wall)
            out["encode"]["cpu"].append(cpu)
            got, wall, cpu = timed(lambda: candidates.search(text, k=10, mode="maxsim"))
            out["maxsim"]["wall"].append(wall)
            out["maxsim"]["cpu"].append(cpu)
            _, wall, cpu = timed(lambda: candidates.search(text, k=10, mode="hybrid"))
            out["hybrid"]["wall"].append(wall)
            out["hybrid"]["cpu"].append(cpu)
            ref, wall, cpu = timed(lambda: exact.search(text, k=10, mode="maxsim"))
            out["exact maxsim"]["wall"].append(wall)
            out["exact maxsim"]["cpu"].append(cpu)
            cut = ref[min(9, len(ref) - 1)].score - 1e-4
            recalls.append(sum(h.score >= cut for h in got[:10]) / max(1, min(10, len(ref))))
    med = {name: {k: statistics.median(v) for k, v in d.items()} for name, d in out.items()}
    for name, d in med.items():
        print(f"  {name:<13} p50 {d['wall']:8.1f} ms wall, {d['cpu']:8.1f} ms CPU", file=sys.stderr)
    return {"p50": med, "recall": float(np.mean(recalls)), "tokens": n_tokens}


def collect(args) -> list[Result]:
    from bench.storage import model_info

    quick = getattr(args, "quick", False)
    work = Path(getattr(args, "work", None) or WORK)
    tokens = getattr(args, "tokens", None) or (1_000_000 if quick else 10_000_000)
    n_queries = getattr(args, "queries", None) or (10 if quick else 50)
    model = getattr(args, "model", None)
    work.mkdir(parents=True, exist_ok=True)
    info = model_info(model)
    data = synthetic_set(dim=info.dim) if quick else real_set(probe=Path(getattr(args, "probe", None) or PROBE), work=work)
    path = cached_index(work, data, tokens=tokens, info=info, synthetic=quick)
    from findling.engine.search.candidates import CandidateSettings

    default = CandidateSettings()
    settings = CandidateSettings(probe=getattr(args, "probe_centroids", None) or default.probe,
                                 candidates=getattr(args, "candidates", None) or default.candidates)
    m = measure(path, data.query_texts[:n_queries], work=work, settings=settings, model=model)
    size = f"{m['tokens'] / 1e6:.3g}M tok" + ("" if settings == default else
                                              f", probe {settings.probe}, {settings.candidates} candidates")
    p50, exact = m["p50"], m["p50"]["exact maxsim"]
    results = []
    for mode in ("hybrid", "maxsim"):  # latency is the wall clock; CPU time (both lanes of hybrid) is on stderr
        value = p50[mode]["wall"]
        results.append(Result(f"search p50, {mode}{' (default)' if mode == 'hybrid' else ''}, {size}", value, "ms",
                              "exact MaxSim, float32", exact["wall"], ratio(value, exact["wall"]), "<= 100 ms",
                              value <= 100))
    results.append(Result(f"recall@10 vs exact MaxSim, {size}", m["recall"], "", "exact MaxSim", 1.0,
                          m["recall"], ">= 0.99", m["recall"] >= 0.99))
    mem = serving_memory(path, data.query_texts[:20], work=work, model=model)
    results.append(memory_result(f"RSS growth serving {size}", mem))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="a synthetic set built here, 1M tokens, 10 queries: a smoke run")
    add_data_options(parser)
    parser.add_argument("--tokens", type=int, help="stored token vectors of the synthetic index (default 10M)")
    parser.add_argument("--queries", type=int, help="queries timed (default 50)")
    parser.add_argument("--probe-centroids", type=int, help="centroids looked up per query token (default: engine's)")
    parser.add_argument("--candidates", type=int, help="chunks re-ranked exactly per query (default: engine's)")
    return run_bench(parser, collect, argv)


if __name__ == "__main__":
    raise SystemExit(main())
