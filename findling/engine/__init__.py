"""Findling's engine: everything between the disk and a ranked list. No Qt here.

The app and the CLI use only the names exported below.
"""
from __future__ import annotations

from findling.engine.config import TARGET_MODEL, Config
from findling.engine.encode.encoder import Encoder, ModelInfo, Tokenizer
from findling.engine.errors import (
    ExtractionError,
    FindlingError,
    IndexLocked,
    ModelError,
    ModelMismatch,
    QueryError,
    StoreError,
)
from findling.engine.sources.exclusions import (
    add_patterns,
    check_pattern,
    effective_patterns,
    folder_pattern,
    remove_patterns,
    why_not_indexed,
)
from findling.engine.extract import SUPPORTED_SUFFIXES, is_supported
from findling.engine.extract.images import SUFFIXES as IMAGE_SUFFIXES
from findling.engine.index.indexer import CancelToken, Indexer, Progress
from findling.engine.index.service import (
    CHILD_ARGS,
    Control,
    Event,
    IndexService,
    Job,
    JobKind,
    model_from_json,
    progress_from_json,
)
from findling.engine.search.query import Query, parse_query
from findling.engine.records import (
    ChangeKind,
    Chunk,
    EncodedChunk,
    ExtractedText,
    FileChange,
    FileStatus,
    PageSpan,
    Phase,
    SearchHit,
    TokenMatch,
)
from findling.engine.search.ranking import DEFAULT_FUSION, Fusion
from findling.engine.search.searcher import MODES, Searcher
from findling.engine.store.store import Store
from findling.engine.store.folders import normal_folder
from findling.engine.store.files import FileState
from findling.engine.index.reencode import already_active, chosen_config, reencode_beside, swap_in, switch_model
from findling.engine.sources.watcher import Watcher

__all__ = [
    "TARGET_MODEL", "Config", "Encoder", "ModelInfo", "Tokenizer", "ExtractionError", "FindlingError",
    "IndexLocked", "ModelError", "ModelMismatch", "QueryError", "StoreError", "CancelToken", "Indexer",
    "Progress", "Query", "parse_query", "ChangeKind", "Chunk", "EncodedChunk", "ExtractedText", "FileChange",
    "FileStatus", "Phase", "PageSpan", "SearchHit", "TokenMatch", "MODES", "DEFAULT_FUSION", "Fusion", "Searcher", "FileState", "Store", "normal_folder",
    "load_encoder", "describe_ocr", "IMAGE_SUFFIXES",
    "SUPPORTED_SUFFIXES", "is_supported", "Watcher", "add_patterns", "check_pattern", "effective_patterns",
    "folder_pattern", "remove_patterns", "why_not_indexed", "already_active", "chosen_config", "switch_model",
    "reencode_beside", "swap_in", "CHILD_ARGS", "Control", "Event", "IndexService", "Job", "JobKind", "model_from_json",
    "progress_from_json",
]


def load_encoder(config: Config) -> Encoder:
    """The encoder for ``config`` (model resolution: user choice, local cache, bundled); loads lazily."""
    from findling.engine.encode.resolve import load_encoder as _load

    return _load(config)


def describe_ocr(config: Config) -> str:
    """``OCR: on (engine)`` or ``OCR: off (why)``: whether text in images and scanned PDF pages is recognised."""
    from findling.engine.extract.ocr import describe

    return describe(config)
