"""Vector codecs: round trips within error bounds, the BLOB layout, the saved form, training pieces."""
import doctest

import numpy as np
import pytest

import findling.engine.store.codec
import findling.engine.store.dense_codec
from findling.engine.store import codec as C
from findling.engine.search.maxsim import maxsim_scores
from findling.engine.store.store import decode_vectors, encode_vectors


def clustered(n, dim=48, clusters=64, spread=0.35, seed=0):
    """Unit vectors around ``clusters`` fixed random centres (token vectors are clustered like this);
    ``seed`` draws the points, the centres are the same for every seed."""
    centres = np.random.default_rng(12345).standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)] + spread / np.sqrt(dim) * rng.standard_normal((n, dim)).astype(np.float32)
    # unequal variance per dimension, as a learned head gives
    x *= np.linspace(1.5, 0.5, dim, dtype=np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def sample():
    return clustered(12_000)


@pytest.fixture(scope="module")
def residual(sample):
    return C.train(sample, spec=C.CodecSpec(C.RESIDUAL, centroids=128, groups=12), seed=0)


def cosines(a, b):
    return np.einsum("ij,ij->i", a, b)


@pytest.mark.parametrize("module", [findling.engine.store.codec, findling.engine.store.dense_codec])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_fp16_codec_is_the_original_layout():
    v = np.random.default_rng(0).standard_normal((5, 48)).astype(np.float32)
    codec = C.Fp16Codec(48)
    assert codec.encode(v) == encode_vectors(v)
    np.testing.assert_array_equal(codec.decode(codec.encode(v), 5), decode_vectors(encode_vectors(v), 48))
    assert codec.bytes_per_token == 96 and codec.centroid_ids(codec.encode(v), 5) is None


def test_residual_round_trip_error_bounds(residual):
    x = clustered(3000, seed=1)  # not the training sample
    blob = residual.encode(x)
    assert len(blob) == len(x) * residual.bytes_per_token == len(x) * 14
    back = residual.decode(blob, len(x))
    assert back.dtype == np.float32 and back.shape == x.shape
    np.testing.assert_allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-5)
    cos = cosines(back, x)
    assert cos.mean() > 0.99 and cos.min() > 0.97  # measured: 0.995 and 0.982


def test_compact_is_smaller_and_coarser(sample, residual):
    compact = C.train(sample, spec=C.CodecSpec(C.COMPACT, centroids=128, groups=6), seed=0)
    x = clustered(3000, seed=1)
    assert compact.bytes_per_token == 8
    cos_compact = cosines(compact.decode(compact.encode(x), len(x)), x)
    cos_residual = cosines(residual.decode(residual.encode(x), len(x)), x)
    assert cos_compact.mean() > 0.97  # measured: 0.984
    assert cos_compact.mean() < cos_residual.mean()


def test_maxsim_over_decoded_vectors_stays_close(residual):
    rng = np.random.default_rng(3)
    docs = clustered(4000, seed=2)
    starts = np.arange(0, 4000, 100)
    back = residual.decode(residual.encode(docs), len(docs))
    for _ in range(5):
        q = clustered(32, seed=int(rng.integers(1 << 30)))
        exact, approx = maxsim_scores(q, docs, starts), maxsim_scores(q, back, starts)
        assert np.abs(exact - approx).max() / 32 < 0.015  # per query token (measured: under 0.009)


def test_blob_layout_ids_then_codes(residual):
    x = clustered(7, seed=4)
    blob = residual.encode(x)
    ids, codes = residual.split(blob, 7)
    np.testing.assert_array_equal(ids, residual.assign(x))
    np.testing.assert_array_equal(np.frombuffer(blob[:14], dtype="<u2"), ids)
    assert codes.shape == (7, 12) and codes.dtype == np.uint8
    assert residual.pack(ids, codes) == blob
    np.testing.assert_array_equal(residual.centroid_ids(blob, 7), ids)


def test_encode_many_equals_one_by_one(residual):
    parts = [clustered(n, seed=n) for n in (1, 5, 30)]
    assert residual.encode_many(parts) == [residual.encode(p) for p in parts]
    assert residual.encode_many([]) == []


def test_ordered_decoding_is_a_permutation_of_columns(residual):
    x = clustered(50, seed=5)
    ids, codes = residual.split(residual.encode(x), 50)
    plain = residual.decode_codes(ids, codes)
    ordered = residual.decode_codes(ids, codes, ordered=True)
    np.testing.assert_allclose(ordered, plain[:, residual.order], atol=1e-6)


def test_saved_form_round_trip(residual):
    description = residual.describe()
    again = C.load(description, residual.arrays(), dim=48)
    x = clustered(20, seed=6)
    assert again.encode(x) == residual.encode(x)
    np.testing.assert_array_equal(again.decode(residual.encode(x), 20), residual.decode(residual.encode(x), 20))


def test_load_defaults_to_fp16_and_refuses_newer_formats(residual):
    assert C.load(None, {}, dim=48).name == C.FP16
    assert C.load('{"name": "fp16"}', {}, dim=48).name == C.FP16
    with pytest.raises(ValueError, match="newer"):
        C.load(dict(residual.describe(), version=C.FORMAT_VERSION + 1), residual.arrays(), dim=48)


def test_named_specs_follow_the_dimension():
    assert C.CodecSpec.named(C.RESIDUAL, 48).groups == 16
    assert C.CodecSpec.named(C.COMPACT, 48).groups == 6
    assert C.CodecSpec.named(C.RESIDUAL, 128).groups == 32
    assert 128 % C.CodecSpec.named(C.COMPACT, 128).groups == 0
    with pytest.raises(ValueError, match="unknown"):
        C.CodecSpec.named("int3", 48)


def test_balanced_order_is_a_permutation_with_even_groups():
    variance = np.linspace(4.0, 0.1, 48)
    order = C.balanced_order(variance, 12)
    assert sorted(order.tolist()) == list(range(48))
    sums = variance[order].reshape(12, 4).sum(axis=1)
    assert sums.max() - sums.min() < 0.25 * sums.mean()


def test_spherical_kmeans_finds_separated_clusters():
    x = clustered(2000, clusters=8, spread=0.05, seed=7)
    centroids = C.spherical_kmeans(x, 64, iters=10, seed=0)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    best = (x @ centroids.T).max(axis=1)
    assert np.percentile(best, 5) > 0.95


def test_training_is_seeded_same_input_same_codebook(sample):
    spec = C.CodecSpec(C.RESIDUAL, centroids=64, groups=12)
    a = C.train(sample, spec=spec, seed=3)
    b = C.train(sample.copy(), spec=spec, seed=3)
    assert a.arrays() == b.arrays()  # bit for bit
    other = C.train(sample, spec=spec, seed=4)
    assert other.arrays()["centroids"] != a.arrays()["centroids"]  # the seed is what differs
    # another seed gives another codebook of the same quality
    errors = [float(np.mean(1 - cosines(c.decode(c.encode(sample[:2000]), 2000), sample[:2000]))) for c in (a, other)]
    assert abs(errors[0] - errors[1]) < 0.25 * max(errors)
