"""``/api/v1/keys`` and the ``/admin/keys`` page: administrators set and see the keys."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from callvault.web.principal import WebContext
from tests.crypto.gpgkeys import PASSPHRASE, Keyring, keyring
from tests.web.test_recordings_api import audit_rows


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return keyring()


@pytest.fixture
def boss(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="boss", role="admin")
    return login("boss")


def test_an_admin_sets_keys_and_rotates_them(
    ctx: WebContext, boss: TestClient, keys: Keyring
) -> None:
    assert boss.get("/api/v1/keys").json() == {
        "active": None,
        "older": [],
        "encryption_enabled": False,
    }
    made = boss.post(
        "/api/v1/keys",
        json={
            "public_key": keys.rsa.public,
            "private_key": keys.rsa.private,
            "passphrase": PASSPHRASE,
        },
    )
    assert made.status_code == 201, made.text
    key = made.json()
    assert (key["fingerprint"], key["algorithm"], key["active"]) == (
        keys.rsa.fingerprint,
        "rsa3072",
        True,
    )
    assert (key["private_key"], key["passphrase_protected"], key["created_by"]) == (
        True,
        True,
        "boss",
    )
    assert boss.post("/api/v1/keys", json={"public_key": keys.soon.public}).status_code == 201
    state = boss.get("/api/v1/keys").json()
    assert state["active"]["fingerprint"] == keys.soon.fingerprint
    assert state["active"]["private_key"] is False
    assert state["active"]["warnings"][0].startswith(("expires in 9 days", "expires in 10 days"))
    assert [k["fingerprint"] for k in state["older"]] == [keys.rsa.fingerprint]
    audited = audit_rows(ctx.database, "keys.set")
    assert [(a.actor, a.target_id, a.detail.get("replaced")) for a in audited] == [
        ("boss", keys.rsa.fingerprint, None),
        ("boss", keys.soon.fingerprint, keys.rsa.fingerprint),
    ]
    assert PASSPHRASE not in str([a.detail for a in audited])


@pytest.mark.parametrize(
    ("public", "private", "passphrase", "reason", "detail"),
    [
        (None, None, None, "InvalidKey", "is not an OpenPGP key"),
        ("rsa", "other", None, "KeyMismatch", "does not belong to the public key"),
        ("rsa", "rsa", None, "PassphraseRequired", "protected by a passphrase"),
        ("rsa", "rsa", "no", "BadPassphrase", "wrong passphrase"),
        ("expired", None, None, "UnusableKey", "has no valid encryption subkey"),
    ],
)
def test_refused_keys_say_why(
    boss: TestClient,
    keys: Keyring,
    public: str | None,
    private: str | None,
    passphrase: str | None,
    reason: str,
    detail: str,
) -> None:
    body = {"public_key": getattr(keys, public).public if public else "nonsense"}
    if private:
        body["private_key"] = getattr(keys, private).private
    if passphrase:
        body["passphrase"] = passphrase
    reply = boss.post("/api/v1/keys", json=body)
    assert reply.status_code == 400
    assert reply.json()["reason"] == reason and detail in reply.json()["detail"]
    assert boss.get("/api/v1/keys").json()["active"] is None


def test_only_administrators_see_or_set_keys(
    make_user: Callable[..., int], login: Callable[..., TestClient], keys: Keyring
) -> None:
    make_user(username="agent", extension="7301")
    agent = login("agent")
    assert agent.get("/api/v1/keys").status_code == 403
    assert agent.post("/api/v1/keys", json={"public_key": keys.ed.public}).status_code == 403
    assert agent.get("/admin/keys").status_code == 403


def test_the_keys_page_uploads_a_pair(boss: TestClient, keys: Keyring) -> None:
    page = boss.get("/admin/keys")
    assert page.status_code == 200 and "No key is set yet." in page.text
    token = boss.headers["X-CSRF-Token"]
    del boss.headers["X-CSRF-Token"]  # the form carries it, as a browser's would
    wrong = boss.post(
        "/admin/keys",
        data={"csrf_token": token, "passphrase": "no"},
        files={
            "public_key": ("rsa.asc", keys.rsa.public.encode()),
            "private_key": ("rsa-secret.asc", keys.rsa.private.encode()),
        },
    )
    assert wrong.status_code == 400 and "wrong passphrase" in wrong.text
    done = boss.post(
        "/admin/keys",
        data={"csrf_token": token, "passphrase": PASSPHRASE},
        files={
            "public_key": ("rsa.asc", keys.rsa.public.encode()),
            "private_key": ("rsa-secret.asc", keys.rsa.private.encode()),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin/keys?done=set"
    shown = boss.get("/admin/keys?done=set").text
    assert keys.rsa.fingerprint in shown and "The key was set" in shown
    assert "protected by a passphrase" in shown
    assert PASSPHRASE not in shown
