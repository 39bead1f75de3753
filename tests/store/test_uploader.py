"""The uploader: ready recordings go to the bucket, confirmed, and only then leave the
data directory; an S3 outage loses nothing, delays nothing else, and heals by itself.
Real finalize, real moto server, both database backends."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from callvault.db import Database
from callvault.recording.finalize import finalize_recording
from callvault.store import open_recording
from callvault.store.uploader import (
    LEASE,
    Claim,
    Uploader,
    claim_upload,
    record_upload,
    upload_counts,
    upload_next,
)
from callvault.web.app import create_web_app
from callvault.web.people import UserFields, create_user
from callvault.web.principal import WebContext
from tests.recording.golden import START, settings_for
from tests.store.conftest import MotoServer, free_port
from tests.store.helpers import T0, effective, finalized, ready_file, row, use_s3


def bucket_bytes(moto: MotoServer, bucket: str, key: str) -> bytes:
    body: bytes = moto.client().get_object(Bucket=bucket, Key="callvault/" + key)["Body"].read()
    return body


def test_a_ready_recording_is_uploaded_confirmed_switched_then_removed_locally(
    database: Database, tmp_path: Path, moto: MotoServer, bucket: str
) -> None:
    base = use_s3(database, tmp_path, moto.url, bucket)
    recording_id = finalized(database, tmp_path)
    made = row(database, recording_id)
    assert (made.state, made.store, made.next_upload_at) == ("ready", "local", None)
    assert made.stored_at is not None and made.path is not None
    audio = (tmp_path / made.path).read_bytes()
    assert hashlib.sha256(audio).hexdigest() == made.sha256
    assert database.read(upload_counts) == (1, 0)

    outcome = upload_next(database, base, tmp_path, T0)

    assert outcome is not None and outcome.uploaded and outcome.recording_id == recording_id
    uploaded = row(database, recording_id)
    assert (uploaded.store, uploaded.stored_at, uploaded.upload_error) == ("s3", T0, None)
    assert uploaded.upload_attempts == 1 and uploaded.next_upload_at is None
    assert uploaded.sha256 == made.sha256 and uploaded.path == made.path
    assert not (tmp_path / made.path).exists()  # removed after the switch
    assert bucket_bytes(moto, bucket, made.path) == audio
    # Playback reads it from the bucket now.
    assert b"".join(open_recording(effective(database, tmp_path), uploaded).chunks()) == audio
    assert upload_next(database, base, tmp_path, T0 + timedelta(seconds=5)) is None
    assert database.read(upload_counts) == (0, 0)


def test_nothing_is_uploaded_while_the_backend_is_local(database: Database, tmp_path: Path) -> None:
    recording_id = finalized(database, tmp_path)
    assert upload_next(database, settings_for(tmp_path), tmp_path, T0) is None
    kept = row(database, recording_id)
    assert kept.store == "local" and kept.upload_attempts == 0
    assert kept.path is not None and (tmp_path / kept.path).exists()


@pytest.fixture
def web_player(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The real web app, logged in as an administrator (who may play every call)."""
    monkeypatch.setattr("callvault.web.auth._hasher", PasswordHasher(1, 8, 1))  # cheap
    fields = UserFields(username="boss", role="admin", scope="all")
    database.write(lambda s: create_user(s, fields, "correct horse battery"))
    ctx = WebContext(database, tmp_path, settings_for(tmp_path), b"s" * 32)
    with TestClient(create_web_app(ctx), base_url="http://testserver") as browser:
        answer = browser.post(
            "/api/v1/session", json={"username": "boss", "password": "correct horse battery"}
        )
        assert answer.status_code == 200, answer.text
        yield browser


