"""Which model encodes: resolution without network, identity (fingerprint) and the explicit download.

Order, first that is usable wins:

1. ``config.model`` (``--model`` / ``FINDLING_MODEL``): an existing folder is used as is; any other string is a
   hub name looked up in the local Hugging Face cache only. A model the user asked for that is missing or
   broken is an error (``ModelError``), never a silent switch to another model: vectors of another model would
   not be what was asked for.
2. ``mixedbread-ai/mxbai-edge-colbert-v0-17m`` from the local Hugging Face cache (``HF_HUB_CACHE``,
   ``HF_HOME``/hub, or ``~/.cache/huggingface/hub``).
3. The bundled fallback (``findling.engine.encode.bundled``), assembled under ``config.models_dir``.

Nothing here opens a network connection except ``download_model``, which runs only on request
(``findling model download``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from findling.engine.encode import bundled
from findling.engine.config import TARGET_MODEL, Config
from findling.engine.encode.encoder import Encoder, ModelInfo
from findling.engine.errors import ModelError

logger = logging.getLogger(__name__)

MAX_TOKENS_CAP = 32768
ROTARY_MODEL_TYPES = frozenset({"modernbert"})  # rotary positions: no learned table bounds the length
FINGERPRINT_FILES = ("config_sentence_transformers.json", "tokenizer.json")
DENSE_POOLING_FILE = "dense_pooling.json"
"""Declares that the model's backbone is a sentence-embedding model: ``{"pooling": "mean", "normalize": true}``
(mean over the attended tokens, then L2 normalisation). Not part of the fingerprint: it changes no token vector."""
WHAT_TO_DO = (
    "Run `findling model download` on a machine with internet (then copy the Hugging Face cache folder), "
    "or pass --model PATH to a PyLate model folder."
)


@dataclass(frozen=True)
class ResolvedModel:
    """A usable model folder and how it was found; ``tried`` lists what was passed over and why."""

    name: str
    source: str  # "user", "hf-cache", "bundled"
    path: Path
    note: str = ""
    tried: tuple[str, ...] = ()


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time."""
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(os.path.expandvars(env)).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(home)).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def find_in_hf_cache(name: str, cache_dir: Path) -> Path:
    """The cached snapshot folder of hub model ``name`` (the one ``refs/main`` points at), without network."""
    repo = cache_dir / ("models--" + name.replace("/", "--"))
    if not repo.is_dir():
        raise LookupError(f"not in the Hugging Face cache at {cache_dir}")
    ref = repo / "refs" / "main"
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text().strip()
        if snapshot.is_dir():
            return snapshot
    snapshots = sorted((p for p in (repo / "snapshots").glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    if not snapshots:
        raise LookupError(f"the cache folder {repo} holds no snapshot (interrupted download?)")
    return snapshots[-1]


def check_model_folder(folder: Path) -> None:
    """Raise ``ValueError`` saying why ``folder`` is not a complete PyLate model in safetensors."""
    for required in ("config.json", "modules.json", "tokenizer.json"):
        if not (folder / required).is_file():
            raise ValueError(f"{folder} has no {required}: not a PyLate model folder (or a partial download)")
    if not any(folder.glob("model*.safetensors")):
        pickled = any(folder.glob("*.bin"))
        raise ValueError(f"{folder} has no model.safetensors" + (" (only pickle .bin weights, which are not loaded)"
                                                                  if pickled else ""))
    heads = _dense_folders(folder)
    if not heads:
        raise ValueError(f"{folder} has no projection head (Dense module): not a ColBERT model")
    for head in heads:
        if not (head / "model.safetensors").is_file() or not (head / "config.json").is_file():
            raise ValueError(f"the projection head {head} lacks config.json or model.safetensors")


def _dense_folders(folder: Path) -> list[Path]:
    with open(folder / "modules.json", encoding="utf-8") as f:
        modules = json.load(f)
    return [folder / m["path"] for m in modules if m.get("type", "").endswith("Dense") and m.get("path")]


def _user_candidate(name: str) -> ResolvedModel:
    path = Path(name).expanduser()
    if path.is_dir():
        check_model_folder(path)
        return ResolvedModel(name=str(path.resolve()), source="user", path=path.resolve())
    if path.exists():
        raise ValueError(f"{path} is a file; give the model's folder")
    if _looks_like_path(name):
        raise ValueError(f"the folder {path} does not exist")
    snapshot = find_in_hf_cache(name, hf_cache_dir())
    check_model_folder(snapshot)
    return ResolvedModel(name=name, source="user", path=snapshot)


def _looks_like_path(name: str) -> bool:
    """Hub names are ``name`` or ``org/name``; anything else that is not a folder was meant as a path."""
    return Path(name).expanduser().is_absolute() or name.startswith((".", "~")) or name.count("/") > 1 or "\\" in name


def _cache_candidate() -> ResolvedModel:
    snapshot = find_in_hf_cache(TARGET_MODEL, hf_cache_dir())
    check_model_folder(snapshot)
    return ResolvedModel(name=TARGET_MODEL, source="hf-cache", path=snapshot)


def _bundled_candidate(config: Config) -> ResolvedModel:
    path = bundled.assemble(config.models_dir)
    check_model_folder(path)
    note = (f"Using the bundled fallback model ({bundled.BUNDLED_NAME}): the target model {TARGET_MODEL} is not "
            f"in the Hugging Face cache, and search quality is lower. {WHAT_TO_DO}")
    return ResolvedModel(name=bundled.BUNDLED_NAME, source="bundled", path=path, note=note)


def resolve_model(config: Config) -> ResolvedModel:
    """The first usable model in the documented order; ``ModelError`` listing every attempt if none is."""
    tried: list[str] = []
    if config.model:
        try:
            return _user_candidate(config.model)
        except (ValueError, LookupError, OSError) as exc:
            given = "given with --model, FINDLING_MODEL or `findling model use`"
            raise _no_model([f"{config.model} ({given}): {exc}"], user=config.model)
    for label, candidate in ((TARGET_MODEL + " from the Hugging Face cache", _cache_candidate),
                             (f"bundled model {bundled.BUNDLED_NAME}", lambda: _bundled_candidate(config))):
        try:
            found = candidate()
        except (ValueError, LookupError, OSError, ModelError) as exc:
            tried.append(f"{label}: {exc}")
            continue
        return replace(found, tried=tuple(tried))
    raise _no_model(tried)


def _no_model(tried: list[str], *, user: str | None = None) -> ModelError:
    lines = "\n".join(f"  - {t}" for t in tried)
    hint = WHAT_TO_DO
    if user:
        hint = (f"Run `findling model download {user}` on a machine with internet, point --model at a model "
                "folder, or unset FINDLING_MODEL to use the default model.")
    return ModelError(f"No usable model. Tried:\n{lines}\n{hint}")


def model_info(resolved: ResolvedModel, *, config: Config) -> ModelInfo:
    """Identity, dimension and length limit of a resolved model (reads configs and hashes weights)."""
    folder = resolved.path
    heads = _dense_folders(folder)
    with open(heads[-1] / "config.json", encoding="utf-8") as f:
        dim = int(json.load(f)["out_features"])
    return ModelInfo(
        name=resolved.name,
        source=resolved.source,
        path=str(folder),
        fingerprint=fingerprint(folder, cache_file=config.models_dir / "fingerprints.json"),
        dim=dim,
        max_tokens=max_tokens(folder),
        note=resolved.note,
        dense_dim=dense_dim(folder),
    )


def dense_dim(folder: Path) -> int:
    """The backbone's hidden size when ``folder`` declares mean pooling (``DENSE_POOLING_FILE``), else 0.

    A declaration Findling cannot honour (another pooling, no normalisation, unreadable) counts as none, with a
    log line: the model then searches without its dense lane instead of with a wrong one."""
    path = folder / DENSE_POOLING_FILE
    if not path.is_file():
        return 0
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        with open(folder / "config.json", encoding="utf-8") as f:
            hidden = int(json.load(f)["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("%s: ignored (%s); no dense lane", path, exc)
        return 0
    if not isinstance(spec, dict) or spec.get("pooling") != "mean" or spec.get("normalize") is not True:
        logger.warning("%s: only {\"pooling\": \"mean\", \"normalize\": true} is supported; no dense lane", path)
        return 0
    return hidden


def max_tokens(folder: Path) -> int:
    """Longest input the backbone takes: its position table, or the cap for rotary-position backbones."""
    with open(folder / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    model_type = config.get("model_type", "")
    if model_type in ROTARY_MODEL_TYPES:
        return MAX_TOKENS_CAP
    positions = int(config.get("max_position_embeddings", 512))
    if model_type in ("roberta", "xlm-roberta", "camembert"):  # positions start after the padding index
        positions -= int(config.get("pad_token_id", 1)) + 1
    return min(positions, MAX_TOKENS_CAP)


def load_encoder(config: Config) -> Encoder:
    """Resolve the model and wrap it in a ``DirectEncoder`` (the network itself loads on first encode).

    Hugging Face libraries are put in offline mode first: loading a model never touches the network
    (only ``download_model`` does, on explicit request).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from findling.engine.encode.direct_encoder import DirectEncoder

    resolved = resolve_model(config)
    for line in resolved.tried:
        logger.info("model passed over: %s", line)
    if resolved.note:
        logger.info(resolved.note)  # callers show ModelInfo.note to the user
    info = model_info(resolved, config=config)
    try:
        return DirectEncoder(resolved.path, info, threads=config.threads, batch_tokens=config.encode_batch_tokens,
                             precision=config.encoder_precision,
                             workers=config.encode_workers)
    except (OSError, ValueError) as exc:
        raise _no_model([*resolved.tried, f"{resolved.name} at {resolved.path}: tokenizer failed to load: {exc}"])


def load_announced(config: Config) -> Encoder:
    """``load_encoder``, naming the model in use (and any fallback note) on stderr, as every CLI command does."""
    enc = load_encoder(config)
    note = f" - {enc.info.note}" if enc.info.note else ""
    print(f"model: {enc.info.name} ({enc.info.source}){note}", file=sys.stderr)
    return enc


def download_model(name: str = TARGET_MODEL, *, config: Config) -> Path:
    """Download ``name`` into the Hugging Face cache (safetensors and configs only) and check it; needs internet."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(
            repo_id=name,
            cache_dir=str(hf_cache_dir()),
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.md", "*/*.json", "*/*.safetensors"],
        ))
    except Exception as exc:  # network, authentication, missing repository: all end here
        raise ModelError(f"could not download {name}: {exc}. Check the name and the internet connection.") from exc
    try:
        check_model_folder(path)
    except ValueError as exc:
        raise ModelError(f"downloaded {name}, but it is not a usable PyLate model: {exc}") from exc
    fingerprint(path, cache_file=config.models_dir / "fingerprints.json")  # so the next start-up is fast
    return path


def fingerprint(folder: Path, *, cache_file: Path | None = None) -> str:
    """sha256 over the weight files (and the files that shape tokenisation), in path order.

    Per-file digests are cached in ``cache_file`` keyed by resolved path, size and mtime.
    """
    cache = _read_cache(cache_file)
    digest = hashlib.sha256()
    for rel, path in _fingerprint_files(folder):
        digest.update(rel.encode() + b"\0" + _file_digest(path, cache).encode() + b"\n")
    _write_cache(cache_file, cache)
    return digest.hexdigest()


def _fingerprint_files(folder: Path) -> list[tuple[str, Path]]:
    files = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.endswith(".safetensors") or name in FINGERPRINT_FILES:
                path = Path(root) / name
                files.append((path.relative_to(folder).as_posix(), path))
    return sorted(files)


def _file_digest(path: Path, cache: dict) -> str:
    real = path.resolve()
    stat = real.stat()
    key = str(real)
    entry = cache.get(key)
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return entry["sha256"]
    h = hashlib.sha256()
    with open(real, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    cache[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": h.hexdigest()}
    return cache[key]["sha256"]


def _read_cache(cache_file: Path | None) -> dict:
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        with open(cache_file, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(cache_file: Path | None, cache: dict) -> None:
    if cache_file is None:
        return
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, cache_file)
    except OSError as exc:  # a read-only data folder only costs start-up time
        logger.debug("fingerprint cache not written: %s", exc)
