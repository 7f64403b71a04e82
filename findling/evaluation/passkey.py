"""Passkey, LongEmbed's synthetic long-document task: find the one document that holds a person's pass key.

    findling passkey --lengths 256,512,1024 --json

For each length L (in tokens) there are ``docs`` documents and ``queries`` queries, generated here from a
seeded RNG and never stored. A document repeats the filler "The grass is green. The sky is blue. ..." up to
about 0.75·L words and holds, at a random sentence boundary, the line
"{Name}'s pass key is {NNNNN}. Remember it. {NNNNN} is the pass key for {Name}." with a unique full name and
a unique 5-digit key. The query is "what is the pass key for {Name}?"; its one relevant document is the one
with that name. The metric is nDCG@1 per length, then the mean over the lengths.

Each length is its own corpus, indexed and searched by the engine's real path (``findling.evaluation.beir``). A
document longer than the chunk limit (the model's ``max_tokens`` or the configured chunk size) is chunked
like any other document and ranked by its best chunk: that is what the app does, and what is reported.
All three modes are measured; ``maxsim`` is the one to compare with LongEmbed's published numbers
(mxbai-edge-colbert-v0-17m 0.858, all-MiniLM-L6-v2 0.233), since those are pure embedding retrieval.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from findling.engine.config import Config
from findling.engine.encode.encoder import Encoder
from findling.evaluation.command_line import load_model, progress_printer, run_standalone
from findling.evaluation.dataset import BeirSet, Doc
from findling.evaluation.harness import Progress, index_documents, rank_queries, temporary_store
from findling.evaluation.metrics import ndcg_at_k
from findling.engine.search.searcher import Searcher

EVAL_MODES: tuple[str, ...] = ("bm25", "maxsim", "dense_lane", "hybrid")
SEARCH_MODES = {"bm25": "bm25", "maxsim": "maxsim", "dense_lane": "dense", "hybrid": "hybrid"}  # the searcher's

LENGTHS: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
FILLER_SENTENCES: tuple[str, ...] = tuple(s.strip() + "." for s in FILLER.split(".") if s.strip())
WORDS_PER_TOKEN = 0.75

FIRST_NAMES = (
    "Adam", "Alice", "Amara", "Andrei", "Anna", "Bruno", "Carla", "Chen", "Clara", "Daniel", "Dmitri", "Elena",
    "Emil", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jonas", "Julia", "Kenji", "Lara",
    "Leon", "Lucia", "Marco", "Maya", "Mehmet", "Nadia", "Noah", "Olga", "Oscar", "Paula", "Priya", "Rafael",
    "Rosa", "Samir", "Sofia", "Tariq", "Thea", "Tomas", "Ursula", "Victor", "Wanda", "Xavier", "Yara", "Yusuf",
    "Zoe", "Zoran",
)
LAST_NAMES = (
    "Abbott", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ibrahim", "Jensen",
    "Kowalski", "Larsen", "Moreau", "Nakamura", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt",
    "Tanaka", "Ulrich", "Varga", "Weber", "Xu", "Yilmaz", "Zimmermann", "Horvat", "Lindqvist", "Moreno",
    "Nilsson", "Oliveira", "Park", "Romano", "Silva", "Takahashi", "Vogel", "Walsh", "Young", "Keller",
)

MAX_DOCS = len(FIRST_NAMES) * len(LAST_NAMES)  # unique full names available


def key_sentence(name: str, key: str) -> str:
    """The line that holds the pass key (with its surrounding newlines)."""
    return f"\n{name}'s pass key is {key}. Remember it. {key} is the pass key for {name}.\n"


def query_text(name: str) -> str:
    return f"what is the pass key for {name}?"


def filler_sentences(n_words: int) -> list[str]:
    """Filler sentences in order, repeated, stopping before ``n_words`` would be exceeded (at least one)."""
    out: list[str] = []
    words = 0
    while True:
        s = FILLER_SENTENCES[len(out) % len(FILLER_SENTENCES)]
        if out and words + len(s.split()) > n_words:
            return out
        out.append(s)
        words += len(s.split())


def generate(length: int, *, n_docs: int = 100, n_queries: int = 50, seed: int = 0) -> BeirSet:
    """One length's corpus, queries and qrels, the same for the same arguments."""
    pairs = [f"{f} {l}" for f in FIRST_NAMES for l in LAST_NAMES]
    if not 0 < n_queries <= n_docs <= MAX_DOCS:
        raise ValueError(f"need 0 < queries <= docs <= {MAX_DOCS}, got {n_queries} queries and {n_docs} docs")
    rng = random.Random(f"passkey-{seed}-{length}")
    names = rng.sample(pairs, n_docs)
    keys = [str(k) for k in rng.sample(range(10000, 100000), n_docs)]
    docs = []
    for i, (name, key) in enumerate(zip(names, keys)):
        line = key_sentence(name, key)
        sentences = filler_sentences(round(WORDS_PER_TOKEN * length) - len(line.split()))
        at = rng.randint(0, len(sentences))
        text = " ".join(sentences[:at]) + line + " ".join(sentences[at:])
        docs.append(Doc(id=f"pk{length}-{i:03d}", title="", text=text))
    chosen = sorted(rng.sample(range(n_docs), n_queries))
    queries = {f"q{i:03d}": query_text(names[i]) for i in chosen}
    qrels = {f"q{i:03d}": {docs[i].id: 1} for i in chosen}
    return BeirSet(f"passkey-{length}", tuple(docs), queries, qrels)


