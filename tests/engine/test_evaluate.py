"""``findling eval``: BEIR loading, hand-computed metrics, and a full run with the fake encoder."""
import argparse
import json
import math
import tempfile
from pathlib import Path

import pytest

from findling.engine.errors import DatasetError
from findling.evaluation import beir as evaluate
from findling.evaluation.command_line import run_standalone
from findling.evaluation.dataset import load_beir, subset
from findling.evaluation.dense_baseline import DenseBaseline
from findling.evaluation.harness import doc_id_of, doc_path
from findling.evaluation.metrics import mean_metrics, mrr_at_k, ndcg_at_k, recall_at_k

L3 = math.log2(3)  # the discount at rank 2

DOCS = [
    ("d1", "Tomato garden", "Tomatoes need sun and water every day."),
    ("d2", "Basil", "Prune the basil often so it grows bushy."),
    ("d3", "CSV files", "Read and write CSV files with the csv module."),
    ("d4", "JSON", "Encode and decode JSON documents with the json module."),
    ("d5", "Bicycle repair", "Fix a flat tyre with a patch kit and a pump."),
    ("d6", "", "Feed the starter flour and water, then bake the sourdough bread."),
]
QUERIES = [("q1", "tomatoes sun water"), ("q2", "read csv files"), ("q3", "flat tyre patch"),
           ("q4", "space travel"), ("q5", "bread")]
QRELS = [("q1", "d1", 2), ("q2", "d3", 1), ("q3", "d5", 1), ("q3", "d99", 1), ("q5", "d6", 0)]


def write_beir(root: Path, docs=DOCS, queries=QUERIES, qrels=QRELS) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs)
    (root / "corpus.jsonl").write_text(corpus)
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in queries))
    lines = "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + lines)
    return root


@pytest.fixture
def beir(tmp_path) -> Path:
    return write_beir(tmp_path / "tiny")


