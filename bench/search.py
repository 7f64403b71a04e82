"""Search speed: exact MaxSim against a plain matrix product and PyTorch's obvious MaxSim, and query latency
while an encoder keeps the cores busy.

    python bench/run.py --only search [--quick]
    python bench/search.py [--quick] [--json]

1. Kernel, on one set of arrays (random unit vectors, 48 dims, chunks of 16-512 tokens, 1M tokens, a 32-token
   query), every rep running each contender once in turn, medians compared:
   * floor: the plain product ``tokens @ q.T`` ``[1M, 48] x [48, 32]``, the fastest of numpy and torch
     (default threads), each into a new array and into one allocated beforehand (``out=``: no page faults
     for a fresh 128 MB output): no chunk maxima at all, so no MaxSim can beat it by more than cache effects;
   * peer: PyTorch's straightforward MaxSim, the faster of ``torch.mm`` then ``scatter_reduce(amax)`` by
     chunk id, and chunks padded to ``[C, 512, 48]`` then einsum, mask, max (padding built outside the clock);
   * ours: ``findling.engine.search.maxsim.maxsim_scores`` as the searcher calls it. All three are checked to agree.
2. Latency: a real ``Searcher`` (hybrid mode, the default) over a real index file holding 1M synthetic token
   vectors in the format the engine gives an index of that size (``Store.compress_if_due`` at the default
   ``Config.codec_min_tokens``: residual codes, searched through candidates), the bundled model encoding each
   query, 0.2 s between queries. p95 over the query list (20 queries, 5 rounds) idle and while a real
   ``Indexer`` (own ``Store`` and encoder instance on a thread, the app's thread count, priority and read-ahead,
   as the app's indexing worker runs it) indexes ``../shared/data/folders/python-docs`` into that same index:
   extraction, encoding and writes, so the searcher also takes in new chunks. Idle and busy take turns in
   blocks of 10 queries (the indexer held between busy blocks), so the machine's drift falls on both; stderr
   also gives the indexer's CPU time during the busy blocks against as long again with no search. The indexer
   is stopped when the searches are done.

``--quick`` shrinks the arrays to 100k tokens and the query list, for a smoke run; where the shared data is
absent, the indexing load is a folder of generated text files (``bench.indexing.generated_sample``).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.common import Result, bench_parser, ratio, run_bench  # noqa: E402

DIM, QUERY_TOKENS, MAX_CHUNK = 48, 32, 512
LOAD_FOLDER = Path(ROOT).parent / "shared" / "data" / "folders" / "python-docs"
QUERIES = [
    "read and write csv files", "R data import export", "how to install packages", "regular expression syntax",
    "unit testing with mocks", "plot a histogram", "linear regression model", "open a file for writing",
    "asynchronous tasks and event loop", "sort a list of dictionaries", "date and time formatting",
    "command line arguments parsing", "memory management and garbage collection", "matrix multiplication",
    "string formatting with f-strings", "logging configuration", "socket server example", "factor levels",
    "json encoder decoder", "thread pool executor",
]


def corpus(n_tokens: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random unit vectors float32 ``[N, 48]``, chunk ``starts`` and ``lengths`` (16-512 tokens) ``[C]``."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(16, MAX_CHUNK + 1, size=n_tokens // 16 + 1)
    lengths = lengths[np.cumsum(lengths) <= n_tokens]
    tokens = rng.standard_normal((int(lengths.sum()), DIM), dtype=np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return tokens, starts, lengths


def unit_queries(n: int, *, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q = rng.standard_normal((QUERY_TOKENS, DIM), dtype=np.float32)
        out.append(q / np.linalg.norm(q, axis=1, keepdims=True))
    return out


# --------------------------------------------------------------------------------------------- kernel
def contenders(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> dict:
    """name -> ``f(q) -> scores [C]`` for the floor (two), PyTorch's MaxSim (two) and ours."""
    import torch

    from findling.engine.search.maxsim import maxsim_scores
    from findling.engine.threads import default_threads

    t_tokens = torch.from_numpy(tokens)
    chunk_of_row = torch.from_numpy(np.repeat(np.arange(len(starts)), lengths))[:, None]
    padded = torch.zeros((len(starts), MAX_CHUNK, DIM))
    pad_mask = torch.zeros((len(starts), MAX_CHUNK), dtype=torch.bool)
    for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        padded[i, :n], pad_mask[i, :n] = t_tokens[s : s + n], True
    threads = default_threads()

    def torch_scatter(q):
        sims = torch.mm(t_tokens, torch.from_numpy(q).T)  # [N, m]
        best = torch.full((len(starts), q.shape[0]), -torch.inf)
        best.scatter_reduce_(0, chunk_of_row.expand(-1, q.shape[0]), sims, "amax")
        return best.sum(1).numpy()

    def torch_padded(q):
        sims = torch.einsum("md,cld->clm", torch.from_numpy(q), padded)  # [C, L, m]
        return sims.masked_fill(~pad_mask[..., None], -torch.inf).amax(1).sum(1).numpy()

    out_np = np.empty((len(tokens), QUERY_TOKENS), dtype=np.float32)  # the product's output, allocated once: a
    out_t = torch.from_numpy(out_np)  # fresh 128 MB per call spends as long again taking in new pages

    return {
        "floor numpy": lambda q: tokens @ q.T,
        "floor torch": lambda q: torch.mm(t_tokens, torch.from_numpy(q).T),
        "floor numpy, out=": lambda q: np.matmul(tokens, q.T, out=out_np),
        "floor torch, out=": lambda q: torch.mm(t_tokens, torch.from_numpy(q).T, out=out_t),
        "torch mm+scatter_reduce": torch_scatter,
        "torch padded einsum": torch_padded,
        "ours": lambda q: maxsim_scores(q, tokens, starts, threads=threads),
    }


