"""Opening a recording session from an initial SIPREC INVITE (RFC 7866 section 6).

Order matters for durability: the ports and the capture file exist, and the call,
segment, participants and streams are committed, before the 200 OK leaves. So after a
crash at any point past the 200 there is a segment in the database for recovery to
close, and no media is ever written to a file the database does not know about.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING

from callvault.recording.correlation import call_keys
from callvault.recording.selection import (
    NoCapture,
    create_metadata_only_segment,
    metadata_only_answer,
)
from callvault.recording.session import EndReason, LiveStream, RecordingSession, SessionState
from callvault.recording.store import NewSegment
from callvault.rtp.srtp import SrtpReceiver
from callvault.sdp.answer import StreamChoice, build_answer, build_offer, choose_streams
from callvault.sdp.errors import SdpError
from callvault.sdp.session import SessionDescription
from callvault.sip.dialog import Dialog, negotiate_session_timer
from callvault.sip.events import Peer
from callvault.sip.message import Request, Response, make_response
from callvault.siprec.metadata import MetadataError
from callvault.siprec.offer import OfferError, SiprecOffer, read_offer

if TYPE_CHECKING:
    from callvault.recording.ports import Capture
    from callvault.recording.srs import SessionRecordingServer

log = logging.getLogger(__name__)

# Codecs we offer when the INVITE came without SDP (RFC 7866 6.1.1), as StreamChoices.
_OFFERED_CODEC = ("PCMU", 0, 8000)


class SetupRefused(Exception):
    """The INVITE is answered with an error; ``status``/``reason`` say which."""

    def __init__(
        self, status: int, reason: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


def offer_labels(offer: SiprecOffer) -> list[str]:
    """Labels for the streams we offer when the INVITE had no SDP (RFC 7866 6.1.1)."""
    if offer.metadata is not None and offer.metadata.streams:
        labels = [s.label for s in offer.metadata.streams if s.label]
        if labels:
            return labels
    return ["1", "2"]


async def open_live_stream(
    srs: SessionRecordingServer,
    session_or_capture: RecordingSession | Capture,
    choice: StreamChoice,
) -> LiveStream:
    """Bind ports for ``choice`` and start capturing it (paused if the offer says so)."""
    capture = (
        session_or_capture.capture
        if isinstance(session_or_capture, RecordingSession)
        else session_or_capture
    )
    srtp = SrtpReceiver(choice.srtp.suite, choice.srtp.key_salt) if choice.srtp else None
    endpoint = await srs.media.open_stream(capture, choice, srtp)
    stream = LiveStream(index=choice.index, choice=choice, stream_id=0, endpoint=endpoint)
    if choice.paused:
        stream.paused = stream.signalled_paused = True
        stream.paused_since = srs.clock()
        endpoint.paused = True
        endpoint.stats.pause(time.time())
    return stream


def _pending_choice(index: int, label: str) -> StreamChoice:
    """What we expect on a stream we offered ourselves (the SRC's answer may differ)."""
    name, pt, rate = _OFFERED_CODEC
    return StreamChoice(
        index=index,
        label=label,
        codec=name,
        payload_type=pt,
        clock_rate=rate,
        channels=1,
        fmtp=None,
        telephone_event_pt=None,
        cn_pt=None,
        srtp=None,
        paused=False,
        remote_address=None,
        remote_port=0,
    )


class SessionSetup:
    def __init__(self, srs: SessionRecordingServer) -> None:
        self.srs = srs
        self._cancelled: set[str] = set()

    def cancel(self, transaction_id: str) -> None:
        self._cancelled.add(transaction_id)

    async def run(self, request: Request, peer: Peer, transaction_id: str) -> None:
        srs = self.srs
        srs.track_pending(transaction_id, None)
        session: RecordingSession | None = None
        try:
            session, response = await self._open(request, peer, transaction_id)
        except SetupRefused as refused:
            response = make_response(
                request, refused.status, refused.reason, headers=refused.headers
            )
        except (OfferError, SdpError, MetadataError) as exc:
            response = make_response(request, getattr(exc, "status", 400), str(exc))
        except Exception:
            log.exception("setting up a recording session for %s failed", request.call_id)
            response = make_response(request, 500, "Server Internal Error")
        finally:
            srs.forget_pending(transaction_id)
        if session is not None:
            session.move_to(SessionState.ACTIVE)
            srs.register(session)
        if transaction_id in self._cancelled:
            self._cancelled.discard(transaction_id)
            srs.respond(transaction_id, make_response(request, 487, "Request Terminated"))
            if session is not None:
                await srs.end_session(session, EndReason.CANCEL)
            return
        srs.respond(transaction_id, response)

    async def _open(
        self, request: Request, peer: Peer, transaction_id: str
    ) -> tuple[RecordingSession, Response]:
        srs = self.srs
        if srs.live_sessions >= srs.limits.max_sessions or not srs.media.can_accept_sessions():
            raise SetupRefused(503, "Service Unavailable", [("Retry-After", "30")])
        offer = read_offer(request.headers.get("Content-Type") or "", request.body)
        timer = negotiate_session_timer(
            request, min_se=srs.limits.min_se, default=srs.limits.session_expires
        )
        if timer.status is not None:
            raise SetupRefused(timer.status, timer.reason or "", list(timer.headers))
        # The policy (recording.enabled, directions): a session not to be recorded is
        # still answered, with metadata only: no capture, no port (REQUIREMENTS T1, T2).
        decision = (await srs.rules.current()).decide(offer.metadata)
        if not decision.record:
            log.info("metadata only for %s: %s", request.call_id, decision.reason)
            choices: list[StreamChoice | None] = []
        elif offer.sdp is not None:
            choices = choose_streams(offer.sdp)
            if not any(choices):
                raise SetupRefused(488, "Not Acceptable Here: no stream callvault can record")
        else:
            labels = offer_labels(offer)
            choices = [_pending_choice(i, label) for i, label in enumerate(labels)]
        wall = time.time()
        segment_uid = secrets.token_hex(16)
        day = time.strftime("%Y/%m/%d", time.gmtime(wall))
        try:
            capture = (
                srs.media.open_capture(f"captures/{day}/{segment_uid}.pcap")
                if decision.record
                else NoCapture()
            )
        except OSError as exc:
            log.error("cannot create a capture file: %s", exc)
            raise SetupRefused(503, "Service Unavailable: cannot store media") from None
        streams: list[LiveStream] = []
        try:
            for choice in choices:
                if choice is not None:
                    streams.append(await open_live_stream(srs, capture, choice))
        except Exception as exc:
            for stream in streams:
                srs.media.close_stream(stream.endpoint)
            srs.media.close_capture(capture)
            log.error("cannot open media ports for %s: %s", request.call_id, exc)
            raise SetupRefused(503, "Service Unavailable: no free media port") from None
        address = srs.media.advertised_address(peer.host)
        local_tag = secrets.token_hex(8)
        host = f"[{address}]" if ":" in address else address
        contact = f"<sip:{host}:{srs.sip_port};transport={peer.transport}>"
        session = RecordingSession(
            segment_id=0,
            call_id=0,
            dialog=Dialog.from_invite(request, local_tag, contact, peer),
            started_at=srs.clock(),
            capture=capture,
            streams=streams,
            metadata=offer.metadata,
            sdp_session_id=secrets.randbelow(2**31),
            sdp_version=1,
            invite_transaction=transaction_id,
            awaiting_answer=offer.sdp is None,
            metadata_only=not decision.record,
        )
        srs.track_pending(transaction_id, session)
        new = NewSegment(
            request=request,
            peer=peer,
            offer=offer,
            keys=call_keys(request, offer.metadata),
            started_at=wall,
            capture_path=capture.path,
            local_tag=local_tag,
            streams=[(s.index, s.choice, s.endpoint.rtp_port) for s in streams],
        )
        try:
            if decision.record:
                ids = await srs.store.create_segment(new)
            else:
                ids = await srs.store.run(create_metadata_only_segment, new)
        except Exception:
            for stream in streams:
                srs.media.close_stream(stream.endpoint)
            capture.close()
            raise
        session.call_id, session.segment_id = ids.call_id, ids.segment_id
        for stream in streams:
            stream.stream_id = ids.stream_ids[stream.index]
        timer_headers: list[tuple[str, str]] = []
        if timer.interval and timer.refresher == "uac" and timer.timer is not None:
            # The SRC refreshes; we only watch the deadline (RFC 4028 section 10). We
            # never take the refresher role: a recorder has nothing to refresh with.
            session.session_interval = timer.interval
            session.session_expires_at = timer.timer.expires_at(session.started_at)
            timer_headers = list(timer.headers)
        if decision.record:
            body = self._sdp(session, offer.sdp, choices, address)
        else:
            body = metadata_only_answer(
                offer.sdp,
                offer_labels(offer),
                address=address,
                session_id=session.sdp_session_id,
                session_version=session.sdp_version,
            )
        headers = [("Contact", contact), ("Allow", _allow()), ("Supported", "timer, replaces")]
        headers.extend(timer_headers)
        response = make_response(
            request,
            200,
            "OK",
            to_tag=local_tag,
            headers=headers,
            body=str(body).encode(),
            content_type="application/sdp",
        )
        return session, response

    def _sdp(
        self,
        session: RecordingSession,
        sdp_offer: SessionDescription | None,
        choices: list[StreamChoice | None],
        address: str,
    ) -> SessionDescription:
        ports = [0] * len(choices)
        for stream in session.streams:
            ports[stream.index] = stream.endpoint.rtp_port
        if sdp_offer is None:
            return build_offer(
                [c.label or str(i + 1) for i, c in enumerate(choices) if c is not None],
                address=address,
                ports=ports,
                session_id=session.sdp_session_id,
                session_version=session.sdp_version,
            )
        return build_answer(
            sdp_offer,
            choices,
            address=address,
            ports=ports,
            session_id=session.sdp_session_id,
            session_version=session.sdp_version,
        )


def _allow() -> str:
    from callvault.recording.srs import ALLOW

    return ALLOW
