"""A deterministic fake encoder for pipeline and GUI tests (no model, no torch).

Tokens are words (``\\w+``, lower-cased). A word's vector is a fixed pseudo-random unit vector seeded by
its hash, so MaxSim between a query and a chunk is close to the number of query words the chunk contains.
It honours the real encoder's row contract: one document row per marker and content token, one query row
per label.
"""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

from findling.engine.encode.encoder import ModelInfo

_WORD = re.compile(r"\w+")


class FakeTokenizer:
    def __init__(self, *, query_length: int = 8) -> None:
        self.query_length = query_length

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def document_spans(self, text: str) -> list[tuple[int, int]]:
        return [(-1, -1)] + self.token_spans(text)

    def document_spans_many(self, texts) -> list[list[tuple[int, int]]]:
        return [self.document_spans(t) for t in texts]

    def query_labels(self, text: str) -> list[str]:
        words = [m.group().lower() for m in _WORD.finditer(text)]
        return ["[Q]"] + words + ["[MASK]"] * max(0, self.query_length - len(words))


class FakeEncoder:
    """Word-hash token vectors; ``calls`` counts encoded documents (to prove what was not re-encoded)."""

    def __init__(self, *, dim: int = 16, name: str = "fake-encoder", max_tokens: int = 512) -> None:
        self.tokenizer = FakeTokenizer()
        self.dim = dim
        self.info = ModelInfo(name=name, source="test", path="", fingerprint=f"{name}-{dim}", dim=dim,
                              max_tokens=max_tokens)
        self.documents_encoded = 0
        self.queries_encoded = 0

    def _vec(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        self.documents_encoded += len(texts)
        out = []
        for text in texts:
            words = ["[D]"] + [m.group().lower() for m in _WORD.finditer(text)]
            out.append(np.stack([self._vec(w) for w in words]))
        return out

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        self.queries_encoded += len(texts)
        out = []
        for text in texts:
            labels = self.tokenizer.query_labels(text)
            # markers match every document's [D] row exactly: a constant, like real expansion tokens
            out.append(np.stack([self._vec("[D]" if w.startswith("[") else w) for w in labels]))
        return out


# Encoder factories by name, for the app's child indexer (``findling index --encoder-factory tests.fakes:NAME``):
# a child process cannot be handed a function object, only where to import one.
def fake_factory(config) -> FakeEncoder:
    return FakeEncoder()


def other_model_factory(config) -> FakeEncoder:
    return FakeEncoder(name="other-model")


def by_model_factory(config) -> FakeEncoder:
    """Encoders named by the chosen model (another name and dimension than the default fake); a model whose name
    holds "broken" fails to load."""
    from findling.engine.errors import ModelError

    if config.model and "broken" in config.model:
        raise ModelError(f"No usable model. Tried:\n  - {config.model}: has no config.json")
    return FakeEncoder(name=config.model, dim=8) if config.model else FakeEncoder()


class SlowEncoder(FakeEncoder):
    """The fake encoder, taking ``delay`` seconds per document: a file stays in the encoder long enough for a
    test to end the process mid-file."""

    def __init__(self, *, delay: float = 0.25, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def encode_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        import time

        time.sleep(self.delay * len(texts))
        return super().encode_documents(texts)


def slow_factory(config) -> FakeEncoder:
    """The fake encoder's vectors (same name, so indexes mix with ``fake_factory``'s), slowly."""
    return SlowEncoder()


def broken_factory(config) -> FakeEncoder:
    from findling.engine.errors import ModelError

    raise ModelError("no model found; install the bundled model with pip install findling")
