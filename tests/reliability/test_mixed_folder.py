"""A folder of the documents people have, through the real command line and the real bundled model: every
new format (slides with speaker notes, spreadsheets, RTF, e-mail with an attachment, Outlook .msg, mailbox,
notebook, image) plus an image-only (scanned) PDF is indexed or given a reason, and a sentence that occurs
only inside one of them puts that file first.

Each sentence is made of rare words that no other file holds, so the test asks whether the text was read
and indexed where it belongs, not how well the model ranks paraphrases.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nbformat import writes
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from findling.engine.extract import ocr

pytestmark = [pytest.mark.bundled_model, pytest.mark.slow]

SENTENCES = {
    "deck.pptx": "Remind everyone that the walrus sanctuary closes in June",
    "talk.odp": "Stalactite lantern expedition leaves at dawn",
    "ledger.xlsx": "saffron pigment shipment arrived cracked",
    "rooms.ods": "telescope observatory dome needs new bearings",
    "letter.rtf": "Please return the borrowed harpsichord tuning fork",
    "invoice.eml": "The quarterly gondola maintenance invoice is overdue",
    "meeting.msg": "Bring the porcelain hedgehog figurines to the auction",
    "archive.mbox": "Our beekeeping cooperative votes on marmalade prices",
    "analysis.ipynb": "ablation zone meltwater summary",
    "scan.pdf": "Migrating cranes rest beside shallow lakes",
}
"""File -> a sentence found only inside it (for the e-mail: only inside its attachment)."""


def make_folder(root: Path) -> Path:
    from tests.engine.test_extract_mail import docx_with, make_msg, mbox, message
    from tests.engine.test_extract_rtf import rtf
    from tests.engine.test_extract_sheets import make_ods, make_xlsx
    from tests.engine.test_extract_slides import make_odp, make_pptx
    from tests.engine.test_ocr import _image_pdf, _renders

    root.mkdir(parents=True)
    (root / "deck.pptx").write_bytes(make_pptx([
        {"title": "Welcome", "body": "Agenda for the year"},
        {"title": "Budget", "body": "Totals by team", "notes": SENTENCES["deck.pptx"]},
    ]))
    (root / "talk.odp").write_bytes(make_odp([{"title": "Intro", "body": "Hello"},
                                              {"title": "Caves", "body": "Maps", "notes": SENTENCES["talk.odp"]}]))
    (root / "ledger.xlsx").write_bytes(make_xlsx({
        "Summary": [["Quarter", "Total"], ["Q1", 100], ["Q2", 250.5]],
        "Suppliers": [["Supplier", "Remark"], ["Acme", SENTENCES["ledger.xlsx"]]],
    }))
    (root / "rooms.ods").write_bytes(make_ods({"Ground": [["Room", "Use"], ["A", "kitchen"]],
                                               "Attic": [["Room", "Use"], ["B", SENTENCES["rooms.ods"]]]}))
    (root / "letter.rtf").write_bytes(rtf(r"\pard " + SENTENCES["letter.rtf"] + r".\par"))
    mail = message(subject="Invoice", body="See the attached document.")
    mail.add_attachment(docx_with(SENTENCES["invoice.eml"]), maintype="application",
                        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="invoice.docx")
    (root / "invoice.eml").write_bytes(mail.as_bytes())
    (root / "meeting.msg").write_bytes(make_msg(subject="Auction", body=SENTENCES["meeting.msg"],
                                                headers={"From": "Ann <ann@example.org>", "To": "bob@example.org"}))
    (root / "archive.mbox").write_bytes(mbox(message(subject="Hello", body="Nothing new this week."),
                                             message(subject="Vote", body=SENTENCES["archive.mbox"])))
    notebook = new_notebook(cells=[
        new_markdown_cell("# Survey"),
        new_code_cell("summarise()", outputs=[new_output("stream", name="stdout",
                                                         text=SENTENCES["analysis.ipynb"] + "\n")]),
    ])
    (root / "analysis.ipynb").write_text(writes(notebook))
    (root / "scan.pdf").write_bytes(_image_pdf(_renders([[SENTENCES["scan.pdf"], "before crossing the mountains."]])))
    (root / "notes.txt").write_text("Agenda, totals, suppliers, rooms and notes about nothing in particular.\n")
    return root


def findling(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("FINDLING_MODEL", None)
    return subprocess.run([sys.executable, "-m", "findling.cli", "--home", str(home), *args], env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    if not ocr.status().available:
        pytest.skip(f"no OCR engine: {ocr.status().reason}")
    base = tmp_path_factory.mktemp("mixed")
    folder = make_folder(base / "documents")
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    home = base / "home"
    assert findling(home, "folders", "add", str(folder)).returncode == 0
    done = findling(home, "index")
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before  # nothing written in the folder
    return home, folder


def test_every_file_is_indexed_or_given_a_reason(indexed):
    from findling.engine.store.store import Store

    home, folder = indexed
    with Store(home / "index.sqlite", reader=True) as store:
        states = store.file_states()
    assert set(states) == set(folder.iterdir())
    for path, state in states.items():
        assert state.status == "indexed" or state.reason, (path, state)
    assert all(states[folder / name].status == "indexed" for name in SENTENCES), \
        {p.name: (s.status, s.reason) for p, s in states.items()}


def test_searching_from_the_command_line_finds_the_slide_notes(indexed):
    home, folder = indexed
    done = findling(home, "search", SENTENCES["deck.pptx"], "-k", "3", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    hits = json.loads(done.stdout)["results"]
    assert Path(hits[0]["path"]) == folder / "deck.pptx"
    assert (hits[0]["page"], hits[0]["page_unit"]) == (2, "slide")


@pytest.fixture(scope="module")
def searcher(indexed):
    from findling.engine import Config, Searcher, Store, load_encoder

    home, _folder = indexed
    config = Config.default(data_dir=home, model=None)
    store = Store(config.db_path, reader=True)
    yield Searcher(store, load_encoder(config))
    store.close()


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_a_sentence_only_inside_a_file_puts_it_first(indexed, searcher, name):
    _home, folder = indexed
    hits = searcher.search(SENTENCES[name], k=3)
    assert hits and hits[0].path == folder / name, [h.path.name for h in hits]
