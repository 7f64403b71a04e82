"""DirectEncoder: fp32 parity with pylate's ColBERT.encode, fidelity of int8 and bf16, head folding, row alignment."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from findling.engine.encode.encoder import Encoder, ModelInfo
from findling.engine.encode.direct_encoder import PRECISIONS, DirectEncoder, choose_precision, fold_linear_head
from tests.engine.test_encoder import DOCS, QUERIES, assert_same_vectors, reference

MIN_COSINE = 0.99  # the fidelity target of any fast path, per token, against the fp32 reference


def make_direct(folder, *, max_tokens: int, precision: str, batch_tokens: int = 8192) -> DirectEncoder:
    info = ModelInfo(name="test", source="test", path=str(folder), fingerprint="x", dim=48, max_tokens=max_tokens)
    return DirectEncoder(folder, info, threads=1, batch_tokens=batch_tokens, precision=precision)


def min_cosine(ours, theirs) -> float:
    assert [a.shape for a in ours] == [tuple(b.shape) for b in theirs]
    return min(float((a * np.asarray(b)).sum(axis=1).min()) for a, b in zip(ours, theirs) if len(a))


@pytest.fixture(scope="module")
def references(tiny_model_dir, edge_model_dir):
    return {"tiny": reference(tiny_model_dir, max_tokens=512), "edge": reference(edge_model_dir, max_tokens=32768)}


@pytest.fixture(scope="module")
def folders(tiny_model_dir, edge_model_dir):
    return {"tiny": (tiny_model_dir, 512), "edge": (edge_model_dir, 32768)}


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_fp32_documents_and_queries_match_pylate(model, folders, references):
    folder, max_tokens = folders[model]
    encoder = make_direct(folder, max_tokens=max_tokens, precision="fp32", batch_tokens=256)
    ref = references[model]
    assert isinstance(encoder, Encoder)
    assert_same_vectors(encoder.encode_documents(DOCS), ref.encode(DOCS, is_query=False, show_progress_bar=False))
    assert_same_vectors(encoder.encode_queries(QUERIES), ref.encode(QUERIES, is_query=True, show_progress_bar=False))


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_bf16_keeps_per_token_cosine(model, folders, references):
    folder, max_tokens = folders[model]
    encoder = make_direct(folder, max_tokens=max_tokens, precision="bf16")
    ref = references[model]
    docs = encoder.encode_documents(DOCS)
    from findling.engine.encode.fused_blocks import available

    # BERT's documents skip their padding wherever this CPU's oneDNN has the fused bf16 kernels
    assert (encoder._layers is not None) == (model == "tiny" and available(torch.bfloat16))
    assert min_cosine(docs, ref.encode(DOCS, is_query=False, show_progress_bar=False)) >= MIN_COSINE
    queries = encoder.encode_queries(QUERIES)
    assert min_cosine(queries, ref.encode(QUERIES, is_query=True, show_progress_bar=False)) >= MIN_COSINE
    for vectors in docs + queries:
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_int8_gives_unit_vectors_in_the_same_rows(model, folders, references):
    """int8 runs and lines up; its fidelity is model-dependent (it misses the target on the bundled MiniLM), so
    it is only ever chosen by name, and only the rough agreement of a working quantisation is pinned here."""
    folder, max_tokens = folders[model]
    encoder = make_direct(folder, max_tokens=max_tokens, precision="int8")
    docs = encoder.encode_documents(DOCS)
    assert min_cosine(docs, references[model].encode(DOCS, is_query=False, show_progress_bar=False)) >= 0.9
    for vectors in docs + encoder.encode_queries(QUERIES):
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_rows_line_up_with_spans_and_labels(model, folders):
    folder, max_tokens = folders[model]
    encoder = make_direct(folder, max_tokens=max_tokens, precision="auto")
    for text, vectors in zip(DOCS, encoder.encode_documents(DOCS)):
        assert len(encoder.tokenizer.document_spans(text)) == vectors.shape[0]
    for text, vectors in zip(QUERIES, encoder.encode_queries(QUERIES)):
        assert len(encoder.tokenizer.query_labels(text)) == vectors.shape[0]


def test_batching_keeps_input_order(tiny_model_dir):
    encoder = make_direct(tiny_model_dir, max_tokens=512, precision="fp32", batch_tokens=64)
    texts = [DOCS[3], "short", DOCS[0], "a b", DOCS[1], DOCS[3][:300]]
    assert_same_vectors(encoder.encode_documents(texts), [encoder.encode_documents([t])[0] for t in texts])
    assert encoder.encode_documents([]) == [] and encoder.encode_queries([]) == []


def test_folded_head_equals_the_modules():
    from pylate.models import Dense

    torch.manual_seed(0)
    layers = [Dense(8, 16, use_residual=True), Dense(16, 16, use_residual=True), Dense(16, 4, bias=False)]
    x = torch.randn(5, 8, dtype=torch.float64)
    expected = x
    for layer in layers:
        expected = layer.double()({"token_embeddings": expected})["token_embeddings"]
    weight, bias = fold_linear_head(layers)
    assert weight.shape == (4, 8)
    np.testing.assert_allclose(x.numpy() @ weight.T + bias, expected.detach().numpy(), atol=1e-10)


def test_a_hand_computed_fold():
    from pylate.models import Dense

    layer = Dense(2, 2, use_residual=True)  # y = (L + I) x + b
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        layer.linear.bias.copy_(torch.tensor([0.5, -1.0]))
    weight, bias = fold_linear_head([layer])
    np.testing.assert_allclose(weight, [[2.0, 2.0], [3.0, 5.0]])
    np.testing.assert_allclose(bias, [0.5, -1.0])


def test_a_non_linear_head_is_not_folded():
    from pylate.models import Dense

    assert fold_linear_head([Dense(4, 4, activation_function=torch.nn.Tanh())]) is None
    assert fold_linear_head([]) is None


def test_precision_is_checked_and_auto_resolves(tiny_model_dir):
    from findling.engine.errors import ModelError

    with pytest.raises(ModelError, match="FINDLING_PRECISION"):
        make_direct(tiny_model_dir, max_tokens=512, precision="fp8")
    assert choose_precision() in PRECISIONS[1:]
    assert make_direct(tiny_model_dir, max_tokens=512, precision="auto").precision == choose_precision()


def test_auto_keeps_fp32_when_the_probe_misses_the_target(tiny_model_dir, monkeypatch):
    import findling.engine.encode.direct_encoder as fast

    monkeypatch.setattr(fast, "choose_precision", lambda: "bf16")
    monkeypatch.setattr(fast, "MIN_COSINE", 1.01)  # no lossy precision can reach this
    strict = make_direct(tiny_model_dir, max_tokens=512, precision="auto")
    strict.encode_queries(["x"])
    assert strict.precision == "fp32"
    docs = ["a first document about tax reports", "and a second one, longer, about csv readers and writers"]
    exact = make_direct(tiny_model_dir, max_tokens=512, precision="fp32").encode_documents(docs)
    for got, want in zip(strict.encode_documents(docs), exact):  # the failed check left the fp32 weights exact
        np.testing.assert_array_equal(got, want)
    monkeypatch.setattr(fast, "MIN_COSINE", 0.5)
    lenient = make_direct(tiny_model_dir, max_tokens=512, precision="auto")
    lenient.encode_queries(["x"])
    assert lenient.precision == "bf16"
    assert make_direct(tiny_model_dir, max_tokens=512, precision="bf16").requested == "bf16"


@pytest.mark.bundled_model
def test_bundled_model_in_bf16_keeps_fidelity(tmp_path):
    from findling.engine.encode import bundled, resolve as models
    from findling.engine.config import Config
    from tests.model_factory import generated_text

    folder = bundled.assemble(tmp_path)
    info = models.model_info(models.ResolvedModel(bundled.BUNDLED_NAME, "bundled", folder),
                             config=Config(data_dir=tmp_path))
    encoder = DirectEncoder(folder, info, threads=1, precision="bf16")  # what "auto" picks on native-bf16 CPUs
    ref = reference(folder, max_tokens=512)
    docs = ["  Tax report, 2023: the invoice (final).", " ".join(generated_text(paragraphs=8, seed=4)),
            "Read and write tabular data in CSV format with the csv module's reader and writer objects."]
    queries = ["Where is the 2023 tax report?", "csv reader"]
    assert min_cosine(encoder.encode_documents(docs), ref.encode(docs, is_query=False)) >= MIN_COSINE
    assert min_cosine(encoder.encode_queries(queries), ref.encode(queries, is_query=True)) >= MIN_COSINE


def test_precision_comes_from_the_settings_or_the_environment(monkeypatch, tmp_path):
    from findling.engine.config import Config

    monkeypatch.setenv("FINDLING_PRECISION", "bf16")
    assert Config.default(data_dir=tmp_path).encoder_precision == "bf16"
    assert Config.default(data_dir=tmp_path, encoder_precision="fp32").encoder_precision == "fp32"
    monkeypatch.delenv("FINDLING_PRECISION")
    assert Config.default(data_dir=tmp_path).encoder_precision == "auto"


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_two_workers_encode_batches_at_once_and_match_pylate(model, folders, references):
    """With ``workers=2`` two compute threads run batches at the same time, each on one torch thread of its own;
    the vectors are PyLate's, in input order; queries stay on the caller's thread."""
    import threading

    folder, max_tokens = folders[model]
    info = ModelInfo(name="test", source="test", path=str(folder), fingerprint="x", dim=48, max_tokens=max_tokens)
    encoder = DirectEncoder(folder, info, threads=2, workers=2, batch_tokens=128, precision="fp32")
    assert (encoder.workers, encoder.worker_threads) == (2, 1)
    encoder.encode_queries(QUERIES[:1])  # loads the model first: the batches below all meet at the barrier
    both_inside = threading.Barrier(2, timeout=60)  # broken (and the test failed) unless two batches overlap
    seen: dict[threading.Thread, int] = {}
    plain = encoder._encode

    def spying_encode(texts, *, queries, batch_size):
        me = threading.current_thread()
        if not queries and me not in seen:
            seen[me] = torch.get_num_threads()
            both_inside.wait()
        return plain(texts, queries=queries, batch_size=batch_size)

    encoder._encode = spying_encode
    docs = DOCS * 3
    ref = references[model]
    assert_same_vectors(encoder.encode_documents(docs), ref.encode(docs, is_query=False, show_progress_bar=False))
    assert len(seen) == 2 and all(t.name.startswith("findling-encoder") for t in seen)
    assert set(seen.values()) == {1}
    assert_same_vectors(encoder.encode_queries(QUERIES), ref.encode(QUERIES, is_query=True, show_progress_bar=False))
    assert threading.current_thread() not in seen
    encoder.close()
    assert not any(t.is_alive() for t in seen)
    single = DirectEncoder(folder, info, threads=1, workers=2, precision="fp32")
    assert single.workers == 1  # never more workers than threads


