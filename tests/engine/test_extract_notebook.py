"""Jupyter notebooks written with nbformat (and a format 3 one by hand), read back through ``extract``."""
from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from findling.engine.errors import CorruptFile
from findling.engine.extract import extract, page_unit


def make_notebook(title: str = "") -> bytes:
    nb = new_notebook(cells=[
        new_markdown_cell("# Glacier mass balance\n\nWe load the survey."),
        new_code_cell("import pandas as pd\ndf = pd.read_csv('survey.csv')"),
        new_code_cell(""),  # empty: counted, not written
        new_code_cell("print(df.shape)", outputs=[
            new_output("stream", name="stdout", text="(120, 4)\n"),
            new_output("execute_result", data={"text/plain": "'ablation zone summary'"}, execution_count=3),
        ]),
        new_code_cell("df.plot()", outputs=[
            new_output("display_data", data={"image/png": "iVBORw0KGgo" * 200, "text/plain": "<Figure size 640x480>"}),
        ]),
        new_code_cell("1/0", outputs=[
            new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                       traceback=["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"]),
        ]),
    ])
    if title:
        nb.metadata["title"] = title
    return nbformat.writes(nb).encode()


def test_one_page_per_cell_with_text_outputs(tmp_path, config):
    path = tmp_path / "analysis.ipynb"
    path.write_bytes(make_notebook())
    doc = extract(path, config=config)
    assert doc.kind == "notebook" and doc.title == "Glacier mass balance" and page_unit(".ipynb") == "cell"
    assert [span.number for span in doc.pages] == [1, 2, 4, 5, 6]
    assert doc.pages[0].label == "Glacier mass balance"
    assert doc.page_at(doc.text.index("read_csv")) == 2
    assert doc.page_at(doc.text.index("(120, 4)")) == 4
    assert doc.page_at(doc.text.index("ablation zone summary")) == 4
    assert doc.page_at(doc.text.index("ZeroDivisionError: division by zero")) == 6
    assert "iVBORw0KGgo" not in doc.text and "<Figure" not in doc.text and "\x1b" not in doc.text
    assert doc.text[doc.pages[3].start:doc.pages[3].end].strip() == "df.plot()"


def test_metadata_title_wins(tmp_path, config):
    path = tmp_path / "titled.ipynb"
    path.write_bytes(make_notebook(title="Survey notebook"))
    assert extract(path, config=config).title == "Survey notebook"


def test_format_3_notebooks_are_read(tmp_path, config):
    nb = {"nbformat": 3, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 1, "source": ["Old notebook"]},
        {"cell_type": "code", "input": ["x = 41 + 1\n", "print(x)"], "outputs": [
            {"output_type": "stream", "stream": "stdout", "text": ["42\n"]},
            {"output_type": "pyout", "text": ["'the answer'"]},
        ]},
    ]}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(nb))
    doc = extract(path, config=config)
    assert doc.title == "Old notebook"
    assert doc.page_at(doc.text.index("print(x)")) == 2 and "'the answer'" in doc.text and "42" in doc.text


@pytest.mark.parametrize(("data", "reason"), [
    (b'{"cells": [', "not valid JSON"), (b"[1, 2, 3]", "not an object"), (b'{"nbformat": 4}', "no cells"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
])
def test_broken_notebooks_get_a_reason(tmp_path, config, data, reason):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(data)
    with pytest.raises(CorruptFile, match=reason):
        extract(path, config=config)


def test_odd_cells_are_skipped_not_fatal(tmp_path, config):
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps({"cells": [42, {"cell_type": "code", "source": None, "outputs": "nope"},
                                          {"cell_type": "markdown", "source": "kept words"}]}))
    doc = extract(path, config=config)
    assert doc.text == "kept words" and [span.number for span in doc.pages] == [3]
