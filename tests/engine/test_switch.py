import shutil
from dataclasses import replace

import pytest

from findling.cli import main as cli
from findling.engine.errors import IndexLocked
from findling.engine.sources.exclusions import add_patterns
from findling.engine.index.indexer import CancelToken, Indexer
from findling.engine.records import Chunk
from findling.engine.search.searcher import Searcher
from findling.engine.store.store import Store
from findling.engine.index.reencode import chosen_config, next_path, rechunk, switch_model
from tests.fakes import FakeEncoder, FakeTokenizer


def _built(config, docs, enc):
    store = Store(config.db_path)
    store.add_folder(docs)
    Indexer(store, enc, config=config).run_to_end()
    return store


def _run(gen):
    last = None
    for last in gen:
        pass
    return last


def test_switch_reencodes_from_stored_text_and_swaps_in(config, docs):
    old_enc, new_enc = FakeEncoder(), FakeEncoder(dim=8, name="other-model")
    store = _built(config, docs, old_enc)
    add_patterns(store, ["drafts"])
    old_files = {p: s.status for p, s in store.file_states().items()}
    old_chunks = store.stats()["chunks"]
    _, old_max_chunk = store.last_ids()
    reader = Store(config.db_path)  # a search connection that stays open across the swap
    assert Searcher(reader, old_enc).search("csv module", k=1)[0].path.name == "csv.md"
    shutil.rmtree(docs)  # nothing is read from the files: the chunk texts are in the index

    last = _run(switch_model(store, new_enc, config=config, choice="other-model"))

    assert last.phase == "done" and last.files_total == len(old_files)
    assert new_enc.documents_encoded == old_chunks
    assert {p: s.status for p, s in store.file_states().items()} == old_files
    assert store.model_identity()["name"] == "other-model" and store.dim == 8
    assert store.model_choice() == "other-model"
    assert store.exclude_patterns() == ("drafts",)
    assert store.folders() == [docs]
    assert min(store.chunk_ids()) > old_max_chunk  # ids are never reused
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.integrity_check() == "ok"
    assert not next_path(config.db_path).exists()
    # the connection opened before the swap sees the new index, whole
    assert reader.model_identity()["name"] == "other-model"
    assert Searcher(reader, new_enc).search("csv module", k=1)[0].path.name == "csv.md"
    reader.close()
    store.close()


def test_an_interrupted_switch_resumes_where_it_stopped(config, docs, capsys):
    config = replace(config, encode_batch_tokens=4)  # one file per batch
    store = _built(config, docs, FakeEncoder())
    total_chunks = store.stats()["chunks"]
    token = CancelToken()
    first = FakeEncoder(dim=8, name="other-model")
    seen = []
    for p in switch_model(store, first, config=config, choice=None, cancel=token):
        seen.append(p)
        if p.files_done - p.unchanged >= 1:
            token.cancel()
    assert seen[-1].phase == "cancelled"
    assert next_path(config.db_path).exists()
    assert cli.main(["--home", str(config.data_dir), "status"]) == 0
    assert "unfinished model switch" in capsys.readouterr().out
    assert store.model_identity()["name"] == "fake-encoder"  # the old index still answers
    copied_first = first.documents_encoded
    assert 0 < copied_first < total_chunks
    (docs / "code.py").write_text("def zebra(): pass\n")  # the old index changes in between (first file copied)
    Indexer(store, FakeEncoder(), config=config).run_to_end()
    second = FakeEncoder(dim=8, name="other-model")
    last = _run(switch_model(store, second, config=config, choice=None))
    assert last.phase == "done"
    assert second.documents_encoded == total_chunks - copied_first + 1  # the rest, and code.py once more
    assert [c.text for c in store.chunks_of(docs / "code.py")] == ["def zebra(): pass"]
    assert store.model_identity()["name"] == "other-model"
    assert store.stats()["chunks"] == total_chunks
    store.close()


def test_a_leftover_file_for_another_model_is_started_afresh(config, docs):
    store = _built(config, docs, FakeEncoder())
    token = CancelToken()
    for p in switch_model(store, FakeEncoder(dim=8, name="b"), config=config, choice=None, cancel=token):
        token.cancel()
    third = FakeEncoder(dim=4, name="c")
    assert _run(switch_model(store, third, config=config, choice=None)).phase == "done"
    assert third.documents_encoded == store.stats()["chunks"]
    assert store.dim == 4
    store.close()


