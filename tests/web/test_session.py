"""Logging in and out: by username or extension, throttled, locked out, audited."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db import AuditEvent, Database, WebSession
from callvault.web.auth import MAX_FAILURES
from tests.web.conftest import PASSWORD


def test_login_by_extension_sets_a_cookie_and_me_answers(
    client: TestClient, make_user: Callable[..., int]
) -> None:
    make_user(username="anna", extension="2001", display_name="Anna")
    reply = client.post("/api/v1/session", json={"username": "2001", "password": PASSWORD})
    assert reply.status_code == 200
    cookie = reply.headers["set-cookie"]
    assert "callvault_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    me = client.get("/api/v1/me").json()
    assert (me["login"], me["display_name"], me["role"], me["via"]) == (
        "anna",
        "Anna",
        "user",
        "session",
    )


def test_wrong_password_is_401_problem_and_audited(
    client: TestClient, make_user: Callable[..., int], database: Database
) -> None:
    make_user(username="anna")
    reply = client.post("/api/v1/session", json={"username": "anna", "password": "nope-nope"})
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["detail"] == "wrong login or password"
    actions = database.read(lambda s: s.scalars(select(AuditEvent.action)).all())
    assert actions == ["login.failed"]
    assert client.get("/api/v1/me").status_code == 401


def test_five_failures_lock_the_account(client: TestClient, make_user: Callable[..., int]) -> None:
    make_user(username="anna")
    for _ in range(MAX_FAILURES):
        client.post("/api/v1/session", json={"username": "anna", "password": "wrong-wrong"})
    reply = client.post("/api/v1/session", json={"username": "anna", "password": PASSWORD})
    assert reply.status_code == 401
    assert "locked" in reply.json()["detail"]


def test_logout_ends_the_session_for_good(
    login: Callable[..., TestClient], make_user: Callable[..., int], database: Database
) -> None:
    make_user(username="anna")
    browser = login("anna")
    assert browser.delete("/api/v1/session").status_code == 204
    assert database.read(lambda s: s.scalars(select(WebSession)).all()) == []
    assert browser.get("/api/v1/me").status_code == 401


def test_changing_something_with_a_cookie_needs_the_csrf_token(
    login: Callable[..., TestClient], make_user: Callable[..., int]
) -> None:
    make_user(username="anna")
    browser = login("anna")
    del browser.headers["X-CSRF-Token"]
    reply = browser.delete("/api/v1/session")
    assert reply.status_code == 403 and "CSRF" in reply.json()["detail"]


def test_the_login_page_logs_in_and_redirects(
    client: TestClient, make_user: Callable[..., int]
) -> None:
    make_user(username="anna")
    page = client.get("/login")
    assert page.status_code == 200 and 'name="password"' in page.text
    reply = client.post(
        "/login",
        data={"username": "anna", "password": PASSWORD, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/calls"
    bad = client.post("/login", data={"username": "anna", "password": "bad-bad-bad"})
    assert bad.status_code == 401 and "wrong login or password" in bad.text
