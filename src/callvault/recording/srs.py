"""The Session Recording Server (RFC 7866): what callvault does with each SIP request.

The transaction layer hands us new requests; we answer them through ``respond``. An
initial INVITE opens a recording session (ports, capture file, database rows, SDP
answer); re-INVITE and UPDATE change it; BYE, CANCEL, RTP inactivity or session-timer
expiry end it, and an ended session is committed as captured before its finalize job
is enqueued. Every SIP-level decision is here; sockets, files and threads are behind
``MediaGateway`` and ``SessionStore``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from callvault.config import Settings, load_settings
from callvault.recording.ports import Clock, JobQueue, MediaGateway
from callvault.recording.selection import RulesSource, metadata_only_update
from callvault.recording.session import EndReason, RecordingSession, SessionState
from callvault.recording.setup import SessionSetup
from callvault.recording.store import SessionStore
from callvault.recording.update import apply_answer, apply_update, pause_by_user
from callvault.sip.dialog import DialogTable, SessionTimer
from callvault.sip.events import Peer
from callvault.sip.message import Request, Response, make_response

log = logging.getLogger(__name__)

ALLOWED_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO"})
SUPPORTED_EXTENSIONS = frozenset({"siprec", "timer", "replaces", "norefersub", "path"})
ACCEPTED_BODY_TYPES = frozenset(
    {
        "application/sdp",
        "multipart/mixed",
        "multipart/alternative",
        "application/rs-metadata+xml",
        "application/rs-metadata",
    }
)
ALLOW = ", ".join(sorted(ALLOWED_METHODS))
ACCEPT = "application/sdp, application/rs-metadata+xml, multipart/mixed"
SUPPORTED = "timer, replaces"

Respond = Callable[[str, Response], None]
SendRequest = Callable[[Request, Peer], None]


@dataclass(frozen=True, slots=True)
class SrsLimits:
    max_sessions: int = 20_000
    min_se: int = 90
    session_expires: int = 1800
    rtp_inactivity_timeout: float = 120.0


class SessionRecordingServer:
    def __init__(
        self,
        *,
        media: MediaGateway,
        store: SessionStore,
        jobs: JobQueue,
        respond: Respond,
        send_request: SendRequest,
        clock: Clock,
        limits: SrsLimits,
        sip_port: int,
        settings: Settings | None = None,
    ) -> None:
        self.media = media
        self.store = store
        self.jobs = jobs
        self.respond = respond
        self.send_request = send_request
        self.clock = clock
        self.limits = limits
        self.sip_port = sip_port
        self.dialogs = DialogTable()
        self.sessions: dict[tuple[str, str, str], RecordingSession] = {}
        self._pending: dict[str, RecordingSession | None] = {}  # INVITE tx id -> session
        self._tasks: set[asyncio.Task[None]] = set()
        self._setup = SessionSetup(self)
        # What new sessions record (recording.enabled, directions): read while running.
        self.rules = RulesSource(store.database, settings or load_settings(environ={}))

    # -- dispatch ------------------------------------------------------------------
    def on_request(self, request: Request, peer: Peer, transaction_id: str) -> None:
        method = request.method
        if method == "OPTIONS":
            self.respond(transaction_id, self._options_reply(request))
            return
        dialog = self.dialogs.find(request) if request.to_tag else None
        if method == "INVITE" and not request.to_tag:
            self._spawn(self._setup.run(request, peer, transaction_id))
            return
        if dialog is None:
            self.respond(
                transaction_id,
                make_response(request, 481, "Call/Transaction Does Not Exist"),
            )
            return
        session = self.sessions.get(dialog.id)
        refusal = dialog.accept_request(request)
        if refusal is not None:
            self.respond(transaction_id, make_response(request, refusal[0], refusal[1]))
            return
        if session is None or not session.live:
            self.respond(transaction_id, make_response(request, 481, "Session Has Ended"))
            return
        if method in ("INVITE", "UPDATE"):
            self._spawn(self._update(session, request, peer, transaction_id))
        elif method == "BYE":
            self.respond(transaction_id, make_response(request, 200, "OK"))
            self._spawn(self.end_session(session, EndReason.BYE))
        elif method == "INFO":
            self.respond(transaction_id, make_response(request, 200, "OK"))
        else:
            self.respond(
                transaction_id,
                make_response(request, 405, "Method Not Allowed", headers=[("Allow", ALLOW)]),
            )

    def on_ack(self, request: Request) -> None:
        dialog = self.dialogs.find(request)
        session = self.sessions.get(dialog.id) if dialog else None
        if session is not None and session.state is SessionState.ACTIVE:
            session.move_to(SessionState.CONFIRMED)
        if session is not None and session.awaiting_answer and request.body:
            session.awaiting_answer = False
            self._spawn(apply_answer(self, session, request))

    def on_cancel(self, invite_transaction_id: str) -> None:
        """The CANCEL was answered 200 by the transaction layer; stop the INVITE."""
        if invite_transaction_id in self._pending:
            session = self._pending[invite_transaction_id]
            if session is not None:
                session.cancelled = True
            self._setup.cancel(invite_transaction_id)

    def on_ack_timeout(self, request: Request) -> None:
        """Our 2xx was never ACKed: the SRC is gone, so end the session."""
        for session in list(self.sessions.values()):
            if session.invite_transaction is not None and session.dialog.call_id == (
                request.call_id
            ):
                self._spawn(self.end_session(session, EndReason.ACK_TIMEOUT, send_bye=True))

    # -- sessions ------------------------------------------------------------------
    def register(self, session: RecordingSession) -> None:
        self.dialogs.add(session.dialog)
        self.sessions[session.dialog.id] = session

    async def pause_call(self, call_id: int, paused: bool) -> int:
        """A user paused (or resumed) the recording of call ``call_id`` (REQUIREMENTS T3):
        every live session of the call stops (or starts again) capturing; returns how
        many sessions there were."""
        sessions = [
            s
            for s in list(self.sessions.values())
            if s.call_id == call_id and s.live and not s.metadata_only
        ]
        for session in sessions:
            await pause_by_user(self, session, paused)
        return len(sessions)

    @property
    def live_sessions(self) -> int:
        return sum(1 for s in self.sessions.values() if s.live)

    async def _update(
        self, session: RecordingSession, request: Request, peer: Peer, transaction_id: str
    ) -> None:
        try:
            if session.metadata_only:
                response = await metadata_only_update(self, session, request)
            else:
                response = await apply_update(self, session, request)
        except Exception:
            log.exception("re-INVITE/UPDATE of %s failed", session.dialog.call_id)
            response = make_response(request, 500, "Server Internal Error")
        self.refresh_session_timer(session)
        self.respond(transaction_id, response)

    def refresh_session_timer(self, session: RecordingSession) -> None:
        if session.session_interval:
            timer = SessionTimer(session.session_interval, "uac")
            session.session_expires_at = timer.expires_at(self.clock())

    async def end_session(
        self, session: RecordingSession, reason: EndReason, *, send_bye: bool = False
    ) -> None:
        """Close media, commit the segment as captured, then enqueue finalize."""
        if not session.live:
            return
        session.move_to(SessionState.ENDED)
        session.end_reason = reason
        session.ended_at = self.clock()
        if send_bye:
            self._send_bye(session)
        for stream in session.streams:
            self.media.close_stream(stream.endpoint)
        self.media.close_capture(session.capture)
        recording_id = await self.store.end_segment(session)
        self.sessions.pop(session.dialog.id, None)
        self.dialogs.remove(session.dialog)
        if recording_id is not None:
            self.jobs.enqueue_finalize(recording_id)
        log.info(
            "session ended",
            extra={"call_id": session.dialog.call_id, "reason": reason.value},
        )

    def _send_bye(self, session: RecordingSession) -> None:
        bye = session.dialog.create_request("BYE")
        self.send_request(bye, session.dialog.peer)

    def check_timers(self) -> None:
        """Called every second: RTP inactivity and session-timer expiry."""
        now = self.clock()
        timeout = self.limits.rtp_inactivity_timeout
        for session in list(self.sessions.values()):
            if not session.live:
                continue
            if session.session_expires_at is not None and now > session.session_expires_at:
                self._spawn(self.end_session(session, EndReason.SESSION_TIMER, send_bye=True))
            elif (
                not session.metadata_only
                and not session.all_paused()
                and now - session.last_media_at() > timeout
            ):
                self._spawn(self.end_session(session, EndReason.RTP_TIMEOUT, send_bye=True))

    async def shutdown(self) -> None:
        for session in list(self.sessions.values()):
            await self.end_session(session, EndReason.SHUTDOWN, send_bye=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- helpers -------------------------------------------------------------------
    def _options_reply(self, request: Request) -> Response:
        return make_response(
            request,
            200,
            "OK",
            to_tag=None if request.to_tag else secrets.token_hex(6),
            headers=[("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", SUPPORTED)],
        )

    def track_pending(self, transaction_id: str, session: RecordingSession | None) -> None:
        self._pending[transaction_id] = session

    def forget_pending(self, transaction_id: str) -> None:
        self._pending.pop(transaction_id, None)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SRS task failed", exc_info=task.exception())
