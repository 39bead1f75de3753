"""API tokens as an integration uses them: created from a browser session, shown once,
sent as ``Authorization: Bearer``, limited to their scopes, expired, revoked."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db import AuditEvent, Database
from callvault.db.accounts import ApiToken
from callvault.web.app import create_web_app
from callvault.web.principal import WebContext

Login = Callable[..., TestClient]
MakeUser = Callable[..., int]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(browser: TestClient, **body: Any) -> dict[str, Any]:
    reply = browser.post("/api/v1/tokens", json={"name": "crm", "scopes": ["calls:read"], **body})
    assert reply.status_code == 201, reply.text
    made: dict[str, Any] = reply.json()
    return made


def test_a_token_is_shown_once_used_and_revoked(
    client: TestClient, database: Database, make_user: MakeUser, login: Login
) -> None:
    make_user(username="anna", display_name="Anna")
    anna = login("anna")
    made = _create(anna, name="CRM export", scopes=["calls:read", "recordings:read"])
    plaintext = made["token"]
    assert plaintext.startswith("cvt_") and len(plaintext) > 40
    assert made["prefix"] == plaintext[:8]
    assert (made["name"], made["scopes"], made["state"]) == (
        "CRM export",
        ["calls:read", "recordings:read"],
        "active",
    )
    assert made["expires_at"] is None and made["last_used_at"] is None

    me = client.get("/api/v1/me", headers=bearer(plaintext))
    assert me.status_code == 200
    assert (me.json()["login"], me.json()["via"], me.json()["csrf_token"]) == (
        "anna",
        "token",
        None,
    )
    (listed,) = anna.get("/api/v1/tokens").json()["items"]
    assert "token" not in listed and plaintext not in str(listed)
    assert listed["last_used_at"] is not None and listed["last_used_at"].endswith("Z")

    assert anna.delete(f"/api/v1/tokens/{made['id']}").status_code == 204
    gone = client.get("/api/v1/me", headers=bearer(plaintext))
    assert gone.status_code == 401
    assert gone.json()["detail"] == "the API token is unknown, expired or revoked"
    (listed,) = anna.get("/api/v1/tokens").json()["items"]
    assert listed["state"] == "revoked" and listed["revoked_at"] is not None
    assert anna.delete(f"/api/v1/tokens/{made['id']}").status_code == 204  # idempotent

    lines = database.read(lambda s: s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all())
    token_lines = [(e.action, e.target_id) for e in lines if e.action.startswith("token.")]
    assert token_lines == [("token.create", str(made["id"])), ("token.revoke", str(made["id"]))]
    assert all(plaintext not in str(e.detail) for e in lines)
    stored = database.read(lambda s: s.scalars(select(ApiToken.token_hash)).one())
    assert plaintext not in stored


def test_only_a_browser_session_creates_tokens(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    make_user(username="boss", role="admin")
    boss = login("boss")
    plaintext = _create(boss, scopes=["admin", "calls:read"])["token"]
    reply = client.post(
        "/api/v1/tokens",
        json={"name": "more", "scopes": ["calls:read"]},
        headers=bearer(plaintext),
    )
    assert reply.status_code == 403
    assert reply.json()["detail"] == (
        "API tokens are created from a logged-in browser session, not a token"
    )
    assert len(boss.get("/api/v1/tokens").json()["items"]) == 1


def test_the_admin_scope_is_for_administrators_and_scopes_are_enforced(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    make_user(username="anna", role="supervisor", scope="all")
    make_user(username="boss", role="admin")
    anna, boss = login("anna"), login("boss")
    refused = anna.post("/api/v1/tokens", json={"name": "x", "scopes": ["admin"]})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "only administrators can hold tokens with the 'admin' scope"
    unknown = anna.post("/api/v1/tokens", json={"name": "x", "scopes": ["calls:write"]})
    assert (
        unknown.status_code == 400 and "unknown scopes ['calls:write']" in unknown.json()["detail"]
    )
    assert anna.post("/api/v1/tokens", json={"name": "x", "scopes": []}).status_code == 422

    calls_only = _create(boss, scopes=["calls:read"])["token"]
    admin_token = _create(boss, scopes=["admin"])["token"]
    assert client.get("/api/v1/users", headers=bearer(calls_only)).status_code == 403
    assert client.get("/api/v1/groups", headers=bearer(calls_only)).status_code == 403
    listed = client.get("/api/v1/users", headers=bearer(admin_token))
    assert listed.status_code == 200
    assert {u["username"] for u in listed.json()["items"]} == {"anna", "boss"}
    # A token does not need a CSRF header: no browser sends it by itself.
    made = client.post("/api/v1/groups", json={"name": "sales"}, headers=bearer(admin_token))
    assert made.status_code == 201


def test_an_expired_token_is_refused(ctx: WebContext, make_user: MakeUser, login: Login) -> None:
    make_user(username="anna")
    made = _create(login("anna"), expires_in_days=1)
    expires = datetime.fromisoformat(made["expires_at"])
    created = datetime.fromisoformat(made["created_at"])
    assert expires - created == timedelta(days=1)

    @dataclasses.dataclass(slots=True)
    class TwoDaysLater(WebContext):
        def now(self) -> datetime:
            return WebContext.now(self) + timedelta(days=2)

    later = TwoDaysLater(ctx.database, ctx.data_dir, ctx.settings, ctx.secret)
    with TestClient(create_web_app(later)) as future:
        reply = future.get("/api/v1/me", headers=bearer(made["token"]))
        assert reply.status_code == 401
        anna = future.post(
            "/api/v1/session", json={"username": "anna", "password": "correct horse battery"}
        )
        future.headers["X-CSRF-Token"] = anna.json()["csrf_token"]
        (listed,) = future.get("/api/v1/tokens").json()["items"]
        assert listed["state"] == "expired"
    too_long = login("anna").post(
        "/api/v1/tokens", json={"name": "x", "scopes": ["calls:read"], "expires_in_days": 0}
    )
    assert too_long.status_code == 422


def test_others_tokens_are_not_found_but_administrators_revoke_them(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    anna_id = make_user(username="anna")
    make_user(username="bob")
    make_user(username="boss", role="admin")
    anna, bob, boss = login("anna"), login("bob"), login("boss")
    made = _create(anna)
    assert bob.delete(f"/api/v1/tokens/{made['id']}").status_code == 404
    assert bob.get("/api/v1/tokens").json()["items"] == []
    assert bob.get("/api/v1/tokens", params={"user_id": anna_id}).status_code == 403
    (seen,) = boss.get("/api/v1/tokens", params={"user_id": anna_id}).json()["items"]
    assert seen["id"] == made["id"] and "token" not in seen
    assert client.get("/api/v1/me", headers=bearer(made["token"])).status_code == 200
    assert boss.delete(f"/api/v1/tokens/{made['id']}").status_code == 204
    assert client.get("/api/v1/me", headers=bearer(made["token"])).status_code == 401
    assert boss.delete("/api/v1/tokens/999").status_code == 404


def test_tokens_are_listed_newest_first_in_pages(make_user: MakeUser, login: Login) -> None:
    make_user(username="anna")
    anna = login("anna")
    ids = [_create(anna, name=f"t{n}")["id"] for n in range(3)]
    first = anna.get("/api/v1/tokens", params={"limit": 2}).json()
    assert [t["id"] for t in first["items"]] == ids[:0:-1]
    rest = anna.get("/api/v1/tokens", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([t["id"] for t in rest["items"]], rest["next_cursor"]) == ([ids[0]], None)
