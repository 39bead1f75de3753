"""The calls pages as a browser gets them: the list, its filters, one call, partial pages.

Calls come from real vendor INVITEs: Cisco CUBE (7301 calls 7300, finalized from two
captured tones into a ready recording) and the RFC 7865 example (alice and bob).
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db import Database
from callvault.db.accounts import SavedFilter, User
from callvault.db.models import PausedInterval, Recording, Stream
from callvault.recording.finalize import finalize_recording
from callvault.recording.store import create_segment, end_segment
from callvault.web.pages import calls as calls_page
from callvault.web.principal import WebContext
from tests.recording.golden import (
    PORTS,
    START,
    captured_session,
    settings_for,
    tone_packets,
    two_tones,
    write_session_capture,
)
from tests.recording.helpers import new_segment

PARTIAL = {"X-Callvault-Partial": "1"}
RFC = "rfc7865_alice_bob_4streams_invite.sip"


def cisco_call(ctx: WebContext, *, one_sided: bool = False) -> tuple[int, int]:
    """The Cisco call (3 s, 7301 and 7300) with a ready recording: (call id, recording id).
    ``one_sided``: only 7301's stream carried audio."""
    recording_id, _ = captured_session(ctx.database)
    if one_sided:
        write_session_capture(ctx.data_dir, {PORTS[0]: tone_packets(500, t0=START + 0.5)})
    else:
        two_tones(ctx.data_dir)
    state = finalize_recording(
        ctx.database, ctx.data_dir, recording_id, settings=settings_for(ctx.data_dir)
    )
    assert state == "ready"
    call_id = ctx.database.read(lambda s: s.get_one(Recording, recording_id).call_id)
    return call_id, recording_id


def other_call(
    database: Database,
    start: float,
    *,
    end: bool = True,
    corpus: str = RFC,
) -> int:
    """A call from a corpus INVITE (by default the RFC 7865 example: alice and bob), no
    recording made; its id."""
    new = dataclasses.replace(
        new_segment(corpus, started_at=start, first_port=31000),
        capture_path=f"captures/{corpus}-{start}.pcap",
    )
    ids = database.write(lambda s: create_segment(s, new))
    if end:
        database.write(lambda s: end_segment(s, ids.segment_id, "bye", start + 10, []))
    return ids.call_id