@pytest.fixture
def tmpdir_here(tmp_path, monkeypatch) -> Path:
    """Temporary stores go here, so a test can see what is left behind."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


# ------------------------------------------------------------------ metrics
def test_ndcg_uses_grade_as_gain_and_log2_discount():
    qrels = {"a": 2, "b": 1, "c": 0}
    # DCG = 0 + 1/log2(3) + 2/log2(4); ideal = 2/1 + 1/log2(3)
    assert ndcg_at_k(["x", "b", "a"], qrels, 10) == pytest.approx((1 / L3 + 1) / (2 + 1 / L3))
    assert ndcg_at_k(["x", "b", "a"], qrels, 10) == pytest.approx(0.619906, abs=1e-6)
    assert ndcg_at_k(["x", "b", "a"], qrels, 2) == pytest.approx((1 / L3) / (2 + 1 / L3))
    assert ndcg_at_k(["a", "b", "x"], qrels, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["c", "x"], qrels, 10) == 0.0


def test_ndcg_ideal_counts_judged_docs_never_retrieved():
    assert ndcg_at_k(["a"], {"a": 1, "z": 1}, 10) == pytest.approx(1 / (1 + 1 / L3))
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0  # nothing relevant: 0, not a division by zero


def test_ndcg_ideal_is_cut_at_k():
    qrels = {f"d{i}": 1 for i in range(12)}
    assert ndcg_at_k([f"d{i}" for i in range(10)], qrels, 10) == pytest.approx(1.0)


def test_recall_at_k():
    qrels = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["c", "a"], qrels, 100) == 0.5
    assert recall_at_k(["c", "a"], qrels, 1) == 0.0
    assert recall_at_k(["b", "a"], qrels, 100) == 1.0
    assert recall_at_k(["a"], {"a": 0}, 100) == 0.0


def test_mrr_at_k():
    qrels = {"a": 1, "c": 0}
    assert mrr_at_k(["c", "x", "a"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["c", "x", "a"], qrels, 2) == 0.0
    assert mrr_at_k(["a", "a"], qrels, 10) == 1.0


def test_mean_metrics_averages_over_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}}
    out = mean_metrics({"q1": ["a"], "q2": ["x", "b"]}, qrels)
    assert out["mrr@10"] == pytest.approx((1 + 1 / 2) / 2, abs=1e-5)
    assert out["recall@100"] == pytest.approx((1 + 0.5) / 2, abs=1e-5)
    assert out["ndcg@10"] == pytest.approx((1 + (1 / L3) / (1 + 1 / L3)) / 2, abs=1e-5)


# ------------------------------------------------------------------ loading
def test_load_keeps_queries_with_a_relevant_doc_in_file_order(beir):
    data = load_beir(beir)
    assert data.name == "tiny"
    assert [d.id for d in data.docs] == ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert list(data.queries) == ["q1", "q2", "q3"]  # q4 has no qrels, q5 only a grade 0
    assert data.qrels["q3"] == {"d5": 1, "d99": 1}
    assert data.docs[0].body == "Tomato garden\n\nTomatoes need sun and water every day."
    assert data.docs[5].body.startswith("Feed")  # no title: the text alone


def test_missing_file_says_what_a_beir_folder_holds(tmp_path):
    with pytest.raises(DatasetError, match="corpus.jsonl, queries.jsonl and qrels/test.tsv"):
        load_beir(tmp_path)


def test_bad_qrels_line_is_a_dataset_error(tmp_path):
    root = write_beir(tmp_path / "bad", qrels=[])
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(DatasetError, match="line 2"):
        load_beir(root)


def test_subset_keeps_relevant_docs_then_fills_in_corpus_order(beir):
    data = load_beir(beir)
    small = subset(data, max_docs=3, max_queries=2)
    assert list(small.queries) == ["q1", "q2"]
    assert [d.id for d in small.docs] == ["d1", "d2", "d3"]
    late = subset(data, max_docs=2, max_queries=None)  # relevant d1, d3, d5 exceed the cap: all kept
    assert [d.id for d in late.docs] == ["d1", "d3", "d5"]
    assert subset(data) == data


@pytest.mark.parametrize("doc_id", ["4983", "a/b", "..", ".", "x y%", "naïve", "-1"])
def test_doc_id_survives_the_path(doc_id):
    path = doc_path(doc_id)
    assert path.parent == Path("/beir")
    assert doc_id_of(path) == doc_id


# ------------------------------------------------------------------ full run
def test_run_end_to_end_matches_hand_computed_metrics(beir, fake_encoder, config, tmpdir_here):
    report = evaluate.evaluate_beir(beir, fake_encoder, config=config)
    # q1, q2 found first; q3 finds d5 first but its other relevant doc d99 is not in the corpus
    expected = {"ndcg@10": (1 + 1 + 1 / (1 + 1 / L3)) / 3, "recall@100": (1 + 1 + 0.5) / 3, "mrr@10": 1.0}
    for mode in ("bm25", "maxsim", "hybrid"):
        assert report.modes[mode] == pytest.approx(expected, abs=1e-5), mode
    x = report.extra
    assert (x["n_docs"], x["n_queries"], x["chunk_tokens"]) == (6, 3, 64)
    assert x["stored_vectors"] == x["n_tokens"] + x["n_chunks"]  # the fake adds one [D] row per chunk
    assert report.bytes_per_token == pytest.approx(x["store_bytes"] / x["stored_vectors"], abs=0.01)
    # the temporary index is gone (torch may leave its own cache folder in the temporary directory)
    assert [p for p in tmpdir_here.iterdir() if p.name.startswith("findling-eval-")] == []


def test_long_document_is_chunked_and_found_by_its_best_chunk(tmp_path, fake_encoder, config, tmpdir_here):
    filler = " ".join(["The grass is green."] * 60)
    docs = [("long", "", f"{filler}\nThe lighthouse keeper counts gulls.\n{filler}"), ("short", "", "gulls fly")]
    root = write_beir(tmp_path / "long", docs=docs, queries=[("q", "lighthouse keeper gulls")],
                      qrels=[("q", "long", 1)])
    report = evaluate.evaluate_beir(root, fake_encoder, config=config)
    assert report.extra["n_chunks"] > 3
    assert report.modes["maxsim"]["mrr@10"] == 1.0


def test_two_runs_give_equal_metrics(beir, fake_encoder, config):
    a = evaluate.evaluate_beir(beir, fake_encoder, config=config, max_queries=2, max_docs=4)
    b = evaluate.evaluate_beir(beir, fake_encoder, config=config, max_queries=2, max_docs=4)
    assert a.modes == b.modes
    assert (a.extra["n_docs"], a.extra["n_tokens"], a.extra["store_bytes"]) == \
           (b.extra["n_docs"], b.extra["n_tokens"], b.extra["store_bytes"])


def test_query_text_is_taken_literally(tmp_path, fake_encoder, config):
    root = write_beir(tmp_path / "odd", docs=[("a", "", "after the storm, ext tools")],
                      queries=[("q", 'after:soon "ext:py tools')], qrels=[("q", "a", 1)])
    report = evaluate.evaluate_beir(root, fake_encoder, config=config)  # no QueryError from filter syntax
    assert report.modes["bm25"]["mrr@10"] == 1.0


# ----------------------------------------------------------------------- CLI
@pytest.fixture
def fake_models(monkeypatch, fake_encoder):
    import findling.engine.encode.resolve

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: fake_encoder)
    return fake_encoder


def run_cli(config, *argv):
    parser = argparse.ArgumentParser(prog="findling")
    evaluate.add_eval_parser(parser.add_subparsers())
    args = parser.parse_args(["eval", *map(str, argv)])
    return args.func(args, config)


def test_cli_json_is_one_object_with_the_agreed_keys(beir, config, fake_models, capsys, tmpdir_here):
    assert run_cli(config, beir, "--json") == 0
    out = json.loads(capsys.readouterr().out)  # exactly one JSON document on stdout
    assert out["dataset"] == "tiny" and out["model"] == "fake-encoder"
    assert list(out["modes"]) == ["bm25", "maxsim", "dense", "hybrid"]  # no dense lane: the fake pools nothing
    for metrics in out["modes"].values():
        assert set(metrics) == {"ndcg@10", "recall@100", "mrr@10"}
        assert all(isinstance(v, float) and 0 <= v <= 1 for v in metrics.values())
    for key in ("encode_tokens_per_s", "query_ms_p50", "query_ms_p95", "bytes_per_token"):
        assert isinstance(out[key], float) and out[key] >= 0, key
    assert out["query_ms_p95"] >= out["query_ms_p50"]
    assert out["bytes_per_token"] > 2 * fake_models.dim  # float16 vectors plus text and keyword index
    assert isinstance(out["n_docs"], int) and out["store_path"] is None
    assert out["precision"] == "fp32"  # the fake encoder computes in float32; a DirectEncoder says its own


def test_the_report_names_the_arithmetic_the_encoder_used(beir, fake_encoder, config, monkeypatch):
    monkeypatch.setattr(fake_encoder, "precision", "bf16", raising=False)
    report = evaluate.evaluate_beir(beir, fake_encoder, config=config)
    assert report.extra["precision"] == "bf16"
    assert "(bf16)" in evaluate.format_report(report)


def test_cli_keep_leaves_the_index_and_prints_a_table(beir, config, fake_models, capsys, tmpdir_here):
    assert run_cli(config, beir, "--keep", "--max-queries", "1", "--max-docs", "2") == 0
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "hybrid" in out and "2 docs" in out and "1 queries" in out
    kept = out.split("index kept at ")[1].strip()
    assert Path(kept).is_file() and Path(kept).parent.parent == tmpdir_here


def test_module_entry_point_reports_a_missing_dataset(tmp_path, fake_models, capsys):
    code = run_standalone(evaluate._eval_arguments, [str(tmp_path / "nowhere")], prog="eval")
    assert code == 2
    assert "corpus.jsonl" in capsys.readouterr().err



def test_a_kept_index_searched_again_gives_the_same_metrics(beir, fake_encoder, config, tmpdir_here):
    first = evaluate.evaluate_beir(beir, fake_encoder, config=config, keep=True)
    kept = Path(first.extra["store_path"])
    # every connection closed (the hybrid searches' keyword lane has its own): the log is folded into the file,
    # and the size reported is the file's
    assert not kept.with_name(kept.name + "-wal").exists()
    assert first.extra["store_bytes"] == kept.stat().st_size
    again = evaluate.evaluate_beir(beir, fake_encoder, config=config, index=kept)
    assert again.modes == first.modes
    assert (again.extra["n_docs"], again.extra["n_chunks"], again.extra["n_tokens"]) == \
           (first.extra["n_docs"], first.extra["n_chunks"], first.extra["n_tokens"])
    assert again.extra["reused_index"] and again.encode_tokens_per_s == 0.0
    assert kept.is_file()  # a reused index is the caller's: left where it was


def test_a_kept_index_converted_to_another_vector_format(tmp_path, fake_encoder, config, tmpdir_here):
    docs = [(f"d{i}", f"note {i}", " ".join(f"word{(i * 7 + j) % 97} topic{i % 5}" for j in range(40)))
            for i in range(60)]
    queries = [(f"q{i}", f"word{(i * 7) % 97} topic{i % 5}") for i in range(10)]
    root = write_beir(tmp_path / "many", docs=docs, queries=queries, qrels=[(f"q{i}", f"d{i}", 1) for i in range(10)])
    first = evaluate.evaluate_beir(root, fake_encoder, config=config, keep=True, codec="fp16")
    assert first.extra["vector_format"] == "fp16"
    kept = Path(first.extra["store_path"])
    small = evaluate.evaluate_beir(root, fake_encoder, config=config, index=kept, codec="compact")
    assert small.extra["vector_format"] == "compact"
    from findling.engine import Store

    with Store(kept) as store:  # every BLOB now holds the compact codes: centroid id and residual bytes
        blobs = store.conn.execute("SELECT COALESCE(SUM(length(data)), 0) FROM vectors").fetchone()[0]
        assert blobs == small.extra["stored_vectors"] * store.codec.bytes_per_token
        assert store.codec.bytes_per_token < 2 * fake_encoder.info.dim / 4
    assert small.modes["bm25"] == first.modes["bm25"]  # the keyword lane does not read vectors


def test_reusing_a_missing_index_is_a_clear_error(beir, fake_encoder, config, tmp_path):
    with pytest.raises(DatasetError, match="no index there"):
        evaluate.evaluate_beir(beir, fake_encoder, config=config, index=tmp_path / "none.sqlite")


def test_cli_fusion_options_reach_the_report(beir, config, fake_models, capsys, tmpdir_here):
    assert run_cli(config, beir, "--json", "--fusion", "rrf", "--fusion-weight", "0.3") == 0
    out = json.loads(capsys.readouterr().out)
    from findling.engine.search.ranking import DEFAULT_FUSION

    # the options given replace the default's; the rest stay the default's
    assert out["fusion"] == {"method": "rrf", "weight": 0.3, "dense": DEFAULT_FUSION.dense,
                             "decay": DEFAULT_FUSION.decay, "keyword_decay": DEFAULT_FUSION.keyword_decay, "rrf_k": 60}
    with pytest.raises(DatasetError, match="within"):
        run_cli(config, beir, "--fusion-weight", "1.5")


# ------------------------------------------------------------------ the dense baseline
class WordBaseline(DenseBaseline):
    """The dense baseline's interface over word-hash vectors: one unit vector per text, no model."""

    def __init__(self):
        super().__init__()
        from tests.fakes import FakeEncoder

        self.fake = FakeEncoder(dim=32)
        self.encoded = 0

    def encode(self, texts):
        import numpy as np

        self.encoded += len(texts)
        return np.stack([v[1:].mean(axis=0) / np.linalg.norm(v[1:].mean(axis=0))
                         for v in self.fake.encode_documents(texts)])


