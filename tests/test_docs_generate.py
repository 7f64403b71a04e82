"""docs/generate.py renders the benchmark, quality and CLI pages from their data, and docs/cli.md is current."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_generator():
    spec = importlib.util.spec_from_file_location("findling_docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

from docs.pages import cards as page_cards, cli as page_cli, markdown as page_md  # noqa: E402  (gen puts the root on the path)
from docs.pages import readme as page_readme, runs as page_runs  # noqa: E402


def tables(markdown: str) -> list[list[list[str]]]:
    """Every Markdown table of ``markdown``: a list of rows (header first, separator dropped) of stripped cells."""
    found, current = [], None
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if current is None:
                current = []
                found.append(current)
            if not all(set(c) <= {"-"} for c in line.strip().strip("|").split("|")):
                current.append(cells)
        else:
            current = None
    return found


def table_with(markdown: str, first_header: str, *, containing: str | None = None,
               key: str | None = None) -> dict[str, dict[str, str]]:
    """The table whose header starts with ``first_header`` (and has a column ``containing``), as
    {cell of column ``key`` (default: the first): {column: cell}}."""
    for rows in tables(markdown):
        header = rows[0]
        if header[0] == first_header and (containing is None or containing in header):
            at = header.index(key) if key else 0
            return {row[at]: dict(zip(header, row)) for row in rows[1:]}
    raise AssertionError(f"no table starting with {first_header!r} in:\n{markdown}")


def section(markdown: str, title: str) -> str:
    """The text under the heading ``## title`` up to the next heading of that level."""
    lines = markdown.splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end])


SAMPLE_ROWS = [
    {"name": "indexing tokens/s (wall)", "value": 1432.7, "unit": "tok/s", "peer": "PyLate encode",
     "peer_value": 325.6, "ratio": 4.4002, "target": ">= 3x peer", "ok": True},
    {"name": "search p95 while indexing", "value": 91.8, "unit": "ms", "peer": "search p95 idle",
     "peer_value": 48.3, "ratio": 1.9006, "target": "<= 1.5x peer", "ok": False, "cpu_ms": 127.25},
    {"name": "memory serving", "value": 612.0, "unit": "MB", "peer": None, "peer_value": None, "ratio": None,
     "target": "<= 1 GB", "ok": True},
]


def test_benchmarks_page_shows_the_header_and_every_target_with_its_peer_and_ratio(tmp_path):
    path = tmp_path / "bench-results.json"
    header = {"machine": "AMD EPYC 9B45, 2 CPUs", "cpu_flags": ["avx2", "avx512f", "avx512_bf16"],
              "date": "2026-12-07T10:11:12Z", "commit": "abc1234", "python": "3.11.9"}
    path.write_text(json.dumps({"header": header, "results": SAMPLE_ROWS}))
    page = gen.benchmarks_page(path)
    for line in ("- Machine: AMD EPYC 9B45, 2 CPUs", "- CPU flags: avx2 avx512f avx512_bf16",
                 "- Date: 2026-12-07T10:11:12Z", "- Commit: abc1234", "- python: 3.11.9"):
        assert line in page.splitlines()
    rows = table_with(page, "benchmark", containing="ratio")
    assert list(rows) == [r["name"] for r in SAMPLE_ROWS]
    first = rows["indexing tokens/s (wall)"]
    assert first["value"] == "1,433 tok/s" and first["peer"] == "PyLate encode"
    assert first["peer value"] == "325.6 tok/s" and first["ratio"] == "4.4x" and first["met"] == "yes"
    second = rows["search p95 while indexing"]
    assert (second["value"], second["ratio"], second["target"], second["met"]) == ("91.8 ms", "1.9x", "<= 1.5x peer",
                                                                                 "**no**")
    third = rows["memory serving"]
    assert (third["peer"], third["peer value"], third["ratio"]) == ("–", "–", "–")
    extra = table_with(page, "benchmark", containing="cpu_ms")
    assert extra["search p95 while indexing"]["cpu_ms"] == "127.2"  # a field added later gets its own column
    assert "2 of 3 targets met; not met: search p95 while indexing." in page
    assert page_md.NO_RUN not in page


