"""The live state of one recording session (one SIPREC dialog) and its streams.

Theory of operation: a session is created by an initial INVITE (state ``offered``),
becomes ``active`` when its 200 OK is sent and ``confirmed`` on ACK. re-INVITE and
UPDATE change its streams (pause/resume, new m-lines) and metadata. BYE, CANCEL, the
RTP inactivity timeout, session-timer expiry or a shutdown end it (``ended``) with a
reason; a session that never reached ``active`` is ``abandoned``. Transitions are the
table below; anything else is a bug in the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

from callvault.recording.ports import Capture, MediaEndpoint
from callvault.sdp.answer import StreamChoice
from callvault.sip.dialog import Dialog
from callvault.siprec.metadata import RecordingMetadata


class SessionState(Enum):
    OFFERED = "offered"
    ACTIVE = "active"
    CONFIRMED = "confirmed"
    ENDED = "ended"
    ABANDONED = "abandoned"


_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.OFFERED: frozenset({SessionState.ACTIVE, SessionState.ABANDONED}),
    SessionState.ACTIVE: frozenset({SessionState.CONFIRMED, SessionState.ENDED}),
    SessionState.CONFIRMED: frozenset({SessionState.ENDED}),
    SessionState.ENDED: frozenset(),
    SessionState.ABANDONED: frozenset(),
}


class EndReason(StrEnum):
    BYE = "bye"
    CANCEL = "cancel"
    RTP_TIMEOUT = "rtp_timeout"
    SESSION_TIMER = "session_timer"
    ACK_TIMEOUT = "ack_timeout"
    SHUTDOWN = "shutdown"
    CRASH_RECOVERY = "crash_recovery"


@dataclass(slots=True)
class LiveStream:
    """One m-line of the session: what was negotiated and where it is received."""

    index: int
    choice: StreamChoice
    stream_id: int  # database id
    endpoint: MediaEndpoint
    paused: bool = False  # not captured now: signalled by the SRC, or paused by a user
    paused_since: float | None = None
    signalled_paused: bool = False  # what the SRC's SDP says (a=inactive, port 0, hold)


@dataclass(slots=True)
class RecordingSession:
    segment_id: int
    call_id: int
    dialog: Dialog
    started_at: float
    capture: Capture
    streams: list[LiveStream] = field(default_factory=list)
    refused_media: list[int] = field(default_factory=list)  # m-line indexes answered port 0
    metadata: RecordingMetadata | None = None
    state: SessionState = SessionState.OFFERED
    sdp_session_id: int = 0
    sdp_version: int = 0
    session_expires_at: float | None = None
    session_interval: int | None = None
    end_reason: EndReason | None = None
    ended_at: float | None = None
    invite_transaction: str | None = None
    cancelled: bool = False
    awaiting_answer: bool = False  # we offered in the 200 (offerless INVITE): the ACK answers
    metadata_only: bool = False  # the policy said not to record: no media, metadata kept
    user_paused: bool = False  # a user paused the recording (T3: recording.user_pause)

    def move_to(self, state: SessionState) -> None:
        if state not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"recording session cannot go from {self.state} to {state}")
        self.state = state

    @property
    def live(self) -> bool:
        return self.state in (SessionState.ACTIVE, SessionState.CONFIRMED)

    def stream_at(self, index: int) -> LiveStream | None:
        for stream in self.streams:
            if stream.index == index:
                return stream
        return None

    def last_media_at(self) -> float:
        """The last time any unpaused stream received a packet (or the start)."""
        latest = self.started_at
        for stream in self.streams:
            last = stream.endpoint.last_packet_at
            if last is not None and last > latest:
                latest = last
            if stream.paused_since is not None and stream.paused_since > latest:
                latest = stream.paused_since
        return latest

    def all_paused(self) -> bool:
        return bool(self.streams) and all(s.paused for s in self.streams)
