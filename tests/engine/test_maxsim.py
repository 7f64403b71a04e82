import doctest

import numpy as np
import pytest
import torch

import engine.maxsim
from engine.maxsim import maxsim_alignment, maxsim_scores, top_k


def test_doctests():
    assert doctest.testmod(engine.maxsim).failed == 0


def test_hand_computed_case():
    q = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    d = np.array([[0.5, 0.5, 0], [0.9, 0, 0.1], [0, 0.2, 0.8], [0, 1, 0]], dtype=np.float32)
    # chunk 0 = rows 0..1: max q0 = 0.9, max q1 = 0.5 -> 1.4 ; chunk 1 = rows 2..3: 0 + 1 -> 1.0
    np.testing.assert_allclose(maxsim_scores(q, d, np.array([0, 2])), [1.4, 1.0], rtol=1e-6)


@pytest.mark.parametrize("block_rows", [1, 7, 1 << 16])
def test_matches_pylate_colbert_scores(block_rows):
    from pylate.scores import colbert_scores

    rng = np.random.default_rng(0)
    dim, lengths = 24, rng.integers(1, 40, size=37)
    # non-negative vectors: PyLate scores padding as similarity 0, which equals the true max only when
    # every real similarity is >= 0
    docs = [np.abs(rng.standard_normal((n, dim))).astype(np.float32) for n in lengths]
    queries = np.abs(rng.standard_normal((3, 9, dim))).astype(np.float32)
    tokens = np.concatenate(docs)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    padded = np.zeros((len(docs), lengths.max(), dim), dtype=np.float32)
    mask = np.zeros((len(docs), lengths.max()), dtype=bool)
    for i, d in enumerate(docs):
        padded[i, : len(d)], mask[i, : len(d)] = d, True
    ref = colbert_scores(torch.from_numpy(queries), torch.from_numpy(padded), documents_mask=torch.from_numpy(mask))
    for qi in range(3):
        ours = maxsim_scores(queries[qi], tokens, starts, block_rows=block_rows)
        np.testing.assert_allclose(ours, ref[qi].numpy(), rtol=1e-5, atol=1e-4)


def test_float16_tokens_close_to_float32():
    rng = np.random.default_rng(1)
    tokens = rng.standard_normal((500, 16)).astype(np.float32)
    q = rng.standard_normal((5, 16)).astype(np.float32)
    starts = np.arange(0, 500, 50)
    full = maxsim_scores(q, tokens, starts)
    half = maxsim_scores(q, tokens.astype(np.float16), starts)
    np.testing.assert_allclose(half, full, rtol=1e-2, atol=1e-2)


def test_alignment_sums_to_score():
    rng = np.random.default_rng(2)
    q = rng.standard_normal((6, 8)).astype(np.float32)
    d = rng.standard_normal((20, 8)).astype(np.float32)
    idx, sims = maxsim_alignment(q, d)
    assert idx.shape == (6,)
    assert sims.sum() == pytest.approx(float(maxsim_scores(q, d, np.array([0]))[0]), rel=1e-5)
    assert all(sims[i] == pytest.approx(float(d[idx[i]] @ q[i]), rel=1e-5) for i in range(6))


def test_empty_inputs_and_top_k():
    assert maxsim_scores(np.ones((2, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros(0, np.int64)).shape == (0,)
    scores = np.array([0.1, 0.9, 0.5, 0.9])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 0).tolist() == []
