"""No network on any default path, and models load from safetensors only: no pickles, no remote code.

One fresh process, with every internet socket refused by a ``sitecustomize`` on its path and without
``HF_HUB_OFFLINE`` in its environment, indexes and searches with the tiny model, resolves and uses the default
model from a local Hugging Face cache, answers odd queries with the real tokenizer, and loads a model folder
that also holds a booby-trapped pickle. Every connection attempt is logged; there must be none.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import textwrap
from dataclasses import replace

import pytest

from findling.engine import load_encoder
from findling.engine.config import TARGET_MODEL, Config
from findling.engine.errors import ModelError
from tests.model_factory import build_fake_hf_cache
from tests.reliability.helpers import PYTHON, ROOT, subprocess_env

SITECUSTOMIZE = textwrap.dedent("""
    import atexit, json, os, socket, sys

    _LOG = os.environ["FINDLING_NET_LOG"]

    def _refuse(what, detail):
        with open(_LOG, "a") as f:
            f.write(json.dumps([what, repr(detail)]) + "\\n")
        raise OSError(f"network blocked by the test: {what} {detail!r}")

    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse("connect", address)
        return _connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse("connect_ex", address)
        return _connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.create_connection = lambda address, *a, **k: _refuse("create_connection", address)
    socket.getaddrinfo = lambda host, *a, **k: _refuse("getaddrinfo", host)

    @atexit.register
    def _report():
        hub = sys.modules.get("huggingface_hub.constants")
        with open(_LOG, "a") as f:
            f.write(json.dumps(["hub-offline", getattr(hub, "HF_HUB_OFFLINE", None)]) + "\\n")
""")

SCRIPT = textwrap.dedent("""
    import contextlib, io, json, sys
    from findling.cli import main as cli

    home, docs, tiny, pickled, coded, out = sys.argv[1:7]
    report = {}

    def run(*argv, home=home):
        o, e = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
            try:
                rc = cli.main(["--home", home, *argv])
            except SystemExit as exc:
                rc = exc.code
        return {"rc": rc, "out": o.getvalue(), "err": e.getvalue()}

    report["add"] = run("folders", "add", docs)
    report["index"] = run("index", "--quiet", "--model", tiny)
    report["search"] = run("search", "glaciers feed rivers", "--json", "--model", tiny)
    report["queries"] = {q: run("search", q, "--model", tiny) for q in json.loads(sys.argv[7])}
    report["default-model"] = run("model")
    report["default-add"] = run("folders", "add", docs, home=home + "-default")
    report["default-index"] = run("index", "--quiet", home=home + "-default")
    report["default-search"] = run("search", "glaciers", "--json", home=home + "-default")
    report["pickled"] = run("search", "glaciers", "--model", pickled, home=home + "-pickled")
    report["coded"] = run("search", "glaciers", "--model", coded, home=home + "-coded")
    with open(out, "w") as f:
        json.dump(report, f)
""")

ODD_QUERIES = ["", "   ", "\x00", "x" * 100_000, '"unbalanced', "NEAR(a b", "AND OR NOT *", "\udcff\udcfe",
               "émoji \U0001F4C4 glaciers", "[CLS] [SEP] [MASK] [Q] [D] [PAD] [UNK]", "glaciers ext:\udcff",
               "dir:~nosuchuser rivers", "after:2024-13-45 rivers", "a" * 5000 + " glaciers", "\u200b\ufeff\u202e"]

TRAP = textwrap.dedent("""
    from pathlib import Path
    Path({marker!r}).write_text("remote code ran")
    raise ImportError("remote code must never run")
