import pytest

from findling.engine.encode.chunker import chunk_text
from findling.engine.records import ExtractedText, PageSpan
from tests.fakes import FakeTokenizer


def _doc(text, pages=()):
    from pathlib import Path

    return ExtractedText(path=Path("x.txt"), text=text, pages=tuple(pages))


def test_chunks_respect_the_token_limit_and_cover_the_text():
    tok = FakeTokenizer()
    text = " ".join(f"word{i}" for i in range(1000))
    chunks = chunk_text(_doc(text), tok, max_tokens=100, overlap=10)
    assert all(c.token_count <= 100 for c in chunks)
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(text)
    for c in chunks:
        assert c.text == text[c.char_start : c.char_end]
        assert len(tok.token_spans(c.text)) == c.token_count
    # consecutive chunks overlap by the requested tokens when cut inside running text
    assert chunks[1].char_start < chunks[0].char_end
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_cuts_prefer_paragraph_breaks_without_overlap():
    tok = FakeTokenizer()
    para = " ".join(["alpha"] * 70)
    text = para + "\n\n" + para + "\n\n" + para
    chunks = chunk_text(_doc(text), tok, max_tokens=100, overlap=10)
    assert [c.token_count for c in chunks] == [70, 70, 70]
    assert chunks[1].char_start == len(para) + 2


def test_pages_are_recorded_and_preferred_as_cuts():
    tok = FakeTokenizer()
    p1 = " ".join(["one"] * 50)
    p2 = " ".join(["two"] * 50)
    text = p1 + "\n\n" + p2
    pages = [PageSpan(1, 0, len(p1)), PageSpan(2, len(p1) + 2, len(text))]
    chunks = chunk_text(_doc(text, pages), tok, max_tokens=80, overlap=8)
    assert [(c.page, c.token_count) for c in chunks] == [(1, 50), (2, 50)]


def test_empty_text_gives_no_chunks_and_limits_are_checked():
    assert chunk_text(_doc("  \n "), FakeTokenizer(), max_tokens=10) == []
    with pytest.raises(ValueError):
        chunk_text(_doc("a"), FakeTokenizer(), max_tokens=40000)


def test_separate_pages_each_start_a_chunk_so_a_hit_names_its_own_page():
    """Slides, sheets, cells and mail parts are units: small ones are never merged into one chunk (whose page
    would be the first one's); ordinary pages (a PDF's) still share chunks."""
    from pathlib import Path

    parts = ["Quarterly revenue grew.", "Speaker notes mention the heron.", "Closing slide thanks everyone."]
    text, pages, pos = "", [], 0
    for number, part in enumerate(parts, start=1):
        text += part + "\n\n"
        pages.append(PageSpan(number, pos, len(text)))
        pos = len(text)
    tokenizer = FakeTokenizer()
    slides = chunk_text(ExtractedText(Path("deck.pptx"), text, pages=tuple(pages), kind="pptx"), tokenizer,
                        max_tokens=64)
    assert [(c.page, c.text) for c in slides] == [(i + 1, part.rstrip(".")) for i, part in enumerate(parts)]
    pdf = chunk_text(ExtractedText(Path("doc.pdf"), text, pages=tuple(pages), kind="pdf"), tokenizer, max_tokens=64)
    assert len(pdf) == 1 and pdf[0].page == 1


def test_a_chunk_with_text_from_an_ocr_page_is_marked():
    from pathlib import Path

    text = "Typed first page words here.\n\nScanned second page words here."
    pages = (PageSpan(1, 0, 30), PageSpan(2, 30, len(text), ocr=True))
    doc = ExtractedText(Path("mixed.pdf"), text, pages=pages, kind="pdf")
    tok = FakeTokenizer()
    one = chunk_text(doc, tok, max_tokens=64)
    assert len(one) == 1 and one[0].ocr  # spans both pages: partly recognised
    two = chunk_text(doc, tok, max_tokens=5)
    assert [(c.page, c.ocr) for c in two] == [(1, False), (2, True)]