def time_interleaved(fns: dict, queries: list[np.ndarray], reps: int) -> dict[str, list[float]]:
    """Milliseconds per call of each function, the functions taking turns within every rep."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for f in fns.values():
        f(queries[0])  # warm: page in, thread pools up
    for r in range(reps):
        q = queries[r % len(queries)]
        for name, f in fns.items():
            t0 = time.perf_counter()
            f(q)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def check_agree(fns: dict, q: np.ndarray) -> None:
    ours = fns["ours"](q)
    for name in ("torch mm+scatter_reduce", "torch padded einsum"):
        np.testing.assert_allclose(fns[name](q), ours, rtol=1e-4, atol=1e-4, err_msg=name)


def kernel_results(n_tokens: int, reps: int) -> list[Result]:
    tokens, starts, lengths = corpus(n_tokens)
    fns = contenders(tokens, starts, lengths)
    queries = unit_queries(4)
    check_agree(fns, queries[0])
    med = {name: statistics.median(t) for name, t in time_interleaved(fns, queries, reps).items()}
    for name, ms in med.items():
        print(f"  {name:<26} median {ms:8.1f} ms", file=sys.stderr)
    floor_name = min((name for name in med if name.startswith("floor")), key=med.get)
    peer_name = min(("torch mm+scatter_reduce", "torch padded einsum"), key=med.get)
    size = f"{len(tokens) / 1e6:.2g}M tok"
    ours = med["ours"]
    return [
        Result(f"exact MaxSim {size} vs matmul floor", ours, "ms", f"{floor_name} [32,48]x[N,48]", med[floor_name],
               ratio(ours, med[floor_name]), "<= 2x peer", ours <= 2 * med[floor_name]),
        Result(f"exact MaxSim {size} vs PyTorch MaxSim", ours, "ms", peer_name, med[peer_name],
               ratio(ours, med[peer_name]), "<= 1x peer", ours <= med[peer_name]),
    ]


# -------------------------------------------------------------------------------------------- latency
def build_index(home: Path, n_tokens: int, info, *, codec_min_tokens: int | None = None) -> Path:
    """An index file of synthetic chunks (short texts, random unit vectors) for ``info``'s model, compressed as
    the indexer would compress it when it holds ``codec_min_tokens`` or more (None: left float16)."""
    from findling.engine.records import Chunk, EncodedChunk
    from findling.engine.store.store import Store
    from findling.engine.store.files import FileRecord

    tokens, starts, lengths = corpus(n_tokens, seed=7)
    db = home / "index.sqlite"
    with Store(db) as store:
        store.bind_model(info, chunk_settings={"max_chunk_tokens": 480})
        folder = home / "docs"
        store.add_folder(folder)
        batch = []
        for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
            text = f"synthetic chunk {i} about topic {i % 97}"
            chunk = Chunk(ordinal=0, text=text, char_start=0, char_end=len(text), token_count=n)
            record = FileRecord(path=folder / f"f{i}.txt", folder=folder, size=n, mtime=0.0, hash=None,
                                status="indexed")
            batch.append((record, [EncodedChunk(chunk, tokens[s : s + n])]))
            if len(batch) == 500:
                store.write_files(batch)
                batch = []
        store.write_files(batch)
        if codec_min_tokens is not None:
            store.compress_if_due(min_tokens=codec_min_tokens)
    return db


class ChildIndexer:
    """The app's indexer as the app runs it: ``findling index --watch --progress json --control --background``
    in a child process (lowest CPU and I/O priority), over the index being searched, fed a sync of
    ``folder``; ``pause``/``resume`` go to its standard input as the window sends them."""

    def __init__(self, config, folder: Path) -> None:
        import json
        import os
        import subprocess

        from findling.engine import CHILD_ARGS, Control, Event, Job, JobKind

        self._json, self._control, self._progress = json, Control, Event.PROGRESS.value
        env = {**os.environ, "FINDLING_CONFIG": config.to_json(), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, *CHILD_ARGS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=env, cwd=Path(__file__).resolve().parent.parent)
        self.encoding = threading.Event()  # set once it has encoded tokens (or ended)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.send(Job(JobKind.SYNC).to_json())

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                event = self._json.loads(line)
            except ValueError:
                continue
            if event.get("event") == self._progress and event["progress"].get("tokens_encoded"):
                self.encoding.set()
        self.encoding.set()

    def send(self, command: dict) -> None:
        try:
            self.process.stdin.write(self._json.dumps(command) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def pause(self) -> None:
        self.send({"control": self._control.PAUSE.value})

    def resume(self) -> None:
        self.send({"control": self._control.RESUME.value})

    def cpu(self) -> float:
        """CPU seconds the child has used so far (all its threads)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        import os

        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def share(self, window: float = 0.2) -> float:
        """Cores the child kept busy over the next ``window`` seconds."""
        c0, t0 = self.cpu(), time.perf_counter()
        time.sleep(window)
        return (self.cpu() - c0) / (time.perf_counter() - t0)

    def close(self) -> None:
        self.send({"control": self._control.STOP.value})
        try:
            self.process.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.process.wait(60)
        except Exception:  # noqa: BLE001 - a child that does not stop is killed
            self.process.kill()
            self.process.wait()