@dataclass(frozen=True)
class LengthResult:
    """nDCG@1 per mode at one length, and how the documents were cut."""

    length: int
    ndcg: dict[str, float]
    tokens_per_doc: float
    chunks_per_doc: float


@dataclass(frozen=True)
class PasskeyReport:
    model: str
    n_docs: int
    n_queries: int
    seed: int
    chunk_tokens: int
    results: tuple[LengthResult, ...]
    elapsed_s: float

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes measured (``dense_lane`` only for a model that pools dense vectors)."""
        return tuple(self.results[0].ndcg) if self.results else ()

    def mean(self) -> dict[str, float]:
        n = max(len(self.results), 1)
        return {m: round(sum(r.ndcg[m] for r in self.results) / n, 5) for m in self.modes}

    def to_json(self) -> dict:
        ndcg = {m: {str(r.length): r.ndcg[m] for r in self.results} for m in self.modes}
        mean = self.mean()
        for m in self.modes:
            ndcg[m]["mean"] = mean[m]
        return {"task": "passkey", "model": self.model, "n_docs": self.n_docs, "n_queries": self.n_queries,
                "seed": self.seed, "chunk_tokens": self.chunk_tokens, "lengths": [r.length for r in self.results],
                "ndcg@1": ndcg, "mean": mean,
                "tokens_per_doc": {str(r.length): r.tokens_per_doc for r in self.results},
                "chunks_per_doc": {str(r.length): r.chunks_per_doc for r in self.results},
                "elapsed_s": self.elapsed_s}


def evaluate_length(length: int, data: BeirSet, encoder: Encoder, *, config: Config,
                    on_progress: Progress | None = None) -> tuple[LengthResult, int]:
    """Index one length's corpus in a temporary store and score its queries; also returns the chunk limit."""
    with temporary_store(prefix="findling-passkey-") as store:
        build = index_documents(store, encoder, data.docs, config=config, on_progress=on_progress)
        searcher = Searcher(store, encoder)
        ndcg = {}
        for mode in (m for m in EVAL_MODES if m != "dense_lane" or encoder.info.dense_dim):
            runs, _ = rank_queries(searcher, data.queries, mode=SEARCH_MODES[mode], k=10)
            scores = [ndcg_at_k(ranked, data.qrels[q], 1) for q, ranked in runs.items()]
            ndcg[mode] = round(sum(scores) / max(len(scores), 1), 5)
    n = max(build.n_docs, 1)
    return LengthResult(length, ndcg, round(build.n_tokens / n, 1), round(build.n_chunks / n, 2)), build.chunk_tokens


