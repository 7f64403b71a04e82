"""What extraction does with files that cannot be read: missing, too big, pipes, folders, no access."""
from __future__ import annotations

import os
import threading
from dataclasses import replace

import pytest

from findling.engine.errors import ExtractionError, FileTooLarge, FileVanished, UnsupportedFile
from findling.engine.extract import extract


@pytest.mark.parametrize("name", ["empty.txt", "empty.pdf", "empty.docx", "empty.epub", "empty.html"])
def test_empty_file_gives_empty_text(tmp_path, config, name):
    path = tmp_path / name
    path.touch()
    result = extract(path, config=config)
    assert result.text == ""
    assert result.path == path
    assert result.title == name


def test_over_size_file_is_refused_before_reading(tmp_path, config):
    path = tmp_path / "big.txt"
    path.write_bytes(b"word " * 600)  # 3000 bytes
    small = replace(config, max_file_bytes=2048)
    with pytest.raises(FileTooLarge) as caught:
        extract(path, config=small)
    assert str(caught.value) == "2.9 KB is over the 2.0 KB limit; raise max_file_bytes to index it"


def test_just_over_the_limit_shows_exact_byte_counts(tmp_path, config):
    path = tmp_path / "edge.txt"
    path.write_bytes(b"a" * (1024 * 1024 + 1))
    with pytest.raises(FileTooLarge, match=r"^1,048,577 bytes is over the 1,048,576 byte limit"):
        extract(path, config=replace(config, max_file_bytes=1024 * 1024))


def test_over_size_message_in_megabytes(tmp_path, config):
    path = tmp_path / "big.log"
    path.write_bytes(b"x" * (3 * 1024 * 1024 + 1))
    with pytest.raises(FileTooLarge, match=r"^3\.0 MB is over the 1\.0 MB limit"):
        extract(path, config=replace(config, max_file_bytes=1024 * 1024))


def test_file_exactly_at_the_limit_is_read(tmp_path, config):
    path = tmp_path / "edge.txt"
    path.write_bytes(b"a" * 100)
    assert extract(path, config=replace(config, max_file_bytes=100)).text == "a" * 100


def test_missing_file(tmp_path, config):
    with pytest.raises(FileVanished, match="no longer exists"):
        extract(tmp_path / "gone.txt", config=config)


def test_broken_symlink(tmp_path, config):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "target-that-is-not-there.txt")
    with pytest.raises(FileVanished, match="broken link"):
        extract(link, config=config)


def test_folder_with_a_supported_suffix(tmp_path, config):
    folder = tmp_path / "looks-like.md"
    folder.mkdir()
    with pytest.raises(UnsupportedFile, match="folder"):
        extract(folder, config=config)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_fifo_is_refused_without_blocking(tmp_path, config):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            extract(fifo, config=config)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the test process can end, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("extract() blocked on a named pipe")
    assert len(outcome) == 1 and isinstance(outcome[0], UnsupportedFile)
    assert "named pipe" in str(outcome[0])


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path, config):
    path = tmp_path / "secret.txt"
    path.write_text("top secret")
    path.chmod(0)
    try:
        with pytest.raises(FileVanished, match="permission denied"):
            extract(path, config=config)
    finally:
        path.chmod(0o600)


def test_permission_error_while_opening_is_reported(tmp_path, config, monkeypatch):
    """The same mapping, checked where the test runs as root (which a chmod cannot stop)."""
    path = tmp_path / "secret.txt"
    path.write_text("top secret")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(FileVanished, match="permission denied; give your user read access"):
        extract(path, config=config)


def test_text_over_max_text_chars_is_cut_with_a_warning(tmp_path, config):
    path = tmp_path / "long.txt"
    path.write_text("0123456789" * 100)
    result = extract(path, config=replace(config, max_text_chars=250))
    assert result.text == ("0123456789" * 25)
    assert any("max_text_chars" in warning for warning in result.warnings)


def test_nothing_is_written(tmp_path, config):
    path = tmp_path / "a.md"
    path.write_text("# Title\n\nbody\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    extract(path, config=config)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not config.data_dir.exists()


def test_every_refusal_is_an_extraction_error():
    for error in (FileTooLarge, FileVanished, UnsupportedFile):
        assert issubclass(error, ExtractionError)


def test_cutting_text_to_the_limit_keeps_each_pages_label_and_ocr_mark():
    from pathlib import Path

    from findling.engine.extract.limits import cap_text
    from findling.engine.records import ExtractedText, PageSpan

    doc = ExtractedText(Path("scan.pdf"), "a" * 50 + "b" * 50, pages=(
        PageSpan(1, 0, 50, label="1"), PageSpan(2, 50, 100, label="2 (OCR)", ocr=True)), kind="pdf")
    cut = cap_text(doc, max_chars=70)
    assert cut.text == "a" * 50 + "b" * 20
    assert cut.pages == (PageSpan(1, 0, 50, label="1"), PageSpan(2, 50, 70, label="2 (OCR)", ocr=True))
    assert "text cut at 70" in cut.warnings[-1]