def test_switching_needs_the_writer_lock(config, docs, tmp_path):
    import multiprocessing

    store = _built(config, docs, FakeEncoder())
    store.close()
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(config.db_path), ready, done))
    holder.start()
    try:
        assert ready.wait(30)
        with Store(config.db_path) as other:
            with pytest.raises(IndexLocked):
                _run(switch_model(other, FakeEncoder(name="b"), config=config, choice=None))
    finally:
        done.set()
        holder.join(30)


def _hold_lock(db_path, ready, done):
    from pathlib import Path

    from findling.engine.store.store import Store as S

    s = S(Path(db_path))
    s.lock_for_writing()
    ready.set()
    done.wait(30)
    s.close()


def test_rechunk_splits_only_what_the_new_model_cannot_take():
    tok = FakeTokenizer()
    short = Chunk(0, "alpha beta gamma", 0, 16, 3, page=2)
    long = Chunk(1, " ".join(f"w{i}" for i in range(10)), 20, 49, 10, page=3)
    out = rechunk([short, long], tok, max_tokens=4, overlap=0)
    assert out[0] == replace(short, token_count=3)
    assert [c.ordinal for c in out] == list(range(len(out)))
    pieces = out[1:]
    assert len(pieces) == 3 and all(c.token_count <= 4 and c.page == 3 for c in pieces)
    assert " ".join(c.text for c in pieces) == long.text
    assert all(long.text[c.char_start - 20: c.char_end - 20] == c.text for c in pieces)
    assert rechunk([Chunk(0, "!!!", 0, 3, 1)], tok, max_tokens=4, overlap=0) == []


def test_chosen_model_applies_unless_one_is_given(config, store):
    assert chosen_config(config, store).model is None
    store.set_model_choice("/models/mine")
    assert chosen_config(config, store).model == "/models/mine"
    assert chosen_config(replace(config, model="given"), store).model == "given"
    store.set_model_choice(None)
    assert chosen_config(config, store).model is None


def test_cli_model_use_switches_and_later_commands_use_the_choice(tmp_path, docs, monkeypatch, capsys):
    import findling.engine.encode.resolve

    loaded = []

    def load(config):
        loaded.append(config.model)
        return FakeEncoder(name=config.model or "fake-encoder", dim=8 if config.model else 16)

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", load)
    home = tmp_path / "home"

    def run(*args):
        return cli.main(["--home", str(home), *map(str, args)])

    assert run("folders", "add", docs) == 0
    assert run("index", "--quiet") == 0
    assert run("model", "use") == 2
    assert run("model", "use", "small-model", "--quiet") == 0
    assert "the index now uses small-model" in capsys.readouterr().out
    assert run("search", "csv module", "--json") == 0
    assert loaded[-1] == "small-model"
    assert run("status") == 0
    assert "model: small-model" in capsys.readouterr().out
    assert run("model", "use", "small-model") == 0
    assert "already uses small-model" in capsys.readouterr().out
    assert run("model", "use", "--default", "--quiet") == 0
    assert run("status") == 0
    assert "model: fake-encoder" in capsys.readouterr().out


def test_switch_to_a_real_tiny_model_splits_chunks_it_cannot_take(config, docs, tiny_model_dir):
    """The fake index's chunks, re-encoded by a real PyLate model whose limit is smaller than a chunk."""
    from findling.engine.encode.resolve import load_encoder

    (docs / "long.md").write_text(" ".join(f"word{i} about tomatoes" for i in range(60)))
    config = replace(config, max_chunk_tokens=200)  # the fake encoder cuts chunks of up to 200 words
    store = _built(config, docs, FakeEncoder())
    real = load_encoder(replace(config, model=str(tiny_model_dir), max_chunk_tokens=24))
    small = replace(config, max_chunk_tokens=24)  # the new model's chunks hold at most 24 tokens
    assert _run(switch_model(store, real, config=small, choice=str(tiny_model_dir))).phase == "done"
    chunks = store.chunks_of(docs / "long.md")
    assert len(chunks) > 1 and all(c.token_count <= 24 for c in chunks)
    rows = {cid: len(blob) // (2 * real.info.dim) for cid, _f, blob in store.iter_vectors()}
    assert len(rows) == store.stats()["chunks"]
    for cid, row in store.chunk_rows(list(rows)).items():  # one vector per token the model sees, markers too
        assert rows[cid] == len(real.tokenizer.document_spans(row.text))
    assert store.model_identity()["fingerprint"] == real.info.fingerprint
    assert Searcher(store, real).search("tomatoes", k=3)  # searchable with the new model
    store.close()
