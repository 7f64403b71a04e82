"""The results list model: Qt's model tester, named roles, relevance."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from findling.app.results_model import ResultsModel, Role
from findling.engine import SearchHit, TokenMatch


def hit(path: str, score: float, **kw) -> SearchHit:
    return SearchHit(path=Path(path), score=score, chunk_id=1, chunk_ordinal=0, page=kw.pop("page", None),
                     snippet=kw.pop("snippet", "csv rows"), chunk_text=kw.pop("chunk_text", "csv rows"), **kw)


def test_model_passes_qt_model_tester(qtmodeltester):
    model = ResultsModel()
    model.set_hits([hit("/d/a.md", 2.0), hit("/d/b.pdf", 1.0, page=3)])
    qtmodeltester.check(model, force_py=True)
    model.set_hits([])
    qtmodeltester.check(model, force_py=True)


def test_roles_expose_the_hit():
    model = ResultsModel()
    align = (TokenMatch("csv", 0, 3, 0.9, "csv"),)
    model.set_hits([hit("/d/notes/a.md", 2.0, mtime=5.0, lanes=("maxsim", "bm25"), alignment=align),
                    hit("/d/b.pdf", 0.5, page=3)])
    first, second = model.index(0), model.index(1)
    assert first.data(Qt.ItemDataRole.DisplayRole) == "a.md"
    assert first.data(Role.Path) == "/d/notes/a.md"
    assert first.data(Role.Folder) == "/d/notes"
    assert first.data(Role.Mtime) == 5.0
    assert first.data(Role.Lanes) == ["maxsim", "bm25"]
    assert first.data(Role.Alignment) == list(align)
    assert [(s.start, s.end) for s in first.data(Role.SnippetSpans)] == [(0, 3)]
    assert second.data(Role.Page) == 3
    assert first.data(Role.Relevance) == 1.0 and second.data(Role.Relevance) == 0.25
    names = {bytes(v).decode() for v in model.roleNames().values()}
    assert {"path", "name", "folder", "page", "snippet", "score", "mtime", "lanes", "alignment"} <= names
    assert model.row_of(Path("/d/b.pdf")) == 1 and model.row_of(Path("/nope")) == -1
    assert model.hit(5) is None
