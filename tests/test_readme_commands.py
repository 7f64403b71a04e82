"""The commands in README.md's shell blocks work as written, in a fresh home.

Which commands run: every line of a fenced ``sh`` (or ``bash``/``shell``) block of README.md whose program is
the ``findling`` command (``findling`` or any path ending in ``bin/findling``, such as ``.venv/bin/findling``),
unless ``skip_reason`` names a reason: it needs a display (``findling-gui``), sets up or runs long jobs
(``make``), runs until stopped (``watch``, ``index --watch``, the ``mcp`` server), runs long over a data set
or a model (``eval``, ``passkey``, ``train``, ``model use``), uses the network (``model download``), adds a
folder outside the home (a large shared data set), or is a pipeline or redirection. Lines joined with a
trailing backslash are one command; ``#`` starts a comment, as in the shell.

How they run: one after another, in README order, each in its own process with ``HOME`` and the XDG data,
config and cache folders inside ``tmp_path`` (so the index is a new one there, and no user setting is read).
``~`` expands to that home, which holds ``Documents`` with two small text files; a ``~`` path a command names
that does not exist yet is created first (a name with a suffix as a small text file, else a folder). The
program's ``bin/`` prefix maps to the bin folder of the interpreter running the tests, where ``findling`` must
be installed; its console-script entry point is then called in a process whose model loading returns the
deterministic fake encoder (``tests.fakes``), so no model is needed. Each command must exit with status 0.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHELL_INFO = {"sh", "bash", "shell"}
OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&", "2>", "2>&1"}
GLOBAL_OPTIONS_WITH_VALUE = {"--home"}

BOOTSTRAP = """\
import sys
from importlib.metadata import entry_points

import findling.engine.encode.resolve as resolve
from tests.fakes import FakeEncoder

resolve.load_encoder = lambda config: FakeEncoder()
(entry,) = [e for e in entry_points(group="console_scripts") if e.name == "findling"]
sys.argv = ["findling", *sys.argv[1:]]
sys.exit(entry.load()())
"""


def shell_lines(markdown: str) -> list[str]:
    """The commands of the fenced shell blocks, in order: continuation lines joined, blank and comment lines
    dropped (a trailing comment stays; ``shlex`` drops it)."""
    out: list[str] = []
    block = None
    pending = ""
    for line in markdown.splitlines():
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", line)
        if fence:
            if block is None:
                block = fence.group(2).lower()
            else:
                block, pending = None, ""
            continue
        if block not in SHELL_INFO:
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1].rstrip() + " "
            continue
        pending = ""
        if text and not text.startswith("#"):
            out.append(text)
    return out


def is_findling(program: str) -> bool:
    return program == "findling" or program.replace("\\", "/").endswith("bin/findling")


def subcommand(argv: list[str]) -> list[str]:
    """The words after ``findling`` and its global options (``--home DIR``, ``-v``)."""
    rest = argv[1:]
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in GLOBAL_OPTIONS_WITH_VALUE else rest[1:]
    return rest


def skip_reason(argv: list[str]) -> str | None:
    """Why this command is not run (see the module docstring), or None to run it."""
    if not argv:
        return "empty"
    if any(word in OPERATORS for word in argv):
        return "a pipeline or redirection"
    program = Path(argv[0]).name
    if program == "make":
        return "make sets up .venv and runs the app, the tests or the benchmarks"
    if program == "findling-gui":
        return "needs a display"
    if not is_findling(argv[0]):
        return f"not the findling command ({program})"
    words = subcommand(argv)
    command = words[0] if words else ""
    if command == "watch" or (command == "index" and ("--watch" in words or "--control" in words)):
        return "runs until stopped"
    if command == "mcp":
        return "a server that runs until its client disconnects"
    if command in ("eval", "passkey", "train"):
        return "a long run over a data set or a training job"
    if command == "model" and "download" in words:
        return "uses the network"
    if command == "model" and "use" in words:
        return "re-encodes the whole index with another model"
    if words[:2] == ["folders", "add"] and any(not w.startswith("~") for w in words[2:] if not w.startswith("-")):
        return "adds a folder outside the home (a large data set)"
    return None


def expand(word: str, home: Path) -> str:
    if word == "~" or word.startswith("~/"):
        return str(home) + word[1:]
    return word


def prepare_paths(argv: list[str], home: Path) -> None:
    """Create the paths under ``home`` that ``argv`` names and that do not exist yet (see the module docstring)."""
    for word in argv[1:]:
        path = Path(word)
        if not word.startswith(str(home)) or path.exists():
            continue
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"A small file named {path.name} for the README commands.\n")
        else:
            path.mkdir(parents=True)
            (path / "notes.txt").write_text("Meeting notes: the garden needs water and the tomatoes need sun.\n")


def fresh_home(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    documents = home / "Documents"
    documents.mkdir(parents=True)
    (documents / "csv.md").write_text("# CSV files\n\nRead and write CSV files with the csv module.\n")
    (documents / "garden.txt").write_text("Tomatoes need sun and water. Prune the basil often.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDLING_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    for key in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        env.pop(key, None)
    return home, env


SAMPLE = """\
Some text.

