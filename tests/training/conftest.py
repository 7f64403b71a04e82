"""The tiny toy training set the training tests share: random-word passages, queries drawn from them, their
backbone features from the locally built tiny model, and wide-MaxSim teacher scores."""
from __future__ import annotations

import random

import pytest

from tests.model_factory import WORDS
from findling.training import score
from findling.training.features import encode_features, load_backbone_model
from findling.training.pairs import Pair, build_tuples


def toy_pairs(n: int = 40, seed: int = 0) -> list[Pair]:
    """Passages of random words; each query is four words drawn from its own passage."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(30)]
        pairs.append(Pair(" ".join(rng.sample(words, 4)), " ".join(words) + ".", group=f"g{i % 10}"))
    return pairs


@pytest.fixture(scope="module")
def toy_set(tiny_model_dir):
    tuples = build_tuples(toy_pairs(), negatives=5, held_out=0.2, seed=1)
    queries = sorted({t["query"] for t in tuples.tuples})
    for t in tuples.tuples:
        t["query_index"] = queries.index(t["query"])
    model = load_backbone_model(tiny_model_dir, threads=1, device="cpu")
    q = encode_features(model, queries, is_query=True, progress=False)
    p = encode_features(model, tuples.passages, is_query=False, progress=False)
    score.wide_maxsim(tuples.tuples, q, p)
    return tuples, q, p