def test_benchmarks_page_reads_a_plain_list_of_rows_and_says_what_the_run_did_not_record(tmp_path):
    path = tmp_path / "bench-results.json"
    path.write_text(json.dumps([{"name": "long chunks 32k", "value": 3.0, "unit": "x", "target": ">= 2x",
                                 "new_field": "kept"}]))
    page = gen.benchmarks_page(path)
    assert "- Commit: – (not recorded)" in page.splitlines()
    row = table_with(page, "benchmark", containing="ratio")["long chunks 32k"]
    assert (row["value"], row["peer"], row["met"]) == ("3 x", "–", "–")
    assert table_with(page, "benchmark", containing="new_field")["long chunks 32k"]["new_field"] == "kept"


def test_benchmarks_page_reads_the_runners_file_with_its_machine_and_modules(tmp_path):
    """The shape bench/run.py writes: the machine as an object, per-module runs, rows tagged with their module."""
    path = tmp_path / "bench-results.json"
    path.write_text(json.dumps({
        "machine": {"model": "AMD EPYC 9B45", "cpus": 2, "flags": ["avx2", "avx512_bf16"]},
        "date": "2026-12-07T10:00:00+00:00", "commit": "0123abcd-dirty", "quick": False,
        "modules": [{"module": "indexing", "date": "2026-12-07T10:00:00+00:00", "commit": "0123abcd-dirty",
                     "failed": False},
                    {"module": "search", "date": "2026-12-06T09:00:00+00:00", "commit": "99aa", "failed": True}],
        "results": [{"module": "indexing", **SAMPLE_ROWS[0]}, {"module": "search", **SAMPLE_ROWS[1]}]}))
    page = gen.benchmarks_page(path)
    for line in ("- Machine: AMD EPYC 9B45, 2 CPUs", "- CPU flags: avx2 avx512_bf16",
                 "- Date: 2026-12-07T10:00:00+00:00", "- Commit: 0123abcd-dirty"):
        assert line in page.splitlines()
    assert "quick" not in page
    modules = table_with(page, "module", containing="ran")
    assert modules["search"]["ran"] == "**failed**" and modules["search"]["commit"] == "99aa"
    assert modules["indexing"]["ran"] == "yes"
    targets = table_with(page, "module", containing="ratio", key="benchmark")
    assert targets["indexing tokens/s (wall)"]["module"] == "indexing"
    assert targets["search p95 while indexing"]["ratio"] == "1.9x"
    quick = json.loads(path.read_text())
    quick["quick"] = True
    path.write_text(json.dumps(quick))
    assert "This was a `--quick` run" in gen.benchmarks_page(path)


def test_benchmarks_header_in_the_list_is_found(tmp_path):
    path = tmp_path / "bench-results.json"
    path.write_text(json.dumps([{"header": {"commit": "fedcba9", "date": "2026-12-08"}}, SAMPLE_ROWS[0]]))
    page = gen.benchmarks_page(path)
    assert "- Commit: fedcba9" in page.splitlines() and "- Date: 2026-12-08" in page.splitlines()
    assert list(table_with(page, "benchmark", containing="ratio")) == ["indexing tokens/s (wall)"]


@pytest.mark.parametrize("content", [None, "{not json", "42"], ids=["missing", "broken", "not-a-list"])
def test_benchmarks_page_without_a_readable_run_invents_nothing(tmp_path, content):
    path = tmp_path / "bench-results.json"
    if content is not None:
        path.write_text(content)
    page = gen.benchmarks_page(path)
    assert page_md.NO_RUN in page
    assert not tables(page)
    if content is not None:
        assert "could not be read" in page


def eval_report(dataset: str, modes: dict, **extra) -> dict:
    return {"dataset": dataset, "model": "all-MiniLM-L6-v2-colbert-48", "modes": modes,
            "encode_tokens_per_s": 2345.6, "query_ms_p50": 21.37, "query_ms_p95": 40.02, "bytes_per_token": 21.5,
            "split": "test", "n_docs": 5183, "n_queries": 300, "precision": "bf16", "vector_format": "residual",
            **extra}


