"""Run a training recipe end to end: pairs -> features -> score -> fit -> export -> evaluate.

A recipe is a JSON file (see ``findling/training/recipes/``): which model to start from, which data, which teacher,
which head and loss, and what the result should score. Every step writes its output into the work folder and
is skipped when that output is already there, so a stopped run picks up where it was. Paths in a recipe are
relative to the recipe file, ``$DATA`` to the shared data folder (``FINDLING_DATA``, default
``../shared/data`` beside the checkout). Under ``torchrun``/``accelerate launch`` the fit is shared by all the
processes and everything else is done by rank 0 (see ``main_run``).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path


from findling.training import features as feats
from findling.training import pairs as pairs_mod
from findling.training import pseudo, score
from findling.training.distributed import Group, barrier, broadcast_object, group, quiet
from findling.training.fit import FitSettings, fit
from findling.training.head import Head, sampled_pca

ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    return Path(os.environ.get("FINDLING_DATA") or ROOT.parent / "shared" / "data")


def resolve(path: str, base: Path) -> Path:
    if path.startswith("$DATA"):
        return data_dir() / path[len("$DATA"):].lstrip("/")
    if path.startswith("$ROOT"):
        return ROOT / path[len("$ROOT"):].lstrip("/")
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def load_recipe(path: Path) -> dict:
    recipe = json.loads(Path(path).read_text())
    recipe["_base"] = str(Path(path).resolve().parent)
    return recipe


def start_model(recipe: dict, work: Path) -> Path:
    """The PyLate folder whose backbone and framing training starts from."""
    start = recipe["start"]
    if start == "bundled":
        from findling.engine.encode import bundled

        return bundled.assemble(work / "models")
    return resolve(start, Path(recipe["_base"]))


def collect_pairs(recipe: dict) -> list[pairs_mod.Pair]:
    base = Path(recipe["_base"])
    out: list[pairs_mod.Pair] = []
    for source in recipe["data"]:
        kind, limit, seed = source["kind"], source.get("limit"), recipe.get("seed", 0)
        if kind == "jsonl":
            got = pairs_mod.pairs_from_jsonl(resolve(source["path"], base), limit=limit, seed=seed)
        elif kind == "beir":
            got = pairs_mod.pairs_from_beir(resolve(source["path"], base), split=source.get("split", "train"),
                                            limit=limit, seed=seed)
        elif kind == "folder":
            docs = pseudo.documents_from_folder(resolve(source["path"], base))
            got = pseudo.pairs_from_documents(docs, seed=seed)[:limit]
        elif kind == "index":
            from findling.engine.store.store import Store

            with Store(resolve(source["path"], base)) as store:
                folder = source.get("folder")
                docs = list(pseudo.documents_from_store(store, folder=resolve(folder, base) if folder else None))
            got = pseudo.pairs_from_documents(docs, seed=seed)[:limit]
        else:
            raise SystemExit(f"unknown data kind {kind!r} (jsonl, beir, folder, index)")
        print(f"  {kind} {source.get('path')}: {len(got)} pairs")
        out.extend(got)
    return out


def step_pairs(recipe: dict, work: Path) -> pairs_mod.TupleSet:
    folder = work / "tuples"
    if (folder / "tuples.jsonl").is_file():
        return pairs_mod.TupleSet.load(folder)
    pairs = collect_pairs(recipe)
    tuples = pairs_mod.build_tuples(pairs, negatives=recipe.get("negatives", 15),
                                    held_out=recipe.get("held_out", 0.0), seed=recipe.get("seed", 0))
    queries = sorted({t["query"] for t in tuples.tuples})
    index = {q: i for i, q in enumerate(queries)}
    for t in tuples.tuples:
        t["query_index"] = index[t["query"]]
    tuples.save(folder)
    (folder / "queries.json").write_text(json.dumps(queries))
    print(f"  {len(tuples.tuples)} tuples over {len(tuples.passages)} passages -> {folder}")
    return tuples


def step_features(model, tuples: pairs_mod.TupleSet, work: Path, batch_tokens: int):
    queries = json.loads((work / "tuples" / "queries.json").read_text())
    q = feats.cached_features(model, queries, is_query=True, folder=work / "features", name="queries",
                              batch_tokens=batch_tokens)
    p = feats.cached_features(model, tuples.passages, is_query=False, folder=work / "features",
                              name="passages", batch_tokens=batch_tokens)
    return q, p


def scored(recipe: dict, tuples: pairs_mod.TupleSet) -> bool:
    """Whether the tuples hold every teacher score the fit reads: in-batch fitting with the wide teacher scores
    each batch's candidates as it goes and reads none; otherwise each tuple needs its ``scores``. A teacher
    that mixes in BM25 also needs each tuple's ``bm25`` list."""
    if recipe.get("fit", {}).get("teacher_bm25") and not all("bm25" in t for t in tuples.tuples):
        return False
    if recipe.get("teacher", "wide-maxsim") == "wide-maxsim" and recipe.get("fit", {}).get("candidates") == "batch":
        return True
    return all("scores" in t for t in tuples.tuples)


