"""Slides, sheets, RTF and notebooks through the real indexer (fake encoder) and searcher: a sentence found
only in a slide's notes, a spreadsheet cell or a notebook cell ranks its file first, on the right page.

Each page carries enough filler words to fill a chunk of its own (``max_chunk_tokens`` is 64 in the test
settings), and a filler page follows each target page: a chunk that spans several small pages reports
the page it starts on, so the test keeps every page one chunk long.
"""
from __future__ import annotations

import pytest
from nbformat import writes
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from findling.engine.index.indexer import Indexer
from findling.engine.search.searcher import Searcher
from tests.engine.test_extract_rtf import rtf
from tests.engine.test_extract_sheets import make_ods, make_xlsx
from tests.engine.test_extract_slides import make_odp, make_pptx


def fill(tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(45))


@pytest.fixture
def searcher(tmp_path, store, fake_encoder, config):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "deck.pptx").write_bytes(make_pptx([
        {"title": "Welcome", "body": f"Agenda {fill('welcome')}"},
        {"title": "Plans", "body": f"Next year {fill('plans')}"},
        {"title": "Budget", "body": f"Totals {fill('budget')}", "notes": "Remind everyone that the walrus sanctuary closes in June"},
        {"title": "Questions", "body": fill("questions")},
    ]))
    (folder / "talk.odp").write_bytes(make_odp([{"title": "Intro", "body": f"Hello {fill('intro')}"},
                                                 {"title": "Caves", "body": fill("caves"), "notes": "Stalactite lantern expedition notes"},
                                                 {"title": "End", "body": fill("end")}]))
    (folder / "ledger.xlsx").write_bytes(make_xlsx({
        "Summary": [["Quarter", "Total"], ["Q1", 100], ["Q2", fill("summary")]],
        "Suppliers": [["Supplier", "Remark"], ["Acme", "saffron pigment shipment arrived cracked"], ["Bolt", fill("bolt")]],
        "Archive": [["Year", "Note"], [2020, fill("archive")]],
    }))
    (folder / "rooms.ods").write_bytes(make_ods({"Ground": [["Room", "Use"], ["A", fill("ground")]],
                                                 "Attic": [["Room", "Use"], ["B", "telescope observatory dome"], ["B2", fill("attic")]],
                                                 "Cellar": [["Room", "Use"], ["C", fill("cellar")]]}))
    notebook = new_notebook(cells=[
        new_markdown_cell(f"# Survey\n\n{fill('survey')}"),
        new_code_cell(f"load() # {fill('load')}"),
        new_code_cell(""),
        new_code_cell(f"summarise() # {fill('summarise')}", outputs=[new_output("stream", name="stdout", text="ablation zone summary\n")]),
        new_markdown_cell(fill("appendix")),
    ])
    (folder / "analysis.ipynb").write_text(writes(notebook))
    (folder / "letter.rtf").write_bytes(rtf(r"\pard Please return the borrowed harpsichord tuning fork.\par"))
    (folder / "distractor.txt").write_text("Agenda, totals, suppliers, rooms and notes about nothing in particular.\n")
    store.add_folder(folder)
    progress = Indexer(store, fake_encoder, config=config).run_to_end()
    assert progress.indexed == 7 and progress.failed == 0, store.file_states()
    return Searcher(store, fake_encoder)


@pytest.mark.parametrize(("query", "name", "page", "label"), [
    ("walrus sanctuary closes", "deck.pptx", 3, "slide 3"),
    ("stalactite lantern expedition", "talk.odp", 2, "slide 2"),
    ("saffron pigment shipment cracked", "ledger.xlsx", 2, "sheet 2"),
    ("telescope observatory dome", "rooms.ods", 2, "sheet 2"),
    ("ablation zone summary", "analysis.ipynb", 4, "cell 4"),
    ("borrowed harpsichord tuning fork", "letter.rtf", None, ""),
])
@pytest.mark.parametrize("mode", ["hybrid", "bm25", "maxsim"])
def test_a_sentence_found_only_inside_ranks_its_file_first_on_its_page(searcher, query, name, page, label, mode):
    hits = searcher.search(query, k=3, mode=mode)
    assert hits and hits[0].path.name == name
    assert hits[0].page == page and hits[0].page_label == label


def test_ext_filters_accept_the_new_suffixes(searcher):
    hits = searcher.search("room ext:ods", k=5)
    assert {hit.path.name for hit in hits} == {"rooms.ods"}
    hits = searcher.search("notes ext:pptx,odp", k=5)
    assert {hit.path.name for hit in hits} <= {"deck.pptx", "talk.odp"} and hits
