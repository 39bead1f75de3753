"""Webhooks: real HTTP deliveries to a receiver on 127.0.0.1, signed, retried, logged.

Time is controlled: the dispatcher is given ``now``; no test waits on the clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db import AuditEvent, Database, User, Webhook, WebhookDelivery
from callvault.db.base import utcnow
from callvault.recording.events import emit
from callvault.recording.finalize import finalize_recording
from callvault.web.auth import new_api_token
from callvault.web.webhooks import (
    LEASE,
    claim_due,
    deliver_batch,
    deliver_due,
    outbox_counts,
)
from tests.recording.golden import captured_session, settings_for, two_tones


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server that records what it is sent and answers the statuses it is told."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    hang: threading.Event | None = None  # set: answer nothing until released

    def events(self) -> list[str]:
        return [r.headers["X-Callvault-Event"] for r in self.requests]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy in the environment is not ours
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            if state.hang is not None:
                state.hang.wait(5)
                return
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            reply = b"nope, try later" if status >= 300 else b"ok"
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/callvault")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.hang is not None:
        state.hang.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def admin_client(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="root", role="admin", scope="all")
    return login("root")


def _add_hook(admin: TestClient, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    reply = admin.post("/api/v1/webhooks", json={"url": url, "events": events, **extra})
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def _log(admin: TestClient, hook_id: int) -> list[dict[str, Any]]:
    reply = admin.get(f"/api/v1/webhooks/{hook_id}/deliveries")
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def _deliver(database: Database, at: datetime, **options: Any) -> int:
    return deliver_batch(database, lambda: at, rng=random.Random(7), **options)


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _verify(secret: str, request: Received) -> bool:
    """The check the module docstring tells integrators to write, without its clock."""
    timestamp = request.headers["X-Callvault-Timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    return hmac.compare_digest(
        "sha256=" + mac.hexdigest(), request.headers["X-Callvault-Signature"]
    )


def test_a_finished_recording_and_its_call_are_delivered_signed(
    admin_client: TestClient, receiver: Receiver, database: Database, tmp_path: Path
) -> None:
    hook = _add_hook(admin_client, receiver.url, ["recording.ready", "call.ended"])
    recording_id, _ = captured_session(database)  # the call ends: call.ended
    two_tones(tmp_path)
    finalize_recording(database, tmp_path, recording_id, settings=settings_for(tmp_path))
    at = utcnow() + timedelta(seconds=1)
    assert asyncio.run(deliver_due(database, lambda: at)) == 2

    assert sorted(receiver.events()) == ["call.ended", "recording.ready"]
    for request in receiver.requests:
        assert request.path == "/hooks/callvault"
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Callvault-Timestamp"] == str(int(at.timestamp()))
        assert _verify(hook["secret"], request)
        assert not _verify("another secret, not this hook's", request)
        body = json.loads(request.body)
        assert body["event"] == request.headers["X-Callvault-Event"]
        assert body["id"] == request.headers["X-Callvault-Delivery"]
    ready = next(
        r for r in receiver.requests if r.headers["X-Callvault-Event"] == "recording.ready"
    )
    recording = json.loads(ready.body)["data"]["recording"]
    assert recording["id"] == recording_id and recording["format"] == "ogg"
    assert recording["audio_url"] == f"/api/v1/recordings/{recording_id}/audio"

    log = _log(admin_client, hook["id"])
    assert [(d["state"], d["attempts"], d["last_status"]) for d in log] == [
        ("delivered", 1, 200)
    ] * 2
    assert all(_when(d["delivered_at"]) == at and d["next_attempt_at"] is None for d in log)
    assert _deliver(database, at + timedelta(hours=1)) == 0  # nothing is sent twice
    assert len(receiver.requests) == 2


def test_a_500_is_retried_after_a_backoff_and_then_delivered(
    admin_client: TestClient, receiver: Receiver, database: Database
) -> None:
    hook = _add_hook(admin_client, receiver.url, ["call.ended"])
    receiver.statuses = [500]
    captured_session(database)
    t0 = utcnow() + timedelta(seconds=1)
    assert _deliver(database, t0) == 0
    (first,) = _log(admin_client, hook["id"])
    assert (first["state"], first["attempts"], first["last_status"]) == ("pending", 1, 500)
    assert first["last_error"] == "HTTP 500 Internal Server Error: nope, try later"
    retry_at = _when(first["next_attempt_at"])
    assert t0 + timedelta(seconds=24) <= retry_at <= t0 + timedelta(seconds=30)

    assert _deliver(database, retry_at - timedelta(seconds=1)) == 0  # not due yet
    assert len(receiver.requests) == 1
    assert _deliver(database, retry_at) == 1
    (done,) = _log(admin_client, hook["id"])
    assert (done["state"], done["attempts"], done["last_status"]) == ("delivered", 2, 200)
    assert done["last_error"] is None and _when(done["delivered_at"]) == retry_at

    again, later = receiver.requests
    assert again.body == later.body
    assert again.headers["X-Callvault-Delivery"] == later.headers["X-Callvault-Delivery"]
    assert int(later.headers["X-Callvault-Timestamp"]) == int(retry_at.timestamp())
    assert _verify(hook["secret"], again) and _verify(hook["secret"], later)


def test_a_receiver_that_always_fails_is_tried_for_24_hours_then_failed(
    admin_client: TestClient, receiver: Receiver, database: Database
) -> None:
    hook = _add_hook(admin_client, receiver.url, ["call.ended"])
    receiver.statuses = [503] * 100
    captured_session(database)
    queued = database.read(lambda s: s.scalars(select(WebhookDelivery.created_at)).one())
    deadline = queued + timedelta(hours=24)
    now = utcnow() + timedelta(seconds=1)
    tried_at = []
    while True:
        _deliver(database, now)
        tried_at.append(now)
        (delivery,) = _log(admin_client, hook["id"])
        if delivery["state"] != "pending":
            break
        assert delivery["attempts"] == len(tried_at)
        now = _when(delivery["next_attempt_at"])
    assert delivery["state"] == "failed" and delivery["last_status"] == 503
    assert delivery["attempts"] == len(tried_at) == len(receiver.requests)
    assert tried_at[-1] == deadline and tried_at[-2] < deadline  # the last try, at 24 h
    gaps = [b - a for a, b in pairwise(tried_at)]
    for n, gap in enumerate(gaps[:6]):  # 30 s doubling, less up to a fifth of jitter
        full = timedelta(seconds=30 * 2**n)
        assert full * 0.8 <= gap <= full, (n, gap)
    assert max(gaps) <= timedelta(hours=1)
    assert 25 < len(tried_at) < 40
    assert _deliver(database, deadline + timedelta(days=1)) == 0  # failed is final
    assert len(receiver.requests) == len(tried_at)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused


def test_connection_refused_is_retried_and_goes_to_the_url_as_changed(
    admin_client: TestClient, receiver: Receiver, database: Database
) -> None:
    hook = _add_hook(admin_client, f"http://127.0.0.1:{_closed_port()}/x", ["call.ended"])
    captured_session(database)
    t0 = utcnow() + timedelta(seconds=1)
    assert _deliver(database, t0) == 0
    (first,) = _log(admin_client, hook["id"])
    assert (first["state"], first["attempts"], first["last_status"]) == ("pending", 1, None)
    assert first["last_error"].startswith("connection error:")
    assert "refused" in first["last_error"]

    changed = admin_client.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": receiver.url})
    assert changed.status_code == 200 and changed.json()["url"] == receiver.url
    assert _deliver(database, _when(first["next_attempt_at"])) == 1
    assert receiver.events() == ["call.ended"]
    assert _verify(hook["secret"], receiver.requests[0])


def test_a_silent_receiver_times_out_and_a_redirect_is_not_followed(
    admin_client: TestClient, receiver: Receiver, database: Database
) -> None:
    hook = _add_hook(admin_client, receiver.url, ["call.ended"])
    receiver.hang = threading.Event()
    captured_session(database)
    t0 = utcnow() + timedelta(seconds=1)
    assert _deliver(database, t0, timeout=0.2) == 0
    (first,) = _log(admin_client, hook["id"])
    assert (first["state"], first["last_status"]) == ("pending", None)
    assert first["last_error"] == "no answer within 0.2 s"

    receiver.hang.set()
    receiver.hang = None
    receiver.statuses = [302]
    assert _deliver(database, _when(first["next_attempt_at"])) == 0
    (second,) = _log(admin_client, hook["id"])
    assert (second["state"], second["attempts"], second["last_status"]) == ("pending", 2, 302)
    assert len(receiver.requests) == 2  # the Location was not followed


def test_a_claimed_delivery_is_not_sent_by_another_process_until_its_lease_ends(
    database: Database, receiver: Receiver
) -> None:
    database.write(lambda s: s.add(Webhook(url=receiver.url, secret="k" * 20, events=[])))
    database.write(lambda s: emit(s, "recording.deleted", {"recording": {"id": 1}}))
    now = utcnow() + timedelta(seconds=1)
    (claimed,) = database.write(lambda s: claim_due(s, now))
    assert database.write(lambda s: claim_due(s, now + timedelta(seconds=10))) == []
    # The claimer died without an answer: after the lease another run sends it.
    (again,) = database.write(lambda s: claim_due(s, now + LEASE))
    assert again.delivery_id == claimed.delivery_id and again.body == claimed.body


def test_two_dispatchers_at_once_send_each_delivery_exactly_once(
    database: Database, receiver: Receiver
) -> None:
    database.write(lambda s: s.add(Webhook(url=receiver.url, secret="k" * 20, events=[])))
    for n in range(12):
        database.write(partial(emit, event="recording.deleted", data={"recording": {"id": n}}))
    now = utcnow() + timedelta(seconds=1)
    counts: list[int] = []

    def dispatcher() -> None:
        while sent := deliver_batch(database, lambda: now, limit=3, workers=2):
            counts.append(sent)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [r.headers["X-Callvault-Delivery"] for r in receiver.requests]
    assert len(ids) == 12 and len(set(ids)) == 12 and sum(counts) == 12
    assert database.read(outbox_counts) == {"pending": 0, "failed": 0}


def test_the_webhook_api_creates_changes_and_deletes_and_audits_it(
    admin_client: TestClient, database: Database
) -> None:
    hook = _add_hook(
        admin_client, "https://example.com/in", ["call.ended", "call.ended"], description="CRM"
    )
    assert hook["events"] == ["call.ended"] and hook["active"] is True
    assert len(hook["secret"]) >= 32  # generated, shown once
    listed = admin_client.get("/api/v1/webhooks").json()
    assert [h["url"] for h in listed] == ["https://example.com/in"]
    assert "secret" not in listed[0]
    own = _add_hook(admin_client, "http://10.0.0.5:8080/", [], secret="s" * 16)
    assert own["secret"] == "s" * 16 and own["events"] == []

    for bad, says in [
        ({"url": "ftp://example.com/x", "events": []}, "must start with http:// or https://"),
        ({"url": "https:///nohost", "events": []}, "the URL needs a host"),
        ({"url": "https://a.example", "events": ["call.started"]}, "unknown event 'call.started'"),
        ({"url": "https://a.example", "events": [], "secret": "short"}, "at least 16"),
    ]:
        reply = admin_client.post("/api/v1/webhooks", json=bad)
        assert reply.status_code == 422 and says in reply.json()["detail"], reply.text

    changed = admin_client.patch(
        f"/api/v1/webhooks/{hook['id']}",
        json={"events": ["recording.ready"], "active": False, "description": ""},
    ).json()
    assert changed["events"] == ["recording.ready"]
    assert changed["active"] is False and changed["description"] is None
    assert admin_client.delete(f"/api/v1/webhooks/{own['id']}").status_code == 204
    assert admin_client.delete(f"/api/v1/webhooks/{own['id']}").status_code == 404
    assert [h["id"] for h in admin_client.get("/api/v1/webhooks").json()] == [hook["id"]]

    lines = database.read(
        lambda s: [
            (e.action, e.target_id, e.detail)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.actor == "root"))
        ]
    )
    created = {"url": "https://example.com/in", "events": ["call.ended"]}
    assert lines[1:] == [
        ("webhook.create", str(hook["id"]), created),
        ("webhook.create", str(own["id"]), {"url": "http://10.0.0.5:8080/", "events": []}),
        ("webhook.update", str(hook["id"]), {"changes": {
            "events": [["call.ended"], ["recording.ready"]],
            "active": [True, False],
            "description": ["CRM", None],
        }}),
        ("webhook.delete", str(own["id"]), {"url": "http://10.0.0.5:8080/"}),
    ]  # fmt: skip
    assert lines[0][0] == "login"

    # Ids are INTEGER columns: a bigger number is refused, not a database error.
    assert admin_client.get(f"/api/v1/webhooks/{2**31 - 1}/deliveries").status_code == 404
    assert admin_client.get(f"/api/v1/webhooks/{2**31}/deliveries").status_code == 422
    assert admin_client.post(f"/api/v1/webhooks/1/deliveries/{2**64}/retry").status_code == 422
    deliveries = f"/api/v1/webhooks/{hook['id']}/deliveries"
    assert admin_client.get(f"{deliveries}?cursor={2**31}").status_code == 400
    assert all("s" * 16 not in json.dumps(line) for line in lines)  # never the secret


def test_ping_and_retry_queue_deliveries_and_the_log_pages(
    admin_client: TestClient, receiver: Receiver, database: Database
) -> None:
    hook = _add_hook(admin_client, receiver.url, ["recording.deleted"])
    receiver.statuses = [410]
    queued = admin_client.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert queued.status_code == 202 and queued.json()["event"] == "ping"
    now = utcnow() + timedelta(seconds=1)
    _deliver(database, now)
    ping = json.loads(receiver.requests[0].body)
    assert ping["event"] == "ping" and ping["data"]["webhook"]["id"] == hook["id"]
    assert _verify(hook["secret"], receiver.requests[0])

    # Give up on it (as 24 hours of failures would), then send it again by hand.
    def give_up(s: Any) -> None:
        s.get(WebhookDelivery, queued.json()["id"]).state = "failed"

    database.write(give_up)
    again = admin_client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{queued.json()['id']}/retry"
    )
    assert again.status_code == 202
    assert again.json()["id"] != queued.json()["id"]
    assert again.json()["event_id"] == queued.json()["event_id"]  # the receiver may dedupe
    assert _deliver(database, now) == 1
    log = _log(admin_client, hook["id"])
    assert [(d["id"], d["state"]) for d in log] == [
        (again.json()["id"], "delivered"),
        (queued.json()["id"], "failed"),
    ]
    assert log[1]["last_status"] == 410 and log[1]["attempts"] == 1

    page = admin_client.get(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=1").json()
    assert [d["id"] for d in page["items"]] == [again.json()["id"]]
    rest = admin_client.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries?limit=1&cursor={page['next_cursor']}"
    ).json()
    assert [d["id"] for d in rest["items"]] == [queued.json()["id"]]
    assert rest["next_cursor"] is None
    assert (
        admin_client.get(f"/api/v1/webhooks/{hook['id']}/deliveries?cursor=nope").status_code == 400
    )
    assert (
        admin_client.post(
            f"/api/v1/webhooks/{hook['id'] + 1}/deliveries/{queued.json()['id']}/retry"
        ).status_code
        == 404
    )

    admin_client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False})
    refused = admin_client.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert refused.status_code == 409 and "inactive" in refused.json()["detail"]
    actions = database.read(
        lambda s: s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    )
    assert [a for a in actions if a.startswith("webhook.")] == [
        "webhook.create",
        "webhook.test",
        "webhook.retry",
        "webhook.update",
    ]


def test_an_inactive_webhooks_deliveries_wait(
    admin_client: TestClient, receiver: Receiver, database: Database
) -> None:
    hook = _add_hook(admin_client, receiver.url, ["call.ended"])
    captured_session(database)
    admin_client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False})
    now = utcnow() + timedelta(seconds=1)
    assert _deliver(database, now) == 0 and receiver.requests == []
    assert database.read(outbox_counts) == {"pending": 1, "failed": 0}
    admin_client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": True})
    assert _deliver(database, now) == 1 and receiver.events() == ["call.ended"]


def _tokens(s: Any) -> tuple[str, str]:
    root = s.scalars(select(User).where(User.username == "root")).one()
    _, reader = new_api_token(s, root, "reader", {"calls:read"}, utcnow())
    _, admin = new_api_token(s, root, "ops", {"admin"}, utcnow())
    return reader, admin


def test_only_administrators_manage_webhooks(
    admin_client: TestClient,
    client: TestClient,
    make_user: Callable[..., int],
    login: Callable[..., TestClient],
    database: Database,
) -> None:
    hook = _add_hook(admin_client, "https://example.com/in", [])
    database.write(lambda s: emit(s, "call.ended", {"call": {"id": 1}}))
    delivery_id = database.read(lambda s: s.scalars(select(WebhookDelivery.id)).one())
    make_user(username="sup", role="supervisor", scope="all")
    supervisor = login("sup")
    reader, admin = database.write(_tokens)  # the admin's tokens: without and with "admin"
    routes = [
        ("GET", "/api/v1/webhooks", None),
        ("POST", "/api/v1/webhooks", {"url": "https://evil.example/", "events": []}),
        ("PATCH", f"/api/v1/webhooks/{hook['id']}", {"url": "https://evil.example/"}),
        ("DELETE", f"/api/v1/webhooks/{hook['id']}", None),
        ("GET", f"/api/v1/webhooks/{hook['id']}/deliveries", None),
        ("POST", f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery_id}/retry", None),
        ("POST", f"/api/v1/webhooks/{hook['id']}/test", None),
    ]
    lacking = {"Authorization": f"Bearer {reader}"}
    for method, path, body in routes:
        assert supervisor.request(method, path, json=body).status_code == 403, (method, path)
        assert client.request(method, path, json=body).status_code == 401, (method, path)
        assert client.request(method, path, json=body, headers=lacking).status_code == 403
    assert [h["url"] for h in admin_client.get("/api/v1/webhooks").json()] == [hook["url"]]
    assert database.read(lambda s: s.scalars(select(WebhookDelivery.state)).all()) == ["pending"]
    created = client.post(  # a bearer token needs no CSRF token
        "/api/v1/webhooks", json=routes[1][2], headers={"Authorization": f"Bearer {admin}"}
    )
    assert created.status_code == 201


def test_the_webhooks_page_adds_shows_the_log_and_retries(
    admin_client: TestClient,
    receiver: Receiver,
    database: Database,
    make_user: Callable[..., int],
    login: Callable[..., TestClient],
) -> None:
    csrf = admin_client.headers.pop("X-CSRF-Token")  # a browser form, not a script
    form = {"url": receiver.url, "events": ["call.ended"], "description": "CRM", "csrf_token": csrf}
    assert admin_client.post("/admin/webhooks", data={**form, "csrf_token": "x"}).status_code == 403
    added = admin_client.post("/admin/webhooks", data=form)
    assert added.status_code == 201
    hook_id, secret = database.read(lambda s: s.execute(select(Webhook.id, Webhook.secret)).one())
    assert secret in added.text and receiver.url in added.text
    assert secret not in admin_client.get("/admin/webhooks").text  # shown once

    bad = admin_client.post("/admin/webhooks", data={**form, "url": "gopher://x"})
    assert bad.status_code == 400 and "must start with http:// or https://" in bad.text

    receiver.statuses = [500]
    captured_session(database)
    _deliver(database, utcnow() + timedelta(seconds=1))
    page = admin_client.get("/admin/webhooks").text
    assert "call.ended" in page and "HTTP 500 Internal Server Error: nope, try later" in page
    (delivery_id,) = database.read(lambda s: s.scalars(select(WebhookDelivery.id)).all())
    retried = admin_client.post(
        f"/admin/webhooks/{hook_id}/deliveries/{delivery_id}/retry",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert retried.status_code == 303
    assert "Delivery queued again" in admin_client.get(retried.headers["location"]).text
    assert _deliver(database, utcnow() + timedelta(seconds=1)) == 1

    tested = admin_client.post(f"/admin/webhooks/{hook_id}/test", data={"csrf_token": csrf})
    assert tested.status_code == 200 and "Test event (ping) queued" in tested.text
    off = admin_client.post(
        f"/admin/webhooks/{hook_id}/active", data={"csrf_token": csrf, "active": "false"}
    )
    assert off.status_code == 200 and "(inactive)" in off.text
    gone = admin_client.post(f"/admin/webhooks/{hook_id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 200 and receiver.url not in gone.text

    make_user(username="anna")
    assert login("anna").get("/admin/webhooks").status_code == 403