def test_an_unreachable_bucket_keeps_the_local_copy_playable_and_retries_with_backoff(
    database: Database,
    tmp_path: Path,
    moto: MotoServer,
    bucket: str,
    web_player: TestClient,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    base = use_s3(database, tmp_path, nowhere, bucket)
    recording_id = finalized(database, tmp_path)  # finalize does not care about S3
    key = row(database, recording_id).path
    assert key is not None
    audio = (tmp_path / key).read_bytes()

    first = upload_next(database, base, tmp_path, T0)

    assert first is not None and not first.uploaded
    assert first.error is not None and "cannot upload" in first.error
    waiting = row(database, recording_id)
    assert (waiting.store, waiting.upload_attempts) == ("local", 1)
    assert waiting.upload_error == first.error
    assert waiting.next_upload_at is not None
    assert T0 + timedelta(seconds=24) <= waiting.next_upload_at <= T0 + timedelta(seconds=30)
    assert (tmp_path / key).read_bytes() == audio  # nothing lost
    assert database.read(upload_counts) == (1, 1)
    # The player plays the local copy meanwhile.
    answer = web_player.get(f"/api/v1/recordings/{recording_id}/audio")
    assert answer.status_code == 200 and answer.content == audio
    assert b"".join(open_recording(effective(database, tmp_path), waiting).chunks()) == audio

    # Not due before its backoff; then the next failure waits twice as long.
    assert upload_next(database, base, tmp_path, T0 + timedelta(seconds=10)) is None
    second = upload_next(database, base, tmp_path, T0 + timedelta(seconds=31))
    assert second is not None and not second.uploaded and second.retry_at is not None
    later = T0 + timedelta(seconds=31)
    assert later + timedelta(seconds=48) <= second.retry_at <= later + timedelta(seconds=60)
    assert row(database, recording_id).upload_attempts == 2

    # The administrator fixes the endpoint: the next attempt goes through.
    base = use_s3(database, tmp_path, moto.url, bucket)
    third = upload_next(database, base, tmp_path, T0 + timedelta(minutes=3))
    assert third is not None and third.uploaded
    done = row(database, recording_id)
    assert (done.store, done.upload_error, done.upload_attempts) == ("s3", None, 3)
    assert bucket_bytes(moto, bucket, key) == audio
    assert not (tmp_path / key).exists()


def test_the_uploader_survives_the_bucket_going_away_mid_way(
    database: Database, tmp_path: Path, fresh_moto: MotoServer
) -> None:
    bucket = fresh_moto.new_bucket()
    base = use_s3(database, tmp_path, fresh_moto.url, bucket)
    first = finalized(database, tmp_path)
    now = [T0]
    uploader = Uploader(database, base, tmp_path, clock=lambda: now[0])
    assert uploader.upload_next() is not None  # the first goes up
    assert row(database, first).store == "s3"

    fresh_moto.stop()  # S3 outage
    second = finalized(database, tmp_path, start=START + 600)
    third = finalized(database, tmp_path, start=START + 1200)  # finalize goes on
    asyncio.run(uploader.run())
    assert (uploader.pending, uploader.failing) == (2, 1)  # stopped at the first failure
    for recording_id in (second, third):
        kept = row(database, recording_id)
        assert kept.store == "local" and kept.path is not None
        assert (tmp_path / kept.path).exists()

    fresh_moto.start()  # back (empty: moto keeps objects in memory only)
    fresh_moto.client().create_bucket(Bucket=bucket)
    now[0] = T0 + timedelta(minutes=5)
    asyncio.run(uploader.run())
    assert (uploader.pending, uploader.failing) == (0, 0)
    for recording_id in (second, third):
        moved = row(database, recording_id)
        assert moved.store == "s3" and moved.path is not None
        assert not (tmp_path / moved.path).exists()
        assert hashlib.sha256(bucket_bytes(fresh_moto, bucket, moved.path)).hexdigest() == (
            moved.sha256
        )


def test_a_remade_recording_is_local_again_and_uploaded_again(
    database: Database, tmp_path: Path, moto: MotoServer, bucket: str
) -> None:
    base = use_s3(database, tmp_path, moto.url, bucket)
    recording_id = finalized(database, tmp_path)
    upload_next(database, base, tmp_path, T0)
    assert row(database, recording_id).store == "s3"

    state = finalize_recording(database, tmp_path, recording_id, settings=base, force=True)

    assert state == "ready"
    remade = row(database, recording_id)
    assert remade.store == "local" and remade.upload_attempts == 0
    assert remade.path is not None and (tmp_path / remade.path).exists()
    outcome = upload_next(database, base, tmp_path, T0 + timedelta(minutes=1))
    assert outcome is not None and outcome.uploaded
    assert row(database, recording_id).store == "s3"


def test_a_claim_is_leased_so_one_process_uploads_it(database: Database, tmp_path: Path) -> None:
    recording_id = ready_file(database, tmp_path, "recordings/a.ogg", b"audio")
    claim = database.write(lambda s: claim_upload(s, T0))
    assert claim is not None and claim.recording_id == recording_id
    assert database.write(lambda s: claim_upload(s, T0 + timedelta(minutes=1))) is None
    # A process that died mid-upload only delays it by the lease.
    again = database.write(lambda s: claim_upload(s, T0 + LEASE))
    assert again is not None and again.attempts == 2


def test_a_recording_changed_during_its_upload_is_not_switched(
    database: Database, tmp_path: Path
) -> None:
    recording_id = ready_file(database, tmp_path, "recordings/a.ogg", b"audio")
    stale = Claim(recording_id, "recordings/a.ogg", hashlib.sha256(b"old").hexdigest(), 1)
    assert database.write(lambda s: record_upload(s, stale, T0)) is False
    assert row(database, recording_id).store == "local"


def test_recordings_not_yet_stored_locally_wait(database: Database, tmp_path: Path) -> None:
    ready_file(database, tmp_path, "recordings/a.ogg", b"audio", stored_at=None)
    ready_file(database, tmp_path, "recordings/b.ogg", b"audio", start=START + 60, state="failed")
    assert database.write(lambda s: claim_upload(s, T0)) is None
    assert database.read(upload_counts) == (0, 0)


def test_a_recording_in_the_bucket_plays_with_ranges_and_an_outage_is_a_503(
    database: Database, tmp_path: Path, fresh_moto: MotoServer, web_player: TestClient
) -> None:
    bucket = fresh_moto.new_bucket()
    base = use_s3(database, tmp_path, fresh_moto.url, bucket)
    recording_id = finalized(database, tmp_path)
    key = row(database, recording_id).path
    assert key is not None
    audio = (tmp_path / key).read_bytes()
    outcome = upload_next(database, base, tmp_path, T0)
    assert outcome is not None and outcome.uploaded and not (tmp_path / key).exists()
    url = f"/api/v1/recordings/{recording_id}/audio"
    whole = web_player.get(url)
    assert whole.status_code == 200 and whole.content == audio
    part = web_player.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == audio[100:200]
    download = web_player.get(f"/api/v1/recordings/{recording_id}/download")
    assert download.content == audio

    fresh_moto.stop()  # the bucket cannot be reached: say so, and try again later
    down = web_player.get(url)
    assert down.status_code == 503
    assert "cannot be reached now" in down.json()["detail"]
    assert row(database, recording_id).store == "s3"  # nothing changed meanwhile


def test_a_playback_that_read_the_row_before_the_upload_reads_the_bucket(
    database: Database, tmp_path: Path, moto: MotoServer, bucket: str
) -> None:
    # The player read the row (local) just before the uploader moved the file to S3
    # and removed the local copy: the audio comes from the bucket, not a 500.
    from callvault.web.playback import playback_body

    base = use_s3(database, tmp_path, moto.url, bucket)
    recording_id = finalized(database, tmp_path)
    stale = row(database, recording_id)
    assert stale.store == "local" and stale.path is not None
    audio = (tmp_path / stale.path).read_bytes()
    outcome = upload_next(database, base, tmp_path, T0)
    assert outcome is not None and outcome.uploaded and not (tmp_path / stale.path).exists()
    ctx = WebContext(database, tmp_path, settings_for(tmp_path), b"s" * 32)
    body = playback_body(ctx, stale, as_stored=True)
    assert b"".join(body.chunks(0, body.size)) == audio