def step_score(recipe: dict, tuples: pairs_mod.TupleSet, q, p, work: Path) -> None:
    if recipe.get("fit", {}).get("teacher_bm25") and not all("bm25" in t for t in tuples.tuples):
        score.keyword_lists(tuples.tuples, tuples.passages)
        tuples.save(work / "tuples")
    if scored(recipe, tuples):
        return
    teacher = recipe.get("teacher", "wide-maxsim")
    if teacher == "wide-maxsim":
        score.wide_maxsim(tuples.tuples, q, p)
    else:
        texts = json.loads((work / "tuples" / "queries.json").read_text())
        model = resolve(recipe["teacher_model"], Path(recipe["_base"]))
        getattr(score, teacher)(tuples.tuples, texts, tuples.passages, model)
    tuples.save(work / "tuples")


def new_head(recipe: dict, p: feats.FeatureSet, width: int, model_dir: Path) -> Head:
    spec = recipe.get("head", {})
    if spec.get("warm_start") == "current":  # fine-tune the start model's own head
        from findling.training.head import from_pylate

        return from_pylate(model_dir)
    head = Head(width, spec.get("dim", 48), kind=spec.get("kind", "ffn"), mid=spec.get("mid"))
    if spec.get("warm_start", "pca") == "pca":
        weight, bias = sampled_pca(p.vectors, head.dim)
        head.warm_start(weight, bias)
    return head


PREPARATION = ("pairs", "features", "score")


def main_run(recipe_path: Path, work: Path, *, stop_after: str | None = None) -> Path | None:
    """Run the recipe's steps into ``work``; returns the exported model folder (None when stopped earlier).

    Under ``torchrun``/``accelerate launch`` every process runs this same call: rank 0 alone prepares (pairs,
    backbone features, teacher scores: one process does them all while the others wait at a barrier), then
    all ranks fit the head together, then rank 0 alone saves, exports and evaluates while the others return
    None. The others read what rank 0 prepared from ``work``, so on several machines it must be a folder they
    all see. Preparing first in one process (``--stop-after score``) and launching the rest under torchrun
    gives the same result, without GPUs idling through the preparation.
    """
    from findling.training.runtime import pick_device

    with group(pick_device()) as g:
        return _run(recipe_path, work, stop_after, g)


def _prepare(recipe: dict, work: Path, stop_after: str | None) -> tuple | None:
    """Steps 1-3, each resumed from its files: tuples, query and passage features, the start model's folder.

    None when ``stop_after`` ends the run within them.
    """
    print("1/6 pairs")
    tuples = step_pairs(recipe, work)
    if stop_after == "pairs":
        return None
    print("2/6 backbone features (the slow step on a CPU; it resumes from its files)")
    model_dir = start_model(recipe, work)
    model = feats.load_backbone_model(model_dir)
    q, p = step_features(model, tuples, work, recipe.get("batch_tokens", 16384))
    if stop_after == "features":
        return None
    print("3/6 teacher scores")
    step_score(recipe, tuples, q, p, work)
    if stop_after == "score":
        return None
    return tuples, q, p, model_dir


