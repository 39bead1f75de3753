"""The audit log: filters, newest-first pages, the CSV export, the admin page; read-only."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db import AuditEvent, Database
from callvault.web.api import audit as audit_api
from callvault.web.audit import record
from callvault.web.pages import admin_audit

MARCH_1 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _line(database: Database, at: datetime, action: str, actor: str = "root", **fields: Any) -> int:
    def add(s: Any) -> int:
        event = record(s, None, action, actor=actor, **fields)
        event.at = at
        s.flush()
        return event.id

    return database.write(add)


@pytest.fixture
def admin_client(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="root", role="admin", scope="all", timezone="Europe/Berlin")
    return login("root")


@pytest.fixture
def lines(database: Database, admin_client: TestClient) -> dict[str, int]:
    """A few known lines on top of the admin's login (which is now, after them all)."""
    return {
        "play": _line(
            database,
            MARCH_1,
            "recording.play",
            "anna",
            target_type="recording",
            target_id=7,
            ip="10.0.0.1",
        ),
        "download": _line(
            database,
            MARCH_1.replace(hour=13),
            "recording.download",
            "anna",
            target_type="recording",
            target_id=8,
        ),
        "share": _line(
            database,
            MARCH_1.replace(day=2),
            "share.create",
            "bob",
            target_type="recording",
            target_id=7,
            expires="2024-03-09",
        ),
        "late": _line(database, datetime(2024, 3, 1, 23, 30, tzinfo=UTC), "webhook.create"),
        "later": _line(database, MARCH_1.replace(day=3), "webhook.delete"),
    }


def _ids(reply: Any) -> list[int]:
    assert reply.status_code == 200, reply.text
    return [item["id"] for item in reply.json()["items"]]


def test_filters_pick_the_lines_newest_first(
    admin_client: TestClient, lines: dict[str, int]
) -> None:
    get = admin_client.get
    assert _ids(get("/api/v1/audit?user=anna")) == [lines["download"], lines["play"]]
    assert _ids(get("/api/v1/audit?action=recording.play")) == [lines["play"]]
    assert _ids(get("/api/v1/audit?action=webhook.*")) == [lines["later"], lines["late"]]
    assert _ids(get("/api/v1/audit?target_type=recording&target_id=7")) == [
        lines["share"],
        lines["play"],
    ]
    day = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z"
    assert _ids(get(f"/api/v1/audit?{day}")) == [lines["late"], lines["download"], lines["play"]]
    # "to" is exclusive, "from" inclusive; a time without an offset is UTC.
    assert _ids(get("/api/v1/audit?from=2024-03-01T13:00:00&to=2024-03-01T23:30:00")) == [
        lines["download"]
    ]
    assert _ids(get("/api/v1/audit?user=anna&from=2024-03-01T12:30:00Z")) == [lines["download"]]
    assert _ids(get("/api/v1/audit?user=nobody")) == []

    item = get("/api/v1/audit?action=share.create").json()["items"][0]
    assert item == {
        "id": lines["share"],
        "at": "2024-03-02T12:00:00Z",
        "actor": "bob",
        "user_id": None,
        "action": "share.create",
        "target_type": "recording",
        "target_id": "7",
        "ip": None,
        "detail": {"expires": "2024-03-09"},
    }
    everything = get("/api/v1/audit").json()["items"]
    assert everything[0]["action"] == "login" and everything[0]["actor"] == "root"


def test_pages_follow_the_cursor_without_gaps_or_repeats(
    admin_client: TestClient, lines: dict[str, int]
) -> None:
    seen: list[int] = []
    url = "/api/v1/audit?limit=2"
    while True:
        page = admin_client.get(url).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/audit?limit=2&cursor={page['next_cursor']}"
    order = ["later", "share", "late", "download", "play"]  # by time, not as written
    assert seen[1:] == [lines[name] for name in order] and len(set(seen)) == 6
    assert admin_client.get("/api/v1/audit?cursor=abc").status_code == 400
    assert admin_client.get("/api/v1/audit?limit=0").status_code == 422


