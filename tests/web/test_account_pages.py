"""The account page and the administrators' user pages, driven as a browser does: GET
the page, post its forms (with the CSRF field they carry), follow the redirects."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db import AuditEvent, Database, User
from tests.web.conftest import PASSWORD

Login = Callable[..., TestClient]
MakeUser = Callable[..., int]


def form_browser(browser: TestClient) -> tuple[TestClient, str]:
    """The browser without the API's CSRF header, and the token its forms carry."""
    token = browser.headers.pop("X-CSRF-Token")
    return browser, token


def csrf_field(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page's forms carry no CSRF token"
    return found.group(1)


def test_the_account_page_needs_a_login(client: TestClient) -> None:
    reply = client.get("/account", follow_redirects=False)
    assert (reply.status_code, reply.headers["location"]) == (303, "/login?next=/account")


def test_the_account_page_shows_the_user(make_user: MakeUser, login: Login) -> None:
    make_user(
        username="anna",
        extension="2001",
        display_name="Anna Nowak",
        timezone="Europe/Warsaw",
        scope="primary_group",
        primary_group="sales",
        groups=["support"],
    )
    browser, token = form_browser(login("anna"))
    page = browser.get("/account")
    assert page.status_code == 200
    for shown in ("Anna Nowak", "2001", "Europe/Warsaw", "primary group", "sales", "support"):
        assert shown in page.text
    assert csrf_field(page.text) == token
    assert 'action="/account/password"' in page.text and 'action="/account/tokens"' in page.text
    assert 'value="admin"' not in page.text  # a non-administrator is not offered that scope


def test_the_password_form(database: Database, make_user: MakeUser, login: Login) -> None:
    make_user(username="anna")
    browser, token = form_browser(login("anna"))
    elsewhere = login("anna")
    form = {"csrf_token": token, "current_password": "wrong one!", "new_password": "new pass 1"}
    wrong = browser.post("/account/password", data={**form, "new_password_again": "new pass 1"})
    assert wrong.status_code == 400
    assert "the current password is wrong" in wrong.text and "Traceback" not in wrong.text
    form["current_password"] = PASSWORD
    differ = browser.post("/account/password", data={**form, "new_password_again": "new pass 2"})
    assert differ.status_code == 400 and "the two new passwords differ" in differ.text
    short = browser.post(
        "/account/password",
        data={**form, "new_password": "short", "new_password_again": "short"},
    )
    assert short.status_code == 400 and "at least 8 characters" in short.text
    done = browser.post("/account/password", data={**form, "new_password_again": "new pass 1"})
    assert done.status_code == 200 and done.url.path == "/account"
    assert "Your password was changed" in done.text
    assert elsewhere.get("/api/v1/me").status_code == 401
    assert browser.get("/api/v1/me").status_code == 200
    actions = database.read(lambda s: s.scalars(select(AuditEvent.action)).all())
    assert actions.count("user.password") == 1 and actions.count("user.password.failed") == 1


def test_forms_without_the_csrf_token_are_refused(make_user: MakeUser, login: Login) -> None:
    make_user(username="anna")
    browser, _ = form_browser(login("anna"))
    reply = browser.post("/account/tokens", data={"name": "x", "scopes": "calls:read"})
    assert reply.status_code == 403 and "CSRF" in reply.text
    reply = browser.post(
        "/account/tokens", data={"name": "x", "scopes": "calls:read", "csrf_token": "forged"}
    )
    assert reply.status_code == 403
    assert browser.get("/api/v1/tokens").json()["items"] == []


def test_a_token_made_on_the_page_is_shown_once_and_revoked_there(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    make_user(username="anna")
    browser, token = form_browser(login("anna"))
    made = browser.post(
        "/account/tokens",
        data={
            "csrf_token": token,
            "name": "CRM export",
            "scopes": ["calls:read", "recordings:read"],
            "expires_in_days": "30",
        },
    )
    assert made.status_code == 200
    shown = re.search(r'<code id="new-token" class="secret">(cvt_[^<]+)</code>', made.text)
    assert shown, made.text
    plaintext = shown.group(1)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.json()["login"] == "anna"
    again = browser.get("/account")
    assert plaintext not in again.text
    assert "CRM export" in again.text and plaintext[:8] in again.text
    (listed,) = browser.get("/api/v1/tokens").json()["items"]
    assert listed["scopes"] == ["calls:read", "recordings:read"] and listed["expires_at"]
    revoked = browser.post(f"/account/tokens/{listed['id']}/revoke", data={"csrf_token": token})
    assert revoked.url.path == "/account" and "The token was revoked." in revoked.text
    gone = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert gone.status_code == 401


def test_token_form_errors_show_on_the_page(make_user: MakeUser, login: Login) -> None:
    make_user(username="anna")
    browser, token = form_browser(login("anna"))
    cases = [
        ({"name": "x"}, 400, "choose at least one scope"),
        ({"name": "x", "scopes": "admin"}, 403, "only administrators"),
        ({"name": "x", "scopes": "calls:read", "expires_in_days": "-3"}, 400, "a number of days"),
        ({"name": "  ", "scopes": "calls:read"}, 400, "a token needs a name"),
    ]
    for data, status, message in cases:
        reply = browser.post("/account/tokens", data={"csrf_token": token, **data})
        assert reply.status_code == status, data
        assert message in reply.text and 'role="alert"' in reply.text
    assert browser.get("/api/v1/tokens").json()["items"] == []


def test_the_admin_pages_are_for_administrators(
    client: TestClient, make_user: MakeUser, login: Login
) -> None:
    anna = make_user(username="anna", role="supervisor")
    browser, token = form_browser(login("anna"))
    assert browser.get("/admin/users").status_code == 403
    assert browser.get(f"/admin/users/{anna}").status_code == 403
    posted = browser.post("/admin/users", data={"csrf_token": token, "username": "eve"})
    assert posted.status_code == 403
    raised = browser.post(
        f"/admin/users/{anna}", data={"csrf_token": token, "username": "anna", "role": "admin"}
    )
    assert raised.status_code == 403
    reply = client.get("/admin/users", follow_redirects=False)
    assert reply.headers["location"] == "/login?next=/admin/users"


def test_an_admin_adds_and_edits_a_user_with_the_forms(
    database: Database, make_user: MakeUser, login: Login
) -> None:
    make_user(username="boss", role="admin")
    browser, token = form_browser(login("boss"))
    page = browser.get("/admin/users")
    assert page.status_code == 200 and 'action="/admin/users"' in page.text
    added = browser.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "anna",
            "extension": "2001",
            "password": "anna's pass",
            "display_name": "Anna",
            "timezone": "",
            "role": "user",
            "scope": "own",
            "primary_group": "sales",
            "groups": "support, night shift",
            "addresses": "sip:anna@pbx.example.com, 0221234567",
        },
    )
    assert added.status_code == 200 and "The user was added." in added.text
    anna = int(added.url.path.rsplit("/", 1)[1])
    assert 'value="night shift, support"' in added.text
    assert 'value="sip:anna@pbx.example.com, 0221234567"' in added.text
    saved = browser.post(
        f"/admin/users/{anna}",
        data={
            "csrf_token": token,
            "username": "anna",
            "extension": "2002",
            "display_name": "Anna N.",
            "email": "",
            "timezone": "Europe/Warsaw",
            "role": "supervisor",
            "scope": "member_groups",
            "primary_group": "sales",
            "groups": "support",
            "addresses": "",
        },  # "active" unticked
    )
    assert saved.status_code == 200 and "The changes were saved." in saved.text
    user = database.read(lambda s: s.get_one(User, anna))
    assert (user.extension, user.role, user.scope, user.timezone, user.active) == (
        "2002",
        "supervisor",
        "member_groups",
        "Europe/Warsaw",
        False,
    )
    assert user.addresses == []
    listing = browser.get("/admin/users")
    assert "Anna N." in listing.text and "inactive" in listing.text


