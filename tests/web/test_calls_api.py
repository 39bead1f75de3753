"""The calls API over HTTP: list, detail, CSV export, saved filters, group tags and the
docs page, on the real app and both database backends (world: ``test_calls_query``)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.db import Database
from callvault.db.accounts import AuditEvent, User
from callvault.recording.store import create_segment, end_segment
from callvault.rtp.stats import StreamStatsSnapshot
from callvault.web.auth import new_api_token
from callvault.web.people import set_password
from callvault.web.principal import WebContext
from tests.recording.golden import START
from tests.recording.helpers import new_segment
from tests.web.conftest import PASSWORD
from tests.web.test_calls_query import SCOPE_CASES, World, build_world, names

ALL_SCOPES = {"calls:read", "recordings:read"}


@pytest.fixture
def world(database: Database, ctx: WebContext, make_user: Callable[..., int]) -> World:
    return build_world(database, ctx.data_dir, make_user)


def bearer(
    database: Database, client: TestClient, login: str, scopes: set[str] | None = None
) -> dict[str, str]:
    """A token header for ``login`` (the administrator's carries the admin scope)."""
    if scopes is None:
        scopes = ALL_SCOPES | ({"admin"} if login == "root" else set())

    def make(db: Any) -> str:
        user = db.scalars(select(User).where(User.username == login)).one()
        return new_api_token(db, user, "test", scopes, user.created_at)[1]

    return {"Authorization": f"Bearer {database.write(make)}"}


def browser(database: Database, login: Callable[..., TestClient], username: str) -> TestClient:
    """A logged-in browser (session cookie and CSRF header) for ``username``."""

    def give(db: Any) -> None:
        user = db.scalars(select(User).where(User.username == username)).one()
        set_password(db, user, PASSWORD, user.created_at)

    database.write(give)
    return login(username)


def get(client: TestClient, url: str, headers: dict[str, str]) -> Any:
    reply = client.get(url, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


# -- the list ---------------------------------------------------------------------------------


def test_the_contract_query_pages_through_the_filtered_list(
    database: Database, client: TestClient, world: World
) -> None:
    auth = bearer(database, client, "everyone")
    url = "/api/v1/calls?q=55501&min_duration=10&has_recording=false&limit=1"
    first = get(client, url, auth)
    assert set(first) == {"items", "next_cursor"} and names(world, first["items"]) == ["avaya"]
    second = get(client, f"{url}&cursor={first['next_cursor']}", auth)
    assert names(world, second["items"]) == ["broadworks"] and second["next_cursor"] is None
    item = second["items"][0]
    for field in ("id", "uid", "started_at", "duration_s", "participants", "segments", "streams"):
        assert field in item
    assert (item["source"], item["destination"], item["recording_state"]) == (
        "8635550125",
        "+19015550100",
        "waiting",
    )
    assert item["started_at"] == "2023-11-14T23:13:20Z" and item["duration_s"] == 75.0


def test_every_filter_parameter_reaches_the_list(
    database: Database, client: TestClient, world: World
) -> None:
    auth = bearer(database, client, "root")
    query = (
        "participant=bob&direction=external&state=ended&max_duration=50"
        "&from=2023-11-15&to=2023-11-16&sort=duration&group="
    )
    assert names(world, get(client, f"/api/v1/calls?{query}", auth)["items"]) == ["alice"]
    got = get(client, "/api/v1/calls?group=support&has_recording=true", auth)["items"]
    assert names(world, got) == ["cisco"]


def test_a_bad_parameter_is_a_problem_naming_it(
    database: Database, client: TestClient, world: World
) -> None:
    auth = bearer(database, client, "root")
    reply = client.get("/api/v1/calls?min_duration=long", headers=auth)
    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["parameter"] == "min_duration"
    assert client.get("/api/v1/calls?limit=501", headers=auth).status_code == 422
    assert client.get("/api/v1/calls?limit=0", headers=auth).status_code == 422
    reply = client.get("/api/v1/calls?cursor=garbage", headers=auth)
    assert (reply.status_code, reply.json()["parameter"]) == (400, "cursor")


def test_nobody_and_a_token_without_calls_read_are_refused(
    database: Database, client: TestClient, world: World
) -> None:
    assert client.get("/api/v1/calls").status_code == 401
    auth = bearer(database, client, "root", {"recordings:read"})
    for url in (
        "/api/v1/calls",
        f"/api/v1/calls/{world.calls['cisco']}",
        "/api/v1/calls/export.csv",
    ):
        reply = client.get(url, headers=auth)
        assert reply.status_code == 403 and "calls:read" in reply.json()["detail"], url


def test_each_scope_lists_and_opens_only_its_calls(
    database: Database, client: TestClient, world: World
) -> None:
    for login, expected in SCOPE_CASES:
        auth = bearer(database, client, login)
        assert names(world, get(client, "/api/v1/calls", auth)["items"]) == expected, login
        for name, call_id in world.calls.items():
            status = client.get(f"/api/v1/calls/{call_id}", headers=auth).status_code
            assert status == (200 if name in expected else 404), (login, name)
        assert client.get("/api/v1/calls/999999", headers=auth).status_code == 404


# -- one call ---------------------------------------------------------------------------------


def test_a_call_shows_its_timeline_streams_and_recording(
    database: Database, client: TestClient, world: World
) -> None:
    call = get(client, f"/api/v1/calls/{world.calls['cisco']}", bearer(database, client, "agent"))
    (segment,) = call["segments"]
    assert (segment["start_offset_s"], segment["end_offset_s"], call["timeline_s"]) == (
        0.0,
        3.0,
        3.0,
    )
    assert [p["address"] for p in segment["participants"]] == ["7301", "7300"]
    # Both parties heard a tone: nothing to flag; the finalize measured each channel.
    assert [(s["label"], s["flags"]) for s in call["streams"]] == [("1", []), ("2", [])]
    assert all(s["health"]["silence_ratio"] < 0.5 for s in call["streams"])
    (recording,) = call["recordings"]
    assert (recording["state"], recording["offset_s"]) == ("ready", 0.0)
    assert recording["audio_url"] == f"/api/v1/recordings/{world.recording}/audio"
    assert recording["dtmf"] == [] and len(recording["channel_map"]) == 2
    assert call["groups"] == [] and "metadata_events" not in call


def test_administrators_see_the_raw_siprec_metadata(
    database: Database, client: TestClient, world: World
) -> None:
    call = get(client, f"/api/v1/calls/{world.calls['alice']}", bearer(database, client, "root"))
    (event,) = call["metadata_events"]
    assert event["sip_method"] == "INVITE" and "<recording" in event["raw"]
    assert "sip:alice@atlanta.com" in event["raw"]


def _snapshot(packets: int, lost: int, stretches: tuple[tuple[float, float], ...] = ()) -> Any:
    return StreamStatsSnapshot(
        clock_rate=8000, ssrc=1, ssrc_changes=0, packets=packets, bytes_received=packets * 172,
        garbage=0, first_packet_at=START + 0.1 if packets else None,
        last_packet_at=START + 60 if packets else None, highest_sequence=packets + lost,
        expected=packets + lost, received=packets, cumulative_lost=lost, lost=lost,
        loss_ratio=lost / max(1, packets + lost), duplicates=0, reordered=0, jitter_ms=4.5,
        max_jitter_ms=9.0, silent_stretches=stretches, silent_stretch_count=len(stretches),
        silent_seconds=sum(b - a for a, b in stretches), paused=(),
    )  # fmt: skip


def test_stream_health_flags_one_sided_silent_and_lossy_streams(
    database: Database, client: TestClient, world: World
) -> None:
    start = START + 5 * 86_400
    ids = database.write(
        lambda s: create_segment(
            s, new_segment("audiocodes_mediant_2streams.sip", started_at=start, first_port=32000)
        )
    )
    heard, deaf = sorted(ids.stream_ids.values())
    lossy = _snapshot(2700, 300, ((start + 10.0, start + 12.5),))  # 10 % lost
    database.write(
        lambda s: end_segment(
            s, ids.segment_id, "bye", start + 60, [(heard, lossy), (deaf, _snapshot(0, 0))]
        )
    )
    call = get(client, f"/api/v1/calls/{ids.call_id}", bearer(database, client, "root"))
    by_id = {s["id"]: s for s in call["streams"]}
    assert by_id[heard]["flags"] == ["high loss"]
    assert by_id[deaf]["flags"] == ["silent", "one-sided"]
    health = by_id[heard]["health"]
    assert (health["packets"], health["loss_percent"], health["jitter_ms"]) == (2700, 10.0, 4.5)
    assert health["silent_stretches"] == [[10.0, 12.5]] and health["silent_s"] == 2.5
    # With no audio on either side it is silent, not one-sided.
    broadworks = get(
        client, f"/api/v1/calls/{world.calls['broadworks']}", bearer(database, client, "root")
    )
    assert {tuple(s["flags"]) for s in broadworks["streams"]} == {("silent",)}


# -- CSV ----------------------------------------------------------------------------------------


def test_the_csv_export_is_an_audited_attachment(
    database: Database, client: TestClient, world: World
) -> None:
    auth = bearer(database, client, "agent")
    reply = client.get("/api/v1/calls/export.csv?min_duration=1", headers=auth)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/csv")
    assert re.fullmatch(
        r'attachment; filename="calls-\d{8}-\d{6}\.csv"', reply.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [(r["id"], r["caller"], r["callee"], r["duration_s"]) for r in rows] == [
        (str(world.calls["cisco"]), "7301", "7300", "3.0")
    ]
    assert rows[0]["recording_state"] == "ready" and rows[0]["caller_extension"] == "7301"
    events = database.read(lambda s: [(e.action, e.detail) for e in s.scalars(select(AuditEvent))])
    assert ("calls.export", {"query": "min_duration=1", "via": "api token"}) in events


# -- saved filters ------------------------------------------------------------------------------


def test_saved_filters_belong_to_their_user(
    database: Database, login: Callable[..., TestClient], world: World
) -> None:
    agent = browser(database, login, "agent")
    reply = agent.post(
        "/api/v1/filters", json={"name": "long", "query": "?min_duration=60&q= 7301 "}
    )
    assert reply.status_code == 201, reply.text
    saved = reply.json()
    assert (saved["name"], saved["query"]) == ("long", "q=7301&min_duration=60")
    assert agent.get("/api/v1/filters").json()["items"] == [saved]
    assert agent.post("/api/v1/filters", json={"name": "long", "query": ""}).status_code == 409
    bad = agent.post("/api/v1/filters", json={"name": "x", "query": "direction=up"})
    assert (bad.status_code, bad.json()["parameter"]) == (400, "direction")
    # Without the CSRF header the session may not change anything.
    forged = agent.post(
        "/api/v1/filters", json={"name": "y", "query": ""}, headers={"X-CSRF-Token": "nope"}
    )
    assert forged.status_code == 403
    other = browser(database, login, "alice")
    assert other.get("/api/v1/filters").json()["items"] == []
    assert other.delete(f"/api/v1/filters/{saved['id']}").status_code == 404
    assert agent.delete(f"/api/v1/filters/{saved['id']}").status_code == 204
    assert agent.get("/api/v1/filters").json()["items"] == []


# -- group tags ---------------------------------------------------------------------------------


def test_supervisors_tag_their_groups_and_administrators_any(
    database: Database, client: TestClient, world: World
) -> None:
    boss = bearer(database, client, "root", {"calls:read", "admin"})
    avaya = world.calls["avaya"]
    tagged = client.put(f"/api/v1/calls/{avaya}/groups/support", headers=boss)
    assert (tagged.status_code, tagged.json()) == (200, {"call_id": avaya, "groups": ["support"]})
    supervisor = bearer(database, client, "super")
    assert names(world, get(client, "/api/v1/calls", supervisor)["items"]) == ["avaya", "cisco"]
    assert client.delete(f"/api/v1/calls/{avaya}/groups/support", headers=boss).json() == {
        "call_id": avaya,
        "groups": [],
    }
    assert names(world, get(client, "/api/v1/calls", supervisor)["items"]) == ["cisco"]
    assert client.put(f"/api/v1/calls/{avaya}/groups/nosuch", headers=boss).status_code == 404
    actions = database.read(lambda s: list(s.scalars(select(AuditEvent.action))))
    assert actions.count("call.tag") == 1 and actions.count("call.untag") == 1


def test_tagging_is_refused_to_whoever_may_not(
    database: Database, login: Callable[..., TestClient], world: World
) -> None:
    cisco, avaya = world.calls["cisco"], world.calls["avaya"]
    supervisor = browser(database, login, "super")
    assert supervisor.put(f"/api/v1/calls/{cisco}/groups/support").status_code == 200
    assert supervisor.put(f"/api/v1/calls/{cisco}/groups/sales").status_code == 403
    assert supervisor.put(f"/api/v1/calls/{avaya}/groups/support").status_code == 404  # unseen
    agent = browser(database, login, "agent")
    assert agent.put(f"/api/v1/calls/{cisco}/groups/support").status_code == 403
    assert agent.get(f"/api/v1/calls/{cisco}").json()["groups"] == ["support"]


# -- docs -----------------------------------------------------------------------------------------


def test_the_docs_page_lists_every_operation_without_external_urls(client: TestClient) -> None:
    reply = client.get("/api/v1/docs")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    page = reply.text
    for operation in (
        "<code>/api/v1/calls</code>",
        "<code>/api/v1/calls/{call_id}</code>",
        "<code>/api/v1/filters/{filter_id}</code>",
        "<code>/api/v1/session</code>",
        "Calls the caller may see",
        "<code>min_duration</code>",
    ):
        assert operation in page, operation
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    assert "http://" not in page and "https://" not in page


def test_the_openapi_document_describes_the_filters(client: TestClient, tmp_path: Path) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    parameters = {p["name"] for p in schema["paths"]["/api/v1/calls"]["get"]["parameters"]}
    assert {"q", "min_duration", "from", "to", "group", "has_recording", "limit", "cursor"} <= (
        parameters
    )
