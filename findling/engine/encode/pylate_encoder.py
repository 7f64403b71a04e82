"""PyLate behind the ``Encoder`` seam: token vectors with PyLate's own tokenisation, prefixes and skiplist.

``ColBERTTokenizer`` reproduces, without loading the network, what ``pylate.models.ColBERT.tokenize`` feeds the
model: the text stripped (and lower-cased where the model says so), ``[CLS] prefix tokens... [SEP]`` with the
prefix token inserted after the first token, truncation to the query or document length, queries padded with
the mask token up to the query length when the model expands queries, and document rows of punctuation
(the skiplist) dropped. So ``document_spans`` and ``query_labels`` line up row by row with the vectors that
``PyLateEncoder`` returns, and those equal ``ColBERT.encode``'s output.

``PyLateEncoder`` loads the PyLate model once, on first use, and encodes documents in batches of similar
length under a token budget (padded length times batch size), returning them in input order. Its calls from
several threads are serialised (PyLate switches its truncation length between queries and documents inside
``ColBERT.encode``); ``findling.engine.encode.direct_encoder.DirectEncoder`` serialises only the tokenisation.

The loading and every document batch run on threads the encoder keeps (its compute threads), whichever thread
asks: torch's OpenMP runtime keeps a team of worker threads for each thread
that runs parallel operations, and once two such teams exist its workers stop spinning between operations, so
every one of the hundreds of operations in a batch waits for a worker to wake. With ``workers`` > 1 the encoder keeps that many compute threads, each running whole batches
on ``threads // workers`` torch threads of its own: on 2 cores, two single-threaded workers need no team at all,
so no operation waits for another core at its end, and a core taken away for a moment (another program, the
indexer's reader thread) stalls one batch instead of both cores (``Config.encode_workers``). Queries are encoded
on the caller's thread, on one torch thread (``findling.engine.threads.torch_threads`` in the searcher), which starts no
team.
"""
from __future__ import annotations

import json
import logging
import string
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from findling.engine.encode.encoder import ModelInfo
from findling.engine.errors import ModelError

logger = logging.getLogger(__name__)

MARKER_SPAN = (-1, -1)


