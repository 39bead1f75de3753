"""The recordings API: metadata, audio and download, who may have them, what is audited.

Recordings are real: a Cisco CUBE call (7301 calls 7300) captured as two tones and
finalized into the app's data directory, as the recorder would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db import AuditEvent, Database, User
from callvault.db.models import Recording
from callvault.recording.finalize import finalize_recording
from callvault.web.auth import new_api_token
from callvault.web.principal import WebContext
from tests.recording.golden import captured_session, configure, settings_for, two_tones

#: Every scope an ordinary user's API token can have.
ALL_BUT_ADMIN = frozenset({"calls:read", "recordings:read", "recordings:share"})


def ready_recording(ctx: WebContext, settings: dict[str, str] | None = None) -> int:
    """The Cisco two-tone call finalized into the app's data directory; its id."""
    if settings:
        configure(ctx.database, ctx.data_dir, settings)
    recording_id, _ = captured_session(ctx.database)
    two_tones(ctx.data_dir)
    state = finalize_recording(
        ctx.database, ctx.data_dir, recording_id, settings=settings_for(ctx.data_dir)
    )
    assert state == "ready"
    return recording_id


def stored(ctx: WebContext, recording_id: int) -> Recording:
    recording = ctx.database.read(lambda s: s.get(Recording, recording_id))
    assert recording is not None and recording.path is not None
    return recording


def file_bytes(ctx: WebContext, recording_id: int) -> bytes:
    return (ctx.data_dir / stored(ctx, recording_id).path).read_bytes()  # type: ignore[operator]


def audit_rows(database: Database, action: str) -> list[AuditEvent]:
    return list(
        database.read(
            lambda s: s.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            ).all()
        )
    )


def bearer(database: Database, login: str, scopes: set[str] | frozenset[str]) -> dict[str, str]:
    """An Authorization header for a new API token of ``login``."""

    def make(s: object) -> str:
        user = s.scalars(select(User).where(User.username == login)).one()  # type: ignore[attr-defined]
        return new_api_token(s, user, "test", set(scopes), datetime.now(UTC))[1]  # type: ignore[arg-type]

    return {"Authorization": f"Bearer {database.write(make)}"}


@pytest.fixture
def owner(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="agent", extension="7301")
    return login("agent")


def test_metadata_describes_the_file_and_the_waveform(ctx: WebContext, owner: TestClient) -> None:
    recording_id = ready_recording(ctx)
    reply = owner.get(f"/api/v1/recordings/{recording_id}")
    assert reply.status_code == 200
    body = reply.json()
    row = stored(ctx, recording_id)
    assert body["id"] == recording_id and body["call_id"] == row.call_id
    assert (body["kind"], body["state"], body["format"], body["codec"]) == (
        "segment",
        "ready",
        "ogg",
        "opus",
    )
    assert (body["channels"], body["duration_s"], body["sha256"]) == (2, 3.0, row.sha256)
    assert body["size_bytes"] == len(file_bytes(ctx, recording_id))
    assert body["file_name"].endswith(".ogg") and body["playable"] is True
    assert body["audio_url"] == f"/api/v1/recordings/{recording_id}/audio"
    assert body["download_url"] == f"/api/v1/recordings/{recording_id}/download"
    assert [c["participants"] for c in body["channel_map"]] == [
        ["sip:7301@35.162.237.204"],
        ["sip:7300@35.162.237.204"],
    ]
    assert set(body["analysis"]) == {"talk", "paused", "dtmf", "silence_ratio", "segments"}
    assert body["waiting_until"] is None
    peaks = body["peaks"]
    assert peaks["per_second"] == 5.0 and len(peaks["channels"]) == 2
    left, right = peaks["channels"]
    assert len(left) == len(right) == 15  # 3 s at 5 points a second
    assert all(0 <= p <= 255 for p in left + right)
    # The tones play from 0.5 s to 2.5 s: loud points there, silence at the ends.
    assert max(left[3:12]) > 100 and left[0] == 0 and left[-1] == 0
    # Decoded from the stored interleaved bytes: channel 0 is every other byte.
    assert left == list(row.peaks[0::2]) and right == list(row.peaks[1::2])  # type: ignore[index]


