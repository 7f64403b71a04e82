"""RTF documents written by hand (the format is plain text), read back through ``extract``."""
from __future__ import annotations

import pytest

from findling.engine.errors import CorruptFile
from findling.engine.extract import extract
from tests.engine.test_extract_pdf import make_pdf


def rtf(body: str, *, header: str = r"\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times;}}") -> bytes:
    return ("{\\rtf1" + header + body + "}").encode("latin-1")


def test_text_escapes_and_title(tmp_path, config):
    path = tmp_path / "letter.rtf"
    path.write_bytes(rtf(r"{\info{\title Letter to the \'e9cole}}\pard Dear \b reader\b0 ,\par "
                         r"caf\'e9 au lait costs \u8364? 3 \{not a group\}.\par"))
    doc = extract(path, config=config)
    assert doc.kind == "rtf" and doc.title == "Letter to the école"
    assert doc.text == "Dear reader,\ncafé au lait costs € 3 {not a group}."


def test_declared_code_page_is_used(tmp_path, config):
    path = tmp_path / "russian.rtf"
    path.write_bytes(rtf(r"\pard \'cf\'f0\'e8\'e2\'e5\'f2\par", header=r"\ansi\ansicpg1251"))
    assert extract(path, config=config).text == "Привет"


def test_pictures_and_binary_runs_are_dropped(tmp_path, config):
    picture = r"{\pict{\*\blipuid 0011}\pngblip " + "89504e47" * 50_000 + "}"
    raw = b"\\bin6 }{}{x"  # six raw bytes that would unbalance the groups if read as text
    path = tmp_path / "figure.rtf"
    path.write_bytes(rtf(r"\pard Before the figure. " + picture + r" After the figure.\par ")[:-1] + raw
                     + rtf(r"\pard Closing words.\par")[6:])
    text = extract(path, config=config).text
    assert "89504e47" not in text and "Before the figure." in text and "After the figure." in text
    assert "Closing words." in text


@pytest.mark.parametrize("data", [make_pdf([["hello"]]), b"plain words, not rtf", b"\x00\x01\x02" * 100])
def test_other_content_under_an_rtf_name_is_refused(tmp_path, config, data):
    path = tmp_path / "fake.rtf"
    path.write_bytes(data)
    with pytest.raises(CorruptFile, match=r"not an RTF document"):
        extract(path, config=config)


def test_truncated_rtf_still_gives_its_text(tmp_path, config):
    path = tmp_path / "cut.rtf"
    path.write_bytes(rtf(r"\pard First paragraph survives.\par {\b unclosed")[:-1])
    assert "First paragraph survives." in extract(path, config=config).text
