"""Findling's desktop window (PySide6).

Uses only the engine's public API (``engine/__init__.py``) and Qt. Layout of the package:

- ``main``: the ``findling-gui`` entry point (arguments, logging, offscreen screenshots);
- ``backend``: owns the worker threads and is the window's only door to the engine;
- ``workers``: the long-lived indexing worker and the search worker, each with its own store;
- ``results_model`` / ``delegate``: the result list (named roles) and how a row is painted;
- ``highlight``: where a hit matched, exact or by meaning, and each query word's share of the score;
- ``preview``: the chunk with its matches, next/previous match and "Why this result";
- ``filters``, ``statusbar``, ``folders_dialog``, ``window``: the rest of the window.
"""
