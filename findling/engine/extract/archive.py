"""Reading members of a zip container (DOCX, ODT, EPUB) without falling for a zip bomb.

Before a member is read its declared size, its compression ratio and the archive's member count are
checked; while it is read, the bytes actually decompressed are counted in chunks against a hard cap,
for the member and for the whole archive. XML members are parsed with entity declarations refused.
"""
from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from typing import IO
from xml.etree import ElementTree as ET

from findling.engine.errors import CorruptFile, EncryptedFile
from findling.engine.extract.limits import human_size

logger = logging.getLogger(__name__)

_MB = 1024 * 1024
_CHUNK = 256 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_FLAG = 0x1


@dataclass(frozen=True)
class ZipLimits:
    """How far a container may expand before it is refused."""

    max_members: int = 20_000
    max_member_bytes: int = 128 * _MB  # the XML tree of a member costs several times its size in memory
    max_total_bytes: int = 256 * _MB
    max_ratio: int = 200  # uncompressed / compressed, checked for members over ``ratio_floor`` bytes
    ratio_floor: int = 4 * _MB


def bomb_error(limit: int) -> CorruptFile:
    return CorruptFile(f"archive expands to more than {human_size(limit)}; refusing (possible zip bomb)")


class SafeZip:
    """A zip archive held in memory whose members are read under ``ZipLimits``."""

    def __init__(self, data: bytes, *, what: str, limits: ZipLimits = ZipLimits()) -> None:
        self._what = what
        self._limits = limits
        self._read_so_far = 0
        if data.startswith(_OLE_MAGIC):
            raise EncryptedFile(
                f"password-protected or old-format {what} (not a zip container); "
                "Findling cannot read it; save it again without a password as a modern file"
            )
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except Exception as exc:  # BadZipFile, EOFError, NotImplementedError (zip version), ...
            raise CorruptFile(f"not a valid {what} (damaged, or not a zip container: {exc})") from exc
        if len(infos) > limits.max_members:
            raise CorruptFile(f"archive has {len(infos):,} members; refusing (possible zip bomb)")
        self._names = {info.filename for info in infos}

    def has(self, name: str) -> bool:
        return name in self._names

    def names(self) -> list[str]:
        return sorted(self._names)

    def read(self, name: str) -> bytes:
        """The member ``name``; ``CorruptFile`` when it is missing, damaged or expands too far."""
        try:
            info = self._zip.getinfo(name)
        except KeyError:
            message = f"{name} is missing; the {self._what} file is damaged or not a real {self._what}"
            raise CorruptFile(message) from None
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise EncryptedFile(f"encrypted {self._what}; Findling cannot read it without the password")
        self._check_declared(info)
        try:
            with self._zip.open(info) as member:
                return self._read_capped(member)
        except CorruptFile:
            raise
        except NotImplementedError as exc:
            raise CorruptFile(f"{name} in the {self._what} uses a compression method Findling cannot read") from exc
        except Exception as exc:  # zlib.error, BadZipFile (bad CRC), EOFError, ...
            raise CorruptFile(f"{name} in the {self._what} cannot be decompressed ({exc})") from exc

    def read_xml(self, name: str) -> ET.Element:
        """The member ``name`` parsed as XML (entity declarations refused)."""
        return parse_xml(self.read(name), what=f"{name} in the {self._what}")

    def _check_declared(self, info: zipfile.ZipInfo) -> None:
        limits = self._limits
        if info.file_size > limits.max_member_bytes:
            raise bomb_error(limits.max_member_bytes)
        if self._read_so_far + info.file_size > limits.max_total_bytes:
            raise bomb_error(limits.max_total_bytes)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor and ratio > limits.max_ratio:
            raise CorruptFile(
                f"{info.filename} is compressed {ratio:,.0f} to 1 and would expand to "
                f"{human_size(info.file_size)}; refusing (possible zip bomb)"
            )

    def _read_capped(self, member: IO[bytes]) -> bytes:
        limits = self._limits
        left = limits.max_total_bytes - self._read_so_far
        if limits.max_member_bytes <= left:
            data = read_capped(member, cap=limits.max_member_bytes)
        else:
            data = read_capped(member, cap=left, reported_limit=limits.max_total_bytes)
        self._read_so_far += len(data)
        return data


def read_capped(stream: IO[bytes], *, cap: int, reported_limit: int | None = None) -> bytes:
    """All of ``stream``, read in chunks; raises once more than ``cap`` bytes have come out."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:
            raise bomb_error(reported_limit if reported_limit is not None else cap)
        chunks.append(chunk)


def parse_xml(data: bytes, *, what: str) -> ET.Element:
    """``data`` parsed by ElementTree; documents that declare entities are refused (entity bombs)."""
    if b"<!ENTITY" in data:
        raise CorruptFile(f"{what} declares XML entities; refusing (possible entity expansion bomb)")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise CorruptFile(f"{what} is not well-formed XML ({exc})") from exc


def local(tag: object) -> str:
    """The tag name without its ``{namespace}``; ``""`` for comments and processing instructions."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
