"""Findling: offline search over a person's own documents.

``findling.engine`` is everything between the disk and a ranked list (no Qt), ``findling.app`` the PySide6
window, ``findling.cli`` the ``findling`` command, ``findling.evaluation`` the retrieval benchmarks run through
the engine, ``findling.training`` the recipes that build and adapt models. ``docs/architecture.md`` is the map.
"""
