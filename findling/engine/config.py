"""Findling's settings: one frozen dataclass with documented defaults.

Paths come from platformdirs. Nothing here does work at import time; ``Config.default()`` reads the
environment when called. Override any field with ``dataclasses.replace``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".*",  # hidden files and folders (.git, .cache, .venv, ...)
    "node_modules",
    "__pycache__",
    "venv",
    "env",
    "site-packages",
    "*.egg-info",
    "build",
    "dist",
    "target",
    "*~",
    "*.tmp",
    "*.swp",
    "~$*",  # Office lock files
)

TARGET_MODEL = "mixedbread-ai/mxbai-edge-colbert-v0-17m"


def _data_dir() -> Path:
    env = os.environ.get("FINDLING_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("findling", appauthor=False))


@dataclass(frozen=True)
class Config:
    """Everything the engine needs to know, with the defaults a new user gets."""

    data_dir: Path = field(default_factory=_data_dir)
    """Where the index, logs and the assembled bundled model live (never inside a watched folder)."""

    model: str | None = None
    """A model path or hub name given by the user; ``None`` means: target model from the local cache,
    then the bundled model. ``FINDLING_MODEL`` in the environment sets it too."""

    max_chunk_tokens: int = 480
    """Upper bound of a chunk in model tokens, capped at what the model can encode (32768 at most). Long files
    are scored over several chunks, so the bound trades a chunk's focus against the count of chunks to score
    (the evaluation runs in docs/quality.md are made with this default)."""

    chunk_overlap_tokens: int = 32
    """Tokens repeated at the start of the next chunk so a sentence cut at a boundary is found whole."""

    max_file_bytes: int = 64 * 1024 * 1024
    """Files larger than this are skipped with a recorded reason."""

    max_pdf_pages: int = 5000
    """PDF pages beyond this are not read (the file is indexed up to there, with a warning)."""

    max_text_chars: int = 20_000_000
    """Extracted text beyond this many characters is cut (with a warning)."""

    exclude_patterns: tuple[str, ...] = DEFAULT_EXCLUDES
    """Glob patterns matched against each path component; a match skips the file or whole folder."""

    encode_batch_tokens: int = 8192
    """Token budget of one encoder batch; chunks of similar length are batched together."""

    indexing_nice: int = 19
    """CPU priority (Unix niceness, 0-19) of a background indexer process (the app's child indexer,
    ``findling index --watch --background``): a search on the same cores is served first, and an idle machine
    still gives indexing every core. Its I/O runs in the idle class where the platform has one. 0 leaves the
    priority as it is (``findling.engine.index.priority``)."""

    read_ahead_files: int = 64
    """Files read (hashed, extracted, chunked) on a second thread while the encoder works on earlier ones, at
    most this many and about ``8 * encode_batch_tokens`` tokens ahead; 0 reads each file in line."""

    threads: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    """Torch threads for encoding."""

    encode_workers: int = 2
    """Document batches encoded at once, each on ``threads // encode_workers`` torch threads of its own (capped at
    ``threads``; 1: every batch on all ``threads``). On 2 cores two single-threaded workers share no team of
    threads, so no operation waits for the other core to finish its part, nor a batch for a core that another
    program took for a moment (see ``findling.engine.encode.pylate_encoder``)."""

    encoder_precision: str = "auto"
    """Arithmetic of the encoder's backbone: "auto" (bf16 where the CPU computes it natively and the model keeps
    its per-token cosine, else fp32),
    "fp32" (PyLate's own output, the reference), "int8" or "bf16"; ``FINDLING_PRECISION`` sets it. Lossy
    choices are held to a per-token cosine of at least ``direct_encoder.MIN_COSINE`` against fp32 at load."""

    codec_min_tokens: int = 524_288
    """Token vectors a float16 index must hold before its vectors are compressed: the codec is trained on a sample
    of what the index holds then, and a sample of more of the collection codes the rest better (the loss of
    each format is reported by ``bench/storage.py``). Below it, searches run exactly over float32 vectors.
    Which format: ``findling index --codec auto|fp16|residual|compact``, kept in the index."""

    ocr: bool = True
    """Recognise text (OCR) in images and in PDF pages without a text layer, where this machine has an OCR
    engine (``findling.engine.extract.ocr.status``); False (``FINDLING_OCR=0``) turns it off: such files are
    recorded with the reason."""

    debounce_seconds: float = 0.5
    """Quiet time after the last event for a file before the watcher re-indexes it."""

    @property
    def db_path(self) -> Path:
        return self.data_dir / "index.sqlite"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @classmethod
    def default(cls, **overrides) -> "Config":
        """The default settings, with ``FINDLING_MODEL``, ``FINDLING_PRECISION`` and ``FINDLING_OCR`` (``0`` or
        ``off`` turns OCR off) from the environment and ``overrides`` applied."""
        cfg = cls()
        env_model = os.environ.get("FINDLING_MODEL")
        if env_model and "model" not in overrides:
            cfg = replace(cfg, model=env_model)
        env_precision = os.environ.get("FINDLING_PRECISION")
        if env_precision and "encoder_precision" not in overrides:
            cfg = replace(cfg, encoder_precision=env_precision)
        env_ocr = os.environ.get("FINDLING_OCR", "").strip().lower()
        if env_ocr in ("0", "off", "no", "false") and "ocr" not in overrides:
            cfg = replace(cfg, ocr=False)
        return replace(cfg, **overrides) if overrides else cfg

    def to_json(self) -> str:
        """Every field as JSON (paths as strings, tuples as lists): how the app hands its settings to its
        child indexer. ``from_json`` gives back an equal ``Config``."""
        import json
        from dataclasses import fields

        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) \
                else value
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        """The ``Config`` that ``to_json`` wrote; fields it does not know are ignored, missing ones default."""
        import json
        from dataclasses import fields

        data = json.loads(text)
        default = cls()
        values = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value, like = data[f.name], getattr(default, f.name)
            values[f.name] = Path(value) if isinstance(like, Path) else tuple(value) if isinstance(like, tuple) \
                else value
        return replace(default, **values)
