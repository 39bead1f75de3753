"""Schemathesis against the OpenAPI document: no request the schema allows gets a 5xx.

Runs as an administrator (session cookie and CSRF header), on a database with a real
call and recording in it, so the generated ids sometimes hit real rows. SQLite only:
PostgreSQL's integer limits are exercised by the routes' own tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from callvault.config import load_settings
from callvault.db import Database
from callvault.recording.finalize import finalize_recording
from callvault.web.app import create_web_app
from callvault.web.people import UserFields, create_user
from callvault.web.principal import WebContext
from tests.recording.golden import captured_session, settings_for, two_tones

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    patch = pytest.MonkeyPatch()
    patch.setattr("callvault.web.auth._hasher", PasswordHasher(1, 8, 1))
    database = Database.for_data_dir(tmp_path)
    database.migrate()
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)
    finalize_recording(database, tmp_path, recording_id, settings=settings_for(tmp_path))
    database.write(
        lambda s: create_user(s, UserFields(username="root", role="admin", scope="all"), PASSWORD)
    )
    ctx = WebContext(
        database, tmp_path, load_settings({"data_dir": str(tmp_path)}, environ={}), b"k" * 32
    )
    yield create_web_app(ctx)
    database.dispose()
    patch.undo()


@pytest.fixture(scope="module")
def web_schema(fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzz_app)


@pytest.fixture(scope="module")
def admin_headers(fuzz_app: Any) -> dict[str, str]:
    with TestClient(fuzz_app) as browser:
        reply = browser.post("/api/v1/session", json={"username": "root", "password": PASSWORD})
        assert reply.status_code == 200
        cookie = browser.cookies.get("callvault_session")
        return {"Cookie": f"callvault_session={cookie}", "X-CSRF-Token": reply.json()["csrf_token"]}


def _operations() -> list[str]:
    """The API's operations, listed without a database (for test ids)."""
    from callvault.web.app import create_web_app as make

    paths = make(None).openapi()["paths"]  # type: ignore[arg-type]
    return [f"{method.upper()} {path}" for path, item in paths.items() for method in item]


@pytest.mark.parametrize("operation", _operations())
def test_no_request_gets_a_server_error(
    web_schema: Any, admin_headers: dict[str, str], operation: str
) -> None:
    if operation == "DELETE /api/v1/session":
        return  # logging out would end the session every other example uses
    (found,) = [
        result.ok() for result in web_schema.get_all_operations() if result.ok().label == operation
    ]

    @given(case=found.as_strategy())
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(headers=admin_headers)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])

    run()
