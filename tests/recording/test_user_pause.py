"""A user's pause (REQUIREMENTS T3) and the SRC's pauses, on the recording server itself:
neither undoes the other, and each pause is stored with its reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from callvault.db import Database
from callvault.db.models import PausedInterval
from callvault.recording.ports import Capture, MediaEndpoint
from callvault.recording.session import EndReason, LiveStream, RecordingSession
from callvault.recording.update import signal_paused
from callvault.rtp.srtp import SrtpReceiver
from callvault.rtp.stats import StreamStatistics
from callvault.sdp.answer import StreamChoice
from callvault.sip.events import Peer
from callvault.sip.message import Response
from tests.recording.golden import CUBE
from tests.recording.helpers import corpus_request
from tests.recording.test_selection import _Jobs, _Media, _settle, _srs


class _Endpoint:
    def __init__(self, port: int) -> None:
        self.rtp_port = port
        self.paused = False
        self.last_packet_at: float | None = None
        self.stats = StreamStatistics()
        self.srtp: SrtpReceiver | None = None

    def close(self) -> None:
        pass


class _Ports(_Media):
    """A media gateway that hands out endpoints that receive nothing."""

    async def open_stream(
        self, capture: Capture, choice: StreamChoice, srtp: SrtpReceiver | None
    ) -> MediaEndpoint:
        self.streams += 1
        return _Endpoint(40000 + 2 * self.streams)


def _intervals(database: Database) -> list[tuple[int, str, bool]]:
    """(stream id, reason, still open) of every paused interval."""
    rows = database.read(
        lambda s: s.scalars(select(PausedInterval).order_by(PausedInterval.id)).all()
    )
    return [(r.stream_id, r.reason, r.ended_at is None) for r in rows]


def test_a_users_pause_and_the_srcs_pauses_do_not_undo_each_other(
    database: Database, tmp_path: Path
) -> None:
    media, jobs, replies = _Ports(), _Jobs(), list[Response]()
    srs, _ = _srs(database, tmp_path, media, jobs, replies)

    async def call() -> None:
        srs.on_request(corpus_request(CUBE), Peer("udp", "192.0.2.10", 5060), "tx-1")
        await _settle()
        (session,) = srs.sessions.values()
        first, second = session.streams
        ids = (first.stream_id, second.stream_id)

        def paused() -> tuple[bool, bool]:
            assert first.endpoint.paused == first.paused  # the socket drops what it gets
            return first.paused, second.paused

        assert await srs.pause_call(session.call_id + 1, True) == 0  # another call
        assert await srs.pause_call(session.call_id, True) == 1
        assert paused() == (True, True)
        assert _intervals(database) == [(ids[0], "user", True), (ids[1], "user", True)]

        # The SRC resumes by re-INVITE: the user's pause holds.
        await _signal(session, first, paused=False)
        assert paused() == (True, True)
        # The SRC pauses the first stream itself; the user resumes: only the second goes on.
        await _signal(session, first, paused=True)
        assert await srs.pause_call(session.call_id, False) == 1
        assert paused() == (True, False)
        # The SRC resumes the first: both go on.
        await _signal(session, first, paused=False)
        assert paused() == (False, False)
        assert _intervals(database) == [(ids[0], "user", False), (ids[1], "user", False)]
        assert first.endpoint.stats.snapshot().paused[0][1] is not None
        await srs.end_session(session, EndReason.BYE)
        srs.store.close()

    async def _signal(session: RecordingSession, stream: LiveStream, *, paused: bool) -> None:
        await signal_paused(srs, session, stream, paused, "inactive")

    asyncio.run(call())
