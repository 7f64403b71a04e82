"""Findling's desktop window (PySide6).

Uses only the engine's public API (``engine/__init__.py``) and Qt. Layout of the package:

- ``main``: the ``findling-gui`` entry point (arguments, logging, offscreen screenshots);
- ``backend``: owns the worker threads and is the window's only door to the engine;
- ``workers`` / ``search_worker``: the long-lived indexing worker and the search worker, each on its own
  thread with its own store and model;
- ``results_model`` / ``delegate``: the result list (named roles) and how a row is painted;
- ``result_actions``: keys and context menu on results (open, show in folder, copy path, re-index, exclude);
- ``highlight``: where a hit matched, exact or by meaning, and each query word's share of the score;
- ``preview``: the chunk with its matches, next/previous match and "Why this result";
- ``folders_dialog`` with ``exclusions_panel`` and ``model_panel``: watched folders, exclude patterns with a
  would-this-file-be-indexed tester, and the model (switching re-encodes in the background);
- ``confirm``: the injectable questions and file pickers; ``file_icons``: the system's file-type icons;
- ``filters``, ``statusbar``, ``window``: the rest of the window.
"""
