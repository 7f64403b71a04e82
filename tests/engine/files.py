"""Small helpers for tests that build real files in tmp_path."""
from __future__ import annotations

from pathlib import Path


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