""")


class Trap:
    """Unpickling this creates the marker file: proof that a pickle was loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _booby_trapped(tiny, folder, marker):
    """The tiny model plus pickle weights (next to the safetensors) that leave a marker when unpickled."""
    shutil.copytree(tiny, folder)
    for sub in (folder, folder / "1_Dense"):
        (sub / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": Trap(str(marker))}))
    return folder


def _remote_code(tiny, folder, marker):
    """The tiny model asking for its own modelling and tokenizer code, which leaves a marker when imported."""
    shutil.copytree(tiny, folder)
    (folder / "trap_code.py").write_text(TRAP.format(marker=str(marker)))
    for name, key in (("config.json", "AutoModel"), ("tokenizer_config.json", "AutoTokenizer")):
        data = json.loads((folder / name).read_text())
        data["auto_map"] = {key: ["trap_code.Trap", None] if key == "AutoTokenizer" else "trap_code.Trap",
                            "AutoConfig": "trap_code.TrapConfig"}
        (folder / name).write_text(json.dumps(data))
    return folder


def _offline_world(base, tiny_model_dir):
    """A folder to index, a Hugging Face cache holding the target model (the tiny one), and the environment
    of a child process whose internet sockets are refused and logged, with no offline variables set."""
    docs = base / "docs"
    docs.mkdir()
    (docs / "rivers.md").write_text("# Rivers\n\nGlaciers feed rivers in spring.\n")
    site = base / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    cache = base / "hf-cache"
    build_fake_hf_cache(cache, TARGET_MODEL, lambda snapshot: shutil.copytree(tiny_model_dir, snapshot))
    net_log = base / "net.log"
    env = subprocess_env(PYTHONPATH=f"{site}{os.pathsep}{ROOT}", FINDLING_NET_LOG=str(net_log),
                         HF_HUB_CACHE=str(cache), HF_HOME=str(base / "hf-home"), QT_QPA_PLATFORM="offscreen")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "FINDLING_MODEL", "HF_DATASETS_OFFLINE"):
        env.pop(name, None)
    return docs, env, net_log