@dataclass(frozen=True)
class ColBERTSettings:
    """How a PyLate model frames its inputs, read from its folder with PyLate's defaults."""

    query_prefix: str = "[Q] "
    document_prefix: str = "[D] "
    query_length: int = 32
    document_length: int = 180
    do_query_expansion: bool = True
    attend_to_expansion_tokens: bool = False
    skiplist_words: tuple[str, ...] = tuple(string.punctuation)
    do_lower_case: bool = False

    @classmethod
    def from_folder(cls, folder: Path) -> ColBERTSettings:
        """Settings from ``config_sentence_transformers.json`` and ``sentence_bert_config.json``."""
        st = _read_json(folder / "config_sentence_transformers.json")
        sbert = _read_json(folder / "sentence_bert_config.json")
        defaults = cls()
        expansion = bool(st.get("do_query_expansion", defaults.do_query_expansion))
        return cls(
            query_prefix=st.get("query_prefix", defaults.query_prefix),
            document_prefix=st.get("document_prefix", defaults.document_prefix),
            query_length=int(st.get("query_length", defaults.query_length)),
            document_length=int(st.get("document_length", defaults.document_length)),
            do_query_expansion=expansion,
            attend_to_expansion_tokens=expansion and bool(st.get("attend_to_expansion_tokens", False)),
            skiplist_words=tuple(st.get("skiplist_words", defaults.skiplist_words)),
            do_lower_case=bool(sbert.get("do_lower_case", False)),
        )


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class ColBERTTokenizer:
    """The model's tokenizer as the chunker and the MaxSim alignment need it (implements ``Tokenizer``)."""

    def __init__(self, hf_tokenizer, settings: ColBERTSettings, *, document_length: int) -> None:
        if not getattr(hf_tokenizer, "is_fast", False):
            raise ModelError("the model's tokenizer has no fast (tokenizer.json) version; character spans need one")
        self.settings = settings
        self.document_length = document_length
        self._tok = hf_tokenizer
        self._lock = threading.Lock()  # a fast tokenizer is not re-entrant ("Already borrowed")
        self._tok.model_max_length = 1 << 40  # lengths are passed explicitly; silences the too-long warning
        prefixes = [p for p in (settings.query_prefix, settings.document_prefix) if p]
        if prefixes:
            self._tok.add_tokens(prefixes)  # as PyLate does: existing tokens keep their ids
        self.query_prefix_id = self._tok.convert_tokens_to_ids(settings.query_prefix) if settings.query_prefix else None
        self.document_prefix_id = (
            self._tok.convert_tokens_to_ids(settings.document_prefix) if settings.document_prefix else None
        )
        self.pad_token = self._tok.mask_token or self._tok.eos_token or self._tok.pad_token
        self.skiplist_ids = frozenset(self._tok.convert_tokens_to_ids(w) for w in settings.skiplist_words)

    @classmethod
    def from_folder(cls, folder: Path, settings: ColBERTSettings, *, document_length: int) -> ColBERTTokenizer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(folder), local_files_only=True), settings,
                   document_length=document_length)

    def _prepare(self, text: str) -> tuple[str, _OffsetMap]:
        """The text as PyLate tokenises it (stripped, maybe lower-cased) and a map back to ``text``."""
        lead = len(text) - len(text.lstrip())
        prepared = text.strip()
        chars = None
        if self.settings.do_lower_case:
            lowered = prepared.lower()
            if len(lowered) != len(prepared):  # a few characters lower-case to two (e.g. U+0130)
                chars = [i for i, c in enumerate(prepared) for _ in c.lower()] + [len(prepared)]
            prepared = lowered
        return prepared, _OffsetMap(lead, chars)

    def _encode(self, text: str, *, max_length: int | None, special: bool):
        return self._encode_many([text], max_length=max_length, special=special)[0]

    def _encode_many(self, texts: Sequence[str], *, max_length: int | None, special: bool):
        """``(encoding, offset map)`` per text, straight from the Rust tokenizer (``tokenizers.Encoding``:
        ``ids``, ``offsets``, ``special_tokens_mask``).

        What the transformers wrapper runs for ``tok(text, truncation=..., max_length=...,
        return_offsets_mapping=True)``, without its per-call Python work (a third of the time for a
        1,500-character chunk). One text at a time on purpose: the Rust side's batch call spreads a batch
        over a thread pool of its own, which makes searches during indexing wait for a core.
        """
        prepared = [self._prepare(t) for t in texts]
        backend = self._tok.backend_tokenizer
        with self._lock:
            if max_length is None:
                backend.no_truncation()
            else:
                backend.enable_truncation(max_length, stride=0, strategy="longest_first",
                                          direction=self._tok.truncation_side)
            backend.no_padding()
            encodings = [backend.encode(p, add_special_tokens=special) for p, _m in prepared]
        return [(enc, offsets) for enc, (_p, offsets) in zip(encodings, prepared)]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the content tokens of ``text`` (no markers, no truncation)."""
        enc, offsets = self._encode(text, max_length=None, special=False)
        return [offsets.span(s, e) for s, e in enc.offsets]

    def count_document_tokens(self, texts: Sequence[str]) -> list[int]:
        """Rows the model processes per document (markers included, skiplist not yet applied)."""
        prepared = [self._prepare(t)[0] for t in texts]
        limit = self._content_limit(self.document_prefix_id, self.document_length)
        with self._lock:
            enc = self._tok(prepared, truncation=True, max_length=limit, return_attention_mask=False,
                            return_token_type_ids=False)
        extra = 1 if self.document_prefix_id is not None else 0
        return [len(ids) + extra for ids in enc["input_ids"]]

    def document_spans(self, text: str) -> list[tuple[int, int]]:
        """One span per row of ``encode_documents([text])[0]``; ``(-1, -1)`` for [CLS], [D], [SEP]."""
        return self.document_spans_many([text])[0]

    def document_spans_many(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """``document_spans`` of each text (one lock and one settings change for all of them)."""
        limit = self._content_limit(self.document_prefix_id, self.document_length)
        skip = self.skiplist_ids
        out = []
        for enc, offsets in self._encode_many(texts, max_length=limit, special=True):
            rows = zip(enc.ids, enc.offsets, enc.special_tokens_mask)
            if offsets.chars is None:  # the common case, written out: this runs for every hit of every search
                lead = offsets.lead
                spans = [MARKER_SPAN if sp else (s + lead, e + lead) for tid, (s, e), sp in rows if tid not in skip]
            else:
                spans = [MARKER_SPAN if sp else offsets.span(s, e) for tid, (s, e), sp in rows if tid not in skip]
            if self.document_prefix_id is not None and self.document_prefix_id not in skip:
                spans.insert(1 if enc.ids and enc.ids[0] not in skip else 0, MARKER_SPAN)  # after [CLS]
            out.append(spans)
        return out

    def query_labels(self, text: str) -> list[str]:
        """One display string per row of ``encode_queries([text])[0]`` ("[Q]", "csv", "[MASK]", ...)."""
        limit = self._content_limit(self.query_prefix_id, self.settings.query_length)
        enc, offsets = self._encode(text, max_length=limit, special=True)
        labels = [tok if sp else text[slice(*offsets.span(s, e))].strip() or tok
                  for tok, (s, e), sp in zip(self._tok.convert_ids_to_tokens(enc.ids), enc.offsets, enc.special_tokens_mask)]
        if self.settings.do_query_expansion:
            labels += [self.pad_token] * (limit - len(labels))
        if self.query_prefix_id is not None:
            labels.insert(1, self.settings.query_prefix.strip())
        return labels

    @staticmethod
    def _content_limit(prefix_id: int | None, length: int) -> int:
        return length - 1 if prefix_id is not None else length


@dataclass(frozen=True)
class _OffsetMap:
    """Maps offsets in the prepared (stripped, lower-cased) text back to the caller's text."""

    lead: int
    chars: list[int] | None

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.chars is not None:
            start, end = self.chars[start], self.chars[end]
        return start + self.lead, end + self.lead