def test_quality_page_has_one_row_per_data_set_and_a_column_per_mode(tmp_path):
    results = tmp_path / "eval-results"
    scifact = eval_report("scifact", {
        "bm25": {"ndcg@10": 0.68812, "recall@100": 0.91, "mrr@10": 0.655},
        "maxsim": {"ndcg@10": 0.70213, "recall@100": 0.93, "mrr@10": 0.671},
        "hybrid": {"ndcg@10": 0.72209, "recall@100": 0.945, "mrr@10": 0.69}})
    cranfield = eval_report("cranfield", {
        "bm25": {"ndcg@10": 0.3625, "recall@100": 0.7, "mrr@10": 0.6},
        "hybrid": {"ndcg@10": 0.39, "recall@100": 0.77, "mrr@10": 0.62},
        "dense": {"ndcg@10": 0.351, "recall@100": 0.69, "mrr@10": 0.58},  # a mode added later
        "colbert-v3": {"ndcg@10": 0.41}}, n_docs=1400, n_queries=225)
    stamp = {"date": "2026-12-07 09:00 UTC", "machine": "Zen 5 EPYC, 2 CPUs, Linux", "commit": "1234abc"}
    for report in (scifact, cranfield):
        gen.record_eval(json.dumps(report), results, stamp=stamp)
    page = gen.quality_page(results)
    ndcg = table_with(page, "data set", containing="date")
    header = tables(page)[0][0]
    assert header[4:9] == ["bm25", "maxsim", "dense", "hybrid", "colbert-v3"]  # known modes first, in order
    assert ndcg["scifact"]["bm25"] == "0.6881" and ndcg["scifact"]["hybrid"] == "0.7221"
    assert ndcg["scifact"]["dense"] == "–"  # not measured in that run: no figure invented
    assert ndcg["cranfield"]["dense"] == "0.3510" and ndcg["cranfield"]["maxsim"] == "–"
    assert ndcg["cranfield"]["colbert-v3"] == "0.4100" and ndcg["cranfield"]["docs"] == "1,400"
    for run in ndcg.values():
        assert (run["date"], run["machine"], run["commit"]) == (stamp["date"], stamp["machine"], stamp["commit"])
    recall = table_with(section(page, "Recall@100"), "data set")
    assert recall["scifact"]["maxsim"] == "0.9300" and recall["cranfield"]["dense"] == "0.6900"
    assert table_with(section(page, "MRR@10"), "data set")["scifact"]["hybrid"] == "0.6900"
    speed = table_with(page, "data set", containing="bytes/token")
    assert speed["scifact"]["query p95 ms"] == "40.02" and speed["scifact"]["vector format"] == "residual"
    assert page_md.NO_RUN not in page


def test_a_later_run_of_the_same_data_set_and_model_replaces_the_earlier(tmp_path):
    results = tmp_path / "eval-results"
    modes = {"hybrid": {"ndcg@10": 0.5, "recall@100": 0.8, "mrr@10": 0.4}}
    first = gen.record_eval(json.dumps(eval_report("scifact", modes)), results, stamp={"commit": "old1111"})
    modes["hybrid"]["ndcg@10"] = 0.6
    second = gen.record_eval(json.dumps(eval_report("scifact", modes)), results, stamp={"commit": "new2222"})
    assert first == second and len(list(results.iterdir())) == 1
    row = table_with(gen.quality_page(results), "data set", containing="date")["scifact"]
    assert (row["hybrid"], row["commit"]) == ("0.6000", "new2222")


def test_quality_page_without_runs_and_with_a_bad_file(tmp_path):
    results = tmp_path / "eval-results"
    assert page_md.NO_RUN in gen.quality_page(results) and not tables(gen.quality_page(results))
    results.mkdir()
    (results / "broken.json").write_text('{"dataset": "x"}')
    page = gen.quality_page(results)
    assert page_md.NO_RUN in page and "broken.json" in page and "modes" in page


def test_record_eval_refuses_what_is_not_an_eval_report(tmp_path):
    for text in ("[1, 2]", '{"dataset": "scifact"}', "no json"):
        with pytest.raises(ValueError):
            gen.record_eval(text, tmp_path / "eval-results", stamp={})
    assert not (tmp_path / "eval-results").exists() or not list((tmp_path / "eval-results").iterdir())


def test_record_eval_from_standard_input_stamps_the_run(tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.setattr(gen, "EVAL_DIR", tmp_path / "eval-results")
    monkeypatch.setitem(gen.PAGE_FILES, "quality", tmp_path / "quality.md")
    monkeypatch.setitem(gen.PAGE_MAKERS, "quality", lambda: gen.quality_page(tmp_path / "eval-results"))
    report = eval_report("nfcorpus", {"bm25": {"ndcg@10": 0.3, "recall@100": 0.5, "mrr@10": 0.4}})
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(report)))
    assert gen.main(["record-eval"]) == 0
    stored = json.loads(next((tmp_path / "eval-results").iterdir()).read_text())
    assert stored["result"] == report and set(stored["header"]) == {"date", "machine", "commit"}
    row = table_with((tmp_path / "quality.md").read_text(), "data set", containing="date")["nfcorpus"]
    assert row["bm25"] == "0.3000" and row["commit"] == stored["header"]["commit"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("not a report"))
    assert gen.main(["record-eval"]) == 2
    assert "not a findling eval --json report" in capsys.readouterr().err


