"""Whatever bytes a file holds, ``extract`` returns text or raises an ``ExtractionError``, nothing else."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from findling.engine.config import Config
from findling.engine.errors import ExtractionError
from findling.engine.extract import extract
from findling.engine.records import ExtractedText

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

VALID_ZIPS = {
    ".docx": {
        "word/document.xml": f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>hello world</w:t>'
        "</w:r></w:p></w:body></w:document>",
    },
    ".odt": {
        "content.xml": '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        "<text:p>hello world</text:p></office:text></office:body></office:document-content>",
    },
    ".epub": {
        "META-INF/container.xml": '<container><rootfiles><rootfile full-path="a.opf"/></rootfiles></container>',
        "a.opf": '<package><metadata><title>T</title></metadata><manifest><item id="x" href="x.xhtml" '
        'media-type="application/xhtml+xml"/></manifest><spine><itemref idref="x"/></spine></package>',
        "x.xhtml": "<html><body><h1>Hi</h1><p>hello world</p></body></html>",
    },
}


def zipped(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def check(path: Path, data: bytes, config: Config) -> None:
    path.write_bytes(data)
    try:
        result = extract(path, config=config)
    except ExtractionError as exc:
        assert str(exc), "every refusal needs a reason"
        return
    assert isinstance(result, ExtractedText) and isinstance(result.text, str)


@pytest.mark.parametrize("suffix", sorted(VALID_ZIPS))
def test_valid_samples_extract(tmp_path, config, suffix):
    path = tmp_path / f"sample{suffix}"
    path.write_bytes(zipped(VALID_ZIPS[suffix]))
    assert "hello world" in extract(path, config=config).text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([".txt", ".py", ".html", ".pdf", ".docx", ".odt", ".epub"]), st.binary(max_size=3000))
def test_random_bytes(tmp_path, config, suffix, data):
    check(tmp_path / f"random{suffix}", data, config)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(sorted(VALID_ZIPS)), data=st.data())
def test_damaged_containers(tmp_path, config, suffix, data):
    damaged = bytearray(zipped(VALID_ZIPS[suffix]))
    for _ in range(data.draw(st.integers(1, 6))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    check(tmp_path / f"damaged{suffix}", bytes(damaged), config)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(sorted(VALID_ZIPS)), text=st.text(max_size=200))
def test_containers_with_arbitrary_xml_text(tmp_path, config, suffix, text):
    members = {name: content.replace("hello world", text) for name, content in VALID_ZIPS[suffix].items()}
    check(tmp_path / f"odd{suffix}", zipped(members), config)
