"""The training package end to end on a tiny locally built model: pairs, features, teacher scores, a few fit
steps (the loss falls), export, and the exported model loading in the engine and answering a search."""
from __future__ import annotations

import json

import numpy as np
import pytest

from findling.engine.config import Config
from findling.engine.encode.resolve import load_encoder
from findling.training.features import FeatureSet
from findling.training.fit import FitSettings, fit
from findling.training.head import Head, from_pylate, pca_map
from findling.training.pairs import pairs_from_jsonl

pytestmark = pytest.mark.slow


def test_tuples_keep_held_out_files_apart(toy_set):
    tuples, _, _ = toy_set
    test = tuples.split("test")
    train = tuples.split("train")
    assert test and train
    assert not {t["group"] for t in test} & {t["group"] for t in train}
    held_passages = {t["positive"] for t in test}
    for t in train:
        assert t["positive"] not in t["negatives"]
        assert not held_passages & set(t["negatives"]), "a held-out passage leaked into training as a negative"
    assert all(len(t["scores"]) == 1 + len(t["negatives"]) for t in tuples.tuples)


def test_features_match_the_engine_token_counts(toy_set, tiny_model_dir, tmp_path):
    tuples, _, p = toy_set
    encoder = load_encoder(Config(data_dir=tmp_path, model=str(tiny_model_dir)))
    engine_vectors = encoder.encode_documents(tuples.passages[:5])
    for i, vectors in enumerate(engine_vectors):
        assert len(np.asarray(getattr(vectors, "vectors", vectors))) == len(p.text(i))


def test_fit_lowers_the_loss_and_the_export_searches(toy_set, tiny_model_dir, tmp_path):
    tuples, q, p = toy_set
    head = Head(q.vectors.shape[1], 48, kind="ffn", mid=64)
    weight, bias = pca_map(np.asarray(p.vectors), 48 if q.vectors.shape[1] >= 48 else q.vectors.shape[1])
    if weight.shape[0] == 48:
        head.warm_start(weight, bias)
    logs: list[str] = []
    settings = FitSettings(steps=40, batch=8, lr=3e-3, checkpoint_every=20, warmup=0.0)
    fit(head, tuples.split("train"), q, p, tmp_path / "fit", settings, log=logs.append)
    history = __import__("torch").load(tmp_path / "fit" / "checkpoint.pt", weights_only=False)["history"]
    assert np.mean(history[-8:]) < np.mean(history[:8]), history

    from findling.training.export import export, framing_of

    out = export(head, tmp_path / "model", backbone_dir=tiny_model_dir, framing=framing_of(tiny_model_dir),
                 card="# toy\n")
    again = from_pylate(out)
    x = np.asarray(p.vectors[:20], dtype=np.float32)
    assert np.allclose(again.project(x), head.project(x), atol=1e-5)

    from findling.evaluation.dataset import Doc
    from findling.evaluation.harness import doc_path, index_documents
    from findling.engine.search.searcher import Searcher
    from findling.engine.store.store import Store

    config = Config(data_dir=tmp_path / "home", model=str(out))
    encoder = load_encoder(config)
    assert encoder.info.dim == 48
    docs = [Doc(str(i), "", text) for i, text in enumerate(tuples.passages)]
    config.data_dir.mkdir(parents=True, exist_ok=True)
    with Store(config.db_path) as store:
        index_documents(store, encoder, docs, config=config)
        first = tuples.tuples[0]
        hits = Searcher(store, encoder).search(first["query"], k=5, mode="maxsim")
    assert hits, "the exported model found nothing"
    # the engine ranks as the trained head does on the training side's cached vectors
    from findling.training.metrics import maxsim_matrix

    expected = maxsim_matrix([head.project(np.asarray(q.text(first["query_index"])))], p, project=head.project)[0]
    top = [str(i) for i in np.argsort(-expected)[:5]]
    assert hits[0].path == doc_path(top[0])
    assert len({h.path for h in hits} & {doc_path(i) for i in top}) >= 4


def test_resume_continues_from_the_checkpoint(toy_set, tmp_path):
    tuples, q, p = toy_set
    head = Head(q.vectors.shape[1], 16, kind="linear")
    fit(head, tuples.split("train"), q, p, tmp_path, FitSettings(steps=10, batch=4, checkpoint_every=5),
        log=lambda *_: None)
    logs: list[str] = []
    fit(Head(q.vectors.shape[1], 16, kind="linear"), tuples.split("train"), q, p, tmp_path,
        FitSettings(steps=15, batch=4, checkpoint_every=5), log=logs.append)
    assert any("resuming at step 10/15" in line for line in logs)


def test_pairs_from_jsonl_skips_short_passages(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"query": "what is green", "passage": "The grass is green and the sky is blue, here we go again."},
            {"query": "too short", "passage": "tiny"}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    pairs = pairs_from_jsonl(path)
    assert [p.query for p in pairs] == ["what is green"]


@pytest.mark.parametrize("token_weight", [0.0, 1.0])
def test_in_batch_candidates_lower_the_loss(toy_set, tmp_path, token_weight):
    tuples, q, p = toy_set
    head = Head(q.vectors.shape[1], 16, kind="ffn", mid=32)
    settings = FitSettings(steps=30, batch=8, lr=3e-3, checkpoint_every=30, warmup=0.0, candidates="batch",
                           token_weight=token_weight)
    fit(head, tuples.split("train"), q, p, tmp_path / "fit", settings, log=lambda *_: None)
    history = __import__("torch").load(tmp_path / "fit" / "checkpoint.pt", weights_only=False)["history"]
    assert np.mean(history[-8:]) < np.mean(history[:8]), history


