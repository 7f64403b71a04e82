import doctest

import numpy as np
import pytest
import torch

import findling.engine.search.maxsim
from findling.engine.search.maxsim import maxsim_alignment, maxsim_scores, top_k


def _per_chunk_reference(q: np.ndarray, tokens: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """MaxSim chunk by chunk, the definition written out: float64 [C]."""
    ends = np.append(starts[1:], len(tokens))
    return np.array([(tokens[s:e].astype(np.float64) @ q.T.astype(np.float64)).max(axis=0).sum()
                     for s, e in zip(starts, ends)])


def _random_corpus(seed: int, *, dim: int, n_chunks: int, max_len: int, non_negative: bool = False):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len, size=n_chunks)
    tokens = rng.standard_normal((int(lengths.sum()), dim)).astype(np.float32)
    if non_negative:
        tokens = np.abs(tokens)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return tokens, starts, lengths


def test_doctests():
    assert doctest.testmod(findling.engine.search.maxsim).failed == 0


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("block_rows", [1, 2, 3, 4096])
def test_hand_computed_case(threads, block_rows):
    q = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    d = np.array([[0.5, 0.5, 0], [0.9, 0, 0.1], [0, 0.2, 0.8], [0, 1, 0], [-1, -1, 0]], dtype=np.float32)
    # chunk 0 = rows 0..1: max q0 = 0.9, max q1 = 0.5 -> 1.4 ; chunk 1 = rows 2..3: 0 + 1 -> 1.0
    # chunk 2 = row 4 alone: -1 + -1 -> -2.0 (negative similarities are kept, nothing is clipped at 0)
    got = maxsim_scores(q, d, np.array([0, 2, 4]), block_rows=block_rows, threads=threads)
    np.testing.assert_allclose(got, [1.4, 1.0, -2.0], rtol=1e-6)


def test_one_query_token_is_the_best_dot_product_per_chunk():
    q = np.array([[0.0, 1.0]], dtype=np.float32)
    d = np.array([[0.0, 0.3], [0.0, 0.7], [0.0, -0.2], [0.0, 0.1], [0.0, 0.05]], dtype=np.float32)
    np.testing.assert_allclose(maxsim_scores(q, d, np.array([0, 2])), [0.7, 0.1], rtol=1e-6)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("block_rows", [1, 7, 64, 1 << 16])
def test_matches_pylate_colbert_scores(block_rows, threads):
    from pylate.scores import colbert_scores

    # non-negative vectors: PyLate scores padding as similarity 0, which equals the true max only when
    # every real similarity is >= 0
    tokens, starts, lengths = _random_corpus(0, dim=24, n_chunks=37, max_len=40, non_negative=True)
    queries = np.abs(np.random.default_rng(9).standard_normal((3, 9, 24))).astype(np.float32)
    padded = np.zeros((len(starts), lengths.max(), 24), dtype=np.float32)
    mask = np.zeros((len(starts), lengths.max()), dtype=bool)
    for i, (s, n) in enumerate(zip(starts, lengths)):
        padded[i, :n], mask[i, :n] = tokens[s : s + n], True
    ref = colbert_scores(torch.from_numpy(queries), torch.from_numpy(padded), documents_mask=torch.from_numpy(mask))
    for qi in range(3):
        ours = maxsim_scores(queries[qi], tokens, starts, block_rows=block_rows, threads=threads)
        np.testing.assert_allclose(ours, ref[qi].numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("block_rows", [5, 300, 4096])
def test_matches_the_definition_on_signed_vectors_and_long_chunks(block_rows, threads):
    # chunks up to 1000 rows: longer than most blocks, so a chunk is often a block of its own
    tokens, starts, _ = _random_corpus(3, dim=48, n_chunks=60, max_len=1000)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    q = np.random.default_rng(4).standard_normal((32, 48)).astype(np.float32)
    ours = maxsim_scores(q, tokens, starts, block_rows=block_rows, threads=threads)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, _per_chunk_reference(q, tokens, starts), rtol=1e-5, atol=1e-4)


def test_same_result_for_any_blocks_and_threads():
    tokens, starts, _ = _random_corpus(5, dim=16, n_chunks=500, max_len=50)
    q = np.random.default_rng(6).standard_normal((8, 16)).astype(np.float32)
    one = maxsim_scores(q, tokens, starts, block_rows=1 << 20, threads=1)
    for block_rows, threads in [(64, 2), (100, 4), (1, 2)]:
        np.testing.assert_allclose(maxsim_scores(q, tokens, starts, block_rows=block_rows, threads=threads), one,
                                   rtol=1e-6, atol=1e-5)


def test_float16_tokens_close_to_float32():
    rng = np.random.default_rng(1)
    tokens = rng.standard_normal((500, 16)).astype(np.float32)
    q = rng.standard_normal((5, 16)).astype(np.float32)
    starts = np.arange(0, 500, 50)
    full = maxsim_scores(q, tokens, starts)
    half = maxsim_scores(q, tokens.astype(np.float16), starts, threads=2, block_rows=64)
    np.testing.assert_allclose(half, full, rtol=1e-2, atol=1e-2)
    exact = _per_chunk_reference(q, tokens.astype(np.float16).astype(np.float32), starts)
    np.testing.assert_allclose(half, exact, rtol=1e-5, atol=1e-4)  # float16 is widened, not computed in


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
    assert maxsim_scores(np.zeros((0, 3), np.float32), np.ones((4, 3), np.float32), np.array([0, 2]),
                         threads=2).tolist() == [0.0, 0.0]
    scores = np.array([0.1, 0.9, 0.5, 0.9])
    assert top_k(scores, 3).tolist() == [1, 3, 2]
    assert top_k(scores, 0).tolist() == []