def plan_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Group indices into batches of similar length whose padded size (rows x longest) fits ``budget``.

    Longest first; an item longer than the budget gets a batch of its own.

    >>> plan_batches([5, 100, 7, 90, 6], budget=200)
    [[1, 3], [2, 4, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and lengths[batches[-1][0]] * (len(batches[-1]) + 1) <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class PyLateEncoder:
    """Token vectors from a PyLate ColBERT folder (implements ``Encoder``); the network loads on first use.

    The reference for token vectors only: it attaches no pooled vectors (``ModelInfo.dense_dim`` is 0 here
    whatever the folder declares); ``DirectEncoder`` does (``POOLS``)."""

    POOLS = False  # whether this class attaches the dense vectors a model folder declares

    def __init__(self, folder: Path | str, info: ModelInfo, *, threads: int = 1, batch_tokens: int = 8192,
                 workers: int = 1) -> None:
        self.folder = Path(folder)
        self.info = info if self.POOLS else replace(info, dense_dim=0)
        self.threads = threads
        self.batch_tokens = batch_tokens
        self.workers = max(1, min(workers, threads))  # compute threads; each runs threads // workers torch threads
        self.worker_threads = max(1, threads // self.workers)
        self.settings = ColBERTSettings.from_folder(self.folder)
        self.tokenizer = ColBERTTokenizer.from_folder(self.folder, self.settings, document_length=info.max_tokens)
        self._model = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._compute_threads: set[threading.Thread] = set()

    def _loaded(self):
        with self._lock:
            if self._model is None:
                self._model = self._on_compute_thread(self._load)
            return self._model

    def _on_compute_thread(self, fn: Callable, *args):
        """``fn(*args)`` on one of the encoder's compute threads (started on first use), its result or its
        exception."""
        if threading.current_thread() in self._compute_threads:
            return fn(*args)
        return self._pool().submit(fn, *args).result()

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="findling-encoder",
                                                    initializer=self._start_compute_thread)
            return self._executor

    def _start_compute_thread(self) -> None:
        import torch

        with self._executor_lock:
            self._compute_threads.add(threading.current_thread())
        torch.set_num_threads(self.worker_threads)

    def close(self) -> None:
        """End the compute threads (and torch's workers with them); a later call starts new ones."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        with self._executor_lock:
            self._compute_threads.clear()

    def _load(self):
        """The PyLate model, on a compute thread (whose torch thread count ``_start_compute_thread`` set)."""
        from pylate import models
        from transformers.utils import logging as hf_logging

        _quiet_transformers()
        logger.info("loading %s from %s", self.info.name, self.folder)
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # transformers' load report lists harmless unused keys as warnings
        hf_logging.disable_progress_bar()
        try:
            model = models.ColBERT(
                str(self.folder),
                device="cpu",
                local_files_only=True,
                trust_remote_code=False,
                document_length=self.info.max_tokens,
                model_kwargs={"use_safetensors": True},
            )
        except Exception as exc:  # any failure inside transformers/pylate: say which model and what to do
            raise ModelError(
                f"could not load the model {self.info.name} from {self.folder}: {exc}. "
                "Pass --model PATH to another PyLate model folder, or remove this one to fall back."
            ) from exc
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        model.eval()
        from findling.engine.encode.windowed_attention import use_windowed_attention

        use_windowed_attention(model)  # ModernBERT's local layers over windows: long chunks in linear time
        return model

    def _encode(self, texts: list[str], *, queries: bool, batch_size: int) -> list[np.ndarray]:
        import torch

        model = self._loaded()
        # PyLate's tokenize sets state per call: one at a time
        with self._encode_lock, torch.inference_mode():
            out = model.encode(texts, is_query=queries, batch_size=batch_size, show_progress_bar=False,
                               convert_to_numpy=True, normalize_embeddings=True)
        return [np.ascontiguousarray(v, dtype=np.float32) for v in out]

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """float32 ``[m_i, dim]`` per query, with the model's query prefix, length and expansion."""
        texts = list(texts)
        return self._encode(texts, queries=True, batch_size=32) if texts else []

    def encode_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        """float32 ``[n_i, dim]`` per document, batched by length under ``batch_tokens``, in input order (on the
        compute threads: with several workers each batch is a task the next free worker takes, longest first,
        under a budget of ``batch_tokens // workers`` so the batches in flight together hold ``batch_tokens``)."""
        texts = list(texts)
        if not texts:
            return []
        # loaded before the batch is handed over: a query thread waiting in _loaded() for the load holds the
        # lock the compute thread's batch would need, so no batch may reach that thread before the model does
        self._loaded()
        if self.workers == 1 or threading.current_thread() in self._compute_threads:
            return self._on_compute_thread(self._encode_in_batches, texts, self.batch_tokens, None)
        return self._encode_in_batches(texts, max(1, self.batch_tokens // self.workers), self._pool())

    def _encode_in_batches(self, texts: list[str], budget: int, pool: ThreadPoolExecutor | None) -> list[np.ndarray]:
        """``texts`` in batches of similar length under ``budget`` tokens, in input order: each batch in turn on
        this thread, or with ``pool`` each a task for the next free compute thread."""
        batches = plan_batches(self.tokenizer.count_document_tokens(texts), budget)

        def encode(batch: list[int]) -> list[np.ndarray]:
            return self._encode([texts[i] for i in batch], queries=False, batch_size=len(batch))

        futures = [pool.submit(encode, batch) for batch in batches] if pool is not None else []
        result: list[np.ndarray | None] = [None] * len(texts)
        try:
            for n, batch in enumerate(batches):
                for i, v in zip(batch, futures[n].result() if futures else encode(batch)):
                    result[i] = v
        finally:
            for future in futures:  # after a failure: the batches not started yet are dropped
                future.cancel()
        return result  # type: ignore[return-value]


def _quiet_transformers() -> None:
    """transformers prints a weight-loading report to stderr (e.g. MiniLM's unused ``position_ids``); only
    errors matter to a user, and Findling reports those itself."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
