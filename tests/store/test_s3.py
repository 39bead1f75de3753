"""What only the S3 store does: how it confirms an upload, what it asks of the bucket
(server-side encryption, storage class, metadata), and being built from the settings."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from callvault.config import Settings, load_settings
from callvault.store import StoredFile, StoreError, open_recording, store_for
from callvault.store.s3 import S3Options, S3Store, store_from_settings
from tests.store.conftest import REGION, MotoServer

PART = 5 * 2**20
KEY = "recordings/2023/11/14/call.ogg"


def s3_store(moto: MotoServer, bucket: str, **options: str) -> S3Store:
    return S3Store(
        S3Options(bucket=bucket, endpoint_url=moto.url, region=REGION, **options),
        multipart_threshold=PART,
        multipart_chunk=PART,
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_objects_carry_the_key_prefix_metadata_and_type(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    store = s3_store(moto, bucket, prefix="tenant-a/callvault/")
    (tmp_path / "a.ogg").write_bytes(b"OggS audio")
    store.put(KEY, tmp_path / "a.ogg", sha256=sha(b"OggS audio"))
    head = moto.client().head_object(Bucket=bucket, Key="tenant-a/callvault/" + KEY)
    assert head["Metadata"] == {"sha256": sha(b"OggS audio")}
    assert head["ContentType"] == "audio/ogg"
    assert list(store.keys()) == [KEY]  # keys are the store's, without the prefix
    found = store.stat(KEY)
    assert found is not None and found.sha256 == sha(b"OggS audio")


def test_server_side_encryption_and_storage_class_are_asked_for(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "a.ogg").write_bytes(b"audio")
    aes = s3_store(moto, bucket, sse="AES256", storage_class="STANDARD_IA")
    aes.put("recordings/aes.ogg", tmp_path / "a.ogg", sha256=sha(b"audio"))
    head = moto.client().head_object(Bucket=bucket, Key="callvault/recordings/aes.ogg")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["StorageClass"] == "STANDARD_IA"

    kms = s3_store(moto, bucket, sse="aws:kms", kms_key_id="alias/callvault")
    kms.put("recordings/kms.ogg", tmp_path / "a.ogg", sha256=sha(b"audio"))
    head = moto.client().head_object(Bucket=bucket, Key="callvault/recordings/kms.ogg")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/callvault")
    assert "StorageClass" not in head  # STANDARD: the header is not sent at all


def test_a_multipart_upload_is_confirmed_by_its_composite_checksum(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(2 * PART + 1)
    (tmp_path / "big.wav").write_bytes(data)
    store = s3_store(moto, bucket)
    store.put(KEY, tmp_path / "big.wav", sha256=sha(data))
    head = moto.client().head_object(Bucket=bucket, Key="callvault/" + KEY, ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-3"')  # three parts
    assert head["ChecksumSHA256"]  # S3's own checksum is what confirmed it
    assert head["ContentLength"] == len(data)


@pytest.mark.parametrize("checksum_api", [True, False], ids=["s3-checksum", "read-back"])
def test_an_object_that_is_not_what_was_sent_is_refused_and_removed(
    moto: MotoServer, bucket: str, checksum_api: bool
) -> None:
    store = S3Store(
        S3Options(bucket=bucket, endpoint_url=moto.url, region=REGION), checksum_api=checksum_api
    )
    sent, stored = b"what we sent....", b"what S3 now has."  # same size, other bytes
    args = {"ChecksumAlgorithm": "SHA256"} if checksum_api else {}
    moto.client().put_object(Bucket=bucket, Key="callvault/" + KEY, Body=stored, **args)
    with pytest.raises(StoreError, match="checksum" if checksum_api else "read back"):
        store.confirm(KEY, len(sent), sha(sent))
    assert store.stat(KEY) is None
    # The right bytes are confirmed either way.
    moto.client().put_object(Bucket=bucket, Key="callvault/" + KEY, Body=sent, **args)
    assert store.confirm(KEY, len(sent), sha(sent)).sha256 == sha(sent)


def test_without_the_checksum_api_a_put_is_confirmed_by_reading_back(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    store = S3Store(
        S3Options(bucket=bucket, endpoint_url=moto.url, region=REGION), checksum_api=False
    )
    (tmp_path / "a.ogg").write_bytes(b"some audio")
    assert store.put(KEY, tmp_path / "a.ogg", sha256=sha(b"some audio")).size == 10
    assert b"".join(store.read(KEY)) == b"some audio"


def test_a_wrong_size_is_refused(moto: MotoServer, bucket: str) -> None:
    store = s3_store(moto, bucket)
    moto.client().put_object(Bucket=bucket, Key="callvault/" + KEY, Body=b"short")
    with pytest.raises(StoreError, match="holds 5 bytes, not 6"):
        store.confirm(KEY, 6, sha(b"short!"))


def test_an_unreachable_bucket_is_a_store_error(tmp_path: Path) -> None:
    from tests.store.conftest import free_port

    store = S3Store(
        S3Options(bucket="nowhere", endpoint_url=f"http://127.0.0.1:{free_port()}"),
        max_attempts=1,
    )
    (tmp_path / "a.ogg").write_bytes(b"x")
    with pytest.raises(StoreError, match="cannot upload"):
        store.put(KEY, tmp_path / "a.ogg", sha256=sha(b"x"))
    with pytest.raises(StoreError):
        next(iter(store.read(KEY)))
    with pytest.raises(StoreError):
        store.stat(KEY)


def _settings(tmp_path: Path, moto: MotoServer, bucket: str) -> Settings:
    return load_settings(
        {
            "data_dir": str(tmp_path),
            "storage.backend": "s3",
            "storage.s3.bucket": bucket,
            "storage.s3.prefix": "cv",
            "storage.s3.endpoint_url": moto.url,
            "storage.s3.region": REGION,
            "storage.s3.sse": "AES256",
        },
        environ={},
    )


def test_the_store_from_the_settings(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path, moto, bucket)
    store = store_from_settings(settings)
    assert store is store_from_settings(settings)  # one client kept
    assert (store.bucket, store.prefix, store.options.sse) == (bucket, "cv/", "AES256")
    assert store_for(settings, "s3") is store
    (tmp_path / "a.ogg").write_bytes(b"x")
    store.put(KEY, tmp_path / "a.ogg", sha256=sha(b"x"))
    assert moto.client().get_object(Bucket=bucket, Key="cv/" + KEY)["Body"].read() == b"x"
    no_bucket = load_settings({"data_dir": str(tmp_path)}, environ={})
    with pytest.raises(StoreError, match=r"storage\.s3\.bucket is empty"):
        store_for(no_bucket, "s3")


def test_a_stored_file_opens_as_a_seekable_file_for_decoders(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    # GSM WAVs are transcoded for the browser by libsndfile: it must read from S3 too.
    tone = (np.sin(np.arange(8000) / 5) * 8000).astype(np.int16)
    buffer = io.BytesIO()
    soundfile.write(buffer, tone, 8000, format="WAV", subtype="GSM610")
    data = buffer.getvalue()
    (tmp_path / "a.wav").write_bytes(data)
    store = s3_store(moto, bucket)
    store.put("recordings/a.wav", tmp_path / "a.wav", sha256=sha(data))
    stored = StoredFile(store, "recordings/a.wav", len(data))
    with stored.open() as handle:
        decoded, rate = soundfile.read(handle, dtype="int16")
    assert rate == 8000 and len(decoded) >= 8000
    assert b"".join(stored.chunks(10, 20)) == data[10:20]


def test_open_recording_reads_from_the_store_the_row_names(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    from callvault.db.models import Recording

    settings = _settings(tmp_path, moto, bucket)
    store_for(settings, "s3").put(
        KEY, _file(tmp_path / "up.ogg", b"in the bucket"), sha256=sha(b"in the bucket")
    )
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "here.ogg").write_bytes(b"in the data directory")
    in_s3 = Recording(id=1, path=KEY, store="s3")
    local = Recording(id=2, path="recordings/here.ogg", store="local")
    gone = Recording(id=3, path="recordings/gone.ogg", store="local")
    assert b"".join(open_recording(settings, in_s3).chunks()) == b"in the bucket"
    opened = open_recording(settings, local)
    assert opened.size == 21 and b"".join(opened.chunks(3, 6)) == b"the"
    with pytest.raises(FileNotFoundError):
        open_recording(settings, gone)


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
