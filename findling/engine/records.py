"""Typed, frozen records that flow between the pipeline stages.

watch -> reconcile -> extract -> chunk -> encode -> store -> search -> present

Each arrow carries one of these records; stages never pass bare dicts or tuples.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class FileStatus(enum.StrEnum):
    """What the index holds for a file (``files.status``); compares equal to its stored string."""

    INDEXED = "indexed"  # text and vectors stored
    EMPTY = "empty"  # read, but no text to index
    FAILED = "failed"  # could not be read; ``reason`` says why
    SKIPPED = "skipped"  # not read on purpose (too large, not a regular file, ...); ``reason`` says why
    STALE = "stale"  # vectors dropped for a re-encode; read again by the next sync


class Phase(enum.StrEnum):
    """Where an indexing job stands (``Progress.phase``); compares equal to its string in progress JSON."""

    SCANNING = "scanning"
    INDEXING = "indexing"
    REENCODING = "re-encoding"  # a model switch encodes the stored text beside the index
    SWAPPING = "swapping"  # the re-encoded index replaces the old one
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ChangeKind(enum.Enum):
    """What happened to a file on disk."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED = "moved"


@dataclass(frozen=True)
class FileChange:
    """One change seen by the watcher or by the start-up reconcile."""

    kind: ChangeKind
    path: Path
    old_path: Path | None = None  # set for MOVED


PAGE_UNITS: dict[str, str] = {
    **dict.fromkeys((".pptx", ".pptm", ".odp"), "slide"),
    **dict.fromkeys((".xlsx", ".xlsm", ".ods"), "sheet"),
    ".ipynb": "cell",
    ".epub": "section",
    **dict.fromkeys((".mbox", ".eml", ".msg"), "message"),
}
"""Lower-case suffix -> what ``PageSpan.number`` counts in files of that kind; any other suffix: ``"page"``."""

SEPARATE_PAGE_KINDS: frozenset[str] = frozenset({"pptx", "odp", "xlsx", "ods", "notebook", "mail"})
"""``ExtractedText.kind`` values whose pages are separate units (a slide, a sheet, a notebook cell, a message or
attachment): the chunker never lets a chunk run across one of their page starts, so a hit's page is the one
its text came from."""


def page_unit(suffix: str) -> str:
    """What a page number counts in a file with ``suffix`` (``".pptx"``): ``"page"``, ``"slide"``,
    ``"sheet"``, ``"cell"``, ``"section"`` or ``"message"``."""
    return PAGE_UNITS.get(suffix.lower(), "page")


@dataclass(frozen=True)
class PageSpan:
    """A page (PDF), section (EPUB), slide, sheet or notebook cell of extracted text: characters
    ``[start, end)``; ``page_unit`` says which one a file's numbers count."""

    number: int  # 1-based page, section, slide, sheet or cell number
    start: int
    end: int
    label: str = ""  # section title where the format has one
    ocr: bool = False  # the text was recognised from the page's image (OCR), not read from the file


@dataclass(frozen=True)
class ExtractedText:
    """Plain text pulled out of one file, with where its pages or sections begin."""

    path: Path
    text: str
    title: str = ""
    pages: tuple[PageSpan, ...] = ()  # empty for formats without pages
    kind: str = "text"  # "text", "pdf", "html", "docx", "odt", "epub", "source", "mail", ...
    warnings: tuple[str, ...] = ()  # recoverable problems (a page that failed to parse, ...)
    # named values a filter can match, such as a mail's ("from", "Ann <ann@example.org>"); each pair once, a
    # name may repeat (a mailbox has one "from" per sender); names are lower-case
    fields: tuple[tuple[str, str], ...] = ()

    def page_at(self, offset: int) -> int | None:
        """Page number that contains character ``offset``, or None for page-less formats."""
        for span in self.pages:
            if span.start <= offset < span.end:
                return span.number
        if self.pages and offset >= self.pages[-1].start:
            return self.pages[-1].number
        return None


@dataclass(frozen=True)
class Chunk:
    """A token-bounded slice of an ``ExtractedText``: characters ``[char_start, char_end)``."""

    ordinal: int
    text: str
    char_start: int
    char_end: int
    token_count: int
    page: int | None = None
    ocr: bool = False  # some of the text was recognised by OCR (a scanned page), not read from the file


@dataclass(frozen=True, eq=False)
class EncodedChunk:
    """A chunk with its token vectors: ``vectors`` is float32 ``[n_tokens, dim]``."""

    chunk: Chunk
    vectors: np.ndarray


@dataclass(frozen=True)
class TokenMatch:
    """How one query token was matched inside a hit (MaxSim alignment).

    ``query_token`` is the query token's text; ``doc_start``/``doc_end`` are the character span of the best
    matching document token inside the chunk text (-1 when it is a marker token such as [CLS]);
    ``similarity`` is the dot product of the two vectors, i.e. this token's contribution to the score.
    """

    query_token: str
    doc_start: int
    doc_end: int
    similarity: float
    doc_token: str = ""


@dataclass(frozen=True)
class SearchHit:
    """One ranked file: its best chunk, score, page, snippet and alignment."""

    path: Path
    score: float
    chunk_id: int
    chunk_ordinal: int
    page: int | None
    snippet: str
    chunk_text: str = ""
    char_start: int = 0
    char_end: int = 0
    mtime: float = 0.0
    size: int = 0
    alignment: tuple[TokenMatch, ...] = field(default=())
    lanes: tuple[str, ...] = ()  # which rankers found it: "maxsim", "bm25"
    ocr: bool = False  # the chunk's text was (partly) recognised by OCR

    @property
    def page_label(self) -> str:
        """Where in the file the hit is, as the result list shows it: ``"p. 3"``, ``"slide 12"``,
        ``"sheet 2"``, ``"cell 7"``, ``"section 4"``; ``""`` for files without pages."""
        if not self.page:
            return ""
        unit = page_unit(self.path.suffix)
        return f"p. {self.page}" if unit == "page" else f"{unit} {self.page}"


@dataclass(frozen=True)
class ModelInfo:
    """Which model produced a set of vectors and where it came from."""

    name: str  # e.g. "mixedbread-ai/mxbai-edge-colbert-v0-17m"
    source: str  # "user", "hf-cache", "bundled", "test"
    path: str  # folder the weights were loaded from
    fingerprint: str  # hash of the weight files: vectors of two fingerprints never mix
    dim: int
    max_tokens: int  # longest document the model can encode, in tokens (markers included)
    note: str = ""  # shown to the user, e.g. "bundled fallback: the target model is not in the cache"
    dense_dim: int = 0  # size of a text's pooled (dense) vector; 0: the model declares no dense pooling
