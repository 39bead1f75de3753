"""Every route that touches a call or a recording by every role and scope by own, group
and foreign calls: nothing leaks (STYLE rule 13, REQUIREMENTS D7, D8).

Three real calls with ready recordings: "own" (Cisco: 7301 calls 7300), "group"
(Oracle: 9000 and 1002; 9000 is in the group "sales") and "foreign" (RFC 7865: alice
and bob). A principal that may see a call gets a success from every route; one that
may not gets 404 — never 403, never the data — and nobody gets a 5xx.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from callvault.config import load_settings
from callvault.db import Database
from callvault.recording.finalize import finalize_recording
from callvault.recording.store import create_segment, end_segment
from callvault.web.app import create_web_app
from callvault.web.people import UserFields, create_user
from callvault.web.principal import WebContext
from tests.media import payloads
from tests.recording.golden import RECORDER, SBC, settings_for, tone_packets
from tests.recording.helpers import new_segment

PASSWORD = "correct horse battery"
START = 1_700_000_000.0
CALLS = {
    "own": "cisco_cube_2streams_gtd.sip",
    "group": "oracle_acme_sbc_2streams.sip",
    "foreign": "rfc7865_alice_bob_4streams_invite.sip",
}
# Something only that call's data contains: a participant's AOR.
MARKERS = {"own": "7301@35.162.237.204", "group": "9000@192.168.50.102", "foreign": "alice@atlanta"}
# Who sees what: principal -> the calls it may see.
PRINCIPALS: dict[str, tuple[UserFields, set[str]]] = {
    "agent_own": (UserFields(username="agent", extension="7301"), {"own"}),
    "lead_primary": (
        UserFields(username="lead", extension="7300", scope="primary_group", primary_group="sales"),
        {"own", "group"},
    ),
    # Member of "sales": its members are the seller (9000) and the lead (7300), so both
    # the Oracle and the Cisco calls are the group's.
    "manager_members": (
        UserFields(username="manager", scope="member_groups", groups=("sales",)),
        {"own", "group"},
    ),
    "auditor_all": (UserFields(username="auditor", scope="all"), {"own", "group", "foreign"}),
    "admin": (UserFields(username="root", role="admin"), {"own", "group", "foreign"}),
    "stranger": (UserFields(username="stranger", extension="5555"), set()),
}
GROUP_MEMBER = UserFields(username="seller", extension="9000", primary_group="sales")


def _call(database: Database, data_dir: Path, corpus: str, start: float) -> tuple[int, int]:
    capture = f"captures/{corpus}.pcap"
    new = dataclasses.replace(new_segment(corpus, started_at=start), capture_path=capture)
    ids = database.write(lambda s: create_segment(s, new))
    recording_id = database.write(lambda s: end_segment(s, ids.segment_id, "bye", start + 3, []))
    assert recording_id is not None
    (data_dir / "captures").mkdir(exist_ok=True)
    payloads.write_capture(
        data_dir / capture,
        [(SBC, (RECORDER, 30000), tone_packets(500, t0=start + 0.5))],
    )
    finalize_recording(database, data_dir, recording_id, settings=settings_for(data_dir))
    return ids.call_id, recording_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("matrix")
    patch = pytest.MonkeyPatch()
    patch.setattr("callvault.web.auth._hasher", PasswordHasher(1, 8, 1))
    database = Database.for_data_dir(data_dir)
    database.migrate()
    calls = {
        name: _call(database, data_dir, corpus, START + 100 * n)
        for n, (name, corpus) in enumerate(CALLS.items())
    }
    for fields, _ in PRINCIPALS.values():
        database.write(lambda s, f=fields: create_user(s, f, PASSWORD))
    database.write(lambda s: create_user(s, GROUP_MEMBER, PASSWORD))
    settings = load_settings({"data_dir": str(data_dir)}, environ={})
    app = create_web_app(WebContext(database, data_dir, settings, b"m" * 32))
    browsers = {}
    for name, (fields, _) in PRINCIPALS.items():
        browser = TestClient(app)
        reply = browser.post(
            "/api/v1/session", json={"username": fields.username, "password": PASSWORD}
        )
        assert reply.status_code == 200, reply.text
        browser.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        browsers[name] = browser
    browsers["anonymous"] = TestClient(app)
    yield {"calls": calls, "browsers": browsers}
    for browser in browsers.values():
        browser.close()
    database.dispose()
    patch.undo()


Route = tuple[str, str, Callable[[int, int], str]]
ROUTES: list[Route] = [
    ("api", "GET", lambda c, r: f"/api/v1/calls/{c}"),
    ("page", "GET", lambda c, r: f"/calls/{c}"),
    ("api", "GET", lambda c, r: f"/api/v1/recordings/{r}"),
    ("api", "GET", lambda c, r: f"/api/v1/recordings/{r}/audio"),
    ("api", "GET", lambda c, r: f"/api/v1/recordings/{r}/download"),
    ("api", "POST", lambda c, r: f"/api/v1/recordings/{r}/share"),
    ("api", "POST", lambda c, r: f"/api/v1/calls/{c}/share"),
    ("api", "GET", lambda c, r: f"/api/v1/calls/{c}/retention"),
]


@pytest.mark.parametrize(
    ("who", "call", "route"),
    list(itertools.product([*PRINCIPALS, "anonymous"], CALLS, ROUTES)),
    ids=lambda value: value if isinstance(value, str) else f"{value[1]}-{value[2](0, 0)}",
)
def test_route_answers_only_those_allowed(
    world: dict[str, Any], who: str, call: str, route: Route
) -> None:
    kind, method, path_of = route
    call_id, recording_id = world["calls"][call]
    browser: TestClient = world["browsers"][who]
    response = browser.request(method, path_of(call_id, recording_id), follow_redirects=False)
    if who == "anonymous":
        expected = {401} if kind == "api" else {303}
        assert response.status_code in expected, response.text[:300]
        return
    if call in PRINCIPALS[who][1]:
        assert 200 <= response.status_code < 300, (response.status_code, response.text[:300])
    else:
        assert response.status_code == 404, (response.status_code, response.text[:300])
        assert MARKERS[call] not in response.text  # nothing about the call itself


@pytest.mark.parametrize("who", list(PRINCIPALS))
def test_lists_and_exports_show_exactly_the_visible_calls(world: dict[str, Any], who: str) -> None:
    browser: TestClient = world["browsers"][who]
    ids = {name: call_id for name, (call_id, _) in world["calls"].items()}
    listed = {item["id"] for item in browser.get("/api/v1/calls").json()["items"]}
    assert listed == {ids[name] for name in PRINCIPALS[who][1]}
    export = browser.get("/api/v1/calls/export.csv")
    assert export.status_code == 200
    exported = {line.split(",", 1)[0] for line in export.text.splitlines()[1:] if line}
    assert exported == {str(ids[name]) for name in PRINCIPALS[who][1]}
    page = browser.get("/calls")
    for name, call_id in ids.items():
        assert (f'href="/calls/{call_id}"' in page.text) == (name in PRINCIPALS[who][1])