def test_audio_streams_the_file_and_is_audited_once_per_playback(
    ctx: WebContext, owner: TestClient, database: Database
) -> None:
    recording_id = ready_recording(ctx)
    data = file_bytes(ctx, recording_id)
    first = owner.get(f"/api/v1/recordings/{recording_id}/audio", headers={"Range": "bytes=0-"})
    assert first.status_code == 206 and first.content == data
    later = owner.get(f"/api/v1/recordings/{recording_id}/audio", headers={"Range": "bytes=100-"})
    assert later.status_code == 206 and later.content == data[100:]
    plays = audit_rows(database, "recording.play")
    assert len(plays) == 1  # the seek is the same playback
    assert (plays[0].actor, plays[0].target_type, plays[0].target_id) == (
        "agent",
        "recording",
        str(recording_id),
    )
    assert plays[0].ip == "testclient"
    again = owner.get(f"/api/v1/recordings/{recording_id}/audio")
    assert again.status_code == 200 and again.content == data
    assert len(audit_rows(database, "recording.play")) == 2


def test_download_is_the_stored_file_under_its_templated_name(
    ctx: WebContext, owner: TestClient, database: Database
) -> None:
    recording_id = ready_recording(ctx)
    reply = owner.get(f"/api/v1/recordings/{recording_id}/download")
    assert reply.status_code == 200
    name = stored(ctx, recording_id).file_name
    # The default template: date and time of the call, the other party's number, the id.
    assert name is not None and name.startswith("2023-11-14_22.13.20-")
    assert reply.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert reply.content == file_bytes(ctx, recording_id)
    assert hashlib.sha256(reply.content).hexdigest() == stored(ctx, recording_id).sha256
    downloads = audit_rows(database, "recording.download")
    assert [(d.actor, d.target_id, d.detail["file_name"]) for d in downloads] == [
        ("agent", str(recording_id), name)
    ]


def test_who_may_have_a_recording(
    ctx: WebContext,
    owner: TestClient,
    make_user: Callable[..., int],
    client: TestClient,
    database: Database,
) -> None:
    recording_id = ready_recording(ctx)
    make_user(username="stranger", extension="5555", password=None)
    make_user(username="boss", role="admin", password=None)
    stranger = bearer(database, "stranger", ALL_BUT_ADMIN)
    boss = bearer(database, "boss", ALL_BUT_ADMIN | {"admin"})
    paths = [f"/api/v1/recordings/{recording_id}{tail}" for tail in ("", "/audio", "/download")]
    for path in paths:
        assert owner.get(path).status_code == 200, path
        assert client.get(path, headers=boss).status_code == 200, path
        refused = client.get(path, headers=stranger)
        # D7: the same answer as for a recording that does not exist.
        assert refused.status_code == 404, path
        assert refused.json()["detail"] == f"no recording {recording_id}"
        assert client.get(path).status_code == 401, path
    missing = owner.get("/api/v1/recordings/999999")
    assert missing.status_code == 404 and missing.json()["detail"] == "no recording 999999"
    calls_only = bearer(database, "agent", {"calls:read"})
    for path in paths:
        reply = client.get(path, headers=calls_only)
        assert reply.status_code == 403 and "recordings:read" in reply.json()["detail"]
    readers = bearer(database, "agent", {"recordings:read"})
    assert client.get(paths[1], headers=readers).status_code == 200
    plays = audit_rows(database, "recording.play")
    assert plays[-1].detail.get("via") == "api token"


def test_a_recording_not_ready_says_its_state_to_whoever_may_see_it(
    ctx: WebContext,
    owner: TestClient,
    make_user: Callable[..., int],
    client: TestClient,
) -> None:
    recording_id, _ = captured_session(ctx.database)  # captured, not finalized: waiting
    meta = owner.get(f"/api/v1/recordings/{recording_id}").json()
    assert (meta["state"], meta["format"], meta["peaks"], meta["playable"]) == (
        "waiting",
        None,
        None,
        False,
    )
    reply = owner.get(f"/api/v1/recordings/{recording_id}/audio")
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["detail"] == f"recording {recording_id} is not ready yet (state: waiting)"
    assert reply.json()["state"] == "waiting"
    make_user(username="stranger", extension="5555", password=None)
    stranger = bearer(ctx.database, "stranger", ALL_BUT_ADMIN)
    hidden = client.get(f"/api/v1/recordings/{recording_id}/audio", headers=stranger)
    assert hidden.status_code == 404 and "state" not in hidden.json()


def test_a_missing_file_is_an_error_not_silence(ctx: WebContext, owner: TestClient) -> None:
    recording_id = ready_recording(ctx)
    (ctx.data_dir / stored(ctx, recording_id).path).unlink()  # type: ignore[operator]
    reply = owner.get(f"/api/v1/recordings/{recording_id}/audio")
    assert reply.status_code == 500
    assert reply.json()["detail"] == f"the file of recording {recording_id} is missing from storage"
