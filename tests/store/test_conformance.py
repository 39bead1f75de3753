"""One conformance suite, every blob store: the data directory and an S3 bucket (moto).

What callers rely on: ``put`` confirms (or refuses) what it stored, ``read`` serves any
byte range in bounded chunks, ``stat``/``delete``/``keys`` see the same objects, and a
file above the multipart threshold round-trips whole.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from callvault.store import BlobStore, LocalStore, StoreError
from callvault.store.base import CHUNK
from callvault.store.s3 import READ_WINDOW, S3Options, S3Store
from tests.store.conftest import REGION, MotoServer

#: The test stores' multipart threshold and part size: S3's smallest part.
PART = 5 * 2**20


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        root = tmp_path / "store"
        root.mkdir()
        return LocalStore(root)
    moto: MotoServer = request.getfixturevalue("moto")
    options = S3Options(
        bucket=request.getfixturevalue("bucket"),
        prefix="conformance/",
        endpoint_url=moto.url,
        region=REGION,
    )
    return S3Store(options, multipart_threshold=PART, multipart_chunk=PART)


def write(path: Path, data: bytes) -> tuple[Path, str]:
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def read_all(store: BlobStore, key: str, start: int = 0, stop: int | None = None) -> bytes:
    chunks = list(store.read(key, start, stop))
    assert all(0 < len(c) <= CHUNK for c in chunks)
    return b"".join(chunks)


KEY = "recordings/2023/11/14/2023-11-14_22.13.20-7301-1.ogg"


def test_put_confirms_and_the_bytes_read_back(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    source, sha = write(tmp_path / "a.ogg", data)
    stored = store.put(KEY, source, sha256=sha)
    assert (stored.key, stored.size, stored.sha256) == (KEY, len(data), sha)
    assert read_all(store, KEY) == data
    found = store.stat(KEY)
    assert found is not None and found.size == len(data)
    assert found.sha256 in (None, sha)
    assert source.read_bytes() == data  # the source is left alone


def test_ranges(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(1000)
    source, sha = write(tmp_path / "a.ogg", data)
    store.put(KEY, source, sha256=sha)
    assert read_all(store, KEY, 0, 10) == data[:10]
    assert read_all(store, KEY, 10, 500) == data[10:500]
    assert read_all(store, KEY, 990) == data[990:]
    assert read_all(store, KEY, 995, 5000) == data[995:]  # a stop past the end
    assert read_all(store, KEY, 1000) == b""  # from the end
    assert read_all(store, KEY, 4000) == b""  # past the end
    assert read_all(store, KEY, 7, 7) == b""


def test_missing_objects(store: BlobStore) -> None:
    assert store.stat("recordings/nothing.ogg") is None
    with pytest.raises(FileNotFoundError):
        next(iter(store.read("recordings/nothing.ogg")))
    store.delete("recordings/nothing.ogg")  # nothing happens


def test_delete_and_keys(store: BlobStore, tmp_path: Path) -> None:
    names = ["recordings/2023/a.ogg", "recordings/2024/b.mp3", "other/c.wav"]
    for n, key in enumerate(names):
        source, sha = write(tmp_path / f"{n}.bin", f"file {n}".encode())
        store.put(key, source, sha256=sha)
    assert sorted(store.keys()) == sorted(names)
    assert sorted(store.keys("recordings/")) == names[:2]
    store.delete(names[0])
    assert store.stat(names[0]) is None
    assert sorted(store.keys("recordings/")) == [names[1]]


def test_put_replaces_an_existing_object(store: BlobStore, tmp_path: Path) -> None:
    first, sha1 = write(tmp_path / "1.ogg", b"first version")
    second, sha2 = write(tmp_path / "2.ogg", b"the second version, longer")
    store.put(KEY, first, sha256=sha1)
    store.put(KEY, second, sha256=sha2)
    assert read_all(store, KEY) == b"the second version, longer"


def test_a_large_file_goes_in_parts_and_comes_back_whole(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(2 * PART + 12345)  # above the threshold: three parts in S3
    source, sha = write(tmp_path / "big.wav", data)
    stored = store.put(KEY, source, sha256=sha)
    assert stored.size == len(data)
    assert hashlib.sha256(read_all(store, KEY)).hexdigest() == sha
    # A range across S3's read windows (several ranged GETs) and part boundaries.
    start, stop = READ_WINDOW - 100, 2 * READ_WINDOW + PART // 3
    assert read_all(store, KEY, start, stop) == data[start:stop]


def test_a_checksum_mismatch_is_refused(store: BlobStore, tmp_path: Path) -> None:
    source, _ = write(tmp_path / "a.ogg", b"the bytes on disk")
    wrong = hashlib.sha256(b"what the database says").hexdigest()
    with pytest.raises(StoreError, match="SHA-256"):
        store.put(KEY, source, sha256=wrong)


@pytest.mark.parametrize("key", ["../outside.ogg", "recordings/../../outside.ogg"])
def test_keys_cannot_leave_the_store(store: BlobStore, tmp_path: Path, key: str) -> None:
    source, sha = write(tmp_path / "a.ogg", b"x")
    with pytest.raises(StoreError):
        store.put(key, source, sha256=sha)
