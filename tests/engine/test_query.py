from datetime import datetime
from pathlib import Path

import pytest

from findling.engine.errors import QueryError
from findling.engine.search.query import fts_expression, parse_query


def test_filters_are_taken_out_of_the_text():
    q = parse_query('csv reader ext:py ext:PDF dir:/tmp/x after:2024-01-01 before:2025 "exact phrase"')
    assert q.text == "csv reader exact phrase"
    assert q.exts == (".py", ".pdf")
    assert q.dirs == (Path("/tmp/x"),)
    assert q.after == datetime(2024, 1, 1).timestamp()
    assert q.before == datetime(2025, 1, 1).timestamp()
    assert q.phrases == ("exact phrase",)


def test_bad_date_says_what_is_expected():
    with pytest.raises(QueryError, match="YYYY-MM-DD"):
        parse_query("x after:yesterday")


def test_fts_expression_is_quoted_and_safe():
    q = parse_query('NEAR(a b) OR "x" AND -y * ^z')
    expr = fts_expression(q)
    assert '"near"' in expr and "OR" in expr and "*" not in expr.replace('" OR "', "")
    assert fts_expression(parse_query("  ")) == ""


def test_nul_and_huge_queries_are_cut():
    q = parse_query("a\x00b " + "x" * 100_000)
    assert "\x00" not in q.text and len(q.text) <= 2000
