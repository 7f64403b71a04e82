"""sqlite-utils, imported without pandas.

sqlite-utils imports pandas whenever it is installed (PyLate's training extras install it), only to map
DataFrame column types, which Findling never uses. That import costs over a second of start-up, so it is
blocked for the duration of this one import; pandas stays importable for everything else.
"""
from __future__ import annotations

import sys

_blocked = "pandas" not in sys.modules
if _blocked:
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes `import pandas` raise ImportError
try:
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations
finally:
    if _blocked:
        sys.modules.pop("pandas", None)

__all__ = ["Database", "Migrations"]
