"""Passkey: the generator follows the LongEmbed recipe; a tiny evaluation runs through the engine."""
import argparse
import json
import re

import pytest

from findling.evaluation import passkey
from findling.evaluation.passkey import LENGTHS, generate, key_sentence, parse_lengths

KEY_LINE = re.compile(r"\n([A-Z][a-z]+ [A-Z][a-z]+)'s pass key is (\d{5})\. "
                      r"Remember it\. \2 is the pass key for \1\.\n")


def parsed(data):
    """(name, key, start of the key line, words) per document."""
    out = []
    for d in data.docs:
        found = KEY_LINE.findall(d.text)
        assert len(found) == 1, d.text[:200]
        name, key = found[0]
        out.append((name, key, d.text.index("\n"), len(d.text.split())))
    return out


@pytest.mark.parametrize("length", LENGTHS)
def test_documents_are_about_three_quarters_of_the_length_in_words(length):
    data = generate(length, n_docs=100, n_queries=50)
    assert len(data.docs) == 100 and len(data.queries) == 50
    for _, _, _, words in parsed(data):
        assert abs(words - 0.75 * length) <= 6  # filler is added a whole sentence at a time


def test_key_sentence_present_exactly_once_with_unique_names_and_keys():
    data = generate(512)
    rows = parsed(data)
    names = [r[0] for r in rows]
    keys = [r[1] for r in rows]
    assert len(set(names)) == 100 and len(set(keys)) == 100
    for d, (name, key, _, _) in zip(data.docs, rows):
        assert d.text.count(key_sentence(name, key)) == 1
        assert d.text.count(key) == 2 and d.text.count(name) == 2  # only inside the key line
        rest = d.text.replace(key_sentence(name, key), " ")
        assert set(rest.split()) <= set(passkey.FILLER.split())


def test_key_line_lands_at_random_positions():
    data = generate(2048)
    starts = [start / len(d.text) for d, (_, _, start, _) in zip(data.docs, parsed(data))]
    assert min(starts) < 0.2 and max(starts) > 0.8


def test_queries_name_the_relevant_document():
    data = generate(256, n_docs=30, n_queries=12)
    by_id = {d.id: d for d in data.docs}
    assert len(data.queries) == 12
    for qid, text in data.queries.items():
        name = re.fullmatch(r"what is the pass key for (.+)\?", text).group(1)
        (doc_id, grade), = data.qrels[qid].items()
        assert grade == 1 and f"\n{name}'s pass key" in by_id[doc_id].text


def test_generation_is_seeded():
    assert generate(1024) == generate(1024)
    assert generate(1024, seed=1) != generate(1024)
    assert [d.text for d in generate(256).docs] != [d.text for d in generate(512).docs]


def test_impossible_sizes_are_refused():
    with pytest.raises(ValueError):
        generate(256, n_docs=10, n_queries=11)
    with pytest.raises(ValueError):
        generate(256, n_docs=passkey.MAX_DOCS + 1, n_queries=1)


def test_parse_lengths():
    assert parse_lengths("256, 512,1k,32K") == (256, 512, 1024, 32768)
    for bad in ("", "abc", "8"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_lengths(bad)


# --------------------------------------------------------------- evaluation
def test_tiny_evaluation_with_the_fake_encoder(fake_encoder, config):
    report = passkey.evaluate_passkey(fake_encoder, config=config, lengths=(64, 256), n_docs=10, n_queries=5)
    out = report.to_json()
    assert out["lengths"] == [64, 256] and out["chunk_tokens"] == 64
    assert set(out["ndcg@1"]) == {"bm25", "maxsim", "hybrid"}
    assert set(out["ndcg@1"]["maxsim"]) == {"64", "256", "mean"}
    assert out["chunks_per_doc"]["64"] == 1.0 and out["chunks_per_doc"]["256"] > 1  # longer than a chunk
    # what each document holds, not what was encoded: identical filler chunks are encoded once, stored for each
    assert 0.6 * 256 < out["tokens_per_doc"]["256"] < 1.2 * 256
    # only the relevant document holds both halves of the name: the fake finds it in every mode
    assert out["mean"] == {"bm25": 1.0, "maxsim": 1.0, "hybrid": 1.0}
    assert out["ndcg@1"]["maxsim"]["mean"] == out["mean"]["maxsim"]


def test_cli_prints_one_json_object(config, fake_encoder, monkeypatch, capsys):
    import findling.engine.encode.resolve

    monkeypatch.setattr(findling.engine.encode.resolve, "load_encoder", lambda config: fake_encoder)
    parser = argparse.ArgumentParser(prog="findling")
    passkey.add_passkey_parser(parser.add_subparsers())
    args = parser.parse_args(["passkey", "--lengths", "128", "--docs", "6", "--queries", "3", "--json"])
    assert args.func(args, config) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "passkey" and out["n_docs"] == 6 and out["lengths"] == [128]
    args = parser.parse_args(["passkey", "--lengths", "128", "--docs", "6", "--queries", "3"])
    assert args.func(args, config) == 0
    assert "maxsim" in capsys.readouterr().out
    args = parser.parse_args(["passkey", "--docs", "3", "--queries", "4"])
    assert args.func(args, config) == 2


def test_a_pooling_model_adds_the_dense_lane_and_hybrid_still_finds_every_key(config):
    from tests.engine.test_dense_lane import FakeDenseEncoder

    report = passkey.evaluate_passkey(FakeDenseEncoder(), config=config, lengths=(64, 256), n_docs=10, n_queries=5)
    out = report.to_json()
    assert set(out["ndcg@1"]) == {"bm25", "maxsim", "dense_lane", "hybrid"}
    assert out["mean"]["hybrid"] == 1.0