def settle(child: ChildIndexer, busy: bool, *, limit: float = 60.0) -> bool:
    """Wait until the indexer is working (more than one core busy; at least 0.9 of one on a machine with
    fewer than 2) or quiet (under a tenth of one), as ``busy`` says; False if that did not happen within
    ``limit`` seconds (it finished, say)."""
    import os

    working = 1.0 if (os.cpu_count() or 1) >= 2 else 0.9
    end = time.monotonic() + limit
    while time.monotonic() < end:
        share = child.share()
        if (share > working) if busy else (share < 0.1):
            return True
    return False


def latencies(searcher, queries: list[str], *, gap: float = 0.0) -> list[float]:
    """Milliseconds per search, ``gap`` seconds apart (a person reading the results before the next query)."""
    out = []
    for i, text in enumerate(queries):
        if i and gap:
            time.sleep(gap)
        t0 = time.perf_counter()
        searcher.search(text, k=10, mode="hybrid")
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def latency_results(n_tokens: int, rounds: int, *, block: int = 10, gap: float = 0.2, model: str | None = None,
                    quick: bool = False) -> list[Result]:
    """p95 of the same searches idle and while indexing, measured in alternating blocks of ``block`` queries
    ``gap`` seconds apart (``rounds`` passes over the query list each way): the indexer is held
    until it is quiet for each idle block and let go until it keeps the cores
    busy for each busy block, so a drift in the machine's speed (this VM's swings by 20-40% from minute to
    minute) falls on both sides. An untimed search before each idle block takes in the chunks written
    meanwhile: idle is the steady state, and taking in new chunks counts against the busy side only. After
    each busy block the indexer runs on alone as long again, so the CPU time it gets with searches and
    without them can be compared. The indexer is the app's: a child process at the lowest priority
    (``ChildIndexer``), held with ``pause`` and let go with ``resume`` on its standard input."""
    from findling.engine import Config, Searcher, Store, load_encoder

    load_folder = LOAD_FOLDER
    if not load_folder.is_dir() and not quick:
        raise SystemExit(f"the indexing load needs {LOAD_FOLDER} (this project's shared data)")
    settle_limit = 5.0 if quick else 60.0
    with tempfile.TemporaryDirectory() as tmp:
        if not load_folder.is_dir():
            from bench.indexing import generated_sample

            print(f"  {LOAD_FOLDER} is missing: the indexing load is 200 generated text files", file=sys.stderr)
            load_folder = generated_sample(Path(tmp) / "load", files=200)
        config = Config(data_dir=Path(tmp), **({"model": str(model)} if model else {}))
        encoder = load_encoder(config)
        db = build_index(Path(tmp), n_tokens, encoder.info, codec_min_tokens=config.codec_min_tokens)
        assert db == config.db_path, (db, config.db_path)
        with Store(db) as store:
            store.add_folder(load_folder)
            print(f"  index: {store.token_count():,} token vectors, {store.codec.name}", file=sys.stderr)
            searcher = Searcher(store, encoder)
            queries = QUERIES * rounds
            latencies(searcher, QUERIES[:3])  # warm: model loaded, index read
            child = ChildIndexer(config, load_folder)
            child.encoding.wait(600)
            idle: list[float] = []
            busy: list[float] = []
            short = 0
            used = {"with searches": 0.0, "alone": 0.0}  # the indexer's CPU seconds
            try:
                for b0 in range(0, len(queries), block):
                    part = queries[b0 : b0 + block]
                    child.pause()
                    settle(child, busy=False, limit=settle_limit)
                    latencies(searcher, part[:1])  # untimed: takes in what the last busy block wrote
                    idle += latencies(searcher, part, gap=gap)
                    child.resume()
                    short += not settle(child, busy=True, limit=settle_limit)
                    before, t0 = child.cpu(), time.perf_counter()
                    busy += latencies(searcher, part, gap=gap)
                    middle = child.cpu()
                    time.sleep(time.perf_counter() - t0)
                    used["with searches"] += middle - before
                    used["alone"] += child.cpu() - middle
            finally:
                child.close()
    if short:
        print(f"  warning: {short} busy block(s) began before the indexer kept the cores busy (it finished?)",
              file=sys.stderr)
    p95_idle, p95_busy = np.percentile(idle, 95), np.percentile(busy, 95)
    share = used["with searches"] / max(used["alone"], 1e-9)
    print(f"  search idle p50 {np.median(idle):.1f} p95 {p95_idle:.1f} ms; while indexing p50 "
          f"{np.median(busy):.1f} p95 {p95_busy:.1f} ms ({len(queries)} queries each, {gap:g} s apart, in blocks "
          f"of {block} taking turns); the indexer's CPU time during the busy blocks {used['with searches']:.1f} s, "
          f"in as long again with no search {used['alone']:.1f} s ({share:.2f}x)", file=sys.stderr)
    size = f"{n_tokens / 1e6:.2g}M tok"
    return [Result(f"search p95 {size}, while indexing", float(p95_busy), "ms", "same searches, idle",
                   float(p95_idle), ratio(p95_busy, p95_idle), "<= 1.3x peer", p95_busy <= 1.3 * p95_idle)]


def collect(args) -> list[Result]:
    quick = getattr(args, "quick", False)
    n_tokens = 100_000 if quick else 1_000_000
    results = kernel_results(n_tokens, reps=5 if quick else 15)
    results += latency_results(n_tokens, rounds=1 if quick else 5, model=getattr(args, "model", None), quick=quick)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="small sizes, for a smoke run")
    return run_bench(parser, collect, argv)


if __name__ == "__main__":
    raise SystemExit(main())