def test_check_names_a_page_that_is_not_current(tmp_path, monkeypatch, capsys):
    page = tmp_path / "benchmarks.md"
    monkeypatch.setitem(gen.PAGE_FILES, "benchmarks", page)
    monkeypatch.setitem(gen.PAGE_MAKERS, "benchmarks", lambda: gen.benchmarks_page(tmp_path / "none.json"))
    page.write_text("hand-edited\n")
    assert gen.main(["benchmarks", "--check"]) == 1
    assert "benchmarks.md" in capsys.readouterr().err and page.read_text() == "hand-edited\n"
    assert gen.main(["benchmarks"]) == 0 and page_md.NO_RUN in page.read_text()
    assert gen.main(["benchmarks", "--check"]) == 0


def test_cli_page_walks_every_command_of_a_parser():
    parser = argparse.ArgumentParser(prog="findling", description="Top.")
    sub = parser.add_subparsers(metavar="COMMAND")
    outer = sub.add_parser("outer", help="the outer one", description="Outer things.")
    inner = outer.add_subparsers(metavar="ACTION")
    leaf = inner.add_parser("leaf", help="the leaf", epilog="examples:\n  findling outer leaf X",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    leaf.add_argument("thing")
    page = page_cli.render_cli(parser)
    assert [line.split("|")[1].strip() for line in page.splitlines() if line.startswith("| [`")] == [
        "[`findling outer`](#findling-outer)", "[`findling outer leaf`](#findling-outer-leaf)"]
    assert "| the leaf |" in page
    for heading in ("## findling", "## findling outer", "## findling outer leaf"):
        assert heading in page.splitlines()
    assert "usage: findling outer leaf [-h] thing" in page and "  findling outer leaf X" in page


def test_docs_cli_md_is_current():
    from findling.cli.main import _parser

    expected = page_cli.render_cli(_parser())
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") if (ROOT / "docs" / "cli.md").is_file() else ""
    assert current == expected, ("docs/cli.md does not match the findling parser's help; regenerate it with "
                                 "`.venv/bin/python docs/generate.py cli` and commit the result")


def _placeholders(message: str, **values: str) -> str:
    """``message`` with each real value replaced by the placeholder docs/troubleshooting.md writes for it."""
    for placeholder, real in values.items():
        message = message.replace(real, placeholder)
    return message


def test_troubleshooting_quotes_the_messages_as_the_code_words_them(tmp_path):
    """The page's messages are the code's, with PATH, DETAIL and the like in place of the real values."""
    import sqlite3
    import subprocess
    import textwrap

    from findling.engine.config import Config
    from findling.engine.encode.resolve import resolve_model
    from findling.engine.errors import IndexLocked, ModelError
    from findling.engine.extract import ocr, pdf
    from findling.engine.store.index_file import WriterLock, damaged, explain

    page = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    path = tmp_path / "data" / "index.sqlite"
    expected = [f"findling: {damaged(Path('PATH'), 'DETAIL')}"]
    for code, text in ((sqlite3.SQLITE_FULL, "database or disk is full"), (sqlite3.SQLITE_BUSY, "DETAIL"),
                       (sqlite3.SQLITE_READONLY, "DETAIL"), (sqlite3.SQLITE_IOERR, "DETAIL")):
        error = sqlite3.OperationalError(text)
        error.sqlite_errorcode = code
        expected.append(str(explain(error, Path("PATH"))))
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError) as no_model:
        resolve_model(Config(data_dir=tmp_path / "data", model=str(missing)))
    expected += [f"findling: {_placeholders(str(no_model.value), PATH=str(missing))}"]
    expected.append(f"{pdf.NO_TEXT_REASON}; OCR is off: REASON")
    expected.append(ocr.SWITCHED_OFF)

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from findling.engine.store.index_file import WriterLock
        WriterLock(Path({str(path)!r})).acquire()
        print("held", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexLocked) as locked:
            WriterLock(path).acquire()
    finally:
        holder.communicate("", timeout=60)
    expected.append(f"findling: {_placeholders(str(locked.value), PATH=str(path), **{'12345': str(holder.pid)})}")

    absent = [message for message in expected if message not in page]
    assert not absent, "docs/troubleshooting.md does not quote these messages as the code words them:\n" + \
        "\n".join(absent)


