"""The retention and legal-hold API (X8, T5, W2) on the real app, both database backends.

One finished call (Cisco: 7301 calls 7300) with its recording; administrators,
supervisors and users ask what a compliance officer and a team lead would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db import Database
from callvault.db.accounts import AuditEvent, User
from callvault.db.models import Recording
from callvault.web.auth import new_api_token
from callvault.web.principal import WebContext
from tests.recording.golden import configure
from tests.recording.retained import days, ready_call


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
def world(
    ctx: WebContext, make_user: Callable[..., int], login: Callable[..., TestClient]
) -> dict[str, Any]:
    configure(ctx.database, ctx.data_dir, {"retention.days": "30"})
    call_id, recording_id = ready_call(ctx.database, ctx.data_dir)
    make_user(username="root", role="admin")
    make_user(username="lead", role="supervisor", extension="7301")  # took part
    make_user(username="other-lead", role="supervisor", extension="5555")
    make_user(username="agent", extension="7300")  # took part, a plain user
    return {
        "call": call_id,
        "recording": recording_id,
        "admin": login("root"),
        "lead": login("lead"),
        "other_lead": login("other-lead"),
        "agent": login("agent"),
    }


def _audit(database: Database, action: str) -> list[AuditEvent]:
    return list(
        database.read(
            lambda s: s.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            ).all()
        )
    )


def test_an_administrator_sets_a_calls_retention(world: dict[str, Any], ctx: WebContext) -> None:
    admin: TestClient = world["admin"]
    url = f"/api/v1/calls/{world['call']}/retention"
    before = admin.get(url)
    assert before.status_code == 200
    assert before.json()["policy"] == {"days": 30, "tier": "unlimited", "tier_since": None}

    reply = admin.put(url, json={"days": 7})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["retention_days"] == 7 and body["hold"] is None
    assert body["recordings"] == [
        {
            "id": world["recording"],
            "kind": "segment",
            "state": "ready",
            "retain_until": _iso(days(7)),
            "deleted_at": None,
            "held": False,
        }
    ]
    assert admin.get(url).json() == body
    (audited,) = _audit(ctx.database, "call.retention")
    assert (audited.actor, audited.target_id) == ("root", str(world["call"]))
    assert audited.detail["days"] == 7

    forever = admin.put(url, json={"days": 0}).json()
    assert forever["retention_days"] == 0 and forever["recordings"][0]["retain_until"] is None
    policy = admin.put(url, json={"days": None}).json()
    assert policy["retention_days"] is None
    assert policy["recordings"][0]["retain_until"] == _iso(days(30))
    for bad in ({"days": -1}, {"days": 36501}, {}, {"days": "soon"}):
        assert admin.put(url, json=bad).status_code == 422, bad
    assert admin.put("/api/v1/calls/999/retention", json={"days": 1}).status_code == 404


def test_who_may_set_a_calls_retention(
    world: dict[str, Any], client: TestClient, ctx: WebContext
) -> None:
    url = f"/api/v1/calls/{world['call']}/retention"
    assert world["lead"].put(url, json={"days": 60}).status_code == 200
    refused = world["agent"].put(url, json={"days": 1})
    assert refused.status_code == 403  # sees the call, but is not a supervisor
    assert world["agent"].get(url).status_code == 200  # reading is for whoever sees it
    hidden = world["other_lead"].put(url, json={"days": 1})
    assert hidden.status_code == 404 and "7301" not in hidden.text
    assert world["other_lead"].get(url).status_code == 404
    assert client.put(url, json={"days": 1}).status_code == 401
    assert ctx.database.read(
        lambda s: s.get(Recording, world["recording"]).retain_until  # type: ignore[union-attr]
    ) == days(60)

    def token(scopes: set[str]) -> str:
        def make(s: Any) -> str:
            user = s.scalars(select(User).where(User.username == "root")).one()
            return new_api_token(s, user, "t", scopes, datetime.now(UTC))[1]

        return ctx.database.write(make)

    reader = {"Authorization": f"Bearer {token({'calls:read'})}"}
    assert client.put(url, json={"days": 1}, headers=reader).status_code == 403
    full = {"Authorization": f"Bearer {token({'calls:read', 'admin'})}"}
    assert client.put(url, json={"days": 2}, headers=full).status_code == 200


@pytest.mark.parametrize("target", ["call", "recording"])
def test_a_hold_through_the_api(world: dict[str, Any], ctx: WebContext, target: str) -> None:
    admin: TestClient = world["admin"]
    target_id = world[target]
    url = f"/api/v1/{target}s/{target_id}/hold"
    placed = admin.post(url, json={"reason": "case 42"})
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert (hold[f"{target}_id"], hold["reason"], hold["set_by"], hold["active"]) == (
        target_id,
        "case 42",
        "root",
        True,
    )
    assert admin.post(url).status_code == 409  # held already (a reason is optional)
    listed = admin.get("/api/v1/holds").json()
    assert [h["id"] for h in listed["items"]] == [hold["id"]] and listed["next_cursor"] is None
    assert world["lead"].get("/api/v1/holds").status_code == 403

    report = admin.post("/api/v1/retention/purge", json={"as_of": _iso(days(31))}).json()
    assert report["recording_ids"] == [] and report["held"] == [world["recording"]]
    retention = admin.get(f"/api/v1/calls/{world['call']}/retention").json()
    assert retention["recordings"][0]["held"] is True

    released = admin.delete(url)
    assert released.status_code == 200 and released.json()["active"] is False
    assert released.json()["released_by"] == "root"
    assert admin.delete(url).status_code == 404  # not on hold any more
    assert admin.get("/api/v1/holds").json()["items"] == []
    assert len(admin.get("/api/v1/holds?released=true").json()["items"]) == 1
    report = admin.post("/api/v1/retention/purge", json={"as_of": _iso(days(31))}).json()
    assert report["recording_ids"] == [world["recording"]]
    if target == "recording":
        assert admin.post(url).status_code == 409  # deleted: nothing to hold
    assert [e.detail["hold_id"] for e in _audit(ctx.database, "hold.set")] == [hold["id"]]
    assert len(_audit(ctx.database, "hold.release")) == 1


def test_holds_follow_who_may_see(world: dict[str, Any]) -> None:
    call_url = f"/api/v1/calls/{world['call']}/hold"
    recording_url = f"/api/v1/recordings/{world['recording']}/hold"
    assert world["other_lead"].post(call_url).status_code == 404
    assert world["other_lead"].post(recording_url).status_code == 404
    assert world["agent"].post(call_url).status_code == 403
    assert world["lead"].post(recording_url).status_code == 201
    assert world["lead"].delete(recording_url).status_code == 200
    # A hold an administrator placed is not a supervisor's to lift.
    assert world["admin"].post(call_url, json={"reason": "court"}).status_code == 201
    refused = world["lead"].delete(call_url)
    assert refused.status_code == 403 and "placed by root" in refused.json()["detail"]
    assert world["admin"].delete(call_url).status_code == 200


def test_the_purge_on_demand(world: dict[str, Any], ctx: WebContext) -> None:
    admin: TestClient = world["admin"]
    row = ctx.database.read(lambda s: s.get(Recording, world["recording"]))
    assert row is not None and row.path is not None
    audio = ctx.data_dir / row.path

    plan = admin.post("/api/v1/retention/purge", json={"dry_run": True, "as_of": "2023-12-20"})
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["dry_run"] is True and body["as_of"] == "2023-12-20T00:00:00Z"
    assert body["recording_ids"] == [world["recording"]] and body["call_ids"] == [world["call"]]
    assert body["bytes_freed"] > (row.size_bytes or 0)
    assert audio.exists()

    assert world["lead"].post("/api/v1/retention/purge").status_code == 403
    nothing = admin.post("/api/v1/retention/purge").json()  # as of now: long due
    assert nothing["recording_ids"] == [world["recording"]]
    assert not audio.exists()
    assert nothing["recordings"][0]["size_bytes"] == row.size_bytes
    (deleted,) = _audit(ctx.database, "recording.delete")
    assert deleted.actor == "root" and deleted.user_id is not None
    runs = _audit(ctx.database, "retention.purge")
    assert [r.target_id for r in runs] == ["dry-run", "purge"]
    gone = admin.get(f"/api/v1/recordings/{world['recording']}/audio")
    assert gone.status_code == 404
    assert admin.post(
        "/api/v1/retention/purge", json={"as_of": "0001-01-01T00:00:00+14:00"}
    ).status_code in (200, 400)


def test_the_limited_tier_is_visible_in_the_policy(
    world: dict[str, Any], ctx: WebContext, tmp_path: Path
) -> None:
    configure(ctx.database, tmp_path, {"retention.tier": "limited"})
    admin: TestClient = world["admin"]
    body = admin.get(f"/api/v1/calls/{world['call']}/retention").json()
    assert body["policy"]["tier"] == "limited" and body["policy"]["tier_since"] is not None
    since = datetime.fromisoformat(body["policy"]["tier_since"].replace("Z", "+00:00"))
    # Shortening works under the limited tier; lengthening stops at the tier's 30 days.
    short = admin.put(f"/api/v1/calls/{world['call']}/retention", json={"days": 5}).json()
    assert short["recordings"][0]["retain_until"] == _iso(days(5))
    long = admin.put(f"/api/v1/calls/{world['call']}/retention", json={"days": 36500}).json()
    assert long["recordings"][0]["retain_until"] == _iso(since + timedelta(days=30))


def test_the_limited_tier_lets_only_the_participants_reach_a_call(
    world: dict[str, Any], ctx: WebContext, tmp_path: Path
) -> None:
    # W2: under the limited tier only the users who took part reach the call and its
    # recording; administrators and other supervisors get 404 as for any hidden call.
    call, recording = world["call"], world["recording"]
    admin, lead, other = world["admin"], world["lead"], world["other_lead"]
    assert admin.get(f"/api/v1/recordings/{recording}").status_code == 200
    configure(ctx.database, tmp_path, {"retention.tier": "limited"})
    for outsider in (admin, other):
        assert outsider.get(f"/api/v1/calls/{call}").status_code == 404
        assert outsider.get(f"/api/v1/recordings/{recording}/audio").status_code == 404
        assert outsider.get("/api/v1/calls").json()["items"] == []
    for took_part in (lead, world["agent"]):
        assert took_part.get(f"/api/v1/calls/{call}").status_code == 200
        assert took_part.get(f"/api/v1/recordings/{recording}/audio").status_code == 200
    # ... while administrators still govern its retention (nothing of what was said).
    assert admin.get(f"/api/v1/calls/{call}/retention").status_code == 200
    configure(ctx.database, tmp_path, {"retention.tier": "unlimited"})
    assert admin.get(f"/api/v1/recordings/{recording}/audio").status_code == 200
