"""The local store: files under the data directory, the key being the relative path."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from callvault.store.base import CHUNK, StoredObject, StoreError

__all__ = ["LocalStore", "file_sha256"]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class LocalStore:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if self.root.resolve() not in target.parents:
            raise StoreError(f"key {key!r} leaves the store's directory")
        return target

    def put(self, key: str, source: Path, *, sha256: str) -> StoredObject:
        target = self.path(key)
        checked = target
        if source.resolve() != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            checked = target.with_name(target.name + ".partial")
            shutil.copyfile(source, checked)
            with checked.open("rb") as handle:
                os.fsync(handle.fileno())
        found = file_sha256(checked)
        if found != sha256:
            if checked != target:
                checked.unlink(missing_ok=True)  # never leave wrong bytes under the key
            raise StoreError(f"{key}: stored SHA-256 {found} is not the expected {sha256}")
        if checked != target:
            checked.replace(target)
        return StoredObject(key, target.stat().st_size, found)

    def read(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        path = self.path(key)
        with path.open("rb") as handle:
            handle.seek(start)
            remaining = None if stop is None else max(0, stop - start)
            while remaining is None or remaining > 0:
                chunk = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def stat(self, key: str) -> StoredObject | None:
        try:
            size = self.path(key).stat().st_size
        except FileNotFoundError:
            return None
        return StoredObject(key, size, None)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        base = self.path(prefix) if prefix else self.root.resolve()
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.endswith(".partial"):
                yield str(path.relative_to(self.root.resolve()))