def test_dense_mode_ranks_each_record_by_its_one_vector(beir, fake_encoder, config, tmpdir_here):
    import numpy as np

    baseline = WordBaseline()
    report = evaluate.evaluate_beir(beir, fake_encoder, config=config, baseline=baseline)
    assert list(report.modes) == ["bm25", "maxsim", "dense", "hybrid"]
    data = load_beir(beir)
    docs = baseline.encode([d.body for d in data.docs])
    runs = {}
    for q, text in data.queries.items():
        scores = docs @ baseline.encode([text])[0]
        runs[q] = [data.docs[i].id for i in np.argsort(-scores, kind="stable")]
    assert report.modes["dense"] == mean_metrics(runs, data.qrels)
    assert report.modes["dense"]["ndcg@10"] > 0.5  # word overlap finds the tomato, csv and tyre records


def test_a_kept_index_reuses_the_dense_baselines_vectors(beir, fake_encoder, config, tmpdir_here):
    baseline = WordBaseline()
    first = evaluate.evaluate_beir(beir, fake_encoder, config=config, keep=True, baseline=baseline)
    encoded = baseline.encoded
    again = evaluate.evaluate_beir(beir, fake_encoder, config=config, index=first.extra["store_path"],
                                   baseline=baseline)
    assert again.modes == first.modes
    assert baseline.encoded - encoded == 3  # the queries only: the records' vectors came from beside the index


def test_the_dense_lane_is_its_own_mode_when_the_model_pools(beir, config, tmpdir_here):
    from tests.engine.test_dense_lane import FakeDenseEncoder

    report = evaluate.evaluate_beir(beir, FakeDenseEncoder(), config=config, baseline=WordBaseline())
    assert list(report.modes) == ["bm25", "maxsim", "dense", "dense_lane", "hybrid"]
    assert report.modes["dense_lane"]["ndcg@10"] > 0.5
    assert report.extra["dense_dim"] == 16


@pytest.mark.bundled_model
def test_the_dense_baseline_is_the_real_backbone(beir, fake_encoder, config, tmpdir_here):
    report = evaluate.evaluate_beir(beir, fake_encoder, config=config)
    # all-MiniLM-L6-v2 finds every judged record of this set first
    assert report.modes["dense"]["mrr@10"] == pytest.approx(1.0)