@pytest.fixture(scope="module")
def offline(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.mktemp("offline")
    docs, env, net_log = _offline_world(base, tiny_model_dir)
    (docs / "garden.txt").write_text("Tomatoes need sun and water.\n")
    markers = {"pickled": base / "pickle-ran", "coded": base / "code-ran"}
    pickled = _booby_trapped(tiny_model_dir, base / "pickled-model", markers["pickled"])
    coded = _remote_code(tiny_model_dir, base / "coded-model", markers["coded"])
    out = base / "report.json"
    done = subprocess.run([PYTHON, "-c", SCRIPT, str(base / "home"), str(docs), str(tiny_model_dir), str(pickled),
                           str(coded), str(out), json.dumps(ODD_QUERIES)], cwd=ROOT, env=env, capture_output=True,
                          text=True, errors="replace", timeout=600)
    assert done.returncode == 0 and out.exists(), done.stderr[-4000:]
    report = json.loads(out.read_text())
    events = [json.loads(line) for line in net_log.read_text().splitlines()] if net_log.exists() else []
    return {"report": report, "events": events, "markers": markers, "docs": docs}


def test_index_search_and_default_model_need_no_network(offline):
    report = offline["report"]
    for step in ("add", "index", "search", "default-model", "default-add", "default-index", "default-search"):
        assert report[step]["rc"] == 0, (step, report[step]["err"][-2000:])
    for step in ("search", "default-search"):
        hits = json.loads(report[step]["out"])["results"]
        assert hits and hits[0]["path"].endswith("rivers.md"), step
    assert json.loads(report["default-search"]["out"])["model"] == TARGET_MODEL
    assert "hf-cache" in report["default-model"]["out"] and TARGET_MODEL in report["default-model"]["out"]
    attempts = [e for e in offline["events"] if e[0] != "hub-offline"]
    assert attempts == [], f"network connections were attempted: {attempts}"


def test_the_cli_turns_hugging_face_offline_itself(offline):
    """``HF_HUB_OFFLINE`` was not in the environment; the CLI set it before huggingface_hub read it."""
    [state] = [e for e in offline["events"] if e[0] == "hub-offline"]
    assert state[1] is True


def test_odd_queries_with_the_real_tokenizer_answer_or_say_why(offline):
    for query, result in offline["report"]["queries"].items():
        assert "Traceback" not in result["err"], (query[:40], result["err"][-2000:])
        assert result["rc"] == 0 or (result["rc"] == 2 and result["err"].startswith("findling:")), query[:40]
    assert offline["report"]["queries"]["dir:~nosuchuser rivers"]["rc"] == 2
    assert "YYYY-MM-DD" in offline["report"]["queries"]["after:2024-13-45 rivers"]["err"]


def test_pickles_and_remote_code_never_run(offline):
    report = offline["report"]
    assert not offline["markers"]["pickled"].exists(), "a pickle file was unpickled"
    assert not offline["markers"]["coded"].exists(), "the model folder's own code was imported"
    # with the pickles beside them, the safetensors weights are what loads
    assert report["pickled"]["rc"] == 0, report["pickled"]["err"][-2000:]
    coded = report["coded"]
    assert coded["rc"] in (0, 2) and "Traceback" not in coded["err"], coded["err"][-2000:]


def test_a_model_with_only_pickle_weights_is_refused(tmp_path, tiny_model_dir):
    config = Config(data_dir=tmp_path / "data", threads=1)
    only_pickle = tmp_path / "only-pickle"
    shutil.copytree(tiny_model_dir, only_pickle)
    (only_pickle / "model.safetensors").unlink()
    (only_pickle / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": Trap(str(tmp_path / "ran"))}))
    with pytest.raises(ModelError, match="only pickle .bin weights, which are not loaded"):
        load_encoder(replace(config, model=str(only_pickle)))
    pickled_head = tmp_path / "pickled-head"
    shutil.copytree(tiny_model_dir, pickled_head)
    (pickled_head / "1_Dense" / "model.safetensors").rename(pickled_head / "1_Dense" / "pytorch_model.bin")
    with pytest.raises(ModelError, match="projection head .* lacks config.json or model.safetensors"):
        load_encoder(replace(config, model=str(pickled_head)))
    assert not (tmp_path / "ran").exists()


HOOK = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path

    class Watch:
        \"\"\"Records the offline setting when Hugging Face code is first imported, then stops the import.\"\"\"
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("transformers", "huggingface_hub", "sentence_transformers", "pylate"):
                print(json.dumps({"module": name, "offline": os.environ.get("HF_HUB_OFFLINE")}), flush=True)
                os._exit(0)
            return None

    sys.meta_path.insert(0, Watch())
    from findling.engine.config import Config
    config = Config(data_dir=Path(sys.argv[1]), model=sys.argv[2], threads=1)
    if sys.argv[3] == "cli":
        from findling.cli import main as cli
        cli.main(["--home", sys.argv[1], "model", "--model", sys.argv[2]])
    else:
        from findling.engine import load_encoder
        load_encoder(config)
    print(json.dumps({"module": None}), flush=True)
""")


def _first_hugging_face_import(tmp_path, model, entry: str) -> dict:
    env = subprocess_env()
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    done = subprocess.run([PYTHON, "-c", HOOK, str(tmp_path / "data"), str(model), entry], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[0])


def test_cli_sets_offline_mode_before_importing_hugging_face(tmp_path, tiny_model_dir):
    seen = _first_hugging_face_import(tmp_path, tiny_model_dir, "cli")
    assert seen["module"] is not None and seen["offline"] == "1", seen


def test_load_encoder_sets_offline_mode_before_importing_hugging_face(tmp_path, tiny_model_dir):
    seen = _first_hugging_face_import(tmp_path, tiny_model_dir, "api")
    assert seen["module"] is not None and seen["offline"] == "1", seen


def test_the_app_starts_indexes_and_searches_with_no_network(tmp_path, tiny_model_dir):
    """The real window, rendered offscreen, with every internet socket refused and no offline variables set."""
    docs, env, net_log = _offline_world(tmp_path, tiny_model_dir)
    shot = tmp_path / "window.png"
    done = subprocess.run([PYTHON, "-m", "findling.app.main", "--home", str(tmp_path / "home"), "--add-folder", str(docs),
                           "--wait-index", "120", "--query", "glaciers", "--screenshot", str(shot)],
                          cwd=ROOT, env=env, capture_output=True, text=True, errors="replace", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert shot.stat().st_size > 10_000
    events = [json.loads(line) for line in net_log.read_text().splitlines()] if net_log.exists() else []
    assert [e for e in events if e[0] != "hub-offline"] == []
    with sqlite3.connect(tmp_path / "home" / "index.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM files WHERE status = 'indexed'").fetchone()[0] == 1
