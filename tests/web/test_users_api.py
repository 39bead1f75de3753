"""``/api/v1/users``, ``/api/v1/groups`` and ``/api/v1/me/password`` as an administrator
and a user see them, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db import AuditEvent, Database, User, WebSession
from callvault.db.accounts import ApiToken, Group
from callvault.db.models import Call
from callvault.web.permissions import visible_calls
from callvault.web.principal import principal_of
from tests.recording.golden import captured_session
from tests.web.conftest import PASSWORD

Login = Callable[..., TestClient]
MakeUser = Callable[..., int]


@pytest.fixture
def boss(make_user: MakeUser, login: Login) -> TestClient:
    """A browser logged in as the administrator ``boss``."""
    make_user(username="boss", role="admin")
    return login("boss")


def _audit(database: Database, action: str) -> list[AuditEvent]:
    return database.read(
        lambda s: list(
            s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        )
    )


def test_an_admin_adds_a_user_and_groups_are_created_on_first_use(
    boss: TestClient, database: Database, login: Login
) -> None:
    reply = boss.post(
        "/api/v1/users",
        json={
            "username": "anna",
            "extension": "2001",
            "password": "anna's secret",
            "display_name": "Anna Nowak",
            "email": "anna@example.com",
            "timezone": "Europe/Warsaw",
            "role": "supervisor",
            "scope": "member_groups",
            "primary_group": "sales",
            "groups": ["support", "night shift"],
            "addresses": ["sip:anna@pbx.example.com"],
        },
    )
    assert reply.status_code == 201, reply.text
    anna = reply.json()
    assert {k: v for k, v in anna.items() if k != "id"} == {
        "username": "anna",
        "extension": "2001",
        "display_name": "Anna Nowak",
        "email": "anna@example.com",
        "timezone": "Europe/Warsaw",
        "role": "supervisor",
        "scope": "member_groups",
        "primary_group": "sales",
        "groups": ["night shift", "support"],
        "addresses": ["sip:anna@pbx.example.com"],
        "active": True,
        "has_password": True,
        "last_login_at": None,
    }
    assert boss.get(f"/api/v1/users/{anna['id']}").json() == anna
    groups = {g["name"]: g for g in boss.get("/api/v1/groups").json()["items"]}
    assert set(groups) == {"night shift", "sales", "support"}
    assert (groups["sales"]["members"], groups["sales"]["primary_members"]) == (1, 1)
    assert (groups["support"]["members"], groups["support"]["primary_members"]) == (1, 0)
    # Anna logs in with her extension and the password the admin gave.
    assert login("2001", "anna's secret").get("/api/v1/me").json()["login"] == "anna"
    (line,) = _audit(database, "user.create")
    assert (line.actor, line.target_type, line.target_id) == ("boss", "user", str(anna["id"]))
    assert line.detail["fields"]["groups"] == ["night shift", "support"]
    assert line.detail["has_password"] is True
    assert "anna's secret" not in str(line.detail)


def test_refused_values_answer_with_what_is_wrong(boss: TestClient, make_user: MakeUser) -> None:
    make_user(username="anna", extension="2001")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"username": "ANNA"}, 409, "'ANNA' is already the login of another user"),
        ({"username": "bob", "extension": "2001"}, 409, "'2001' is already the login"),
        ({"username": "bob", "timezone": "Mars/Olympus"}, 400, "timezone 'Mars/Olympus'"),
        ({"username": "bob", "password": "short"}, 400, "at least 8 characters"),
        ({"display_name": "Nobody"}, 400, "a user needs a username or an extension"),
        ({"username": "bob", "extension": "20-01"}, 400, "letters and digits only"),
    ]
    for body, status, message in cases:
        reply = boss.post("/api/v1/users", json=body)
        assert (reply.status_code, reply.headers["content-type"]) == (
            status,
            "application/problem+json",
        ), body
        assert message in reply.json()["detail"], reply.json()
    reply = boss.post("/api/v1/users", json={"username": "bob", "role": "root"})
    assert reply.status_code == 422 and "role" in reply.json()["detail"]
    reply = boss.post("/api/v1/users", json={"username": "bob", "is_admin": True})
    assert reply.status_code == 422  # unknown fields are refused, not ignored
    assert [u["username"] for u in boss.get("/api/v1/users").json()["items"]] == ["boss", "anna"]


def test_only_administrators_reach_the_admin_routes(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    make_user(username="anna", role="supervisor", scope="all")
    anna = login("anna")
    routes = [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"username": "eve"}),
        ("GET", "/api/v1/users/1", None),
        ("PATCH", "/api/v1/users/1", {"role": "admin"}),
        ("POST", "/api/v1/users/1/password", {"password": "new password"}),
        ("DELETE", "/api/v1/users/1", None),
        ("GET", "/api/v1/groups", None),
        ("POST", "/api/v1/groups", {"name": "x"}),
        ("PATCH", "/api/v1/groups/1", {"name": "y"}),
        ("DELETE", "/api/v1/groups/1", None),
    ]
    for method, path, body in routes:
        assert anna.request(method, path, json=body).status_code == 403, (method, path)
        assert client.request(method, path, json=body).status_code == 401, (method, path)
    assert login("anna").get("/api/v1/me").json()["role"] == "supervisor"  # nothing changed


def test_changing_the_scope_changes_what_the_user_sees(
    boss: TestClient, database: Database, make_user: MakeUser
) -> None:
    captured_session(database)  # Cisco: 7301 calls 7300
    make_user(username="agent", extension="7301", primary_group="sales")
    sup = make_user(username="sup", role="supervisor", scope="own")

    def seen() -> list[int]:
        def query(s: Session) -> list[int]:
            who = principal_of(s, s.get_one(User, sup), "session")
            return list(s.scalars(select(Call.id).where(visible_calls(s, who))))

        return database.read(query)

    assert seen() == []
    reply = boss.patch(
        f"/api/v1/users/{sup}", json={"scope": "primary_group", "primary_group": "sales"}
    )
    assert reply.status_code == 200, reply.text
    assert (reply.json()["scope"], reply.json()["primary_group"]) == ("primary_group", "sales")
    assert len(seen()) == 1
    assert (
        boss.patch(f"/api/v1/users/{sup}", json={"primary_group": None}).json()["primary_group"]
        is None
    )
    assert seen() == []
    boss.patch(f"/api/v1/users/{sup}", json={"scope": "member_groups", "groups": ["sales"]})
    assert len(seen()) == 1
    (line, *_) = _audit(database, "user.update")
    assert line.detail["changes"] == {
        "scope": ["own", "primary_group"],
        "primary_group": [None, "sales"],
    }


def test_patch_changes_only_what_is_sent(boss: TestClient, make_user: MakeUser) -> None:
    anna = make_user(username="anna", extension="2001", email="a@example.com", groups=["a", "b"])
    reply = boss.patch(f"/api/v1/users/{anna}", json={"display_name": "Anna", "email": None})
    body = reply.json()
    assert (body["display_name"], body["email"], body["extension"]) == ("Anna", None, "2001")
    assert body["groups"] == ["a", "b"]
    assert boss.patch(f"/api/v1/users/{anna}", json={"groups": []}).json()["groups"] == []
    reply = boss.patch(f"/api/v1/users/{anna}", json={"role": None})
    assert reply.status_code == 400
    assert reply.json()["detail"] == "role can not be null; leave it out to keep it"
    assert boss.patch("/api/v1/users/999", json={"role": "user"}).status_code == 404


def test_deactivating_ends_sessions_and_tokens(
    boss: TestClient, database: Database, make_user: MakeUser, login: Login
) -> None:
    anna_id = make_user(username="anna")
    anna = login("anna")
    token = anna.post("/api/v1/tokens", json={"name": "crm", "scopes": ["calls:read"]})
    bearer = {"Authorization": f"Bearer {token.json()['token']}"}
    assert anna.get("/api/v1/me", headers=bearer).status_code == 200
    reply = boss.patch(f"/api/v1/users/{anna_id}", json={"active": False})
    assert reply.status_code == 200 and reply.json()["active"] is False
    assert anna.get("/api/v1/me").status_code == 401
    assert anna.get("/api/v1/me", headers=bearer).status_code == 401
    assert anna_id not in database.read(lambda s: s.scalars(select(WebSession.user_id)).all())
    failed = anna.post("/api/v1/session", json={"username": "anna", "password": PASSWORD})
    assert failed.status_code == 401
    (line,) = _audit(database, "user.update")
    assert line.detail["changes"] == {"active": [True, False]}
    boss.patch(f"/api/v1/users/{anna_id}", json={"active": True})
    assert login("anna").get("/api/v1/me").status_code == 200


def test_the_last_administrator_stays(
    boss: TestClient, database: Database, make_user: MakeUser, login: Login
) -> None:
    me = boss.get("/api/v1/me").json()["id"]
    for body in ({"role": "user"}, {"active": False}):
        reply = boss.patch(f"/api/v1/users/{me}", json=body)
        assert reply.status_code == 409
        assert reply.json()["detail"] == (
            "'boss' is the last active administrator; make another one first"
        )
    reply = boss.delete(f"/api/v1/users/{me}")
    assert reply.status_code == 409
    assert "'boss' is the last active administrator" in reply.json()["detail"]
    # With a second administrator, boss may step down but not lock or delete themselves.
    other = make_user(username="root", role="admin")
    assert boss.patch(f"/api/v1/users/{me}", json={"active": False}).json()["detail"] == (
        "you can not deactivate yourself"
    )
    assert boss.delete(f"/api/v1/users/{me}").json()["detail"] == "you can not delete yourself"
    assert boss.patch(f"/api/v1/users/{me}", json={"role": "user"}).status_code == 200
    assert boss.get("/api/v1/users").status_code == 403  # no longer an administrator
    root = login("root")
    assert root.patch(f"/api/v1/users/{other}", json={"role": "user"}).status_code == 409
    assert database.read(lambda s: s.get_one(User, other).role) == "admin"


def test_deleting_a_user_keeps_their_audit_lines(
    boss: TestClient, database: Database, make_user: MakeUser, login: Login
) -> None:
    boss_id = boss.get("/api/v1/me").json()["id"]
    anna_id = make_user(username="anna")
    anna = login("anna")
    anna.post("/api/v1/tokens", json={"name": "crm", "scopes": ["calls:read"]})
    assert boss.delete(f"/api/v1/users/{anna_id}").status_code == 204
    assert boss.get(f"/api/v1/users/{anna_id}").status_code == 404
    assert anna.get("/api/v1/me").status_code == 401
    assert database.read(lambda s: s.scalars(select(ApiToken)).all()) == []
    logins = [(e.actor, e.user_id) for e in _audit(database, "login")]
    assert sorted(logins) == [("anna", None), ("boss", boss_id)]
    (line,) = _audit(database, "user.delete")
    assert (line.actor, line.target_id, line.detail["login"]) == ("boss", str(anna_id), "anna")
    assert boss.delete(f"/api/v1/users/{anna_id}").status_code == 404


def test_an_admin_sets_a_password_and_the_users_sessions_end(
    boss: TestClient, database: Database, make_user: MakeUser, login: Login
) -> None:
    anna_id = make_user(username="anna")
    anna = login("anna")
    reply = boss.post(f"/api/v1/users/{anna_id}/password", json={"password": "brand new pass"})
    assert reply.json() == {"sessions_ended": 1}
    assert anna.get("/api/v1/me").status_code == 401
    assert login("anna", "brand new pass").get("/api/v1/me").status_code == 200
    short = boss.post(f"/api/v1/users/{anna_id}/password", json={"password": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.json()["detail"]
    (line,) = _audit(database, "user.password")
    assert line.detail == {"sessions_ended": 1}
    # An administrator setting their own keeps the session they do it from.
    me = boss.get("/api/v1/me").json()["id"]
    assert boss.post(f"/api/v1/users/{me}/password", json={"password": "boss pass 2"}).json() == {
        "sessions_ended": 0
    }
    assert boss.get("/api/v1/me").status_code == 200


def test_changing_your_own_password_ends_only_your_other_sessions(
    database: Database, make_user: MakeUser, login: Login
) -> None:
    make_user(username="anna")
    here, elsewhere = login("anna"), login("anna")
    wrong = here.post(
        "/api/v1/me/password",
        json={"current_password": "not it at all", "new_password": "new password 1"},
    )
    assert (wrong.status_code, wrong.json()["detail"]) == (400, "the current password is wrong")
    assert [e.actor for e in _audit(database, "user.password.failed")] == ["anna"]
    reply = here.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "new password 1"},
    )
    assert reply.json() == {"sessions_ended": 1}
    assert here.get("/api/v1/me").status_code == 200
    assert elsewhere.get("/api/v1/me").status_code == 401
    assert login("anna", "new password 1").get("/api/v1/me").status_code == 200
    (line,) = _audit(database, "user.password")
    assert line.detail == {"own": True, "sessions_ended": 1}
    assert "new password 1" not in str(line.detail)
    short = here.post(
        "/api/v1/me/password", json={"current_password": "new password 1", "new_password": "x"}
    )
    assert short.status_code == 400 and "at least 8 characters" in short.json()["detail"]


def test_a_token_can_not_change_the_password(make_user: MakeUser, login: Login) -> None:
    make_user(username="anna")
    anna = login("anna")
    plaintext = anna.post("/api/v1/tokens", json={"name": "t", "scopes": ["calls:read"]}).json()
    reply = TestClient(anna.app).post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "new password 1"},
        headers={"Authorization": f"Bearer {plaintext['token']}"},
    )
    assert reply.status_code == 403


def test_users_come_in_pages(boss: TestClient, make_user: MakeUser) -> None:
    for n in range(4):
        make_user(username=f"u{n}")
    first = boss.get("/api/v1/users", params={"limit": 3}).json()
    assert [u["username"] for u in first["items"]] == ["boss", "u0", "u1"]
    second = boss.get("/api/v1/users", params={"limit": 3, "cursor": first["next_cursor"]})
    assert [u["username"] for u in second.json()["items"]] == ["u2", "u3"]
    assert second.json()["next_cursor"] is None
    assert boss.get("/api/v1/users", params={"cursor": "x"}).status_code == 400


def test_groups_add_rename_and_delete(
    boss: TestClient, database: Database, make_user: MakeUser
) -> None:
    made = boss.post("/api/v1/groups", json={"name": "sales"})
    assert made.status_code == 201
    sales = made.json()
    assert (sales["name"], sales["members"], sales["primary_members"]) == ("sales", 0, 0)
    assert sales["created_at"].endswith("Z")
    again = boss.post("/api/v1/groups", json={"name": "sales"})
    assert (again.status_code, again.json()["detail"]) == (
        409,
        "there is already a group called 'sales'",
    )
    anna = make_user(username="anna", primary_group="support", groups=["sales"])
    renamed = boss.patch(f"/api/v1/groups/{sales['id']}", json={"name": "sales EMEA"})
    assert renamed.json()["name"] == "sales EMEA" and renamed.json()["members"] == 1
    assert boss.get(f"/api/v1/users/{anna}").json()["groups"] == ["sales EMEA"]
    clash = boss.patch(f"/api/v1/groups/{sales['id']}", json={"name": "support"})
    assert clash.status_code == 409
    support = database.read(
        lambda s: s.scalars(select(Group.id).where(Group.name == "support")).one()
    )
    busy = boss.delete(f"/api/v1/groups/{support}")
    assert (busy.status_code, busy.json()["detail"]) == (
        409,
        "group 'support' is the primary group of 1 user(s); give them another primary group first",
    )
    assert boss.delete(f"/api/v1/groups/{sales['id']}").status_code == 204
    assert boss.get(f"/api/v1/users/{anna}").json()["groups"] == []
    assert [g["name"] for g in boss.get("/api/v1/groups").json()["items"]] == ["support"]
    assert boss.delete(f"/api/v1/groups/{sales['id']}").status_code == 404
    actions = [e.action for e in database.read(lambda s: s.scalars(select(AuditEvent)).all())]
    assert [a for a in actions if a.startswith("group.")] == [
        "group.create",
        "group.update",
        "group.delete",
    ]
    (deleted,) = _audit(database, "group.delete")
    assert deleted.detail == {"name": "sales EMEA", "removed": {"memberships": 1, "call_tags": 0}}


def test_odd_input_is_refused_not_a_server_error(boss: TestClient) -> None:
    huge = 2**63
    for method, path, body in [
        ("GET", f"/api/v1/users/{huge}", None),
        ("PATCH", f"/api/v1/users/{huge}", {"role": "user"}),
        ("DELETE", f"/api/v1/groups/{huge}", None),
        ("DELETE", f"/api/v1/tokens/{huge}", None),
        ("GET", f"/api/v1/tokens?user_id={huge}", None),
    ]:
        assert boss.request(method, path, json=body).status_code == 422, path
    assert boss.get(f"/api/v1/users?cursor={huge}").status_code == 400
    for body in (
        {"username": "nul\x00byte"},
        {"username": "anna", "groups": ["sales\x00"]},
        {"username": "anna", "addresses": ["sip:a\x00@example.com"]},
    ):
        reply = boss.post("/api/v1/users", json=body)
        assert reply.status_code == 400 and "control characters" in reply.json()["detail"]
    assert boss.post("/api/v1/groups", json={"name": "a\x00"}).status_code == 400
    assert boss.get("/api/v1/groups", params={"cursor": "a\x00"}).status_code == 400
    token = boss.post("/api/v1/tokens", json={"name": "\x00", "scopes": ["calls:read"]})
    assert token.status_code == 400
    assert boss.get("/api/v1/users").json()["items"][0]["username"] == "boss"
