"""The page makers behind ``docs/generate.py``: one module per generated page, plus what they share.

- ``paths``: the repository files the pages are read from and written to.
- ``markdown``: Markdown cells, figures and tables, and a run's stamp fields.
- ``runs``: the recorded ``findling eval`` runs in ``docs/eval-results/``: reading them and recording a new one.
- ``benchmarks``, ``quality``, ``cli``, ``readme``, ``cards``: the pages themselves (docs/benchmarks.md,
  docs/quality.md, docs/cli.md, README.md's figures block, the bundled model cards' scores blocks).

Every maker returns text and writes nothing; ``docs/generate.py`` decides what is written. Importing the package
reads no file and imports nothing from ``findling``: the command line parser and the model card module are
imported when a page needs them.
"""