def test_the_readme_figures_block_shows_the_default_beside_its_baselines_and_the_targets():
    import docs.generate as g

    runs = [page_runs.read_eval({"dataset": "toyset", "model": "toy-model", "date": "2026-01-02 03:04 UTC",
                         "commit": "abc1234",
                         "modes": {"hybrid": {"ndcg@10": 0.7312}, "bm25": {"ndcg@10": 0.6543},
                                   "dense": {"ndcg@10": 0.6123}}})]
    rows = [{"name": "indexing vs peer", "value": 9000.0, "unit": "tok/s", "peer": "PyLate", "peer_value": 3000.0,
             "ratio": 3.0, "target": ">= 3x", "ok": True},
            {"name": "no target", "value": 1.0, "unit": "ms"}]
    text = "\n".join(page_readme.render_figures(runs, {"commit": "def5678"}, rows))
    assert "| toyset | toy-model | 0.7312 | 0.6543 | 0.6123 |" in text.replace("  ", " ")
    assert "indexing vs peer" in text and "3x" in text and "def5678" in text
    assert "no target" not in text
    assert page_readme.render_figures([], None, None) == [page_md.NO_RUN]


def test_regenerating_the_readme_changes_only_its_figures_block(tmp_path):
    import docs.generate as g

    readme = tmp_path / "README.md"
    readme.write_text("# T\n\nbefore\n\n<!-- figures:start (generated) -->\nold figures\n<!-- figures:end -->\n\nafter\n")
    out = g.readme_page(readme, tmp_path / "none.json", tmp_path / "none")
    assert out == "# T\n\nbefore\n\n<!-- figures:start (generated) -->\n" + page_md.NO_RUN + "\n<!-- figures:end -->\n\nafter\n"


# ------------------------------------------------------------------------------------------ model cards
TOY_RECIPE = {"name": "toy-colbert-8", "description": "A toy head for the card tests.", "start": "bundled",
              "licence": "Apache-2.0", "data": [{"kind": "jsonl", "path": "$DATA/train/toy.jsonl", "limit": 10}],
              "head": {"kind": "ffn", "dim": 8}, "fit": {"steps": 3},
              "expect": {"toy set, MaxSim, as the recipe words it": 0.4321},
              "built": "Built in a test"}


def toy_card(models: Path, name: str = "toy-colbert-8") -> Path:
    """A card as the training export writes it, under ``models/<name>/README.md``, plus a hand-written line."""
    from findling.training.card import model_card

    text = model_card({**TOY_RECIPE, "name": name}, Path("findling/training/recipes/toy.json"), 60.0)
    text = text.replace("## Data", "Hand-written: dense pooling as the backbone was trained.\n\n## Data", 1)
    card = models / name / "README.md"
    card.parent.mkdir(parents=True)
    card.write_text(text, encoding="utf-8")
    return card


def subsection(markdown: str, title: str) -> str:
    """The text from the heading ``### title ...`` up to the next such heading."""
    start = markdown.index(f"### {title} ")
    end = markdown.find("\n### ", start)
    return markdown[start:] if end < 0 else markdown[start:end]


def outside_block(text: str) -> tuple[str, str]:
    """What a card holds before its scores block (start marker line included) and from its end marker on."""
    from findling.training.card import SCORES_END, SCORES_START

    start = text.index("\n", text.index(SCORES_START)) + 1
    return text[:start], text[text.index(SCORES_END, start):]


def test_a_card_is_written_at_export_with_an_empty_scores_block_and_the_recipes_targets_apart():
    from findling.training.card import NO_SCORES, SCORES_END, SCORES_START_LINE, model_card

    card = model_card(TOY_RECIPE, Path("findling/training/recipes/toy.json"), 60.0)
    scores = section(card, "Scores")
    assert scores.strip().splitlines() == [SCORES_START_LINE, NO_SCORES, SCORES_END]
    assert "0.4321" not in scores and "record-eval" in NO_SCORES and "generate.py card" in NO_SCORES
    rebuild = section(card, "Rebuild")
    targets = rebuild[rebuild.index("### Targets a rebuild should reproduce"):]
    assert "not measurements" in targets
    assert table_with(targets, "target (as the recipe describes it)")[
        "toy set, MaxSim, as the recipe words it"]["nDCG@10"] == "0.4321"
    assert card.count("0.4321") == 1  # the settings dump does not repeat the targets
    assert '"steps": 3' in rebuild


