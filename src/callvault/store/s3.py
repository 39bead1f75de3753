"""The S3 store: recordings in a bucket (AWS or any S3-compatible service), with boto3.

Keys are the store prefix (``storage.s3.prefix``) and the recording's path. Credentials
come from boto3's usual chain (environment, ``~/.aws`` files, instance roles), never
from callvault's settings, so no secret ever sits in the database or a settings file.

How ``put`` knows the bucket holds exactly our bytes: the file is hashed first (a file
that is not the expected SHA-256 is refused before anything is sent), then uploaded with
``ChecksumAlgorithm=SHA256`` (S3 checks every request or part against the SHA-256 the
client computed and refuses a corrupted one), multipart above the threshold
(``TransferConfig``). Then a HEAD (``ChecksumMode=ENABLED``) must show the size and the
checksum S3 itself computed: the plain SHA-256 of a single-part object, or for a
multipart one the *composite* checksum (SHA-256 of the parts' SHA-256 digests, which we
compute from the file with the same part size). A service that answers no checksum
(older S3-compatible ones) gets the fallback: the object is read back and hashed. Either
way the SHA-256 is also kept in the object's metadata (``x-amz-meta-sha256``) for tools
that look at the bucket. moto's server (the tests) answers ``ChecksumSHA256``, so the
tests exercise both paths by turning the checksum API off for one store.

Reads are ranged GETs of at most :data:`READ_WINDOW` bytes each, streamed in
:data:`~callvault.store.base.CHUNK` pieces: a slow HTTP client pausing a playback never
holds one S3 response open for long.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callvault.store.base import CHUNK, StoredObject, StoreError

if TYPE_CHECKING:
    from callvault.config import Settings

__all__ = [
    "MULTIPART_CHUNK",
    "MULTIPART_THRESHOLD",
    "READ_WINDOW",
    "S3Options",
    "S3Store",
    "store_from_settings",
]

log = logging.getLogger("callvault.store.s3")

#: Files of this size or more are uploaded in parts (an hour of Opus is about 10 MiB).
MULTIPART_THRESHOLD = 16 * 2**20
MULTIPART_CHUNK = 16 * 2**20
#: Most bytes asked for by one ranged GET.
READ_WINDOW = 4 * 2**20
_CONTENT_TYPES = {
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".gpg": "application/pgp-encrypted",
}


@dataclass(frozen=True, slots=True)
class S3Options:
    """Where and how objects are stored (the ``storage.s3.*`` settings)."""

    bucket: str
    prefix: str = "callvault/"
    endpoint_url: str | None = None
    region: str | None = None
    sse: str = "none"  # none | AES256 | aws:kms
    kms_key_id: str | None = None
    storage_class: str = "STANDARD"


class S3Store:
    """A :class:`~callvault.store.base.BlobStore` on one bucket and key prefix."""

    name = "s3"

    def __init__(
        self,
        options: S3Options,
        *,
        client: Any = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunk: int = MULTIPART_CHUNK,
        checksum_api: bool = True,
        max_attempts: int = 3,
    ) -> None:
        from boto3.s3.transfer import TransferConfig  # boto3 loads slowly: only when used

        self.options = options
        self.bucket = options.bucket
        self.prefix = options.prefix
        self.client = client or _client(options, max_attempts)
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunk,
            max_concurrency=4,
        )
        # False: never ask S3 for checksums (a service without the checksum API);
        # put then confirms by reading the object back.
        self.checksum_api = checksum_api

    def __repr__(self) -> str:
        return f"<S3Store s3://{self.bucket}/{self.prefix}>"

    def object_key(self, key: str) -> str:
        """The S3 key of store key ``key``."""
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"key {key!r} is not a relative path inside the store")
        return self.prefix + key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    # -- BlobStore -----------------------------------------------------------------

    def put(self, key: str, source: Path, *, sha256: str) -> StoredObject:
        size = source.stat().st_size
        part = self._part_size(size)
        found, composite = _digests(source, part)
        if found != sha256:
            raise StoreError(f"{source}: its SHA-256 {found} is not the expected {sha256}")
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}, **self._object_args(key)}
        if self.checksum_api:
            extra["ChecksumAlgorithm"] = "SHA256"
        try:
            self.client.upload_file(
                str(source),
                self.bucket,
                self.object_key(key),
                ExtraArgs=extra,
                Config=self.transfer,
            )
        except Exception as exc:
            raise StoreError(f"cannot upload {key} to {self.url(key)}: {_reason(exc)}") from exc
        return self.confirm(key, size, sha256, composite=composite)

    def read(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        position = start
        while stop is None or position < stop:
            last = position + READ_WINDOW - 1
            if stop is not None:
                last = min(last, stop - 1)
            try:
                answer = self.client.get_object(
                    Bucket=self.bucket, Key=self.object_key(key), Range=f"bytes={position}-{last}"
                )
            except Exception as exc:
                code = _error_code(exc)
                if code in ("NoSuchKey", "404"):
                    raise FileNotFoundError(f"{self.url(key)} does not exist") from None
                if code == "InvalidRange":  # starts at or past the end: nothing to send
                    return
                raise StoreError(f"cannot read {self.url(key)}: {_reason(exc)}") from exc
            total = _total_size(answer.get("ContentRange"))
            if total is None:  # a whole object instead of the range: not to be trusted
                answer["Body"].close()
                raise StoreError(f"{self.url(key)}: the service did not answer a byte range")
            before = position
            try:
                for chunk in answer["Body"].iter_chunks(CHUNK):
                    position += len(chunk)
                    yield chunk
            except Exception as exc:
                raise StoreError(f"reading {self.url(key)} failed: {_reason(exc)}") from exc
            finally:
                answer["Body"].close()
            if position >= total:
                return
            if position == before:  # an empty answer inside the object: never loop on it
                raise StoreError(f"reading {self.url(key)} stopped at byte {position} of {total}")

    def stat(self, key: str) -> StoredObject | None:
        head = self._head(key)
        if head is None:
            return None
        return StoredObject(key, int(head["ContentLength"]), _known_sha256(head))

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            raise StoreError(f"cannot delete {self.url(key)}: {_reason(exc)}") from exc

    def keys(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield str(item["Key"])[len(self.prefix) :]
        except Exception as exc:
            raise StoreError(
                f"cannot list s3://{self.bucket}/{self.prefix}: {_reason(exc)}"
            ) from exc

    # -- confirmation --------------------------------------------------------------

    def confirm(
        self, key: str, size: int, sha256: str, *, composite: str | None = None
    ) -> StoredObject:
        """Check that ``key`` holds ``size`` bytes whose SHA-256 is ``sha256``, from the
        checksum S3 computed, or else by reading the object back; ``StoreError`` if not.

        ``composite``: the composite checksum expected when it was uploaded in parts.
        An object that is not what was expected is deleted (it is ours and wrong).
        """
        head = self._head(key)
        if head is None:
            raise StoreError(f"{self.url(key)} is not in the bucket after its upload")
        stored = int(head["ContentLength"])
        problem = None
        if stored != size:
            problem = f"holds {stored} bytes, not {size}"
        elif (checksum := head.get("ChecksumSHA256")) is not None:
            value = str(checksum).split("-")[0]
            if value not in (_b64(sha256), composite):
                problem = f"S3's SHA-256 checksum {checksum} is not the one of the file sent"
        else:
            found = hashlib.sha256()
            for chunk in self.read(key):
                found.update(chunk)
            if found.hexdigest() != sha256:
                problem = f"read back, its SHA-256 is {found.hexdigest()}, not {sha256}"
        if problem is not None:
            try:
                self.delete(key)
            except StoreError as exc:
                log.warning("cannot remove the bad object: %s", exc)
            raise StoreError(f"{self.url(key)} {problem}")
        return StoredObject(key, stored, sha256)

    def _head(self, key: str) -> dict[str, Any] | None:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if self.checksum_api:
            args["ChecksumMode"] = "ENABLED"
        try:
            head: dict[str, Any] = self.client.head_object(**args)
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"cannot look at {self.url(key)}: {_reason(exc)}") from exc
        return head

    def _part_size(self, size: int) -> int | None:
        """The part size boto3 will upload ``size`` bytes with (None: one request)."""
        if size < self.transfer.multipart_threshold:
            return None
        # boto3's own rule (at most 10,000 parts), so our part digests match its parts.
        from s3transfer.utils import ChunksizeAdjuster

        return int(ChunksizeAdjuster().adjust_chunksize(self.transfer.multipart_chunksize, size))

    def _object_args(self, key: str) -> dict[str, Any]:
        args: dict[str, Any] = {}
        content_type = _CONTENT_TYPES.get(Path(key).suffix.lower())
        if content_type:
            args["ContentType"] = content_type
        if self.options.sse != "none":
            args["ServerSideEncryption"] = self.options.sse
            if self.options.sse == "aws:kms" and self.options.kms_key_id:
                args["SSEKMSKeyId"] = self.options.kms_key_id
        # Some S3-compatible services refuse the header even for STANDARD: only sent
        # when another class is asked for.
        if self.options.storage_class != "STANDARD":
            args["StorageClass"] = self.options.storage_class
        return args


def store_from_settings(settings: Settings) -> S3Store:
    """The S3 store the (effective) ``storage.s3.*`` settings describe.

    Stores are kept per configuration: a boto3 client is costly to make and safe to
    share between threads. ``StoreError`` when no bucket is configured.
    """
    bucket = settings["storage.s3.bucket"]
    if not bucket:
        raise StoreError("the S3 store is not configured: storage.s3.bucket is empty")
    return _store(
        S3Options(
            bucket=bucket,
            prefix=settings["storage.s3.prefix"],
            endpoint_url=settings["storage.s3.endpoint_url"] or None,
            region=settings["storage.s3.region"] or None,
            sse=settings["storage.s3.sse"],
            kms_key_id=settings["storage.s3.kms_key_id"] or None,
            storage_class=settings["storage.s3.storage_class"],
        )
    )


@lru_cache(maxsize=8)
def _store(options: S3Options) -> S3Store:
    return S3Store(options)


def _client(options: S3Options, max_attempts: int) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        # S3-compatible services generally want path-style; AWS picks for itself.
        s3={"addressing_style": "path" if options.endpoint_url else "auto"},
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    global _session
    # Clients are thread-safe, sessions are not: clients are made under a lock, from one
    # session that loads boto3's service models once (a new session takes ~0.3 s).
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(
            "s3", endpoint_url=options.endpoint_url, region_name=options.region, config=config
        )


_session: Any = None
_session_lock = threading.Lock()


def _digests(source: Path, part_size: int | None) -> tuple[str, str | None]:
    """(hex SHA-256 of the file, base64 composite checksum of its parts or None)."""
    whole = hashlib.sha256()
    parts: list[bytes] = []
    part = hashlib.sha256()
    in_part = 0
    with source.open("rb") as handle:
        while block := handle.read(1 << 20):
            whole.update(block)
            if part_size is None:
                continue
            while block:
                take = block[: part_size - in_part]
                part.update(take)
                in_part += len(take)
                block = block[len(take) :]
                if in_part == part_size:
                    parts.append(part.digest())
                    part, in_part = hashlib.sha256(), 0
    if part_size is None:
        return whole.hexdigest(), None
    if in_part:
        parts.append(part.digest())
    composite = base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    return whole.hexdigest(), composite


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def _known_sha256(head: dict[str, Any]) -> str | None:
    """The object's SHA-256 without reading it: the metadata callvault wrote, else S3's
    own checksum when S3 says it is of the whole object (a multipart object's is of its
    parts, and some services, moto among them, do not say which it is)."""
    value = (head.get("Metadata") or {}).get("sha256")
    if value:
        return str(value)
    checksum = head.get("ChecksumSHA256")
    if checksum and head.get("ChecksumType") == "FULL_OBJECT":
        raw = base64.b64decode(str(checksum))
        if len(raw) == 32:
            return raw.hex()
    return None


def _total_size(content_range: str | None) -> int | None:
    # "bytes 0-99/1234" -> 1234
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1]
    return int(total) if total.isdigit() else None


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
