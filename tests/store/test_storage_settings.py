"""The storage.* settings: what each accepts, that backend s3 needs a bucket, and that
the bucket does not move from under the recordings kept in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from callvault.config import ConfigError, load_settings
from callvault.db import Database
from callvault.db.models import Recording
from callvault.runtime_settings import effective_settings
from tests.recording.golden import captured_session, configure, settings_for


def parsed(name: str, value: str) -> object:
    return load_settings({"data_dir": "/nonexistent", name: value}, environ={})[name]


def test_defaults() -> None:
    settings = load_settings({"data_dir": "/nonexistent"}, environ={})
    assert settings["storage.backend"] == "local"
    assert settings["storage.s3.prefix"] == "callvault/"
    assert settings["storage.s3.sse"] == "none"
    assert settings["storage.s3.storage_class"] == "STANDARD"
    assert settings["storage.s3.bucket"] == settings["storage.s3.endpoint_url"] == ""


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("storage.s3.bucket", "recordings.example-co", "recordings.example-co"),
        ("storage.s3.prefix", "tenant-a/calls", "tenant-a/calls/"),
        ("storage.s3.prefix", "", ""),
        ("storage.s3.endpoint_url", "https://s3.example.com:9000/", "https://s3.example.com:9000"),
        ("storage.s3.region", "eu-central-1", "eu-central-1"),
        ("storage.s3.sse", "aws:kms", "aws:kms"),
        (
            "storage.s3.kms_key_id",
            "arn:aws:kms:eu-central-1:1:key/abc",
            "arn:aws:kms:eu-central-1:1:key/abc",
        ),
        ("storage.s3.storage_class", "GLACIER_IR", "GLACIER_IR"),
    ],
)
def test_good_values(name: str, value: str, expected: str) -> None:
    assert parsed(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("storage.backend", "ftp", "expected one of local, s3"),
        ("storage.s3.bucket", "My_Bucket", "expected an S3 bucket name"),
        ("storage.s3.bucket", "ab", "expected an S3 bucket name"),
        ("storage.s3.prefix", "/abs/", "no leading /"),
        ("storage.s3.prefix", "a/../b", "no .."),
        ("storage.s3.endpoint_url", "s3.example.com", "expected an http:// or https:// URL"),
        ("storage.s3.endpoint_url", "http://host:99999", "port is not a number"),
        ("storage.s3.region", "EU Central", "expected a region name"),
        ("storage.s3.sse", "aes256", "expected one of none, AES256, aws:kms"),
        ("storage.s3.kms_key_id", "two words", "no spaces"),
        ("storage.s3.storage_class", "DEEP_ARCHIVE", "expected one of STANDARD"),
    ],
)
def test_bad_values_are_refused_with_the_reason(name: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parsed(name, value)
    assert name in str(refused.value) and reason in str(refused.value)


def test_backend_s3_needs_a_bucket(database: Database, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs a bucket: set storage\.s3\.bucket too"):
        configure(database, tmp_path, {"storage.backend": "s3"})
    configure(database, tmp_path, {"storage.backend": "s3", "storage.s3.bucket": "calls-bucket"})
    settings = database.read(lambda s: effective_settings(s, settings_for(tmp_path)))
    assert (settings["storage.backend"], settings["storage.s3.bucket"]) == ("s3", "calls-bucket")
    assert settings.sources["storage.backend"] == "database"
    with pytest.raises(ConfigError, match="needs a bucket"):
        configure(database, tmp_path, {"storage.s3.bucket": ""})


def test_the_bucket_cannot_move_from_under_recordings_kept_in_it(
    database: Database, tmp_path: Path
) -> None:
    # A row keeps only its key: a new bucket or prefix would leave it pointing at nothing.
    configure(database, tmp_path, {"storage.backend": "s3", "storage.s3.bucket": "calls-bucket"})
    recording_id, _ = captured_session(database)

    def kept_in(store: str) -> None:
        def mark(db: Session) -> None:
            row = db.get(Recording, recording_id)
            assert row is not None
            row.store, row.path = store, "recordings/x.ogg"

        database.write(mark)

    kept_in("s3")
    for change in ({"storage.s3.bucket": "other"}, {"storage.s3.prefix": "elsewhere/"}):
        with pytest.raises(ConfigError, match=r"1 recordings are kept in s3://calls-bucket/"):
            configure(database, tmp_path, change)
    configure(database, tmp_path, {"storage.s3.endpoint_url": "http://127.0.0.1:9"})  # same data
    kept_in("local")  # moved back (callvault storage move --to local)
    configure(database, tmp_path, {"storage.s3.bucket": "other"})
    settings = database.read(lambda s: effective_settings(s, settings_for(tmp_path)))
    assert settings["storage.s3.bucket"] == "other"
