"""Blob stores: where recording files live (REQUIREMENTS X7, U8).

One small interface (:class:`BlobStore`), two backends: the local data directory
(``local``) and an S3 bucket (``s3``: the customer's own or any S3-compatible service).
A recording's ``store`` column names the backend that holds its file and ``path`` its
key there. Finalize always writes the file locally first; with ``storage.backend = s3``
the uploader (:mod:`callvault.store.uploader`) moves it to the bucket, and the local copy
is removed only once the bucket confirmed size and checksum.

Readers go through :func:`open_recording`: whatever store holds the file, they get its
size and a ranged reader (and a seekable file object for decoders), never a path.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callvault.store.base import CHUNK, BlobStore, StoredObject, StoreError
from callvault.store.local import LocalStore

if TYPE_CHECKING:
    from callvault.config import Settings
    from callvault.db.models import Recording

__all__ = [
    "BlobStore",
    "LocalStore",
    "StoreError",
    "StoredFile",
    "StoredObject",
    "open_recording",
    "store_for",
]


def store_for(settings: Settings, name: str) -> BlobStore:
    """The store called ``name`` (a ``Recording.store`` value) as ``settings`` configure it.

    ``settings`` must be the *effective* ones (``runtime_settings.effective_settings``):
    the ``storage.s3.*`` values are runtime settings kept in the database. ``StoreError``
    for an S3 store with no bucket configured or an unknown name.
    """
    if name == "local":
        return LocalStore(settings.data_dir.resolve())
    if name == "s3":
        from callvault.store.s3 import store_from_settings  # boto3 only when needed

        return store_from_settings(settings)
    raise StoreError(f"unknown store {name!r}")


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file in its store, opened for reading: its size and ranged reads."""

    store: BlobStore
    key: str
    size: int

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes [start, stop) in chunks (``stop`` None: to the end), read lazily:
        ``FileNotFoundError`` or ``StoreError`` come from the first ``next()``."""
        return self.store.read(self.key, start, self.size if stop is None else stop)

    def open(self) -> io.BufferedReader:
        """A seekable binary file object (for decoders such as libsndfile); each buffer
        fill is one ranged read, so nothing is copied to disk."""
        return io.BufferedReader(_RangedReader(self), buffer_size=CHUNK)


def open_recording(settings: Settings, recording: Recording) -> StoredFile:
    """The stored file of ``recording``, from the store its row names.

    ``settings``: the effective settings (see :func:`store_for`). ``FileNotFoundError``
    when the recording has no file or its store does not hold it; ``StoreError`` when
    the store cannot be reached or is not configured.
    """
    if not recording.path:
        raise FileNotFoundError(f"recording {recording.id} has no file")
    store = store_for(settings, recording.store)
    found = store.stat(recording.path)
    if found is None:
        raise FileNotFoundError(f"recording {recording.id}: {recording.path} is not in its store")
    return StoredFile(store, recording.path, found.size)


class _RangedReader(io.RawIOBase):
    def __init__(self, stored: StoredFile) -> None:
        super().__init__()
        self._stored = stored
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._stored.size}
        position = base[whence] + offset
        if position < 0:
            raise OSError(f"cannot seek to {position}")
        self._position = position
        return position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        stop = min(self._stored.size, self._position + len(buffer))
        filled = 0
        for chunk in self._stored.chunks(self._position, stop):
            buffer[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        self._position += filled
        return filled