def test_a_card_gets_each_data_sets_modes_stamp_and_command_and_keeps_its_other_text(tmp_path):
    models, results = tmp_path / "models", tmp_path / "eval-results"
    card = toy_card(models)
    toy_card(models, "other-model")
    before = card.read_text(encoding="utf-8")
    stamp = {"date": "2026-12-07 09:00 UTC", "machine": "Zen 5 EPYC, 2 CPUs, Linux", "commit": "1234abc"}
    scifact = eval_report("scifact", {
        "bm25": {"ndcg@10": 0.68812, "recall@100": 0.91}, "maxsim": {"ndcg@10": 0.70213, "recall@100": 0.93},
        "dense": {"ndcg@10": 0.645, "recall@100": 0.925}, "dense_lane": {"ndcg@10": 0.6506, "recall@100": 0.935},
        "hybrid": {"ndcg@10": 0.72209, "recall@100": 0.945}},
        model="findling/toy-colbert-8", chunk_tokens=480, reused_index=False,
        fusion={"method": "zscore", "weight": 0.2, "dense": 0.1, "decay": 0.0, "keyword_decay": 0.25, "rrf_k": 60})
    cranfield = eval_report("cranfield", {"bm25": {"ndcg@10": 0.3625}, "hybrid": {"ndcg@10": 0.39}},
                            model=str(tmp_path / "elsewhere" / "toy-colbert-8"), n_docs=1400, n_queries=225,
                            precision="fp32", vector_format="fp16")
    other = eval_report("scifact", {"hybrid": {"ndcg@10": 0.1111}}, model="findling/other-model")
    for report in (scifact, cranfield, other):
        gen.record_eval(json.dumps(report), results, stamp=stamp)

    pages = gen.card_pages(models, results)
    text = pages[card]
    assert outside_block(text) == outside_block(before)  # markers and hand-written parts byte for byte
    scores = section(text, "Scores")
    assert "0.1111" not in scores and "0.1111" in section(pages[models / "other-model" / "README.md"], "Scores")
    sci = subsection(scores, "scifact")
    assert "### scifact (test split: 5,183 documents, 300 queries)" in scores
    rows = table_with(sci, "mode")
    assert rows[page_cards.CARD_MODES["hybrid"]] == {"mode": page_cards.CARD_MODES["hybrid"], "nDCG@10": "0.7221",
                                              "Recall@100": "0.9450"}
    assert [r["nDCG@10"] for r in rows.values()] == ["0.7221", "0.6881", "0.7021", "0.6450", "0.6506"]
    assert list(rows)[0] == page_cards.CARD_MODES["hybrid"]  # the default ranking first
    assert ("- Run: 2026-12-07 09:00 UTC; machine Zen 5 EPYC, 2 CPUs, Linux; commit 1234abc; encoder precision "
            "bf16; vectors residual.") in sci.splitlines()
    cran = subsection(scores, "cranfield")
    assert "Recall@100" not in cran  # not recorded in that run: no column, no figure invented
    assert table_with(cran, "mode")[page_cards.CARD_MODES["bm25"]]["nDCG@10"] == "0.3625"
    assert "maxsim" not in cran
    assert f"--model {tmp_path / 'elsewhere' / 'toy-colbert-8'}" in cran and "FINDLING_PRECISION=fp32" in cran
    assert "--model" not in sci.split("- Reproduce:")[1]  # the bundled model runs without --model
    from findling.training.card import NO_SCORES
    assert NO_SCORES not in text


def reproduce_args(command: str):
    """The ``findling eval`` arguments a card's reproduce command parses to, with the command's environment."""
    import shlex

    from findling.cli.main import _parser

    words = shlex.split(command.split(" | ")[0])
    env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    at = words.index("findling")
    assert command.endswith("| python docs/generate.py record-eval")
    return env, _parser().parse_args(words[at + 1:])


