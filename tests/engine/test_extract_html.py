"""HTML: visible text only, block elements on their own lines, entities, titles, charsets, depth."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from findling.engine.config import Config
from findling.engine.errors import BinaryFile
from findling.engine.extract import extract
from findling.engine.extract.html import parse_html

PAGE = """<!DOCTYPE html>
<html><head>
  <meta charset="utf-8">
  <title>  Trip   Report </title>
  <style>body { color: red; } .hidden-style {}</style>
  <script>var secret = "<p>script text</p>";</script>
  <link rel="stylesheet" href="x.css">
</head>
<body>
  <noscript>Please enable JavaScript</noscript>
  <template><p>template text</p></template>
  <svg><text>svg label</text><style>.x{}</style></svg>
  <h1>Day One</h1>
  <p>We walked &amp; talked&nbsp;for <b>hours</b> &mdash; then rested.</p>
  <ul><li>apples</li><li>pears</li></ul>
  <div>first<div>nested</div>after</div>
  <table><tr><td>cell A</td><td>cell B</td></tr><tr><td>cell C</td><td>cell D</td></tr></table>
  line one<br>line two<br/>line three
  <pre>  indented
    more</pre>
  <p><img src="cat.png" alt="a sleeping cat"></p>
</body></html>
"""


@pytest.fixture
def page(tmp_path: Path, config: Config):
    path = tmp_path / "trip.html"
    path.write_text(PAGE, encoding="utf-8")
    return extract(path, config=config)


def test_hidden_parts_are_skipped(page):
    for hidden in ("script text", "secret", "color: red", "enable JavaScript", "template text", "svg label"):
        assert hidden not in page.text


def test_visible_text_entities_and_inline_elements(page):
    assert page.kind == "html"
    assert "We walked & talked for hours — then rested." in page.text.split("\n")


def test_block_elements_make_lines(page):
    lines = page.text.split("\n")
    for expected in ("apples", "pears", "first", "nested", "after", "line one", "line two", "line three"):
        assert expected in lines
    assert "cell A cell B" in lines and "cell C cell D" in lines
    assert lines.index("Day One") < lines.index("apples") < lines.index("cell A cell B")


def test_preformatted_text_keeps_its_layout(page):
    assert "  indented\n    more" in page.text


def test_image_alt_text_is_kept(page):
    assert "a sleeping cat" in page.text


def test_title_comes_from_the_title_element(page):
    assert page.title == "Trip Report"


def test_title_falls_back_to_first_h1():
    assert parse_html("<h2>Minor</h2><h1>Major  Heading</h1><p>x</p>").first_h1 == "Major Heading"


def test_title_falls_back_to_file_name(tmp_path, config):
    path = tmp_path / "plain.htm"
    path.write_text("<p>no headings at all</p>")
    assert extract(path, config=config).title == "plain.htm"


def test_head_without_closing_tag_ends_at_body_content():
    parsed = parse_html("<html><head><title>T</title><p>body text</p>")
    assert parsed.text == "body text"
    assert parsed.title == "T"


def test_deeply_nested_html_does_not_recurse(tmp_path, config):
    depth = 100_000
    path = tmp_path / "deep.html"
    path.write_text("<div>" * depth + "<p>deep inside</p>" + "</div>" * depth)
    result = extract(path, config=config)
    assert result.text == "deep inside"


def test_unclosed_tags_and_garbage_markup():
    parsed = parse_html("<p>one <b>two <i>three</p><p>four</div></span><!-- never closed")
    lines = parsed.text.split("\n")
    assert lines[:3] == ["one two three", "", "four"]


def test_declared_charset_is_used_for_non_utf8(tmp_path, config):
    path = tmp_path / "old.html"
    body = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
    path.write_bytes(body.encode() + "<p>Déjà vu – “quoted”</p>".encode("cp1252"))
    assert extract(path, config=config).text == "Déjà vu – “quoted”"


def test_wrong_declared_charset_loses_to_valid_utf8(tmp_path, config):
    path = tmp_path / "mislabelled.html"
    path.write_bytes('<meta charset="windows-1252"><p>Grüße</p>'.encode())
    assert extract(path, config=config).text == "Grüße"


def test_binary_named_html_is_refused(tmp_path, config):
    path = tmp_path / "fake.html"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(BinaryFile):
        extract(path, config=config)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/!-=\"' &;#abpdivscrt\n")), max_size=400))
def test_any_markup_soup_parses(markup):
    parsed = parse_html(markup)
    assert isinstance(parsed.text, str)
    assert "\n\n\n" not in parsed.text
