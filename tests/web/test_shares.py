"""Share links: made by someone who may see the recording, opened by anyone holding the
URL (no login), ended by expiry or revocation, optionally locked by a passcode; every
step audited. A link that is tampered with, expired, revoked or unknown is a plain 404.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callvault.db import Database, ShareLink
from callvault.db.models import Recording
from callvault.web.auth import LoginThrottle
from callvault.web.principal import WebContext
from callvault.web.sharing import GONE
from tests.recording.golden import captured_session, configure
from tests.web.test_recordings_api import (
    ALL_BUT_ADMIN,
    audit_rows,
    bearer,
    file_bytes,
    ready_recording,
    stored,
)


@pytest.fixture
def owner(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="agent", extension="7301")
    return login("agent")


@pytest.fixture
def visitor(app: Any) -> Any:
    """Someone the link was sent to: a browser with no session."""
    with TestClient(app, base_url="http://testserver") as browser:
        yield browser


def _share(browser: TestClient, path: str, **body: Any) -> dict[str, Any]:
    reply = browser.post(path, json=body)
    assert reply.status_code == 201, reply.text
    made: dict[str, Any] = reply.json()
    return made


def _path(url: str) -> str:
    assert url.startswith("http://testserver/s/")
    return url.removeprefix("http://testserver")


def stored_call(ctx: WebContext, recording_id: int) -> int:
    return ctx.database.read(lambda s: s.get_one(Recording, recording_id).call_id)


def _link(database: Database, share_id: int) -> ShareLink:
    return database.read(lambda s: s.get_one(ShareLink, share_id))


def test_a_link_opens_for_an_anonymous_visitor(
    ctx: WebContext, owner: TestClient, visitor: TestClient, database: Database
) -> None:
    recording_id = ready_recording(ctx)
    before = datetime.now(UTC)
    made = _share(owner, f"/api/v1/recordings/{recording_id}/share")
    expires = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    assert made["expires_at"].endswith("Z")
    assert timedelta(days=7) <= expires - before < timedelta(days=7, minutes=1)
    assert (made["recording_id"], made["call_id"], made["passcode"]) == (recording_id, None, False)
    path = _path(made["url"])

    page = visitor.get(path)
    assert page.status_code == 200
    assert f'<audio id="share-audio" controls preload="none" src="{path}/audio">' in page.text
    assert f'href="{path}/download" download' in page.text
    assert "2023-11-14 22:13:20 UTC" in page.text and "0:03 (3 s)" in page.text
    assert "7300" not in page.text and "7301" not in page.text  # nothing else about the call
    assert 'href="/calls"' not in page.text  # no navigation for a visitor
    assert page.headers["referrer-policy"] == "no-referrer"

    data = file_bytes(ctx, recording_id)
    audio = visitor.get(f"{path}/audio", headers={"Range": "bytes=0-"})
    assert audio.status_code == 206 and audio.content == data
    assert audio.headers["content-type"] == "audio/ogg"
    seek = visitor.get(f"{path}/audio", headers={"Range": "bytes=1000-1999"})
    assert seek.status_code == 206 and seek.content == data[1000:2000]
    download = visitor.get(f"{path}/download")
    assert download.content == data
    assert download.headers["content-disposition"] == (
        'attachment; filename="call-recording-2023-11-14_22.13.20.ogg"'
    )

    created = audit_rows(database, "share.create")
    assert [(e.actor, e.target_type, e.target_id, e.detail["share_id"]) for e in created] == [
        ("agent", "recording", str(recording_id), made["id"])
    ]
    uses = audit_rows(database, "share.use")
    # The page, one playback (the seek is part of it) and the download.
    assert [(e.actor, e.user_id, e.detail["what"]) for e in uses] == [
        (f"share:{made['id']}", None, "page"),
        (f"share:{made['id']}", None, "audio"),
        (f"share:{made['id']}", None, "download"),
    ]
    assert all(e.ip == "testclient" and e.target_id == str(recording_id) for e in uses)
    listed = owner.get("/api/v1/shares").json()["items"]
    assert [(i["id"], i["url"], i["uses"], i["revoked"]) for i in listed] == [
        (made["id"], made["url"], 3, False)
    ]


def test_gsm_plays_transcoded_through_a_link(
    ctx: WebContext, owner: TestClient, visitor: TestClient
) -> None:
    recording_id = ready_recording(
        ctx, {"recording.format": "wav", "recording.codec": "gsm", "recording.layout": "mono"}
    )
    path = _path(_share(owner, f"/api/v1/recordings/{recording_id}/share")["url"])
    audio = visitor.get(f"{path}/audio")
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF" and len(audio.content) == 44 + 24_000 * 2
    assert visitor.get(f"{path}/download").content == file_bytes(ctx, recording_id)


def test_tampered_expired_and_unknown_links_are_404(
    ctx: WebContext,
    owner: TestClient,
    visitor: TestClient,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recording_id = ready_recording(ctx)
    made = _share(owner, f"/api/v1/recordings/{recording_id}/share", expires_in_days=2)
    path = _path(made["url"])
    uid, expires, signature = path.removeprefix("/s/").split(".")
    other = "A" if signature[0] != "A" else "B"
    tampered = [
        f"/s/{uid}.{expires}.{other}{signature[1:]}",  # signature changed
        f"/s/{uid}.{int(expires) + 86400}.{signature}",  # expiry pushed back
        f"/s/{'0' * 32}.{expires}.{signature}",  # another link's uid
        f"/s/{uid}.{expires}",  # no signature
        "/s/nothing",
    ]
    for bad in tampered:
        for tail in ("", "/audio", "/download"):
            reply = visitor.get(bad + tail)
            assert reply.status_code == 404, bad + tail
            assert GONE in reply.text, bad + tail
    assert visitor.get(path).status_code == 200
    # Past the expiry the URL carries, the link is over.
    later = datetime.now(UTC) + timedelta(days=2, seconds=5)
    with monkeypatch.context() as patch:
        patch.setattr(WebContext, "now", lambda self: later)
        assert visitor.get(path).status_code == 404

    # Expired: the row decides, whatever the URL says.
    def expire(s: Any) -> None:
        s.get_one(ShareLink, made["id"]).expires_at = datetime.now(UTC) - timedelta(seconds=1)

    database.write(expire)
    for tail in ("", "/audio", "/download"):
        reply = visitor.get(path + tail)
        assert reply.status_code == 404 and GONE in reply.text, tail
    listed = owner.get("/api/v1/shares").json()["items"]
    assert listed[0]["expired"] is True


def test_a_revoked_link_is_404_and_only_its_maker_or_an_admin_revokes(
    ctx: WebContext,
    owner: TestClient,
    visitor: TestClient,
    make_user: Callable[..., int],
    database: Database,
) -> None:
    recording_id, _ = captured_session(database)  # a link works before it is ready too
    first = _share(owner, f"/api/v1/recordings/{recording_id}/share")
    second = _share(owner, f"/api/v1/recordings/{recording_id}/share")
    make_user(username="colleague", extension="7300", password=None)  # took part in it too
    make_user(username="boss", role="admin", password=None)
    colleague = bearer(database, "colleague", ALL_BUT_ADMIN)
    boss = bearer(database, "boss", ALL_BUT_ADMIN | {"admin"})
    assert visitor.get("/api/v1/shares", headers=colleague).json()["items"] == []
    refused = visitor.delete(f"/api/v1/shares/{first['id']}", headers=colleague)
    assert refused.status_code == 404
    assert visitor.get(_path(first["url"])).status_code == 200

    assert owner.delete(f"/api/v1/shares/{first['id']}").status_code == 204
    assert visitor.get(_path(first["url"])).status_code == 404
    assert visitor.get(_path(first["url"]) + "/download").status_code == 404
    assert owner.delete(f"/api/v1/shares/{first['id']}").status_code == 204  # idempotent
    assert visitor.delete(f"/api/v1/shares/{second['id']}", headers=boss).status_code == 204
    assert visitor.get(_path(second["url"])).status_code == 404
    revokes = audit_rows(database, "share.revoke")
    assert [(e.actor, e.detail["share_id"]) for e in revokes] == [
        ("agent", first["id"]),
        ("boss", second["id"]),
    ]
    assert _link(database, first["id"]).revoked_at is not None
    everyone = visitor.get("/api/v1/shares", headers=boss).json()["items"]
    assert [(i["id"], i["revoked"], i["created_by"]["login"]) for i in everyone] == [
        (second["id"], True, "agent"),
        (first["id"], True, "agent"),
    ]


def test_the_passcode_flow(
    ctx: WebContext, owner: TestClient, visitor: TestClient, app: Any, database: Database
) -> None:
    recording_id = ready_recording(ctx)
    made = _share(owner, f"/api/v1/recordings/{recording_id}/share", passcode="4711")
    assert made["passcode"] is True
    row = _link(database, made["id"])
    assert row.passcode_hash is not None and row.passcode_hash.startswith("$argon2")
    path = _path(made["url"])
    assert path.startswith(f"/s/{row.uid}.")  # the row's uid, signed: no secret is stored
    locked = visitor.get(path)
    assert locked.status_code == 200
    assert 'name="passcode"' in locked.text and "<audio" not in locked.text
    assert visitor.get(f"{path}/audio").status_code == 403
    assert visitor.get(f"{path}/download").status_code == 403

    wrong = visitor.post(path, data={"passcode": "1234"}, follow_redirects=False)
    assert wrong.status_code == 401 and "wrong passcode" in wrong.text
    assert "set-cookie" not in wrong.headers
    assert visitor.get(f"{path}/audio").status_code == 403
    assert [e.detail["share_id"] for e in audit_rows(database, "share.passcode_failed")] == [
        made["id"]
    ]

    right = visitor.post(path, data={"passcode": "4711"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == path
    assert f"Path={path}" in right.headers["set-cookie"]
    assert "HttpOnly" in right.headers["set-cookie"]
    assert "<audio" in visitor.get(path).text
    audio = visitor.get(f"{path}/audio", headers={"Range": "bytes=0-99"})
    assert audio.status_code == 206 and audio.content == file_bytes(ctx, recording_id)[:100]

    # The cookie opens this link only: another link with the same passcode stays locked.
    other = _path(_share(owner, f"/api/v1/recordings/{recording_id}/share", passcode="4711")["url"])
    assert visitor.get(f"{other}/audio").status_code == 403
    # A forged cookie does not unlock it either.
    with TestClient(app, base_url="http://testserver") as forger:
        forger.cookies.set("callvault_share", "9999999999." + "A" * 43, path=path)
        assert forger.get(f"{path}/audio").status_code == 403


def test_wrong_passcodes_are_throttled(
    ctx: WebContext, owner: TestClient, visitor: TestClient
) -> None:
    ctx.throttle = LoginThrottle(limit=2)
    recording_id, _ = captured_session(ctx.database)
    path = _path(_share(owner, f"/api/v1/recordings/{recording_id}/share", passcode="ab")["url"])
    for _ in range(2):
        assert visitor.post(path, data={"passcode": "zz"}).status_code == 401
    refused = visitor.post(path, data={"passcode": "ab"}, follow_redirects=False)
    assert refused.status_code == 429 and "too many failed" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert visitor.get(f"{path}/audio").status_code == 403


def test_expiry_is_bounded_by_the_setting(
    ctx: WebContext, owner: TestClient, database: Database
) -> None:
    recording_id, _ = captured_session(ctx.database)
    url = f"/api/v1/recordings/{recording_id}/share"
    assert owner.post(url, json={"expires_in_days": 30}).status_code == 201
    refused = owner.post(url, json={"expires_in_days": 31})
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "expires_in_days 31 is not allowed: a share link lasts 1 to 30 days "
        "(the administrator's setting web.share_max_days is 30)"
    )
    assert owner.post(url, json={"expires_in_days": 0}).status_code == 422
    configure(database, ctx.data_dir, {"web.share_max_days": "3"})
    assert owner.post(url, json={"expires_in_days": 4}).status_code == 400
    made = _share(owner, url)  # the default 7 days is cut to the maximum
    expires = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=2, hours=23) < expires - datetime.now(UTC) <= timedelta(days=3)
    assert len(audit_rows(database, "share.create")) == 2


def test_who_may_share(
    ctx: WebContext,
    owner: TestClient,
    client: TestClient,
    make_user: Callable[..., int],
    database: Database,
) -> None:
    recording_id, _ = captured_session(database)
    call_id = stored_call(ctx, recording_id)
    url = f"/api/v1/recordings/{recording_id}/share"
    make_user(username="stranger", extension="5555", password=None)
    stranger = bearer(database, "stranger", ALL_BUT_ADMIN)
    refused = client.post(url, headers=stranger)
    assert refused.status_code == 404 and refused.json()["detail"] == f"no recording {recording_id}"
    hidden_call = client.post(f"/api/v1/calls/{call_id}/share", headers=stranger)
    assert hidden_call.status_code == 404 and hidden_call.json()["detail"] == f"no call {call_id}"
    assert client.post(url).status_code == 401
    no_csrf = owner.post(url, headers={"X-CSRF-Token": "wrong"})
    assert no_csrf.status_code == 403
    readers = bearer(database, "agent", {"calls:read", "recordings:read"})
    lacking = client.post(url, headers=readers)
    assert lacking.status_code == 403 and "recordings:share" in lacking.json()["detail"]
    assert client.get("/api/v1/shares", headers=readers).status_code == 403
    sharers = bearer(database, "agent", {"recordings:read", "recordings:share"})
    made = client.post(url, headers=sharers)
    assert made.status_code == 201
    assert audit_rows(database, "share.create")[-1].detail.get("via") == "api token"
    assert audit_rows(database, "share.create")[-1].actor == "agent"
    assert database.read(lambda s: s.scalar(select(func.count()).select_from(ShareLink))) == 1


def test_a_calls_link_plays_its_stitched_recording(
    ctx: WebContext, owner: TestClient, visitor: TestClient, database: Database
) -> None:
    recording_id = ready_recording(ctx)
    call_id = stored(ctx, recording_id).call_id
    url = f"/api/v1/calls/{call_id}/share"
    # One segment: its recording is the whole call.
    single = _share(owner, url)
    assert (single["recording_id"], single["call_id"]) == (recording_id, call_id)
    assert visitor.get(_path(single["url"]) + "/audio").content == file_bytes(ctx, recording_id)
    assert audit_rows(database, "share.create")[-1].target_type == "call"

    # A second segment (a transfer) and no stitched recording yet: 409 saying what to do.
    database.write(lambda s: s.add(Recording(call_id=call_id, kind="segment", state="ready")))
    conflict = owner.post(url)
    assert conflict.status_code == 409
    assert conflict.json()["detail"] == (
        f"call {call_id} has 2 segment recordings and its stitched recording is not ready; "
        f"make it with `callvault calls stitch {call_id}`"
    )
    # Once stitched, the call's link (even one made before) plays the whole call.
    first = stored(ctx, recording_id)

    def stitched(s: Any) -> int:
        row = Recording(
            call_id=call_id,
            kind="call",
            state="ready",
            format=first.format,
            codec=first.codec,
            path=first.path,
            sha256="0" * 64,
            duration_s=3.0,
            file_name="whole-call.ogg",
        )
        s.add(row)
        s.flush()
        return row.id

    stitched_id = database.write(stitched)
    made = _share(owner, url)
    assert made["recording_id"] == stitched_id
    etag = visitor.get(_path(single["url"]) + "/audio").headers["etag"]
    assert etag == f'"{"0" * 64}"'


def test_the_list_pages_with_a_cursor(ctx: WebContext, owner: TestClient) -> None:
    recording_id, _ = captured_session(ctx.database)
    ids = [_share(owner, f"/api/v1/recordings/{recording_id}/share")["id"] for _ in range(3)]
    first = owner.get("/api/v1/shares", params={"limit": 2}).json()
    assert [i["id"] for i in first["items"]] == ids[:0:-1]
    rest = owner.get("/api/v1/shares", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [i["id"] for i in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert owner.get("/api/v1/shares", params={"cursor": "x"}).status_code == 400
