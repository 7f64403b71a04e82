"""Every ``findling`` command and subcommand answers ``--help`` with its usage and exits 0."""
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