def test_admin_form_errors_keep_what_was_typed(make_user: MakeUser, login: Login) -> None:
    make_user(username="anna")
    boss = make_user(username="boss", role="admin")
    browser, token = form_browser(login("boss"))
    taken = browser.post(
        "/admin/users",
        data={"csrf_token": token, "username": "anna", "display_name": "Second Anna"},
    )
    assert taken.status_code == 409
    assert "&#39;anna&#39; is already the login of another user" in taken.text
    assert 'value="Second Anna"' in taken.text
    bad_zone = browser.post(
        "/admin/users", data={"csrf_token": token, "username": "eve", "timezone": "Moon/Base"}
    )
    assert bad_zone.status_code == 400 and "timezone &#39;Moon/Base&#39;" in bad_zone.text
    too_long = browser.post("/admin/users", data={"csrf_token": token, "extension": "1" * 40})
    assert too_long.status_code == 422 and "extension" in too_long.text
    demoted = browser.post(
        f"/admin/users/{boss}",
        data={"csrf_token": token, "username": "boss", "role": "user", "active": "on"},
    )
    assert demoted.status_code == 409
    assert "the last active administrator" in demoted.text
    assert "Traceback" not in demoted.text


def test_an_admin_sets_a_password_revokes_a_token_and_deletes_a_user(
    client: TestClient, database: Database, make_user: MakeUser, login: Login
) -> None:
    anna = make_user(username="anna")
    make_user(username="boss", role="admin")
    anna_browser = login("anna")
    plaintext = anna_browser.post(
        "/api/v1/tokens", json={"name": "crm", "scopes": ["calls:read"]}
    ).json()["token"]
    browser, token = form_browser(login("boss"))
    page = browser.get(f"/admin/users/{anna}")
    assert "crm" in page.text and plaintext not in page.text
    differ = browser.post(
        f"/admin/users/{anna}/password",
        data={"csrf_token": token, "password": "new pass 12", "password_again": "new pass 13"},
    )
    assert differ.status_code == 400 and "the two passwords differ" in differ.text
    done = browser.post(
        f"/admin/users/{anna}/password",
        data={"csrf_token": token, "password": "new pass 12", "password_again": "new pass 12"},
    )
    assert "The password was set" in done.text
    assert anna_browser.get("/api/v1/me").status_code == 401
    (listed,) = browser.get("/api/v1/tokens", params={"user_id": anna}).json()["items"]
    revoked = browser.post(
        f"/admin/users/{anna}/tokens/{listed['id']}/revoke", data={"csrf_token": token}
    )
    assert "The token was revoked." in revoked.text
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"}).status_code
        == 401
    )
    deleted = browser.post(f"/admin/users/{anna}/delete", data={"csrf_token": token})
    assert deleted.url.path == "/admin/users" and "The user was deleted." in deleted.text
    assert browser.get(f"/admin/users/{anna}").status_code == 404


def test_groups_on_the_admin_page(make_user: MakeUser, login: Login) -> None:
    make_user(username="boss", role="admin", primary_group="office")
    browser, token = form_browser(login("boss"))
    made = browser.post("/admin/groups", data={"csrf_token": token, "name": "sales"})
    assert "The group was added." in made.text
    groups = {g["name"]: g["id"] for g in browser.get("/api/v1/groups").json()["items"]}
    renamed = browser.post(
        f"/admin/groups/{groups['sales']}", data={"csrf_token": token, "name": "sales EMEA"}
    )
    assert "The group was renamed." in renamed.text and 'value="sales EMEA"' in renamed.text
    clash = browser.post(
        f"/admin/groups/{groups['sales']}", data={"csrf_token": token, "name": "office"}
    )
    assert clash.status_code == 409 and "there is already a group called" in clash.text
    busy = browser.post(f"/admin/groups/{groups['office']}/delete", data={"csrf_token": token})
    assert busy.status_code == 409 and "is the primary group of 1 user(s)" in busy.text
    gone = browser.post(f"/admin/groups/{groups['sales']}/delete", data={"csrf_token": token})
    assert "The group was deleted." in gone.text and "sales EMEA" not in gone.text
