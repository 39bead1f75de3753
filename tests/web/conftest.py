"""Fixtures for the web layer: the real app on a real database (SQLite and PostgreSQL).

- ``ctx``: the ``WebContext`` (database migrated, a data directory, settings, secret).
- ``client``: a ``TestClient`` on the app, as a browser without a session.
- ``make_user``: add a user (``people.create_user``), return its id.
- ``login``: a new client logged in as a login/password (cookie + CSRF header set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from callvault.config import load_settings
from callvault.db import Database
from callvault.web.app import create_web_app
from callvault.web.people import UserFields, create_user
from callvault.web.principal import WebContext

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Still argon2id, at its lowest cost: the web tests hash and check many passwords
    # (the production cost is about 0.4 s per hash on these machines).
    monkeypatch.setattr("callvault.web.auth._hasher", PasswordHasher(1, 8, 1))


@pytest.fixture
def ctx(database: Database, tmp_path: Path) -> WebContext:
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    return WebContext(database, tmp_path, settings, b"s" * 32)


@pytest.fixture
def app(ctx: WebContext) -> Any:
    return create_web_app(ctx)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def make_user(database: Database) -> Callable[..., int]:
    def make(password: str | None = PASSWORD, **fields: Any) -> int:
        groups = fields.pop("groups", None)
        if groups is not None:
            fields["groups"] = tuple(groups)
        addresses = fields.pop("addresses", None)
        if addresses is not None:
            fields["addresses"] = tuple(addresses)
        return database.write(lambda s: create_user(s, UserFields(**fields), password).id)

    return make


@pytest.fixture
def login(app: Any) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def log_in(username: str, password: str = PASSWORD) -> TestClient:
        browser = TestClient(app, base_url="http://testserver")
        clients.append(browser)
        reply = browser.post("/api/v1/session", json={"username": username, "password": password})
        assert reply.status_code == 200, reply.text
        browser.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        return browser

    yield log_in
    for browser in clients:
        browser.close()
