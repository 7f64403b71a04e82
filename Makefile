# Findling: `make run` starts the app, `make test` runs the tests. Both set up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test search bench docs clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Findling needs Python 3.11 ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/findling-gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# index and search from the terminal: make search FOLDER=~/Documents QUERY="..."
search: $(STAMP)
	$(BIN)/findling folders add $(FOLDER)
	$(BIN)/findling index
	$(BIN)/findling search "$(QUERY)"

# the performance benchmarks end to end, every target with its peer: make bench [ARGS="--json"] (about 12 min on
# 2 cores; a first run also computes SciFact's backbone vectors for bench/storage.py, about 25 min more)
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	HF_HUB_OFFLINE=1 $(BIN)/python bench/run.py $(ARGS)
	$(BIN)/python docs/generate.py benchmarks

# regenerate docs/cli.md, docs/benchmarks.md, docs/quality.md, README's figures and the bundled model cards'
# scores (assets/models/*/README.md) from the parser and the recorded runs
docs: $(STAMP)
	$(BIN)/python docs/generate.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
