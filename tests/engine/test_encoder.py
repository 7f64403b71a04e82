"""PyLateEncoder: parity with pylate's ColBERT.encode, row alignment with spans and labels, batching order."""
from __future__ import annotations

import numpy as np
import pytest

from findling.engine.encode.encoder import Encoder, ModelInfo, Tokenizer
from findling.engine.encode.pylate_encoder import ColBERTSettings, PyLateEncoder, plan_batches
from tests.model_factory import generated_text

DOCS = [
    "Hello, World! This is a short document.",
    "   leading and trailing whitespace, (with punctuation); and CAPITALS   ",
    "",
    " ".join(generated_text(paragraphs=3, seed=7)),  # longer than the default document length of 180
    "one",
    "Tax report 2023: invoice 12345 - budget? yes!",
]
QUERIES = ["what is the pass key for Anna?", "CSV", " ".join(generated_text(paragraphs=1, seed=3))]


def make_encoder(folder, *, max_tokens: int, batch_tokens: int = 8192) -> PyLateEncoder:
    info = ModelInfo(name="test", source="test", path=str(folder), fingerprint="x", dim=48, max_tokens=max_tokens)
    return PyLateEncoder(folder, info, threads=1, batch_tokens=batch_tokens)


def reference(folder, *, max_tokens: int):
    from pylate import models

    return models.ColBERT(str(folder), device="cpu", local_files_only=True, document_length=max_tokens)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return make_encoder(tiny_model_dir, max_tokens=512)


@pytest.fixture(scope="module")
def tiny_reference(tiny_model_dir):
    return reference(tiny_model_dir, max_tokens=512)


@pytest.fixture(scope="module")
def edge(edge_model_dir):
    return make_encoder(edge_model_dir, max_tokens=32768)


@pytest.fixture(scope="module")
def edge_reference(edge_model_dir):
    return reference(edge_model_dir, max_tokens=32768)


