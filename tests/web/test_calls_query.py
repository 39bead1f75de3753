"""The call list's filters, sorting, keyset pages and visibility (``web/calls_query``),
on calls recorded from real vendors' SIPREC INVITEs, on SQLite and PostgreSQL.

The world (:func:`build_world`): six calls whose participants differ, and the users who
took part in them. ``tests/web/test_calls_api.py`` reuses it through the HTTP API.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from callvault.db import Database
from callvault.db.accounts import User
from callvault.recording.finalize import finalize_recording
from callvault.recording.store import create_segment, end_segment
from callvault.web.calls_query import FILTER_PARAMS, CallFilter, CallPage, export_csv, search_calls
from callvault.web.errors import BadRequest, Forbidden
from callvault.web.principal import Principal, principal_of
from tests.recording.golden import START, settings_for, two_tones
from tests.recording.helpers import new_segment

DAY = 86_400.0
# name -> (corpus INVITE, start offset from START in s, length in s or None: in progress)
CALLS: dict[str, tuple[str, float, float | None]] = {
    "cisco": ("cisco_cube_2streams_gtd.sip", 0.0, 3.0),  # 7301 and 7300, finalized
    "broadworks": ("broadworks_mixed_mono_initial_invite.sip", 3_600.0, 75.0),
    "avaya": ("avaya_sbce_2streams.sip", 7_200.0, 130.0),
    "alice": ("rfc7865_alice_bob_4streams_invite.sip", DAY, 45.0),
    "oracle": ("oracle_acme_sbc_2streams.sip", DAY + 3_600.0, 20.0),
    "webex": ("webex_calling_2streams_metadata_first.sip", DAY + 7_200.0, None),
}
NEWEST_FIRST = ["webex", "oracle", "alice", "avaya", "broadworks", "cisco"]


@dataclass(frozen=True)
class World:
    calls: dict[str, int]  # name -> call id
    recording: int  # the cisco call's ready recording


def add_call(
    database: Database, corpus: str, start: float, seconds: float | None, port: int
) -> tuple[int, int | None]:
    """A call recorded from ``corpus`` (ended after ``seconds`` unless None); returns
    (call id, its waiting recording's id)."""
    ids = database.write(
        lambda s: create_segment(s, new_segment(corpus, started_at=start, first_port=port))
    )
    if seconds is None:
        return ids.call_id, None
    recording = database.write(lambda s: end_segment(s, ids.segment_id, "bye", start + seconds, []))
    return ids.call_id, recording


def build_world(database: Database, data_dir: Path, make_user: Callable[..., int]) -> World:
    calls: dict[str, int] = {}
    ready = 0
    for n, (name, (corpus, offset, seconds)) in enumerate(CALLS.items()):
        call_id, recording = add_call(database, corpus, START + offset, seconds, 30000 + 10 * n)
        calls[name] = call_id
        if name == "cisco":
            assert recording is not None
            two_tones(data_dir)
            state = finalize_recording(
                database, data_dir, recording, settings=settings_for(data_dir)
            )
            assert state == "ready"
            ready = recording
    # No passwords (hashing one takes a third of a second): the API tests log in with
    # tokens, and give a password to the one user they log in as.
    user = functools.partial(make_user, password=None)
    user(username="agent", extension="7301", primary_group="support", display_name="Ag")
    user(username="alice", addresses=["sip:alice@atlanta.com"], primary_group="sales")
    user(
        username="super", extension="5000", role="supervisor", scope="primary_group",
        primary_group="support",
    )  # fmt: skip
    user(username="member", scope="member_groups", primary_group="other", groups=["sales"])
    user(username="everyone", scope="all")
    user(username="root", role="admin")
    return World(calls, ready)


def who(database: Database, login: str, **extra: Any) -> Principal:
    def load(db: Any) -> Principal:
        user = db.scalars(select(User).where(User.username == login)).one()
        return principal_of(db, user, "token" if "token_scopes" in extra else "session", **extra)

    return database.read(load)


@pytest.fixture
def world(database: Database, tmp_path: Path, make_user: Callable[..., int]) -> World:
    return build_world(database, tmp_path, make_user)


def names(world: World, page: CallPage | list[dict[str, Any]]) -> list[str]:
    by_id = {v: k for k, v in world.calls.items()}
    items = page.items if isinstance(page, CallPage) else page
    return [by_id[item["id"]] for item in items]


def search(database: Database, login: str, query: str = "", tz: str = "UTC", **kw: Any) -> Any:
    flt = CallFilter.parse(query, tz)
    return database.read(lambda db: search_calls(db, who(database, login), flt, **kw))


# -- CallFilter ------------------------------------------------------------------------------


def test_a_filter_reads_every_parameter_and_writes_it_back() -> None:
    query = (
        "q=107&min_duration=60&max_duration=600&from=2024-05-01&to=2024-05-31"
        "&direction=inbound&participant=alice&group=sales&has_recording=true"
        "&state=ended&sort=-duration"
    )
    flt = CallFilter.parse(query, "Europe/Warsaw")
    assert flt.q == "107" and (flt.min_duration, flt.max_duration) == (60.0, 600.0)
    # Whole days in the viewer's zone (UTC+2 in May); "to" is the next midnight, exclusive.
    assert flt.date_from == datetime(2024, 4, 30, 22, tzinfo=UTC)
    assert flt.date_to == datetime(2024, 5, 31, 22, tzinfo=UTC)
    assert (flt.direction, flt.participant, flt.group) == ("inbound", "alice", "sales")
    assert (flt.has_recording, flt.state, flt.sort) == (True, "ended", "-duration")
    assert flt.to_query() == query
    assert CallFilter.parse(flt.to_query(), "Europe/Warsaw") == flt


def test_times_keep_their_offset_or_take_the_viewers_zone() -> None:
    flt = CallFilter.from_query(
        {"from": "2024-05-01T14:30", "to": "2024-05-01T16:00Z"}, "Asia/Tokyo"
    )
    assert flt.date_from == datetime(2024, 5, 1, 5, 30, tzinfo=UTC)
    assert flt.date_to == datetime(2024, 5, 1, 16, tzinfo=UTC)
    assert (
        flt.to_query()
        == "from=2024-05-01T14%3A30%3A00%2B09%3A00&to=2024-05-02T01%3A00%3A00%2B09%3A00"
    )


def test_an_empty_query_is_the_default_list() -> None:
    flt = CallFilter.from_query({"q": " ", "limit": "10", "cursor": "x"})
    assert flt == CallFilter() and flt.is_empty() and flt.to_query() == ""


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"min_duration": "ten"}, "min_duration", "min_duration: expected a number of seconds"),
        ({"max_duration": "-1"}, "max_duration", "max_duration: expected seconds >= 0"),
        ({"max_duration": "nan"}, "max_duration", "max_duration: expected seconds >= 0"),
        ({"min_duration": "9", "max_duration": "3"}, "max_duration", "smaller than"),
        ({"from": "yesterday"}, "from", "from: expected a date (2024-05-01)"),
        ({"to": "2024-02-30"}, "to", "to: expected a date"),
        ({"direction": "sideways"}, "direction", "direction: expected one of inbound, outbound"),
        ({"has_recording": "maybe"}, "has_recording", "has_recording: expected true or false"),
        ({"state": "paused"}, "state", "state: expected one of active, ended"),
        ({"sort": "name"}, "sort", "sort: expected one of -started_at, started_at"),
        ({"q": "x" * 201}, "q", "q: at most 200 characters"),
        ({"min_duraton": "5"}, "min_duraton", "min_duraton: unknown filter parameter"),
    ],
)
def test_a_bad_parameter_is_named(params: dict[str, str], parameter: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        CallFilter.from_query(params)
    assert caught.value.extra["parameter"] == parameter
    assert caught.value.detail.startswith(message) or message in caught.value.detail


# -- filters ----------------------------------------------------------------------------------


def test_no_filter_lists_every_call_newest_first_with_the_active_one(
    database: Database, world: World
) -> None:
    page = search(database, "root")
    assert names(world, page) == NEWEST_FIRST and page.next_cursor is None
    active = page.items[0]
    assert (active["state"], active["recording_state"], active["duration_s"]) == (
        "active",
        "recording",
        None,
    )


FILTER_CASES = [
    ("q=5550100", ["broadworks"]),  # part of a number
    ("q=+1901", ["broadworks"]),
    ("q=Alice", ["alice"]),  # a name, any case
    ("q=574411e7-89f9", ["cisco"]),  # part of the SIP Call-ID
    ("q=bw174823961260618", ["broadworks"]),
    ("q=55501", ["avaya", "broadworks"]),  # a needle no hex uid holds
    ("q=bw", ["webex", "broadworks"]),  # shorter than a trigram: still found
    ("q=nobody-has-this", []),
    ("participant=bob", ["alice"]),
    ("participant=7300", ["cisco"]),
    ("participant=ATLANTA", ["alice"]),
    ("participant=574411", []),  # a Call-ID is no participant
    ("min_duration=60", ["avaya", "broadworks"]),
    ("max_duration=45", ["oracle", "alice", "cisco"]),
    ("min_duration=20&max_duration=75", ["oracle", "alice", "broadworks"]),
    ("has_recording=true", ["cisco"]),
    ("has_recording=false", ["webex", "oracle", "alice", "avaya", "broadworks"]),
    ("state=active", ["webex"]),
    ("direction=internal", ["oracle", "cisco"]),
    ("direction=external", ["alice", "avaya", "broadworks"]),
    ("q=55501&min_duration=100", ["avaya"]),
]


def test_each_filter(database: Database, world: World) -> None:
    # One world for every case: building it is what costs.
    got = {query: names(world, search(database, "root", query)) for query, _ in FILTER_CASES}
    assert got == dict(FILTER_CASES)


def test_dates_are_whole_days_in_the_viewers_zone(database: Database, world: World) -> None:
    # The broadworks call (2023-11-14 23:13:20 UTC) is on the 15th in Warsaw (UTC+1), the
    # oracle call (2023-11-15 23:13:20 UTC) on the 16th there.
    day = "from=2023-11-15&to=2023-11-15"
    assert names(world, search(database, "root", day, "Europe/Warsaw")) == [
        "alice",
        "avaya",
        "broadworks",
    ]
    assert names(world, search(database, "root", day, "UTC")) == ["oracle", "alice", "avaya"]
    assert names(world, search(database, "root", "to=2023-11-14")) == ["broadworks", "cisco"]
    assert names(world, search(database, "root", "from=2023-11-15T23:13:20Z")) == [
        "webex",
        "oracle",
    ]


def test_group_filter_stays_within_the_viewers_scope(database: Database, world: World) -> None:
    assert names(world, search(database, "everyone", "group=support")) == ["cisco"]
    assert names(world, search(database, "super", "group=support")) == ["cisco"]
    assert names(world, search(database, "member", "group=sales")) == ["alice"]
    # Not within their scope, or no such group: no rows, not an error.
    assert names(world, search(database, "agent", "group=support")) == []
    assert names(world, search(database, "member", "group=support")) == []
    assert names(world, search(database, "root", "group=nosuch")) == []


def test_a_call_tagged_with_a_group_is_the_groups(database: Database, world: World) -> None:
    from callvault.db.accounts import CallGroup, Group

    def tag(db: Any) -> None:
        group = db.scalars(select(Group).where(Group.name == "support")).one()
        db.add(CallGroup(call_id=world.calls["avaya"], group_id=group.id))

    database.write(tag)
    assert names(world, search(database, "everyone", "group=support")) == ["avaya", "cisco"]
    assert names(world, search(database, "super")) == ["avaya", "cisco"]
    assert names(world, search(database, "agent")) == ["cisco"]  # own scope: not tags
    # A search within the scope: the matches of each reason (tagged, took part) alone.
    assert names(world, search(database, "super", "q=55501")) == ["avaya"]
    assert names(world, search(database, "super", "q=7301")) == ["cisco"]
    assert names(world, search(database, "agent", "q=55501")) == []


# -- visibility -----------------------------------------------------------------------------


SCOPE_CASES = [
    ("agent", ["cisco"]),  # own: 7301 took part
    ("alice", ["alice"]),  # own by an address (sip:alice@atlanta.com)
    ("super", ["cisco"]),  # primary group support: the agent's call
    ("member", ["alice"]),  # member group sales: alice's call
    ("everyone", NEWEST_FIRST),
    ("root", NEWEST_FIRST),
]


def test_each_scope_sees_its_calls(database: Database, world: World) -> None:
    got = {login: names(world, search(database, login)) for login, _ in SCOPE_CASES}
    assert got == dict(SCOPE_CASES)
    searched = {login: names(world, search(database, login, "q=55501")) for login, _ in SCOPE_CASES}
    assert searched == {
        login: [n for n in calls if n in ("avaya", "broadworks")] for login, calls in SCOPE_CASES
    }


def test_a_token_without_calls_read_may_not_list(database: Database, world: World) -> None:
    principal = who(database, "root", token_scopes=frozenset({"recordings:read"}))
    with pytest.raises(Forbidden, match="calls:read"):
        database.read(lambda db: search_calls(db, principal, CallFilter()))


# -- sorting and pages --------------------------------------------------------------------------


SORT_CASES = {
    "started_at": NEWEST_FIRST[::-1],
    "-duration": ["avaya", "broadworks", "alice", "oracle", "cisco", "webex"],  # active last
    "duration": ["cisco", "oracle", "alice", "broadworks", "avaya", "webex"],
}


def test_sorting(database: Database, world: World) -> None:
    got = {sort: names(world, search(database, "root", f"sort={sort}")) for sort in SORT_CASES}
    assert got == SORT_CASES


def _walk(database: Database, world: World, sort: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = search(database, "root", f"sort={sort}", limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += names(world, page)
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("the pages never ended")


def test_pages_cover_the_list_once(database: Database, world: World) -> None:
    for sort in ("-started_at", "started_at", "-duration", "duration"):
        whole = names(world, search(database, "root", f"sort={sort}"))
        for limit in (1, 2, 4, 5, 6):
            assert _walk(database, world, sort, limit) == whole, (sort, limit)


def test_a_call_arriving_between_pages_shifts_nothing(database: Database, world: World) -> None:
    first = search(database, "root", limit=2)
    call_id, _ = add_call(database, "sonus_ribbon_sbc_2streams.sip", START + 3 * DAY, 50.0, 31000)
    world.calls["late"] = call_id
    rest: list[str] = []
    cursor = first.next_cursor
    while cursor is not None:
        page = search(database, "root", limit=2, cursor=cursor)
        rest += names(world, page)
        cursor = page.next_cursor
    assert names(world, first) + rest == NEWEST_FIRST  # the newer call waits for a reload
    assert names(world, search(database, "root", limit=1)) == ["late"]


def test_a_foreign_or_broken_cursor_is_refused(database: Database, world: World) -> None:
    page = search(database, "root", limit=1)
    with pytest.raises(BadRequest, match="cursor: not a cursor of this list"):
        search(database, "root", "sort=-duration", cursor=page.next_cursor)
    with pytest.raises(BadRequest, match="cursor"):
        search(database, "root", cursor="not-base64!")
    with pytest.raises(BadRequest, match="limit: expected 1 to 500"):
        search(database, "root", limit=501)


# -- rows ---------------------------------------------------------------------------------------


def test_a_row_says_who_called_whom_and_how_to_play_it(database: Database, world: World) -> None:
    (row,) = search(database, "agent").items
    assert row["caller"] == {
        "aor": "sip:7301@35.162.237.204",
        "number": "7301",
        "name": None,
        "extension": "7301",
    }
    assert row["callee"] == {
        "aor": "sip:7300@35.162.237.204",
        "number": "7300",
        "name": "7300",
        "extension": None,
    }
    assert (row["source"], row["destination"], row["direction"]) == ("7301", "7300", "internal")
    assert (row["duration_s"], row["state"], row["recording_state"], row["has_recording"]) == (
        3.0,
        "ended",
        "ready",
        True,
    )
    (recording,) = row["recordings"]
    assert recording["id"] == world.recording and recording["state"] == "ready"
    assert recording["audio_url"] == f"/api/v1/recordings/{world.recording}/audio"
    assert recording["download_url"] == f"/api/v1/recordings/{world.recording}/download"
    # A superset of `callvault calls list --json`.
    from callvault.db.queries import calls_as_json

    listed = database.read(lambda db: calls_as_json(db))
    cli = next(c for c in listed if c["id"] == row["id"])
    assert set(cli) <= set(row)
    assert {k: row[k] for k in cli if k != "recordings"} == {
        k: v for k, v in cli.items() if k != "recordings"
    }


def test_a_number_that_is_a_users_line_shows_that_users_extension(
    database: Database, world: World, make_user: Callable[..., int]
) -> None:
    make_user(username="dave", extension="2001", addresses=["tel:+19015550100"], password=None)
    (row,) = search(database, "root", "q=bw174823961260618").items
    assert row["callee"]["number"] == "+19015550100"
    assert row["callee"]["extension"] == "2001" and row["caller"]["extension"] is None


def test_waiting_recordings_show_as_waiting(database: Database, world: World) -> None:
    rows = search(database, "root", "q=bw174823961260618").items
    assert [(r["recording_state"], r["has_recording"]) for r in rows] == [("waiting", False)]


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_has_a_header_and_a_row_per_call_in_the_viewers_zone(
    database: Database, world: World
) -> None:
    principal = who(database, "root")
    flt = CallFilter.parse("min_duration=60", "Europe/Warsaw")
    lines = database.read(lambda db: list(export_csv(db, principal, flt)))
    assert lines[0].startswith("id,date,time,started_at,ended_at,duration_s,direction,caller,")
    assert len(lines) == 3 and all(line.endswith("\r\n") for line in lines)
    avaya = lines[1].split(",")
    # 2023-11-14 22:13:20 UTC + 2 h = 00:13:20 on the 15th, +1 h in Warsaw.
    assert avaya[:4] == [
        str(world.calls["avaya"]),
        "2023-11-15",
        "01:13:20",
        "2023-11-15T00:13:20Z",
    ]
    assert "9875550159" in avaya and "130.0" in avaya


def test_csv_neutralises_formulas_but_keeps_phone_numbers() -> None:
    from callvault.web.calls_detail import _cell

    assert _cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert _cell("@SUM(A1)") == "'@SUM(A1)"
    assert _cell("+19015550100") == "+19015550100"
    assert _cell("-") == "'-"


# -- properties ----------------------------------------------------------------------------------

PARAM_VALUES = st.dictionaries(
    st.sampled_from([*FILTER_PARAMS, "limit", "cursor", "other"]),
    st.one_of(
        st.text(max_size=30),
        st.sampled_from(["2024-05-01", "2024-05-01T10:00", "60", "true", "inbound", "-duration"]),
    ),
    max_size=6,
)


@given(PARAM_VALUES, st.sampled_from(["UTC", "Europe/Warsaw", "America/St_Johns", "Nope/Zone"]))
@settings(max_examples=300, deadline=None)
def test_any_query_is_a_filter_or_a_bad_request_and_round_trips(
    params: dict[str, str], tz: str
) -> None:
    try:
        flt = CallFilter.from_query(params, tz)
    except BadRequest as exc:
        assert exc.extra["parameter"] in params
        return
    assert CallFilter.parse(flt.to_query(), flt.tz) == flt