def test_the_csv_export_is_the_filtered_log_and_is_itself_audited(
    admin_client: TestClient, client: TestClient, lines: dict[str, int], database: Database
) -> None:
    # A stranger's failed login puts what they typed into the log: a formula, here.
    client.post("/api/v1/session", json={"username": "=HYPERLINK(1)", "password": "x" * 8})
    reply = admin_client.get("/api/v1/audit/export.csv?target_type=recording")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"].startswith('attachment; filename="callvault-audit-')
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0] == [
        "id",
        "at",
        "actor",
        "user_id",
        "action",
        "target_type",
        "target_id",
        "ip",
        "detail",
    ]
    assert [row[0] for row in rows[1:]] == [
        str(lines["share"]),
        str(lines["download"]),
        str(lines["play"]),
    ]
    assert rows[3] == [
        str(lines["play"]),
        "2024-03-01T12:00:00Z",
        "anna",
        "",
        "recording.play",
        "recording",
        "7",
        "10.0.0.1",
        "{}",
    ]
    assert json.loads(rows[1][8]) == {"expires": "2024-03-09"}

    failed = list(
        csv.reader(
            io.StringIO(admin_client.get("/api/v1/audit/export.csv?action=login.failed").text)
        )
    )
    assert [row[2] for row in failed[1:]] == ["'=HYPERLINK(1)"]  # not run as a formula

    exports = database.read(
        lambda s: s.scalars(select(AuditEvent).where(AuditEvent.action == "audit.export")).all()
    )
    assert [(e.actor, e.detail) for e in exports] == [
        ("root", {"filters": {"target_type": "recording"}}),
        ("root", {"filters": {"action": "login.failed"}}),
    ]


def test_only_administrators_read_the_log_and_nobody_can_change_it(
    admin_client: TestClient,
    client: TestClient,
    make_user: Callable[..., int],
    login: Callable[..., TestClient],
) -> None:
    make_user(username="sup", role="supervisor", scope="all")
    supervisor = login("sup")
    for path in ("/api/v1/audit", "/api/v1/audit/export.csv", "/admin/audit"):
        assert supervisor.get(path).status_code == 403, path
    assert client.get("/api/v1/audit").status_code == 401
    assert (
        client.get("/admin/audit", follow_redirects=False).headers["location"].startswith("/login")
    )
    first = admin_client.get("/api/v1/audit").json()["items"][-1]["id"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert admin_client.request(method, "/api/v1/audit").status_code == 405
        assert admin_client.request(method, f"/api/v1/audit/{first}").status_code in (404, 405)
    routes = [*audit_api.router.routes, *admin_audit.router.routes]
    methods = [r.methods for r in routes if isinstance(r, APIRoute) and "audit" in r.path]
    assert methods == [{"GET"}, {"GET"}, {"GET"}]


def test_the_audit_page_filters_by_day_in_the_viewers_time_zone(
    admin_client: TestClient, lines: dict[str, int]
) -> None:
    # 23:30 UTC on March 1 is 00:30 on March 2 in Berlin, where this admin is.
    page = admin_client.get("/admin/audit?from=2024-03-02&to=2024-03-02")
    assert page.status_code == 200
    assert "webhook.create" in page.text and "share.create" in page.text
    assert "recording.download" not in page.text and "webhook.delete" not in page.text
    assert "2024-03-02 00:30:00" in page.text
    assert (
        'href="/api/v1/audit/export.csv?from=2024-03-01T23%3A00%3A00Z&amp;to=2024-03-02T23%3A00%3A00Z"'
        in page.text
    )
    assert admin_client.get("/admin/audit?from=yesterday").status_code == 400

    first = admin_client.get("/admin/audit?user=anna&action=recording.*")
    assert "recording.play" in first.text and "recording.download" in first.text
    assert "share.create" not in first.text


def test_the_audit_page_pages_older_lines(
    admin_client: TestClient, lines: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_audit, "AUDIT_PAGE", 4)
    page = admin_client.get("/admin/audit").text
    assert "recording.play" not in page and "webhook.delete" in page
    (older_url,) = re.findall(r'href="(/admin/audit\?cursor=[^"]+)" rel="next"', page)
    older = admin_client.get(older_url.replace("&amp;", "&")).text
    assert "recording.play" in older and "recording.download" in older
    assert "webhook.delete" not in older and 'rel="next"' not in older


def test_out_of_range_times_and_cursors_are_refused(admin_client: TestClient) -> None:
    assert admin_client.get("/api/v1/audit?from=0001-01-01T00:00:00%2B14:00").status_code == 400
    assert admin_client.get(f"/api/v1/audit?cursor={10**30}_1").status_code == 400
    assert admin_client.get(f"/api/v1/audit?cursor=1_{2**31}").status_code == 400
    assert admin_client.get("/admin/audit?from=2024-13-01").status_code == 400
