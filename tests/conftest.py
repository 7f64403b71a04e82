"""Shared fixtures: settings in tmp_path, a real store, the deterministic fake encoder."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from hypothesis import settings  # noqa: E402

# property tests run with a fixed seed, so every run (and CI) is reproducible; HYPOTHESIS_PROFILE=dev explores
settings.register_profile("ci", derandomize=True)
settings.register_profile("dev")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from findling.engine.config import Config  # noqa: E402
from findling.engine.store.store import Store  # noqa: E402
from tests.fakes import FakeEncoder  # noqa: E402


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return replace(Config(data_dir=tmp_path / "findling-data"), max_chunk_tokens=64, chunk_overlap_tokens=8,
                   threads=1, debounce_seconds=0.2)


@pytest.fixture
def store(config: Config):
    s = Store(config.db_path)
    yield s
    s.close()


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A small real folder of documents."""
    root = tmp_path / "docs"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "csv.md").write_text("# CSV files\n\nRead and write CSV files with the csv module.\n")
    (root / "notes" / "json.md").write_text("# JSON\n\nEncode and decode JSON documents with the json module.\n")
    (root / "garden.txt").write_text("Tomatoes need sun and water. Prune the basil often.\n")
    (root / "code.py").write_text("def parse_csv(path):\n    '''Parse a CSV file into rows.'''\n    return []\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.txt").write_text("hidden csv text")
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random BERT ColBERT in PyLate's format, built locally (no download)."""
    from tests.model_factory import build_tiny_bert_model

    return build_tiny_bert_model(tmp_path_factory.mktemp("models") / "tiny-colbert")