```sh
make run     # set up, then open the window
.venv/bin/findling folders add ~/Documents        # watch a folder
.venv/bin/findling index
findling --home ~/alt -v search "csv \\"files\\"" --dir ~/Documents/manuals -k 5
.venv/bin/findling watch                          # Ctrl+C stops
findling mcp
.venv/bin/findling-gui --home DIR --add-folder ../shared/data/folders/python-docs --wait-index 3600 \\
    --query "csv reader" --screenshot docs/screenshots/preview.png
.venv/bin/findling folders add ../shared/data/folders/r-manuals
.venv/bin/findling model download mixedbread-ai/mxbai-edge-colbert-v0-17m
.venv/bin/findling eval ../shared/data/scifact --json | python docs/generate.py record-eval
# a comment line
```

```python
findling_is_not_run_here = True
```
"""


def test_the_rule_picks_the_commands_to_run():
    lines = shell_lines(SAMPLE)
    assert len(lines) == 10 and lines[6].endswith("--screenshot docs/screenshots/preview.png")
    decided = {line.split("#")[0].strip(): skip_reason(shlex.split(line, comments=True)) for line in lines}
    run = [line for line, reason in decided.items() if reason is None]
    assert run == [".venv/bin/findling folders add ~/Documents", ".venv/bin/findling index",
                   'findling --home ~/alt -v search "csv \\"files\\"" --dir ~/Documents/manuals -k 5']
    reasons = [reason for reason in decided.values() if reason]
    assert reasons == ["make sets up .venv and runs the app, the tests or the benchmarks", "runs until stopped",
                       "a server that runs until its client disconnects", "needs a display",
                       "adds a folder outside the home (a large data set)", "uses the network",
                       "a pipeline or redirection"]


def test_paths_a_command_names_are_created_in_the_home(tmp_path):
    home = tmp_path / "home"
    argv = [expand(w, home) for w in shlex.split("findling exclude test ~/Documents/x.pdf --dir ~/Documents/manuals "
                                                 "/elsewhere/y.txt")]
    prepare_paths(argv, home)
    assert (home / "Documents" / "x.pdf").is_file() and (home / "Documents" / "manuals" / "notes.txt").is_file()
    assert not Path("/elsewhere/y.txt").exists()


def test_readme_commands_run_in_a_fresh_home(tmp_path):
    if not README.is_file():
        pytest.skip("no README.md")
    home, env = fresh_home(tmp_path)
    installed = Path(sys.executable).parent / ("findling.exe" if os.name == "nt" else "findling")
    ran, skipped, failed = [], [], []
    for line in shell_lines(README.read_text(encoding="utf-8")):
        argv = shlex.split(line, comments=True)
        reason = skip_reason(argv)
        if reason:
            skipped.append(f"{line}  [{reason}]")
            continue
        assert installed.is_file(), f"{line}: the findling command is not installed in {installed.parent}"
        argv = [expand(word, home) for word in argv]
        prepare_paths(argv, home)
        done = subprocess.run([sys.executable, "-c", BOOTSTRAP, *argv[1:]], cwd=home, env=env, capture_output=True,
                              stdin=subprocess.DEVNULL, text=True, timeout=300)
        ran.append(line)
        if done.returncode != 0:
            failed.append(f"{line}\n  exit status {done.returncode}\n  stdout: {done.stdout[-800:]}\n"
                          f"  stderr: {done.stderr[-1500:]}")
    print("ran:\n  " + "\n  ".join(ran) + "\nskipped:\n  " + "\n  ".join(skipped))
    assert ran, "no command of README.md's shell blocks was run; skipped:\n" + "\n".join(skipped)
    assert not failed, "README commands that failed in a fresh home:\n" + "\n".join(failed)
