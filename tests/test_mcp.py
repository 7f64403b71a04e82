"""``findling mcp``: a real MCP client session over stdio against ``python -m findling mcp``, on an index built
here with the fake encoder (``--encoder-factory tests.fakes:fake_factory`` in the server process)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

from findling.cli.mcp_server import MAX_READ_CHARS, read_chunks
from findling.engine.errors import FindlingError
from findling.engine.index.indexer import Indexer
from findling.engine.records import Chunk
from findling.engine.store.store import Store
from tests.fakes import FakeEncoder
from tests.reliability.helpers import tree_snapshot

ROOT = Path(__file__).resolve().parent.parent

GLACIERS = ("Glaciers carve deep valleys into the mountains.\n\n"
            "Meltwater from the glacier feeds the river all summer. " * 3)


@pytest.fixture
def indexed(tmp_path, config):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "glaciers.md").write_text(GLACIERS)
    (folder / "garden.txt").write_text("Tomatoes need sun and water. Prune the basil often.\n")
    (folder / "recipes.txt").write_text("Bake the bread for forty minutes; let the dough rise overnight.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really a PDF")
    with Store(config.db_path) as store:
        store.add_folder(folder)
        last = Indexer(store, FakeEncoder(), config=config).run_to_end()
    assert last.indexed == 3 and last.failed == 1
    return folder


def _session(home: Path, calls):
    """Run ``calls(session)`` in a client session with a server started as the user's assistant would."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "findling", "--home", str(home), "mcp", "--encoder-factory", "tests.fakes:fake_factory"],
        env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": os.environ.get("PATH", "")},
        cwd=str(ROOT),
    )

    async def main():
        with open(os.devnull, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await calls(session)

    return anyio.run(main)


def _data(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def test_an_assistant_searches_reads_and_sees_status_without_writing(indexed, config):
    before = tree_snapshot(indexed)

    async def calls(session):
        tools = await session.list_tools()
        found = await session.call_tool("search", {"query": "glacier meltwater river", "k": 3})
        hit = _data(found)["results"][0]
        read = await session.call_tool("read", {"path": hit["path"], "start": hit["file_start"],
                                                "end": hit["file_end"], "context": 10})
        whole = await session.call_tool("read", {"path": hit["path"], "chunk": hit["chunk"]})
        filtered = await session.call_tool("search", {"query": "bread ext:txt", "k": 5})
        status = await session.call_tool("status", {})
        outside = await session.call_tool("read", {"path": str(indexed / "broken.pdf")})
        bad_date = await session.call_tool("search", {"query": "bread", "after": "yesterday"})
        return tools, found, read, whole, filtered, status, outside, bad_date

    tools, found, read, whole, filtered, status, outside, bad_date = _session(config.data_dir, calls)

    assert {tool.name for tool in tools.tools} == {"search", "read", "status"}
    assert all(tool.annotations and tool.annotations.read_only_hint for tool in tools.tools)

    results = _data(found)["results"]
    assert results[0]["path"] == str(indexed / "glaciers.md")
    assert {"path", "page", "score", "snippet", "matches", "file_start", "file_end"} <= set(results[0])
    words = {m["text"].lower() for m in results[0]["matches"]}
    assert {"meltwater", "river"} <= words
    chunk_text = _data(whole)["text"]
    for match in results[0]["matches"]:
        assert chunk_text[match["start"]:match["end"]] == match["text"]

    piece = _data(read)
    assert piece["start"] == max(0, results[0]["file_start"] - 10)
    assert "Meltwater from the glacier" in piece["text"]
    assert piece["text"] == GLACIERS[piece["start"]:piece["end"]]

    assert [r["path"] for r in _data(filtered)["results"]][0] == str(indexed / "recipes.txt")
    assert all(r["path"].endswith(".txt") for r in _data(filtered)["results"])

    st = _data(status)
    assert st["folders"] == [str(indexed)]
    assert st["indexed_files"] == 3 and st["failed_files"] == 1
    assert st["problems"][0]["path"] == str(indexed / "broken.pdf") and st["problems"][0]["reason"]
    assert st["model"]["name"] == "fake-encoder" and st["ocr"].startswith("OCR: ")

    assert outside.is_error and "not in the index" in outside.content[0].text
    assert bad_date.is_error and "yesterday" in bad_date.content[0].text

    assert tree_snapshot(indexed) == before, "the MCP server wrote inside the indexed folder"


def test_without_an_index_the_tools_say_how_to_make_one(tmp_path):
    async def calls(session):
        return await session.call_tool("status", {})

    result = _session(tmp_path / "no-index-here", calls)
    assert result.is_error and "findling index" in result.content[0].text
    assert not (tmp_path / "no-index-here").exists(), "the server created a data folder"


def _chunks(text: str, cuts: list[tuple[int, int]]) -> list[Chunk]:
    return [Chunk(ordinal=i, text=text[a:b], char_start=a, char_end=b, token_count=1, page=i + 1)
            for i, (a, b) in enumerate(cuts)]


def test_read_assembles_overlapping_chunks_and_keeps_offsets_across_gaps():
    text = "alpha beta gamma.\n\ndelta epsilon zeta eta."
    cuts = [(0, 17), (12, 17), (19, len(text))]  # an overlap, then a paragraph break no chunk holds
    chunks = _chunks(text, cuts)
    whole = read_chunks(Path("/x"), chunks, start=None, end=None, context=0, chunk=None)
    assert whole["text"] == text and whole["pages"] == [1, 2, 3] and not whole["more"]
    middle = read_chunks(Path("/x"), chunks, start=20, end=25, context=3, chunk=None)
    assert (middle["start"], middle["end"], middle["text"]) == (17, 28, text[17:28]) and middle["pages"] == [3]
    assert read_chunks(Path("/x"), chunks, start=None, end=None, context=0, chunk=1)["text"] == text[12:17]
    with pytest.raises(FindlingError, match="not 7"):
        read_chunks(Path("/x"), chunks, start=None, end=None, context=0, chunk=7)


def test_read_returns_at_most_its_limit_and_says_more_follows():
    text = "word " * (MAX_READ_CHARS // 2)
    piece = read_chunks(Path("/x"), _chunks(text, [(0, len(text) - 1)]), start=None, end=None, context=0, chunk=None)
    assert len(piece["text"]) == MAX_READ_CHARS and piece["more"]
