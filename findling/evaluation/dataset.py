"""BEIR-format data sets: a corpus, its queries and graded relevance judgements, read from a folder.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv`` (``query-id<TAB>corpus-id<TAB>score``, an optional header line). A missing file or a
malformed line is a ``DatasetError`` naming the file (and the line). Only queries with at least one relevant
document (grade > 0) are kept, in file order; a document id seen twice keeps its first record.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from findling.engine.errors import DatasetError


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

