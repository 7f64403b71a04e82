"""The quick BEIR probe: reciprocal-rank fusion by hand, and a run on a small BEIR folder with a tiny model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from findling.engine.search.ranking import Ranked, fuse
from findling.training.pairs import bm25_scores
from findling.training.probe import engine_fusion, main, rrf


def test_rrf_adds_reciprocal_ranks_and_ignores_unranked_docs():
    a = np.array([[3.0, 2.0, 1.0]])  # ranks doc0, doc1, doc2
    b = np.array([[-1.0, 5.0, 4.0]])  # doc0 unranked (-1), then doc1, doc2
    fused = rrf(a, b, k=1)
    assert fused[0, 0] == pytest.approx(1 / 2)
    assert fused[0, 1] == pytest.approx(1 / 3 + 1 / 2)
    assert fused[0, 2] == pytest.approx(1 / 4 + 1 / 3)


def test_engine_fusion_ranks_documents_as_the_searcher_fuses_its_lanes():
    rng = np.random.default_rng(3)
    maxsim = rng.normal(20.0, 2.0, size=(4, 80)).astype(np.float32)
    bm25 = np.where(rng.random((4, 80)) < 0.5, rng.gamma(2.0, 3.0, size=(4, 80)), 0.0).astype(np.float32)
    fused = engine_fusion(maxsim, bm25)
    for row in range(4):
        lanes = {"maxsim": sorted((Ranked(d, d, float(maxsim[row, d])) for d in range(80)), key=lambda r: -r.score),
                 "keyword": sorted((Ranked(d, d, float(bm25[row, d])) for d in range(80) if bm25[row, d] > 0),
                                   key=lambda r: -r.score)}
        want = [r.file_id for r in fuse(lanes)]
        assert np.argsort(-fused[row], kind="stable")[:len(want)].tolist() == want
    # the MaxSim lane returns every document here (it is deeper than 80), so each gets a rank
    assert np.isfinite(fused).all()


def test_bm25_scores_are_fts5_scores_of_matching_passages_only():
    passages = ["volcano lava eruption", "lava lamp", "violin concerto", "volcano volcano ash"]
    scores = bm25_scores(passages, ["volcano lava", "piano"], depth=10)
    assert scores.shape == (2, 4)
    assert scores[0, 0] > 0 and scores[0, 1] > 0 and scores[0, 3] > 0 and scores[0, 2] == 0
    assert scores[0, 0] > scores[0, 1]  # both words beat one
    assert not scores[1].any()  # no passage has the word


@pytest.mark.slow
def test_probe_scores_heads_on_a_beir_folder(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "toy"
    (folder / "qrels").mkdir(parents=True)
    topics = ["volcano lava eruption", "violin orchestra concerto", "glacier ice melting", "compiler parser grammar",
              "tomato garden soil", "satellite orbit launch"]
    docs = [{"_id": f"d{i}", "title": t.split()[0], "text": f"A note about {t} and more on {t}."}
            for i, t in enumerate(topics)]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"_id": f"q{i}", "text": t})
                                                   for i, t in enumerate(topics)))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                               "".join(f"q{i}\td{i}\t1\n" for i in range(len(topics))))
    assert main([str(folder), "--work", str(tmp_path / "work"), "--model", str(tiny_model_dir),
                 "--head", "raw"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["queries"] == 6 and result["docs"] == 6
    assert result["bm25"] == pytest.approx(1.0)  # each query's words occur in its document only
    raw = result["heads"]["raw"]
    # the untrained raw vectors: an identical word in query and document matches with cosine 1
    assert 0.0 <= raw["maxsim"] <= 1.0 and raw["recall@100"] == pytest.approx(1.0)
    # BM25 finds only the relevant document, so fusion puts it first whatever MaxSim says
    assert raw["hybrid"] == pytest.approx(1.0)
    assert 0.0 <= raw["default"] <= 1.0
    assert (tmp_path / "work" / "toy" / "corpus.vectors.npy").is_file()  # cached for the next run