def assert_same_vectors(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float32
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_encoder_implements_the_protocols(tiny):
    assert isinstance(tiny, Encoder)
    assert isinstance(tiny.tokenizer, Tokenizer)


def test_settings_follow_pylate(tiny_model_dir, edge_model_dir):
    tiny = ColBERTSettings.from_folder(tiny_model_dir)
    assert (tiny.query_prefix, tiny.document_prefix, tiny.query_length, tiny.do_query_expansion) == (
        "[unused0]", "[unused1]", 32, True)
    edge = ColBERTSettings.from_folder(edge_model_dir)
    assert (edge.query_prefix, edge.query_length, edge.do_query_expansion, edge.do_lower_case) == (
        "[Q] ", 48, False, True)


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_documents_match_pylate_encode(model, request):
    encoder = request.getfixturevalue(model)
    ref = request.getfixturevalue(f"{model}_reference")
    theirs = ref.encode(DOCS, is_query=False, batch_size=4, show_progress_bar=False)
    assert_same_vectors(encoder.encode_documents(DOCS), theirs)


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_queries_match_pylate_encode(model, request):
    encoder = request.getfixturevalue(model)
    ref = request.getfixturevalue(f"{model}_reference")
    theirs = ref.encode(QUERIES, is_query=True, show_progress_bar=False)
    assert_same_vectors(encoder.encode_queries(QUERIES), theirs)


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_document_rows_line_up_with_spans(model, request):
    encoder = request.getfixturevalue(model)
    for text, vectors in zip(DOCS, encoder.encode_documents(DOCS)):
        spans = encoder.tokenizer.document_spans(text)
        assert len(spans) == vectors.shape[0]
        assert spans.count((-1, -1)) == 3  # [CLS], document prefix, [SEP]
        content = [s for s in spans if s != (-1, -1)]
        assert all(0 <= s < e <= len(text) for s, e in content)
        if model == "tiny":  # WordPiece punctuation tokens are whole skiplist words (byte-level BPE's " ," is not)
            assert all(text[s:e] not in (",", ".", "!", "?", "(", ")", ";", ":", "-") for s, e in content)


def test_spans_point_at_the_token_text(tiny):
    text = "  Hello, World"
    spans = [s for s in tiny.tokenizer.document_spans(text) if s != (-1, -1)]
    assert "".join(text[s:e] for s, e in spans) == "HelloWorld"  # the comma is in the skiplist
    assert spans[0][0] == 2 and spans[-1][1] == len(text)


def test_spans_survive_lower_casing_that_changes_length(edge):
    text = "İstanbul report İİ tax"  # U+0130 lower-cases to two characters
    spans = edge.tokenizer.document_spans(text)
    assert len(spans) == edge.encode_documents([text])[0].shape[0]
    content = [s for s in spans if s != (-1, -1)]
    assert content[-1][1] == len(text)
    assert text[content[-1][0]:content[-1][1]].strip() == "tax"


@pytest.mark.parametrize("model", ["tiny", "edge"])
def test_query_rows_line_up_with_labels(model, request):
    encoder = request.getfixturevalue(model)
    for text, vectors in zip(QUERIES, encoder.encode_queries(QUERIES)):
        assert len(encoder.tokenizer.query_labels(text)) == vectors.shape[0]


def test_query_labels_show_markers_words_and_expansion(tiny, edge):
    labels = tiny.tokenizer.query_labels("Pass key?")
    assert labels[:2] == ["[CLS]", "[unused0]"]
    assert labels[2:4] == ["Pass", "key"]
    assert len(labels) == 32 and labels[-1] == "[MASK]"
    assert edge.tokenizer.query_labels("Tax")[:2] == ["[CLS]", "[Q]"]
    assert edge.tokenizer.query_labels("Tax")[-1] == "[SEP]"  # no expansion for the edge layout


def test_vectors_are_unit_length_float32(edge):
    for vectors in edge.encode_documents(DOCS) + edge.encode_queries(QUERIES):
        assert vectors.dtype == np.float32 and vectors.shape[1] == 48
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batching_restores_input_order(tiny_model_dir, tiny):
    small_batches = make_encoder(tiny_model_dir, max_tokens=512, batch_tokens=64)
    texts = [DOCS[3], "short", DOCS[0], "a b", DOCS[1], DOCS[3][:300]]
    batched = small_batches.encode_documents(texts)
    alone = [tiny.encode_documents([t])[0] for t in texts]
    assert_same_vectors(batched, alone)


def test_empty_inputs(tiny):
    assert tiny.encode_documents([]) == []
    assert tiny.encode_queries([]) == []


def test_model_loads_on_first_encode(tiny_model_dir):
    encoder = make_encoder(tiny_model_dir, max_tokens=512)
    assert encoder._model is None  # construction reads only the tokenizer and settings
    encoder.encode_queries(["x"])
    assert encoder._model is not None


def test_token_spans_cover_content_tokens_only(tiny):
    text = "Hello, World"
    spans = tiny.tokenizer.token_spans(text)
    assert "".join(text[s:e] for s, e in spans) == "Hello,World"
    assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_token_spans_on_a_megabyte_text(edge):
    text = (" ".join(generated_text(paragraphs=50, seed=5)) + "\n") * 45
    assert len(text) > 1_000_000
    spans = edge.tokenizer.token_spans(text)
    assert len(spans) > 100_000
    starts = [s for s, _ in spans]
    assert starts == sorted(starts) and spans[-1][1] <= len(text)


def test_plan_batches_respects_the_budget():
    lengths = [5, 100, 7, 90, 6, 300, 40]
    batches = plan_batches(lengths, budget=200)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        padded = max(lengths[i] for i in batch) * len(batch)
        assert padded <= 200 or len(batch) == 1
    assert plan_batches([], budget=10) == []


def test_queries_and_documents_from_several_threads(tiny):
    from concurrent.futures import ThreadPoolExecutor

    expected_docs, expected_queries = tiny.encode_documents(DOCS), tiny.encode_queries(QUERIES)
    with ThreadPoolExecutor(max_workers=4) as pool:
        docs = [pool.submit(tiny.encode_documents, DOCS) for _ in range(3)]
        queries = [pool.submit(tiny.encode_queries, QUERIES) for _ in range(3)]
        for future in docs:
            assert_same_vectors(future.result(), expected_docs)
        for future in queries:
            assert_same_vectors(future.result(), expected_queries)


def _wrapper_spans(encoder, text: str, *, max_length: int | None, special: bool):
    """Spans, ids and special marks through the transformers wrapper's own call (the path before the
    direct Rust calls), as the reference for them."""
    tok = encoder.tokenizer
    prepared, offsets = tok._prepare(text)
    enc = tok._tok(prepared, add_special_tokens=special, truncation=max_length is not None, max_length=max_length,
                   return_offsets_mapping=True, return_special_tokens_mask=True)
    return (list(enc["input_ids"]), [offsets.span(s, e) for s, e in enc["offset_mapping"]],
            list(enc["special_tokens_mask"]))


@pytest.mark.parametrize("which", ["tiny", "edge"])
def test_direct_tokenizer_calls_match_the_transformers_wrapper(which, request):
    encoder = request.getfixturevalue(which)
    tok = encoder.tokenizer
    texts = DOCS + QUERIES + ["İstanbul ǅemal ß straße", "tab\tnew\nline  ", "emoji 🙂 ok", "x" * 3000]
    limit = tok._content_limit(tok.document_prefix_id, 40)  # short, so that long texts are truncated
    for text in texts:
        for max_length, special in ((None, False), (limit, True)):
            enc, offsets = tok._encode(text, max_length=max_length, special=special)
            ids, spans, marks = _wrapper_spans(encoder, text, max_length=max_length, special=special)
            assert list(enc.ids) == ids
            assert [offsets.span(s, e) for s, e in enc.offsets] == spans
            assert list(enc.special_tokens_mask) == marks
    # the wrapper's own calls still see their own settings after the direct ones changed the Rust side
    assert _wrapper_spans(encoder, texts[3], max_length=None, special=True)[0] == \
        list(tok._tok(tok._prepare(texts[3])[0])["input_ids"])
    many = tok.document_spans_many(texts)
    assert many == [tok.document_spans(t) for t in texts]


def test_documents_and_loading_run_on_one_compute_thread_and_queries_on_the_callers(tiny_model_dir):
    """Every document batch runs on the encoder's own thread whichever thread asks (one team of torch workers);
    queries stay on the caller's thread; the thread ends on close()."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    info = ModelInfo(name="test", source="test", path=str(tiny_model_dir), fingerprint="x", dim=48, max_tokens=512)
    encoder = PyLateEncoder(tiny_model_dir, info, threads=1)
    seen: dict[str, set] = {"documents": set(), "queries": set(), "load": set()}
    plain_encode, plain_load = encoder._encode, encoder._load

    def spying_encode(texts, *, queries, batch_size):
        seen["queries" if queries else "documents"].add(threading.current_thread())
        return plain_encode(texts, queries=queries, batch_size=batch_size)

    def spying_load():
        seen["load"].add(threading.current_thread())
        return plain_load()

    encoder._encode, encoder._load = spying_encode, spying_load
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="caller") as callers:
        results = list(callers.map(encoder.encode_documents, [DOCS[:3], DOCS[3:]]))
        query = callers.submit(encoder.encode_queries, QUERIES[:1]).result()
    assert [len(r) for r in results] == [3, 3] and len(query) == 1
    assert len(seen["documents"]) == 1 and seen["documents"] == seen["load"]
    (compute,) = seen["documents"]
    assert compute.name.startswith("findling-encoder")
    assert seen["queries"] and all(t.name.startswith("caller") for t in seen["queries"])
    encoder.close()
    assert not compute.is_alive()
    assert len(encoder.encode_documents(DOCS[:1])) == 1  # a new compute thread after close()
    encoder.close()


def test_a_failure_on_the_compute_thread_reaches_the_caller(tiny_model_dir):
    info = ModelInfo(name="test", source="test", path=str(tiny_model_dir), fingerprint="x", dim=48, max_tokens=512)
    encoder = PyLateEncoder(tiny_model_dir, info, threads=1)

    def broken(texts, *, queries, batch_size):
        raise RuntimeError("out of memory in the encoder")

    encoder._encode = broken
    with pytest.raises(RuntimeError, match="out of memory"):
        encoder.encode_documents(DOCS[:2])
    encoder.close()
