"""Whatever the user types, search answers with a result list or a clear ``QueryError``, never a crash.

Property-based over ``parse_query``, ``Searcher.search`` (every mode) and ``findling search`` (in-process, with
its flags): FTS5 operators and quotes, unbalanced syntax, NUL bytes, lone surrogates (undecodable bytes from a
command line), 100,000-character queries, empty and whitespace-only queries, filters with bad dates or folders
that do not exist. The real tokenizer sees the same kinds of queries in ``test_offline``.
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from findling.cli import main as cli
from findling.engine.config import Config
from findling.engine.errors import QueryError
from findling.engine.index.indexer import Indexer
from findling.engine.search.query import MAX_QUERY_CHARS, Query, fts_expression, parse_query
from findling.engine.records import SearchHit
from findling.engine.search.searcher import MODES, Searcher
from findling.engine.store.store import Store
from tests.fakes import FakeEncoder

FTS_SYNTAX = ["AND", "OR", "NOT", "NEAR", "NEAR(", "NEAR/2", "*", "^", ":", "(", ")", '"', '""', "-", "+", "'",
              "{", "}", "text:", "chunks_fts", "rank", "bm25(", "MATCH", "\\", "%", ";", "--", "/*", "*/",
              "\x00", "csv", "module", "basil", "ext:", "dir:", "after:", "before:", "\t", "\n"]
FILTER_KEYS = ["ext", "dir", "after", "before", "EXT", "Dir", "AFTER"]
DATES = ["2024-01-01", "2024-13-45", "0000", "0001-01-01", "9999", "99999", "-1", "yesterday", "", "2024-02-30",
         "1970", "\x00", "\udcff"]

any_char = st.characters(exclude_categories=())  # every code point, lone surrogates included
words = st.one_of(st.sampled_from(FTS_SYNTAX), st.text(any_char, max_size=12),
                  st.text(st.characters(codec="ascii"), min_size=1, max_size=8))
filters = st.builds(lambda key, value: f"{key}:{value}", st.sampled_from(FILTER_KEYS),
                    st.one_of(st.sampled_from(DATES), st.text(any_char, max_size=20),
                              st.sampled_from(["~", "~nosuchuser/x", "/no/such/folder", '"a b"', ".", "py,md,"])))
queries = st.builds(lambda parts, sep: sep.join(parts), st.lists(st.one_of(words, filters), max_size=12),
                    st.sampled_from([" ", "", "  \t", "\n", "\u3000"]))
HUGE = ["x" * 100_000, "AND " * 25_000, '"' * 100_000, "\x00" * 100_000, " " * 100_000, "\udcff" * 100_000,
        "(" * 50_000 + ")" * 50_000, "csv " * 25_000, "é" * 100_000, "dir:" + "a/" * 50_000]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A small index (fake encoder), its store and a searcher over it, shared by the examples."""
    root = tmp_path_factory.mktemp("queries")
    docs = root / "docs"
    (docs / "notes").mkdir(parents=True)
    (docs / "notes" / "csv.md").write_text("# CSV files\n\nRead and write CSV files with the csv module.\n")
    (docs / "garden.txt").write_text("Tomatoes need sun and water. Prune the basil often. NEAR AND OR NOT\n")
    (docs / "code.py").write_text("def parse_csv(path):\n    '''Parse a CSV file into rows.'''\n    return []\n")
    config = replace(Config(data_dir=root / "home"), max_chunk_tokens=64, chunk_overlap_tokens=8, threads=1)
    encoder = FakeEncoder()
    store = Store(config.db_path)
    store.add_folder(docs)
    Indexer(store, encoder, config=config).run_to_end()
    yield config, store, Searcher(store, encoder), encoder
    store.close()


def _check_query(q: Query) -> None:
    assert "\x00" not in q.text and len(q.text) <= MAX_QUERY_CHARS
    q.text.encode("utf-8")  # no lone surrogates left: SQLite and the tokenizer take it
    for phrase in q.phrases:
        phrase.encode("utf-8")
    for ext in q.exts:
        ext.encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(queries)
