"""The engine's exceptions: a small hierarchy whose messages say what to do next.

They become user-facing text only at the CLI or app boundary.
"""
from __future__ import annotations


class FindlingError(Exception):
    """Base class for every error the engine raises on purpose."""


class ExtractionError(FindlingError):
    """A file's text could not be extracted; the message is the recorded reason."""


class UnsupportedFile(ExtractionError):
    """The file type is not one Findling reads."""


class FileTooLarge(ExtractionError):
    """The file exceeds the configured size limit."""


class BinaryFile(ExtractionError):
    """The file looks binary although its name says text."""


class EncryptedFile(ExtractionError):
    """The file is encrypted and no password is known."""


class CorruptFile(ExtractionError):
    """The file is damaged or not what its extension claims."""


class FileVanished(ExtractionError):
    """The file disappeared or became unreadable between listing and reading."""


class ModelError(FindlingError):
    """No usable model could be loaded; the message lists what was tried."""


class ModelMismatch(FindlingError):
    """The index was built by another model; re-encode it or switch back to that model."""


class StoreError(FindlingError):
    """The index database cannot be opened or is damaged."""


class IndexLocked(StoreError):
    """Another Findling process is writing to this index."""


class QueryError(FindlingError):
    """The query or one of its filters cannot be understood."""


class DatasetError(FindlingError):
    """An evaluation data set is missing a file or has a malformed line."""