def evaluate_passkey(encoder: Encoder, *, config: Config, lengths: Sequence[int] = LENGTHS, n_docs: int = 100,
                     n_queries: int = 50, seed: int = 0, on_progress: Progress | None = None) -> PasskeyReport:
    """Passkey nDCG@1 at each length (each its own corpus), through the engine's real path."""
    start = time.perf_counter()
    results = []
    limit = 0
    for length in lengths:
        data = generate(length, n_docs=n_docs, n_queries=n_queries, seed=seed)
        result, limit = evaluate_length(length, data, encoder, config=config, on_progress=on_progress)
        results.append(result)
    return PasskeyReport(encoder.info.name, n_docs, n_queries, seed, limit, tuple(results),
                         round(time.perf_counter() - start, 2))


def format_report(r: PasskeyReport) -> str:
    lines = [(f"passkey: {r.n_docs} docs, {r.n_queries} queries per length; model {r.model}; "
              f"chunks of at most {r.chunk_tokens} tokens"),
             f"{'length':>7}{'tokens/doc':>12}{'chunks/doc':>12}" + "".join(f"{m:>11}" for m in r.modes)]
    for x in r.results:
        lines.append(f"{x.length:>7}{x.tokens_per_doc:>12.0f}{x.chunks_per_doc:>12.2f}"
                     + "".join(f"{x.ndcg[m]:>11.3f}" for m in r.modes))
    mean = r.mean()
    lines.append(f"{'mean':>7}{'':>24}" + "".join(f"{mean[m]:>11.3f}" for m in r.modes))
    lines.append(f"nDCG@1; compare maxsim with LongEmbed's published numbers; {r.elapsed_s} s in all")
    return "\n".join(lines)


# -------------------------------------------------------------------- CLI
def parse_lengths(text: str) -> tuple[int, ...]:
    """``"256,512,1k"`` -> ``(256, 512, 1024)``."""
    try:
        out = tuple(int(p[:-1]) * 1024 if p.lower().endswith("k") else int(p)
                    for p in (s.strip() for s in text.split(",")) if p)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of lengths such as 256,512,1k") from None
    if not out or min(out) < 16:
        raise argparse.ArgumentTypeError("lengths must be at least 16 tokens")
    return out


def add_passkey_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``findling passkey`` on the CLI's subparsers."""
    p = subparsers.add_parser("passkey", help="LongEmbed's Passkey task: long-document retrieval, nDCG@1")
    _passkey_arguments(p)
    return p


def _passkey_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model folder or hub name in the local cache (env FINDLING_MODEL)")
    p.add_argument("--lengths", type=parse_lengths, default=LENGTHS,
                   help="document lengths in tokens, comma-separated (default 256,...,32768)")
    p.add_argument("--docs", type=int, default=100, help="documents per length (default 100)")
    p.add_argument("--queries", type=int, default=50, help="queries per length (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=passkey_command)


def passkey_command(args, config: Config) -> int:
    """``findling passkey``: signature ``func(args, config) -> int`` as the CLI expects."""
    if not 0 < args.queries <= args.docs <= MAX_DOCS:
        print(f"findling: need 1 <= --queries <= --docs <= {MAX_DOCS}", file=sys.stderr)
        return 2
    encoder = load_model(config)
    report = evaluate_passkey(encoder, config=config, lengths=args.lengths, n_docs=args.docs,
                              n_queries=args.queries, seed=args.seed, on_progress=progress_printer("encoded"))
    print(json.dumps(report.to_json()) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(run_standalone(_passkey_arguments, None, prog="python -m findling.evaluation.passkey"))
