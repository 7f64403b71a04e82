"""Every ``findling`` command and subcommand answers ``--help`` with its usage and exits 0, and its help has a
one-line summary and examples that start with the command."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from findling.cli.main import _parser


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*prefix, name))
    return found


COMMANDS = _commands(_parser())


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "findling")
def test_every_command_has_a_working_help(command, tmp_path):
    done = subprocess.run([sys.executable, "-m", "findling.cli", "--home", str(tmp_path), *command, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    usage = "usage: findling" + "".join(f" {word}" for word in command)
    assert usage in " ".join(done.stdout.split()), done.stdout[:400]
    assert not list(tmp_path.iterdir())  # asking for help creates no index and writes nothing


def _parser_of(command: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = _parser()
    for word in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "findling")
def test_every_command_has_a_one_line_summary_and_examples(command):
    parser = _parser_of(command)
    name = " ".join(("findling", *command))
    summary = (parser.description or "").strip()
    assert summary and "\n" not in summary, f"`{name} --help` needs a one-line description"
    epilog = parser.epilog or ""
    assert "examples:" in epilog, f"`{name} --help` needs an 'examples:' section in its epilog"
    examples = [line.strip() for line in epilog.split("examples:", 1)[1].splitlines()]
    assert any(line == name or line.startswith(name + " ") for line in examples), (
        f"`{name} --help` shows no example that starts with `{name}`")
    help_text = parser.format_help()
    assert summary in help_text and "examples:" in help_text  # shown, not only set


def test_every_subcommand_has_a_line_in_its_parents_list():
    for command in COMMANDS:
        parser = _parser_of(command)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {choice.dest: choice.help for choice in action._choices_actions}
                for word in action.choices:
                    assert listed.get(word), f"`findling {' '.join((*command, word))}` has no summary in " \
                                             f"`findling {' '.join(command)} --help`"