def test_batch_maxsim_equals_the_reference_on_random_vectors():
    import torch

    from findling.training.fit import _padded, maxsim_all
    from findling.training.metrics import maxsim_matrix

    rng = np.random.default_rng(3)
    q_len, d_len = [3, 5], [4, 1, 7]
    qs = [rng.normal(size=(n, 6)).astype(np.float32) for n in q_len]
    ds = [rng.normal(size=(n, 6)).astype(np.float32) for n in d_len]
    q, qmask = _padded(torch.from_numpy(np.concatenate(qs)), q_len)
    d, dmask = _padded(torch.from_numpy(np.concatenate(ds)), d_len)
    ours = maxsim_all(q, qmask, d, dmask).numpy()
    reference = maxsim_matrix(qs, FeatureSet(np.concatenate(ds), np.cumsum([0] + d_len)))
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)
    # by hand: the first query against the one-token document is the sum of its tokens' dot products
    np.testing.assert_allclose(ours[0, 1], float((qs[0] @ ds[1].T).sum()), rtol=1e-5)
    per_token = maxsim_all(q, qmask, d, dmask, per_token=True).numpy()
    assert per_token.shape == (2, 3, 5)
    np.testing.assert_allclose(per_token.sum(-1), ours, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(per_token[0, :, 3:], 0.0)  # the first query has 3 tokens: the rest is padding
    np.testing.assert_allclose(per_token[1, 2], (qs[1] @ ds[2].T).max(axis=1), rtol=1e-5)


def test_token_kl_is_zero_for_the_teacher_itself_and_ignores_padding():
    import torch

    from findling.training.fit import _token_kl

    rng = np.random.default_rng(5)
    teacher = torch.from_numpy(rng.uniform(0.1, 0.9, size=(2, 4, 3)).astype(np.float32))
    teacher[1, :, 2] = 0.0  # the second query's third token is padding
    assert float(_token_kl(teacher.clone(), teacher, 0.05)) == pytest.approx(0.0, abs=1e-6)
    student = teacher.clone()
    student[1, :, 2] = torch.tensor([5.0, -5.0, 0.0, 1.0])  # noise at the padded position changes nothing
    assert float(_token_kl(student, teacher, 0.05)) == pytest.approx(0.0, abs=1e-6)
    student[0, 0, 0] += 0.3  # a real token's ranking of the candidates changes: the loss rises
    assert float(_token_kl(student, teacher, 0.05)) > 1e-3


def test_a_mixed_teacher_keeps_maxsim_units_and_follows_the_other_signals():
    import torch

    from findling.training.fit import fused_teacher

    maxsim = torch.tensor([[10.0, 8.0, 6.0, 4.0]])
    bm25 = torch.tensor([[0.0, 0.0, 0.0, 9.0]])  # only the last candidate shares the query's words
    dense = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    alone = fused_teacher(maxsim, dense, bm25, dense_weight=0.0, bm25_weight=0.0)
    assert torch.allclose(alone, maxsim)  # no mixing: the wide MaxSim teacher as it was
    mixed = fused_teacher(maxsim, dense, bm25, dense_weight=0.5, bm25_weight=2.0)
    assert float(mixed.mean()) == pytest.approx(7.0)  # centred where MaxSim is
    assert int(mixed.argmax()) == 3  # the candidate both other signals prefer moves to the top
    assert float(mixed[0, 0]) > float(mixed[0, 1]) > float(mixed[0, 2])  # the rest keep MaxSim's order


def test_a_mixed_teacher_fits_from_keyword_lists(toy_set, tmp_path):
    from findling.training.score import keyword_lists

    tuples, q, p = toy_set
    train = [dict(t) for t in tuples.split("train")]
    keyword_lists(train, tuples.passages, depth=20)
    assert all(t["bm25"] and all(score > 0 for _pid, score in t["bm25"]) for t in train)
    head = Head(q.vectors.shape[1], 16, kind="ffn", mid=32)
    settings = FitSettings(steps=30, batch=8, lr=3e-3, checkpoint_every=30, warmup=0.0, candidates="batch",
                           teacher_dense=0.5, teacher_bm25=0.5)
    fit(head, train, q, p, tmp_path / "fit", settings, log=lambda *_: None)
    history = __import__("torch").load(tmp_path / "fit" / "checkpoint.pt", weights_only=False)["history"]
    assert np.mean(history[-8:]) < np.mean(history[:8]), history
    with pytest.raises(SystemExit, match="token_weight"):
        fit(Head(q.vectors.shape[1], 16, kind="ffn", mid=32), train, q, p, tmp_path / "fit2",
            FitSettings(steps=2, batch=4, candidates="batch", teacher_bm25=0.5, token_weight=1.0),
            log=lambda *_: None)


def test_in_batch_fitting_needs_no_stored_teacher_scores_but_a_mixed_teacher_needs_keyword_lists():
    from findling.training.pairs import TupleSet
    from findling.training.recipe import scored

    bare = TupleSet(["a passage"], [{"query": "q", "positive": 0, "negatives": []}])
    assert scored({"fit": {"candidates": "batch"}}, bare)  # the wide teacher is computed per batch
    assert not scored({"fit": {"candidates": "tuple"}}, bare)  # the tuple loss reads stored scores
    assert not scored({"fit": {"candidates": "batch", "teacher_bm25": 0.5}}, bare)
    bare.tuples[0]["bm25"] = [[0, 1.5]]
    assert scored({"fit": {"candidates": "batch", "teacher_bm25": 0.5}}, bare)
    assert not scored({"teacher": "colbert", "fit": {"candidates": "batch"}}, bare)
