"""What gets recorded (T1, T2, W12): the policy check when a SIPREC session opens.

The decision from real metadata, the SDP of a metadata-only answer, and the recording
server itself (its real session setup and store on SQLite and PostgreSQL, with an
in-memory media gateway that fails the test if a port or a capture is ever opened).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callvault.db import Database
from callvault.db.models import Call, MetadataEvent, Participant, Recording, Segment, Stream
from callvault.recording.ports import Capture, MediaEndpoint
from callvault.recording.selection import (
    RecordingRules,
    direction_of,
    metadata_only_answer,
    rules_from,
)
from callvault.recording.session import EndReason
from callvault.recording.srs import SessionRecordingServer, SrsLimits
from callvault.recording.store import SessionStore
from callvault.rtp.srtp import SrtpReceiver
from callvault.sdp.answer import StreamChoice
from callvault.sdp.session import SessionDescription
from callvault.sip.events import Peer
from callvault.sip.message import Request, Response
from callvault.siprec.metadata import RecordingMetadata, parse_metadata
from callvault.siprec.offer import read_offer
from tests.e2e.sipp import metadata_xml
from tests.recording.golden import CUBE, configure, settings_for
from tests.recording.helpers import corpus_request

AGENT = ("cA==", "sip:agent-2001@pbx.example.com", "Agent")
CUSTOMER = ("cB==", "sip:+15550100@carrier.example.net", "Customer")
COLLEAGUE = ("cC==", "sip:2002@pbx.example.com", "Colleague")
AGENTS = ("sip:agent-*@pbx.example.com",)


def _metadata(*people: tuple[str, str, str]) -> RecordingMetadata:
    labels = tuple(str(n + 1) for n in range(len(people)))
    return parse_metadata(metadata_xml(participants=people, labels=labels).encode())


@pytest.mark.parametrize(
    ("people", "direction"),
    [
        ((CUSTOMER, AGENT), "inbound"),
        ((AGENT, CUSTOMER), "outbound"),
        ((AGENT, COLLEAGUE), "internal"),
        ((CUSTOMER, ("cD==", "sip:+4822@carrier.example.net", "Other")), "external"),
        ((AGENT,), None),
    ],
)
def test_the_direction_comes_from_the_first_two_participants(
    people: tuple[tuple[str, str, str], ...], direction: str | None
) -> None:
    assert direction_of(_metadata(*people), AGENTS) == direction


def test_without_metadata_there_is_no_direction() -> None:
    assert direction_of(None, AGENTS) is None


@pytest.mark.parametrize(
    ("rules", "people", "recorded", "reason"),
    [
        (RecordingRules(), (CUSTOMER, AGENT), True, ""),
        (RecordingRules(enabled=False), (CUSTOMER, AGENT), False, "recording.enabled is false"),
        (RecordingRules(inbound=False), (CUSTOMER, AGENT), False, "recording.inbound is false"),
        (RecordingRules(inbound=False), (AGENT, CUSTOMER), True, ""),
        (RecordingRules(outbound=False), (AGENT, CUSTOMER), False, "recording.outbound is false"),
        (RecordingRules(internal=False), (AGENT, COLLEAGUE), False, "recording.internal is false"),
        (RecordingRules(internal=False), (CUSTOMER, AGENT), True, ""),
        # No direction a setting names: recorded (when recording is on at all).
        (RecordingRules(inbound=False, outbound=False, internal=False), (AGENT,), True, ""),
    ],
)
def test_the_rules_decide(
    rules: RecordingRules,
    people: tuple[tuple[str, str, str], ...],
    recorded: bool,
    reason: str,
) -> None:
    decision = RecordingRules(**{**_fields(rules), "internal_aors": AGENTS}).decide(
        _metadata(*people)
    )
    assert (decision.record, decision.reason) == (recorded, reason)


def _fields(rules: RecordingRules) -> dict[str, Any]:
    return {name: getattr(rules, name) for name in RecordingRules.__slots__}


def test_the_rules_are_the_settings(tmp_path: Path) -> None:
    settings = settings_for(tmp_path).overlay(
        {"recording.enabled": False, "recording.internal_aors": AGENTS}, "test"
    )
    assert rules_from(settings) == RecordingRules(enabled=False, internal_aors=AGENTS)


def test_a_metadata_only_answer_refuses_every_stream() -> None:
    request = corpus_request(CUBE)
    offer = read_offer(request.headers.get("Content-Type") or "", request.body).sdp
    assert offer is not None
    answer = metadata_only_answer(offer, [], address="192.0.2.1", session_id=7, session_version=1)
    assert [m.port for m in answer.media] == [0] * len(offer.media)
    assert all(m.attribute("inactive") == "" for m in answer.media)
    assert all(m.attribute("recvonly") is None for m in answer.media)
    assert [m.label for m in answer.media] == [m.label for m in offer.media]
    # An INVITE without SDP: we offer its streams, each at port 0 and inactive.
    offered = metadata_only_answer(
        None, ["1", "2"], address="192.0.2.1", session_id=7, session_version=1
    )
    assert [(m.port, m.label, m.attribute("inactive")) for m in offered.media] == [
        (0, "1", ""),
        (0, "2", ""),
    ]
    assert "a=inactive" in str(offered) and "a=recvonly" not in str(offered)


# -- the recording server ----------------------------------------------------------------


class _Capture:
    def __init__(self, path: str) -> None:
        self.path = path
        self.disk_full = False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Media:
    """A media gateway that records what it was asked to open."""

    def __init__(self) -> None:
        self.captures: list[str] = []
        self.streams = 0

    def open_capture(self, relative_path: str) -> Capture:
        self.captures.append(relative_path)
        return _Capture(relative_path)

    async def open_stream(
        self, capture: Capture, choice: StreamChoice, srtp: SrtpReceiver | None
    ) -> MediaEndpoint:
        self.streams += 1
        raise OSError("no ports in this test")

    def close_stream(self, endpoint: MediaEndpoint) -> None:
        pass

    def close_capture(self, capture: Capture) -> None:
        capture.close()

    def advertised_address(self, peer_host: str) -> str:
        return "192.0.2.1"

    def can_accept_sessions(self) -> bool:
        return True


class _Jobs:
    def __init__(self) -> None:
        self.finalize: list[int] = []

    def enqueue_finalize(self, recording_id: int) -> None:
        self.finalize.append(recording_id)


async def _settle() -> None:
    me = asyncio.current_task()
    while others := [t for t in asyncio.all_tasks() if t is not me and not t.done()]:
        await asyncio.gather(*others)


def _srs(
    database: Database, tmp_path: Path, media: _Media, jobs: _Jobs, replies: list[Response]
) -> tuple[SessionRecordingServer, Callable[[], float]]:
    clock = [1_700_000_000.0]
    srs = SessionRecordingServer(
        media=media,
        store=SessionStore(database),
        jobs=jobs,
        respond=lambda _tx, response: replies.append(response),
        send_request=lambda _request, _peer: None,
        clock=lambda: clock[0],
        limits=SrsLimits(rtp_inactivity_timeout=120.0),
        sip_port=5060,
        settings=settings_for(tmp_path),
    )

    def advance() -> float:
        clock[0] += 600.0
        return clock[0]

    return srs, advance


@pytest.mark.parametrize(
    "setting", [{"recording.enabled": "false"}, {"recording.internal": "false"}]
)
def test_a_session_not_to_record_is_answered_with_metadata_only(
    database: Database, tmp_path: Path, setting: dict[str, str]
) -> None:
    configure(database, tmp_path, setting)  # CUBE's 7301 calls 7300: an internal call
    media, jobs, replies = _Media(), _Jobs(), []
    srs, advance = _srs(database, tmp_path, media, jobs, replies)
    request: Request = corpus_request(CUBE)

    async def call() -> None:
        srs.on_request(request, Peer("udp", "192.0.2.10", 5060), "tx-1")
        await _settle()
        (session,) = srs.sessions.values()
        assert session.metadata_only and session.streams == []
        advance()  # ten minutes without RTP: a metadata-only session is not timed out
        srs.check_timers()
        await _settle()
        assert session.live
        await srs.end_session(session, EndReason.BYE)
        srs.store.close()

    asyncio.run(call())
    (reply,) = replies
    assert reply.status == 200
    answer = SessionDescription.parse(reply.body)
    assert len(answer.media) == 2
    assert all(m.port == 0 and m.attribute("inactive") == "" for m in answer.media)
    assert (media.captures, media.streams, jobs.finalize) == ([], 0, [])

    segment = database.read(lambda s: s.scalars(select(Segment)).one())
    assert (segment.state, segment.capture_path, segment.end_reason) == (
        "metadata_only",
        None,
        "bye",
    )
    aors = database.read(lambda s: sorted(s.scalars(select(Participant.aor)).all()))
    assert aors == ["sip:7300@35.162.237.204", "sip:7301@35.162.237.204"]
    assert database.read(lambda s: len(s.scalars(select(MetadataEvent)).all())) == 1
    assert database.read(lambda s: s.scalars(select(Stream)).all()) == []
    assert database.read(lambda s: s.scalars(select(Recording)).all()) == []
    call_row = database.read(lambda s: s.scalars(select(Call)).one())
    assert call_row.state == "ended"


def test_a_session_to_record_opens_its_media(database: Database, tmp_path: Path) -> None:
    # Inbound calls off, but CUBE's call is internal: it is recorded, so the server asks
    # for a capture and ports (the in-memory gateway has none to give: 503).
    configure(database, tmp_path, {"recording.inbound": "false"})
    media, jobs, replies = _Media(), _Jobs(), []
    srs, _ = _srs(database, tmp_path, media, jobs, replies)

    async def call() -> None:
        srs.on_request(corpus_request(CUBE), Peer("udp", "192.0.2.10", 5060), "tx-1")
        await _settle()
        srs.store.close()

    asyncio.run(call())
    assert [r.status for r in replies] == [503]
    assert len(media.captures) == 1 and media.streams == 1
