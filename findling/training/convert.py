"""Turn a dense sentence-transformers model into a PyLate ColBERT with a chosen head.

The dense model's pooling and normalisation are dropped: ColBERT scores every token. The new head (``linear``
or the 2-layer ``ffn`` with residuals) starts as a random orthogonal map to ``dim`` dimensions carried by the
residual path (which keeps dot products roughly in proportion), so the converted model already ranks
sensibly before any training; ``python -m findling.training run`` with ``"warm_start": "current"`` then trains it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from findling.training.export import export
from findling.training.head import Head


def convert(dense_model: Path, out: Path, *, dim: int = 48, kind: str = "ffn", query_length: int = 64,
            document_length: int = 512, seed: int = 0) -> Path:
    dense_model = Path(dense_model)
    if not (dense_model / "config.json").is_file() and not (dense_model / "modules.json").is_file():
        raise SystemExit(f"{dense_model} is not a model folder (no config.json or modules.json)")
    width = _hidden_size(dense_model)
    head = Head(width, dim, kind=kind)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((width, dim)))
    head.warm_start((q.T * np.sqrt(width / dim)).astype(np.float32), None, seed=seed)
    framing = {"query_prefix": "", "document_prefix": "", "query_length": query_length,
               "document_length": document_length, "do_query_expansion": False}
    card = (f"# ColBERT from {dense_model.name}\n\nConverted by `findling train convert` with an untrained "
            f"{kind} head to {dim} dims. Train it before use: `python -m findling.training run RECIPE` with "
            "`\"start\"` set to this folder and `\"head\": {\"warm_start\": \"current\"}`.\n")
    return export(head, Path(out), backbone_dir=_transformer_dir(dense_model), framing=framing, card=card)


def _transformer_dir(model: Path) -> Path:
    """The folder holding the backbone: the model folder itself, or its Transformer module's folder."""
    import json

    modules = model / "modules.json"
    if modules.is_file():
        for m in json.loads(modules.read_text()):
            if m.get("type", "").endswith("Transformer"):
                return model / m.get("path", "")
    return model


def _hidden_size(model: Path) -> int:
    import json

    config = json.loads((_transformer_dir(model) / "config.json").read_text())
    for key in ("hidden_size", "d_model", "dim"):
        if key in config:
            return int(config[key])
    raise SystemExit(f"cannot tell the hidden size of {model} from its config.json")