def rows(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-call="(\d+)"', page)]


@pytest.fixture
def agent(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="agent", extension="7301", timezone="Europe/Paris")
    return login("agent")


@pytest.fixture
def admin(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="root", role="admin")
    return login("root")


def test_a_user_sees_their_calls_in_their_time_zone_and_not_others(
    ctx: WebContext, agent: TestClient, admin: TestClient
) -> None:
    mine, recording_id = cisco_call(ctx)
    theirs = other_call(ctx.database, START + 600)
    page = agent.get("/calls")
    assert page.status_code == 200
    assert rows(page.text) == [mine]
    # 2023-11-14 22:13:20 UTC is 23:13:20 in Paris; the start time opens the call.
    assert '<td class="nowrap">2023-11-14</td>' in page.text
    assert f'<a class="start-time" href="/calls/{mine}" title="Open this call">23:13:20</a>' in (
        page.text
    )
    # Caller ID, duration, recording state, play and download.
    assert '<span class="who">7301 <small>ext. 7301</small>' not in page.text  # same number
    assert '<span class="who">7301</span>' in page.text
    assert '<td class="num nowrap">0:03</td>' in page.text
    assert '<span class="state ready">ready</span>' in page.text
    assert f'data-src="/api/v1/recordings/{recording_id}/audio"' in page.text
    assert f'href="/api/v1/recordings/{recording_id}/download" download' in page.text
    # An administrator sees every call, newest first.
    assert rows(admin.get("/calls").text) == [theirs, mine]


def test_the_filter_form_round_trips_through_the_url(
    ctx: WebContext, agent: TestClient, database: Database
) -> None:
    mine, _ = cisco_call(ctx)
    query = "q=7300&min_duration=2&has_recording=true&sort=duration&direction=&participant="
    page = agent.get(f"/calls?{query}")
    assert page.status_code == 200
    assert rows(page.text) == [mine]
    text = html.unescape(page.text)
    assert 'name="q" value="7300"' in text
    assert 'name="min_duration" min="0" step="any" value="2"' in text
    assert '<option value="true" selected>Has a recording</option>' in text
    assert '<option value="duration" selected>Shortest first</option>' in text
    # The empty fields stay out of the filter the CSV link and "save" carry.
    canonical = "q=7300&min_duration=2&has_recording=true&sort=duration"
    assert f'href="/api/v1/calls/export.csv?{canonical}" download' in text
    assert f'data-save-filter data-query="{canonical}"' in text
    # A filter the call fails; a value that is no number says which field is wrong.
    assert rows(agent.get("/calls?min_duration=4").text) == []
    assert "No calls match." in agent.get("/calls?q=nobody-here").text
    bad = agent.get("/calls?q=7300&min_duration=long")
    assert bad.status_code == 400
    assert "min_duration: expected a number of seconds, got &#39;long&#39;" in bad.text
    assert rows(bad.text) == []
    # The form keeps what was typed, so it can be put right.
    assert 'name="q" value="7300"' in bad.text
    assert 'name="min_duration" min="0" step="any" value="long"' in bad.text

    # Saved filters are listed as quick links with a delete button.
    user_id = database.read(
        lambda s: s.scalars(select(User.id).where(User.username == "agent")).one()
    )
    filter_id = database.write(lambda s: _save_filter(s, user_id, "Long ones", "min_duration=60"))
    listed = agent.get("/calls").text
    assert '<a href="/calls?min_duration=60">Long ones</a>' in listed
    assert f'data-delete-filter="/api/v1/filters/{filter_id}"' in listed


def _save_filter(s: Session, user_id: int, name: str, query: str) -> int:
    row = SavedFilter(user_id=user_id, name=name, query=query)
    s.add(row)
    s.flush()
    return row.id


def test_pages_go_on_with_the_cursor(
    ctx: WebContext, admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls_page, "PAGE_SIZE", 2)
    corpora = ("cisco_cube_2streams_gtd.sip", "oracle_acme_sbc_2streams.sip", RFC)
    ids = [other_call(ctx.database, START + 100 * n, corpus=c) for n, c in enumerate(corpora)]
    first = admin.get("/calls?sort=started_at")
    assert rows(first.text) == ids[:2]
    link = re.search(r'<a rel="next" href="([^"]+)">Next page</a>', first.text)
    assert link is not None
    assert html.unescape(link.group(1)).startswith("/calls?sort=started_at&cursor=")
    second = admin.get(html.unescape(link.group(1)))
    assert rows(second.text) == ids[2:]
    assert "Next page" not in second.text
    assert '<a href="/calls?sort=started_at">First page</a>' in second.text


def test_a_partial_request_gets_only_what_goes_in_main(ctx: WebContext, agent: TestClient) -> None:
    mine, _ = cisco_call(ctx)
    full = agent.get("/calls").text
    assert full.count('<main id="main"') == 1
    assert 'name="csrf-token" content="' in full
    assert full.index("</main>") < full.index('<footer id="player"')
    assert '<audio id="player-audio"' in full
    assert "<title>Calls · callvault</title>" in full

    for path in ("/calls", f"/calls/{mine}"):
        part = agent.get(path, headers=PARTIAL)
        assert part.status_code == 200
        assert part.text.startswith('<meta name="callvault-title" content="')
        assert part.headers["vary"] == "X-Callvault-Partial"
        for absent in ("<html", "<head", "<header", "<main", 'id="player"', "<title>"):
            assert absent not in part.text, (path, absent)
    assert agent.get("/calls", headers=PARTIAL).text.startswith(
        '<meta name="callvault-title" content="Calls · callvault">'
    )
    assert f'<tr data-call="{mine}">' in agent.get("/calls", headers=PARTIAL).text


def _mark_up(database: Database, recording_id: int) -> None:
    """Stream 1 lost 10 % with 4.5 ms jitter, a hold 1-2 s, a DTMF 5 at 1.5 s."""

    def change_streams(s: Session) -> None:
        recording = s.get_one(Recording, recording_id)
        assert recording.segment_id is not None
        streams = list(s.scalars(select(Stream).where(Stream.segment_id == recording.segment_id)))
        by_label = {st.label: st for st in streams}
        by_label["1"].packets, by_label["1"].lost, by_label["1"].jitter_ms = 90, 10, 4.5
        s.add(
            PausedInterval(
                stream_id=by_label["1"].id,
                started_at=datetime.fromtimestamp(START + 1, UTC),
                ended_at=datetime.fromtimestamp(START + 2, UTC),
                reason="hold",
            )
        )
        recording.analysis = {
            **(recording.analysis or {}),
            "dtmf": [{"at": 1.5, "digit": "5", "duration": 0.1, "channel": 0}],
        }

    database.write(change_streams)


def test_the_call_page_shows_timeline_streams_and_flags(ctx: WebContext, agent: TestClient) -> None:
    call_id, recording_id = cisco_call(ctx, one_sided=True)
    _mark_up(ctx.database, recording_id)
    page = agent.get(f"/calls/{call_id}")
    assert page.status_code == 200
    text = page.text
    assert "<title>Call 2023-11-14 23:13:20 · callvault</title>" in text
    # One segment spanning the whole 3 s timeline, playing its recording when clicked.
    segment = re.search(r'<button type="button" class="tl-segment"[^>]*>', text, re.S)
    assert segment is not None
    assert 'style="left: 0.0%; width: 100.0%"' in segment.group(0)
    assert f'data-src="/api/v1/recordings/{recording_id}/audio"' in segment.group(0)
    # The hold from 1 s to 2 s and the DTMF digit at 1.5 s, placed on the timeline.
    assert '<div class="tl-paused" style="left: 33.333%; width: 33.333%"' in text
    assert '<div class="tl-dtmf" style="left: 50.0%" title="DTMF 5 at 0:01"><span>5</span>' in text
    # Participants of the segment and how it ended.
    assert "sip:7301@35.162.237.204" in text and "sip:7300@35.162.237.204" in text
    assert "<td>bye</td>" in text
    # Stream health: loss, jitter, the silent stream flagged as one-sided.
    streams = re.findall(r'<tr data-stream="\d+">.*?</tr>', text, re.S)
    assert len(streams) == 2
    lossy, silent = sorted(streams, key=lambda row: "one-sided" in row)
    assert '<td class="num">90</td>' in lossy and "(10.0 %)" in lossy and "4.5 ms" in lossy
    assert '<span class="flag bad">high loss</span>' in lossy
    assert '<span class="flag">paused +0:01\u20130:02</span>' in lossy
    assert '<span class="flag bad">silent</span><span class="flag bad">one-sided</span>' in silent
    # The recording: a waveform lane per channel, play, download and share.
    wave = re.search(r'<div class="waveform".*?</div>\s*<p class="waveform-note">', text, re.S)
    assert wave is not None
    assert f'data-recording="{recording_id}"' in wave.group(0)
    assert wave.group(0).count("<canvas") == 2
    assert f'data-share="/api/v1/recordings/{recording_id}/share"' in text
    assert f'data-share="/api/v1/calls/{call_id}/share"' in text


def test_administrators_see_the_siprec_metadata_and_others_do_not(
    ctx: WebContext, agent: TestClient, admin: TestClient
) -> None:
    call_id, _ = cisco_call(ctx)
    for_admin = admin.get(f"/calls/{call_id}").text
    assert "<h2>SIPREC metadata</h2>" in for_admin
    raw = re.search(
        r'<details class="metadata">.*?<pre class="metadata">(.*?)</pre>', for_admin, re.S
    )
    assert raw is not None
    assert "urn:ietf:params:xml:ns:recording:1" in html.unescape(raw.group(1))
    for_agent = agent.get(f"/calls/{call_id}").text
    assert "SIPREC metadata" not in for_agent
    assert "urn:ietf:params:xml:ns:recording" not in for_agent


def test_a_call_in_progress_shows_recording_and_refreshes(
    ctx: WebContext, admin: TestClient
) -> None:
    call_id = other_call(ctx.database, START, end=False)
    listing = admin.get("/calls").text
    assert '<span class="state recording">recording</span>' in listing
    assert "<div data-live hidden></div>" in listing
    page = admin.get(f"/calls/{call_id}").text
    assert "<div data-live hidden></div>" in page
    assert "(in progress)" in page


def test_pages_need_a_login_and_hide_calls_of_others(
    ctx: WebContext, client: TestClient, agent: TestClient
) -> None:
    theirs = other_call(ctx.database, START)
    for path in ("/calls", f"/calls/{theirs}"):
        reply = client.get(path, follow_redirects=False)
        assert reply.status_code == 303
        assert reply.headers["location"] == f"/login?next={path}"
    hidden = agent.get(f"/calls/{theirs}")
    assert hidden.status_code == 404
    assert "alice" not in hidden.text
    assert agent.get("/calls/999999").status_code == 404


def _recording(id: int, kind: str, segment_id: int | None, offset: float, dtmf: list[Any]) -> Any:
    return {
        "id": id,
        "kind": kind,
        "state": "ready",
        "segment_id": segment_id,
        "offset_s": offset,
        "dtmf": dtmf,
    }


def test_the_timeline_lays_out_transfer_legs_holds_and_digits() -> None:
    """Two legs (0-40 s, 50-100 s), a hold on each stream of leg 1 (overlapping) and
    one still open at the end of leg 2; DTMF in each leg's file and again in the
    stitched file (shown once)."""
    person = {"name": None, "aor": "sip:2001@pbx"}
    detail: dict[str, Any] = {
        "timeline_s": 100.0,
        "segments": [
            {"id": 1, "start_offset_s": 0.0, "end_offset_s": 40.0, "participants": [person]},
            {"id": 2, "start_offset_s": 50.0, "end_offset_s": 100.0, "participants": []},
        ],
        "streams": [
            {"segment_id": 1, "health": {"paused": [[10.0, 20.0]]}},
            {"segment_id": 1, "health": {"paused": [[15.0, 25.0]]}},
            {"segment_id": 2, "health": {"paused": [[90.0, None]]}},
        ],
        "recordings": [
            _recording(7, "segment", 1, 0.0, [{"at": 5.0, "digit": "1"}]),
            _recording(8, "segment", 2, 50.0, [{"at": 10.0, "digit": "#"}]),
            _recording(9, "call", None, 0.0, [{"at": 5.0, "digit": "1"}]),
        ],
    }
    timeline = calls_page.lay_out(detail, elapsed=0.0)
    assert timeline["whole"]["id"] == 9
    bars = [(b["left"], b["width"], b["recording"]["id"], b["names"]) for b in timeline["bars"]]
    assert bars == [(0.0, 40.0, 7, ["sip:2001@pbx"]), (50.0, 50.0, 8, [])]
    assert [(p["start"], p["end"]) for p in timeline["paused"]] == [(10.0, 25.0), (90.0, 100.0)]
    assert [(d["at"], d["digit"], d["left"]) for d in timeline["dtmf"]] == [
        (5.0, "1", 5.0),
        (60.0, "#", 60.0),
    ]
    # A call still in progress is as long as it has lasted so far.
    live = {**detail, "timeline_s": None}
    live["segments"] = [{**detail["segments"][0], "end_offset_s": None}]
    assert calls_page.lay_out(live, elapsed=80.0)["bars"][0]["width"] == 100.0
