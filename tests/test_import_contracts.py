"""The import contracts of pyproject.toml ([tool.importlinter]) hold: no Qt in the engine, SQL only in the
store, the app on the engine's public API, no stage importing a later one, no cycles between siblings."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if not found:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return found


def test_every_import_contract_is_kept():
    done = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_a_broken_contract_is_reported(tmp_path):
    """The checker really reads the tree: a contract the code cannot keep (the engine never imports the
    app's backend) is reported broken."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "findling"\n\n'
        '[[tool.importlinter.contracts]]\nname = "inverted on purpose"\ntype = "forbidden"\n'
        'source_modules = ["findling.app"]\nforbidden_modules = ["findling.engine"]\n')
    done = subprocess.run([_lint_imports(), "--no-cache", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "1 broken" in done.stdout