@example("")
@example("   \t\n")
@example('"unbalanced')
@example("NEAR(a b")
@example("after:2024-13-45")
@example("dir:~nosuchuser/x")
@example("ext:\udcff csv")
@example("before:0000 csv")
def test_parse_query_gives_a_query_or_a_query_error(raw):
    try:
        q = parse_query(raw)
    except QueryError as exc:
        assert str(exc)
        return
    _check_query(q)
    fts_expression(q)


@pytest.mark.parametrize("raw", HUGE, ids=lambda r: repr(r[:8]))
def test_huge_queries_are_cut_and_answered(indexed, raw):
    _, _, searcher, _ = indexed
    for mode in MODES:
        try:
            hits = searcher.search(raw, k=5, mode=mode)
        except QueryError:
            continue
        assert isinstance(hits, list) and len(hits) <= 5


@settings(max_examples=200, deadline=None)
@given(raw=queries, k=st.integers(1, 30), mode=st.sampled_from(MODES))
@example(raw="csv AND", k=3, mode="bm25").via("FTS operator at the end")
@example(raw='"prune the', k=3, mode="hybrid").via("unbalanced quote")
@example(raw="csv\x00module", k=3, mode="maxsim").via("NUL byte")
@example(raw='"-" csv', k=3, mode="hybrid").via("phrase of punctuation only")
@example(raw="\udcff\udcfe", k=3, mode="hybrid").via("undecodable bytes")
def test_search_gives_hits_or_a_query_error(indexed, raw, k, mode):
    _, store, searcher, _ = indexed
    try:
        hits = searcher.search(raw, k=k, mode=mode)
    except QueryError as exc:
        assert str(exc)
        return
    assert isinstance(hits, list) and len(hits) <= k
    assert all(isinstance(h, SearchHit) and Path(h.path).is_absolute() for h in hits)
    store.fts_search(fts_expression(parse_query(raw)), limit=5)  # the raw expression is accepted too


def test_empty_queries_and_missing_folders_give_empty_lists(indexed, tmp_path):
    _, _, searcher, _ = indexed
    for raw in ("", " ", "\t\n", "\x00", '""', "ext:py", f"csv dir:{tmp_path / 'nowhere'}", "csv after:2999"):
        assert searcher.search(raw, k=5) == []
    with pytest.raises(QueryError, match="YYYY-MM-DD"):
        searcher.search("csv after:soon", k=5)


# ------------------------------------------------------------------------------------------------- CLI
def _cli(config: Config, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(["--home", str(config.data_dir), *argv])
        except SystemExit as exc:  # argparse refusing a flag value: a usage line and status 2
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_models(indexed):
    import findling.engine.encode.resolve

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: indexed[3])
        yield


flag_values = st.one_of(st.sampled_from(DATES + ["py", ".md", "", "/no/such", "~nosuchuser", "0", "-3"]),
                        st.text(any_char, max_size=15))
flags = st.lists(st.tuples(st.sampled_from(["--ext", "--dir", "--after", "--before", "-k", "--mode"]), flag_values),
                 max_size=3)


@settings(max_examples=120, deadline=None)
@given(raw=queries, options=flags, as_json=st.booleans())
@example(raw="csv", options=[("--after", "2024-13-45")], as_json=False)
@example(raw="csv", options=[("--dir", "/no/such/folder")], as_json=True)
@example(raw="csv", options=[("-k", "-3")], as_json=False)
@example(raw="x" * 100_000, options=[], as_json=True)
def test_cli_search_answers_or_says_why(indexed, cli_models, raw, options, as_json):
    config = indexed[0]
    argv = ["search", raw, *[part for pair in options for part in pair]] + (["--json"] if as_json else [])
    rc, out, err = _cli(config, argv)
    assert "Traceback" not in err
    if rc == 0:
        if as_json:
            assert isinstance(json.loads(out)["results"], list)
        return
    assert rc == 2 and err.strip(), (argv, rc, err)
