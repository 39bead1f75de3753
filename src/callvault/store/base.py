"""The blob-store interface every backend implements (and one conformance test checks)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["CHUNK", "BlobStore", "StoreError", "StoredObject"]

#: Bytes per chunk when streaming a stored object.
CHUNK = 256 * 1024


class StoreError(OSError):
    """The store could not do it (unreachable, refused, checksum mismatch...)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str | None  # None when the store does not know it without reading


class BlobStore(Protocol):
    name: str  # "local" or "s3": what Recording.store says

    def put(self, key: str, source: Path, *, sha256: str) -> StoredObject:
        """Store ``source`` under ``key``; return only once the store holds exactly those
        bytes (size and SHA-256 confirmed), else raise ``StoreError``."""
        ...

    def read(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """The bytes [start, stop) of ``key`` in chunks (``stop`` None: to the end);
        ``FileNotFoundError`` when there is no such object."""
        ...

    def stat(self, key: str) -> StoredObject | None:
        """Size (and SHA-256 if known) of ``key``; None when it does not exist."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens when it does not exist."""
        ...

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under ``prefix`` (for integrity checks and moves)."""
        ...
