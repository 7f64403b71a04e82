"""The ``findling`` command line (``findling.cli.main``), its settings commands and progress output."""
