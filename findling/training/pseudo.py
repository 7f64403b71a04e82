"""Pseudo-queries from a person's own documents, made without any external model.

Three kinds, each pairing a short text taken from a document with the passage it describes:

* heading -> its section (reST/Markdown headings, or a short title-like line followed by prose),
* a sentence -> the passage around it,
* a document's first line -> the text that follows.

Markup is stripped from queries (reST roles, backquotes, ``#``). Documents come either as ``(group, text)``
pairs, for instance extracted files, or from a Findling index (``from_store``: the chunk texts of each file,
joined in order). The group (the file) keeps all of a file's pairs on one side of a held-out split.
"""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Iterable, Iterator

from findling.training.pairs import Pair

_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>_:.])\1{2,}\s*$")
_ROLE = re.compile(r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_MARKUP = re.compile(r"[`*_#|\[\]]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
MAX_PASSAGE_CHARS = 1500


def clean(text: str) -> str:
    text = _ROLE.sub(r"\1", text)
    text = re.sub(r"\.\. [\w:-]+::", " ", text)
    text = _MARKUP.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip(" :.-")


def _sections(lines: list[str]) -> Iterator[tuple[str, int, int]]:
    """(heading, first body line, end line) for reST underlined and Markdown ``#`` headings."""
    heads = []
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and line.strip() and _UNDERLINE.match(lines[i + 1]) \
                and len(lines[i + 1].strip()) >= len(line.strip()) - 2 and not _UNDERLINE.match(line):
            heads.append((i, i + 2))
        elif re.match(r"^#{1,6}\s+\S", line):
            heads.append((i, i + 1))
    for n, (line_no, body) in enumerate(heads):
        end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        yield lines[line_no].lstrip("#").strip(), body, end


def pairs_from_text(group: str, text: str, *, rng: random.Random, sentences: int = 2) -> list[Pair]:
    lines = text.splitlines()
    pairs: list[Pair] = []
    for heading, body, end in _sections(lines):
        query = clean(heading)
        passage = "\n".join(lines[body:end]).strip()
        if 2 <= len(query.split()) <= 16 and len(passage) >= 200:
            pairs.append(Pair(query, passage[:MAX_PASSAGE_CHARS], group))
    flat = re.sub(r"\s+", " ", text)
    candidates = [s for s in _SENTENCE.split(flat) if 8 <= len(s.split()) <= 30 and not _UNDERLINE.search(s)]
    for sentence in rng.sample(candidates, min(sentences, len(candidates))):
        at = flat.find(sentence)
        start = max(0, at - MAX_PASSAGE_CHARS // 2)
        passage = flat[start:start + MAX_PASSAGE_CHARS]
        query = clean(sentence)
        if len(passage) >= 300 and len(query.split()) >= 6:
            pairs.append(Pair(query, passage, group))
    first = next((clean(l) for l in lines if len(clean(l).split()) >= 3), "")
    rest = flat[flat.find(first[:20]) + len(first):] if first else ""
    if first and len(rest) >= 300 and len(first.split()) <= 20:
        pairs.append(Pair(first, rest[:MAX_PASSAGE_CHARS].strip(), group))
    return pairs


def pairs_from_documents(documents: Iterable[tuple[str, str]], *, seed: int = 0, sentences: int = 2,
                         per_document: int | None = 12) -> list[Pair]:
    rng = random.Random(seed)
    out = []
    for group, text in documents:
        pairs = pairs_from_text(group, text, rng=rng, sentences=sentences)
        if per_document and len(pairs) > per_document:
            pairs = rng.sample(pairs, per_document)
        out.extend(pairs)
    return out


def documents_from_folder(folder: Path, *, config=None) -> Iterator[tuple[str, str]]:
    """Extracted text of every indexable file in ``folder`` (the engine's extractors and excludes)."""
    from findling.engine.config import Config
    from findling.engine.errors import FindlingError
    from findling.engine.extract import extract
    from findling.engine.sources.walk import iter_files

    config = config or Config()
    for entry in iter_files(Path(folder), patterns=config.exclude_patterns, max_file_bytes=config.max_file_bytes):
        try:
            doc = extract(entry.path, config=config)
        except FindlingError:
            continue
        if doc.text.strip():
            yield str(entry.path), doc.text


def documents_from_store(store, *, folder: Path | None = None) -> Iterator[tuple[str, str]]:
    """Each indexed file's chunk texts joined in order (overlaps between chunks are kept once)."""
    by_file: dict[int, list] = {}
    rows = store.chunk_rows([int(i) for i in store.chunk_ids()])
    for row in rows.values():
        if folder is None or Path(row.path).is_relative_to(folder):
            by_file.setdefault(row.file_id, []).append(row)
    for chunks in by_file.values():
        chunks.sort(key=lambda r: r.ordinal)
        text, end = "", 0
        for r in chunks:
            text += r.text[max(0, end - r.char_start):] if r.char_start < end else r.text
            end = max(end, r.char_end)
        yield str(chunks[0].path), text
