"""Plain text and source code: encodings, binary rejection, titles, newlines, kinds."""
from __future__ import annotations

import codecs

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from findling.engine.errors import BinaryFile, ExtractionError, UnsupportedFile
from findling.engine.extract import SUPPORTED_SUFFIXES, extract, is_supported
from findling.engine.extract.decode import decode_text
from tests.engine.files import write

SAMPLE = "Grüße aus Köln – naïve café, 10 €.\nSecond line.\n"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
        ("utf-16-le", b""),
        ("utf-16-be", b""),
        ("cp1252", b""),
    ],
)
def test_encodings_decode_to_the_same_text(tmp_path, config, encoding, bom):
    path = write(tmp_path, "notes.txt", bom + SAMPLE.encode(encoding))
    result = extract(path, config=config)
    assert result.text == SAMPLE
    assert result.kind == "text"
    assert not result.text.startswith("\ufeff")


def test_latin1_text_with_undefined_cp1252_bytes(tmp_path, config):
    # 0x8d is undefined in cp1252, so only latin-1 decodes this; 0xe9 is "é" in both.
    data = "café au lait, ".encode("latin-1") * 50 + b"\x8d end\n"
    result = extract(write(tmp_path, "legacy.txt", data), config=config)
    assert result.text == "café au lait, " * 50 + "\x8d end\n"


def test_invalid_utf8_falls_back_without_failing(tmp_path, config):
    # A stray 0xff among UTF-8: not valid UTF-8, decoded with the single-byte fallback.
    path = write(tmp_path, "mixed.txt", "naïve ".encode() + b"\xff" + b" end\n")
    result = extract(path, config=config)
    assert result.text.endswith(" end\n")
    assert "ÿ" in result.text


def test_utf16_bom_with_bad_surrogate_is_replaced_with_a_warning(tmp_path, config):
    data = codecs.BOM_UTF16_LE + "ok ".encode("utf-16-le") + b"\x00\xd8" + "after".encode("utf-16-le")
    result = extract(write(tmp_path, "broken16.txt", data), config=config)
    assert result.text.startswith("ok ") and result.text.endswith("after")
    assert "\ufffd" in result.text
    assert any("utf-16-le" in warning for warning in result.warnings)


def test_binary_data_named_txt_is_refused(tmp_path, config):
    data = bytes(range(256)) * 40
    with pytest.raises(BinaryFile, match="looks like binary data, not text"):
        extract(write(tmp_path, "image.txt", data), config=config)


def test_control_characters_without_nuls_are_refused(tmp_path, config):
    data = bytes([1, 2, 3, 4, 5, 6, 7, 8, 0x0E, 0x0F, 65]) * 100
    with pytest.raises(BinaryFile):
        extract(write(tmp_path, "weird.log", data), config=config)


def test_a_few_escape_sequences_in_a_log_are_fine(tmp_path, config):
    line = "\x1b[32mINFO\x1b[0m server started on port 8080 after loading all the plugins\n"
    result = extract(write(tmp_path, "run.log", (line * 50).encode()), config=config)
    assert "server started" in result.text


def test_newlines_are_normalised(tmp_path, config):
    result = extract(write(tmp_path, "dos.txt", b"one\r\ntwo\rthree\nfour"), config=config)
    assert result.text == "one\ntwo\nthree\nfour"


@pytest.mark.parametrize(
    ("name", "content", "title"),
    [
        ("a.md", "Some intro\n\n# The Real Title #\n\nBody\n", "The Real Title"),
        ("b.md", "```\n# not a title\n```\n## Usage Notes\n", "Usage Notes"),
        ("c.md", "---\ntitle: 'From Front Matter'\n---\n# Heading\n", "From Front Matter"),
        ("d.md", "Setext Title\n============\n\ntext\n", "Setext Title"),
        ("e.rst", "=========\nOverlined\n=========\n\nbody\n", "Overlined"),
        ("f.rst", "Section Title\n-------------\n\nbody\n", "Section Title"),
        ("g.org", "#+TITLE: Org Notes\n* heading\n", "Org Notes"),
        ("h.txt", "just words\nno heading here\n", "h.txt"),
        ("i.csv", "# a,b\n1,2\n", "i.csv"),
    ],
)
def test_titles(tmp_path, config, name, content, title):
    result = extract(write(tmp_path, name, content.encode()), config=config)
    assert result.title == title


def test_source_code_kind_and_no_comment_title(tmp_path, config):
    code = "# A comment that is not a title\nimport os\n\nprint(os.getcwd())\n"
    result = extract(write(tmp_path, "tool.py", code.encode()), config=config)
    assert result.kind == "source"
    assert result.title == "tool.py"
    assert result.text == code


@pytest.mark.parametrize(("name", "kind"), [("README", "text"), ("Makefile", "source"), ("x.R", "source")])
def test_well_known_names_and_upper_case_suffixes(tmp_path, config, name, kind):
    path = write(tmp_path, name, b"all: build\n")
    assert is_supported(path)
    assert extract(path, config=config).kind == kind


def test_supported_suffixes_are_lower_case_with_a_dot():
    assert {".txt", ".md", ".py", ".html", ".pdf", ".docx", ".odt", ".epub"} <= SUPPORTED_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in SUPPORTED_SUFFIXES)


def test_unsupported_suffix_is_refused_without_reading(tmp_path, config):
    path = tmp_path / "song.mp3"  # does not even exist: the suffix decides first
    assert not is_supported(path)
    with pytest.raises(UnsupportedFile, match=r"\.mp3 files are not supported"):
        extract(path, config=config)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_decoding_arbitrary_bytes_gives_text_or_binary_file(data):
    try:
        decoded = decode_text(data)
    except BinaryFile:
        return
    assert isinstance(decoded.text, str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=300))
def test_any_printable_text_round_trips_through_utf8_and_utf16(text):
    # a leading U+FEFF is indistinguishable from a byte-order mark, which decoding removes
    assume(not text.startswith("\ufeff"))
    assert decode_text(text.encode("utf-8")).text == text
    assert decode_text(codecs.BOM_UTF16_LE + text.encode("utf-16-le")).text == text


def test_extraction_error_is_the_base_of_every_refusal():
    assert issubclass(BinaryFile, ExtractionError) and issubclass(UnsupportedFile, ExtractionError)
