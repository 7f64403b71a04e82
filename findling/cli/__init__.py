"""The ``findling`` command line: parser and entry point (``main``), command handlers (``commands``), help texts
(``help_texts``), its settings commands and progress output."""