def _prepared_by_rank_0(recipe: dict, work: Path, rank: int) -> tuple:
    """What ``_prepare`` made on rank 0, read back from ``work`` by another rank (which loads no backbone)."""
    tuples_file, features = work / "tuples" / "tuples.jsonl", work / "features"
    ready = tuples_file.is_file() and feats.FeatureSet.exists(features, "queries") \
        and feats.FeatureSet.exists(features, "passages")
    tuples = pairs_mod.TupleSet.load(work / "tuples") if ready else None
    if tuples is None or not scored(recipe, tuples):
        raise SystemExit(f"rank {rank}: rank 0 prepared the tuples, features and teacher scores, but this process "
                         f"does not find them all in {work}: on several machines the work folder must be one they "
                         "all see (or run --stop-after score first and copy the folder to every machine)")
    return (tuples, feats.FeatureSet.load(features, "queries"), feats.FeatureSet.load(features, "passages"),
            start_model(recipe, work))


def _run(recipe_path: Path, work: Path, stop_after: str | None, g: Group) -> Path | None:
    from findling.training.runtime import configure_threads

    say = print if g.is_main else quiet
    recipe = load_recipe(recipe_path)
    work.mkdir(parents=True, exist_ok=True)
    threads = configure_threads()
    started = time.time()
    shared = f", rank 0 of {g.world} processes" if g.active else ""
    say(f"recipe {recipe_path} -> work folder {work} ({threads} threads{shared})")
    prepared = _prepare(recipe, work, stop_after) if g.is_main else None
    barrier(g)  # the other ranks wait here while rank 0 prepares
    if stop_after in PREPARATION:
        return None
    tuples, q, p, model_dir = prepared if g.is_main else _prepared_by_rank_0(recipe, work, g.rank)
    say("4/6 fit")
    head_path = work / "head.pt"
    if broadcast_object(not head_path.is_file(), g):  # rank 0's view decides, so all ranks fit or none
        head = new_head(recipe, p, q.vectors.shape[1], model_dir)
        train = [t for t in tuples.tuples if t.get("split", "train") == "train"]
        settings = FitSettings(**recipe.get("fit", {}))
        fit(head, train, q, p, work / "fit", settings)
        if g.is_main:
            head.save(head_path)
    if not g.is_main:
        return None
    head = Head.load(head_path)
    if stop_after == "fit":
        return None
    print("5/6 export")
    from findling.training.export import export, framing_of
    from findling.training.card import model_card

    out = resolve(recipe["out"], Path(recipe["_base"]))
    export(head, out, backbone_dir=model_dir, framing=framing_of(model_dir),
           card=model_card(recipe, recipe_path, time.time() - started), layout=recipe.get("layout", "full"))
    print(f"  wrote {out}")
    if stop_after == "export":
        return out
    if recipe.get("held_out"):
        print("6/6 held-out evaluation (pseudo-queries of files training never saw)")
        report = step_evaluate(recipe, tuples, q, p, head, model_dir, work)
        print(format_report(report))
    print(f"done in {time.time() - started:.0f} s")
    return out


def step_evaluate(recipe: dict, tuples, q, p, head: Head, model_dir: Path, work: Path) -> dict:
    from findling.training.head import from_pylate
    from findling.training.heldout import evaluate_heads

    heads = {"after": head.project}
    try:
        heads = {"before": from_pylate(model_dir).project, **heads}
    except ValueError as exc:  # a head this package cannot read: report the trained one alone
        print(f"  (no 'before' figure: {exc})")
    report = evaluate_heads(tuples, q, p, heads)
    if "before" in report:
        before, after = report["before"]["ndcg@10"], report["after"]["ndcg@10"]
        report["relative_gain"] = round((after - before) / before, 4) if before else None
    (work / "heldout.json").write_text(json.dumps(report, indent=1))
    return report


def format_report(report: dict) -> str:
    lines = [f"  {report['queries']} held-out queries over {report['passages']} passages"]
    for name in ("bm25", "before", "after"):
        if name in report:
            r = report[name]
            lines.append(f"  {name:<7} nDCG@10 {r['ndcg@10']:.4f}  Recall@100 {r['recall@100']:.4f}")
    if report.get("relative_gain") is not None:
        lines.append(f"  change in nDCG@10: {report['relative_gain']:+.1%}")
    return "\n".join(lines)
