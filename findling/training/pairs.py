"""Training tuples: a query, its positive passage and hard negatives, from three kinds of source.

* ``jsonl``: query/passage files (``{"query", "passage"}``, optional ``"title"``), e.g. BoolQ or Debian
  package descriptions.
* ``beir``: a BEIR folder's corpus, queries and ``qrels/train.tsv``.
* ``index``: a Findling index of the user's own files, turned into pseudo-queries without any external model
  (``findling.training.pseudo``).

Hard negatives come from BM25 over the pool of passages (SQLite FTS5 with the engine's tokenizer), and
optionally from the current model's MaxSim (``findling.training.score``). Likely false negatives are dropped: passages
whose text equals the positive's, contains it or is contained in it, and passages that are positives of the
same query. A tuple set is a folder with ``passages.jsonl`` (``{"id", "text"}``) and ``tuples.jsonl``
(``{"query", "positive", "negatives": [...], "split"}`` with passage ids, plus ``"scores"`` once scored).
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from findling.engine.errors import QueryError
from findling.engine.search.query import fts_expression, parse_query
from findling.engine.store.fts import KeywordPool


@dataclass
class Pair:
    query: str
    passage: str
    group: str = ""  # pairs of the same group (a file, a package) stay on one side of the held-out split


@dataclass
class TupleSet:
    passages: list[str]
    tuples: list[dict] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        _write_jsonl(folder / "passages.jsonl", ({"id": i, "text": t} for i, t in enumerate(self.passages)))
        _write_jsonl(folder / "tuples.jsonl", self.tuples)

    @classmethod
    def load(cls, folder: Path) -> "TupleSet":
        passages = [row["text"] for row in read_jsonl(folder / "passages.jsonl")]
        return cls(passages, read_jsonl(folder / "tuples.jsonl"))

    def split(self, name: str) -> list[dict]:
        return [t for t in self.tuples if t.get("split", "train") == name]


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def pairs_from_jsonl(path: Path, *, limit: int | None = None, seed: int = 0, min_chars: int = 40) -> list[Pair]:
    """``{"query", "passage"}`` rows (a ``"title"`` is put before the passage); short passages are skipped."""
    rows = [r for r in read_jsonl(path) if r.get("query") and len(r.get("passage") or "") >= min_chars]
    random.Random(seed).shuffle(rows)
    pairs = []
    for r in rows[:limit] if limit else rows:
        passage = f"{r['title']}\n\n{r['passage']}" if r.get("title") else r["passage"]
        pairs.append(Pair(r["query"].strip(), passage.strip(), str(r.get("package") or r.get("title") or "")))
    return pairs


def pairs_from_beir(folder: Path, *, split: str = "train", limit: int | None = None, seed: int = 0) -> list[Pair]:
    corpus = {d["_id"]: (f"{d['title']}\n\n{d['text']}" if d.get("title") else d["text"])
              for d in read_jsonl(folder / "corpus.jsonl")}
    queries = {q["_id"]: q["text"] for q in read_jsonl(folder / "queries.jsonl")}
    pairs = []
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, grade = line.rstrip("\n").split("\t")
            if int(grade) > 0 and qid in queries and did in corpus:
                pairs.append(Pair(queries[qid], corpus[did], qid))
    random.Random(seed).shuffle(pairs)
    return pairs[:limit] if limit else pairs


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def build_tuples(pairs: Sequence[Pair], *, negatives: int = 15, held_out: float = 0.0, seed: int = 0,
                 extra_passages: Sequence[str] = ()) -> TupleSet:
    """One tuple per pair with up to ``negatives`` BM25 negatives from the pool (all passages + extras).

    ``held_out`` sends that share of groups (files, packages) to the ``"test"`` split.
    """
    passages: list[str] = []
    index: dict[str, int] = {}
    for text in [p.passage for p in pairs] + list(extra_passages):
        key = _norm(text)
        if key and key not in index:
            index[key] = len(passages)
            passages.append(text)
    positives_of: dict[str, set[int]] = {}
    for p in pairs:
        positives_of.setdefault(p.query, set()).add(index[_norm(p.passage)])
    groups = sorted({p.group or p.query for p in pairs})
    random.Random(seed).shuffle(groups)
    test_groups = set(groups[: int(round(len(groups) * held_out))])
    test_passages = {index[_norm(p.passage)] for p in pairs if (p.group or p.query) in test_groups}
    bm25 = _Bm25Pool(passages)
    tuples = []
    try:
        for p in pairs:
            pos = index[_norm(p.passage)]
            pos_key = _norm(p.passage)
            held = (p.group or p.query) in test_groups
            found = []
            for pid in bm25.top(p.query, negatives * 3 + 5):
                if pid in positives_of[p.query] or pid in found or (not held and pid in test_passages):
                    continue  # training never sees held-out passages, not even as negatives
                key = _norm(passages[pid])
                if key in pos_key or pos_key in key:  # a copy or a part of the positive: likely relevant
                    continue
                found.append(pid)
                if len(found) == negatives:
                    break
            tuples.append({"query": p.query, "positive": pos, "negatives": found,
                           "split": "test" if held else "train",
                           "group": p.group})
    finally:
        bm25.close()
    return TupleSet(passages, tuples)


def bm25_rank_scores(passages: Sequence[str], queries: Sequence[str], *, depth: int = 100):
    """``[queries, passages]`` scores from BM25 ranks (``depth - rank`` for the top ``depth``, -1 elsewhere)."""
    import numpy as np

    pool = _Bm25Pool(passages)
    try:
        scores = np.full((len(queries), len(passages)), -1.0, dtype=np.float32)
        for row, query in enumerate(queries):
            for rank, pid in enumerate(pool.top(query, depth)):
                scores[row, pid] = depth - rank
    finally:
        pool.close()
    return scores


def bm25_scores(passages: Sequence[str], queries: Sequence[str], *, depth: int = 100):
    """``[queries, passages]`` BM25 scores (FTS5's ``-bm25()``) of each query's ``depth`` best, 0 elsewhere."""
    import numpy as np

    pool = _Bm25Pool(passages)
    try:
        scores = np.zeros((len(queries), len(passages)), dtype=np.float32)
        for row, query in enumerate(queries):
            for pid, value in pool.scored(query, depth):
                scores[row, pid] = value
    finally:
        pool.close()
    return scores


class _Bm25Pool:
    """The pool's passages in the store's in-memory keyword index (``KeywordPool``), for BM25 negatives."""

    def __init__(self, passages: Sequence[str]) -> None:
        self._pool = KeywordPool(passages)

    def top(self, query: str, k: int) -> list[int]:
        return [pid for pid, _score in self.scored(query, k)]

    def scored(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best passages for ``query`` with their BM25 scores (FTS5's ``-bm25()``), best first."""
        try:
            expression = fts_expression(parse_query(re.sub(r"[:\"]", " ", query)))
        except QueryError:
            return []
        if not expression:
            return []
        return self._pool.scored(expression, k)

    def close(self) -> None:
        self._pool.close()