def test_the_reproduce_command_sets_every_recorded_setting_through_findlings_own_parser():
    run = page_runs.read_eval(eval_report(
        "nfcorpus", {"hybrid": {"ndcg@10": 0.3}}, model="/models/toy-colbert-8", split="dev", precision="fp32",
        vector_format="compact", chunk_tokens=256,
        fusion={"method": "rrf", "weight": 0.35, "dense": 0.05, "decay": 0.5, "keyword_decay": 0.0, "rrf_k": 60}))
    env, args = reproduce_args(page_cards.reproduce_command(run))
    assert env == {"FINDLING_PRECISION": "fp32"}
    assert args.dataset == f"{page_cards.DATA_SHOWN}/nfcorpus" and args.model == "/models/toy-colbert-8"
    assert (args.split, args.codec, args.chunk_tokens, args.json) == ("dev", "compact", 256, True)
    assert (args.fusion, args.fusion_weight, args.fusion_dense, args.fusion_decay, args.fusion_keyword_decay) == \
        ("rrf", 0.35, 0.05, 0.5, 0.0)
    bundled = page_runs.read_eval(eval_report("scifact", {"hybrid": {"ndcg@10": 0.7}}, model="findling/toy-colbert-8"))
    env, args = reproduce_args(page_cards.reproduce_command(bundled))
    assert args.model is None and args.split == "test" and args.codec == "residual" and args.fusion is None


@pytest.mark.parametrize("model,matches", [("findling/toy-colbert-8", True), ("/abs/path/toy-colbert-8/", True),
                                           ("toy-colbert-8", True), ("findling/toy-colbert-80", False),
                                           ("toy-colbert-8/other", False), (None, False)])
def test_a_run_belongs_to_the_card_of_the_folder_its_model_names(model, matches):
    assert (page_cards.run_model_name({"model": model}) == "toy-colbert-8") is matches


def test_a_card_with_no_runs_of_its_model_says_so_and_a_card_without_markers_is_left_alone(tmp_path, capsys,
                                                                                           monkeypatch):
    from findling.training.card import NO_SCORES

    models, results = tmp_path / "models", tmp_path / "eval-results"
    card = toy_card(models)
    written = card.read_text(encoding="utf-8")
    gen.record_eval(json.dumps(eval_report("scifact", {"hybrid": {"ndcg@10": 0.5}}, model="findling/another")),
                    results, stamp={"commit": "abc"})
    (results / "broken--toy-colbert-8.json").write_text("{not json")
    (results / "broken--another.json").write_text("{not json")
    text = gen.card_pages(models, results)[card]
    scores = section(text, "Scores")
    assert NO_SCORES in scores and not tables(scores) and "0.5000" not in scores
    assert "broken--toy-colbert-8.json" in scores and "broken--another.json" not in scores
    (results / "broken--toy-colbert-8.json").unlink()
    assert gen.card_pages(models, results)[card] == written  # the export's text is what the generator writes

    plain = models / "hand" / "README.md"
    plain.parent.mkdir()
    plain.write_text("# hand\n\n## Scores\n| what | score |\n|---|---|\n| x | 0.9 |\n")
    assert gen.card_pages(models, results)[plain] == plain.read_text()
    monkeypatch.setitem(gen.MULTI_PAGES, "card", lambda: gen.card_pages(models, results))
    assert gen.main(["card", "--check"]) == 0
    assert "hand/README.md has no scores block" in capsys.readouterr().err


def test_check_flags_a_stale_card_and_regenerating_fixes_only_its_block(tmp_path, monkeypatch, capsys):
    models, results = tmp_path / "models", tmp_path / "eval-results"
    card = toy_card(models)
    monkeypatch.setitem(gen.MULTI_PAGES, "card", lambda: gen.card_pages(models, results))
    assert gen.main(["card", "--check"]) == 0
    written = card.read_text(encoding="utf-8")
    gen.record_eval(json.dumps(eval_report("scifact", {"hybrid": {"ndcg@10": 0.7222}},
                                           model="findling/toy-colbert-8")), results, stamp={"commit": "abc1234"})
    capsys.readouterr()
    assert gen.main(["card", "--check"]) == 1
    assert "toy-colbert-8/README.md" in capsys.readouterr().err and card.read_text(encoding="utf-8") == written
    assert gen.main(["card"]) == 0
    regenerated = card.read_text(encoding="utf-8")
    assert "0.7222" in section(regenerated, "Scores") and outside_block(regenerated) == outside_block(written)
    assert gen.main(["card", "--check"]) == 0
    card.write_text(regenerated.replace("0.7222", "0.8000"), encoding="utf-8")  # a figure edited by hand
    assert gen.main(["card", "--check"]) == 1
