"""re-INVITE and UPDATE in a recording session: pause, resume, new streams, metadata.

A paused stream (``a=inactive``, hold address ``c=0.0.0.0``, or port 0) keeps its
port but drops what arrives, so a PCI DSS pause really stops capture (REQUIREMENTS
U4); resuming continues in the same capture file. Each pause interval is committed
when it starts and when it ends. A new m-line gets a new port; metadata in the
message (complete, or a ``partial`` delta merged into what we had) updates the
participants, and its raw XML is stored whatever it says.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from callvault.recording.session import LiveStream, RecordingSession
from callvault.rtp.srtp import SrtpReceiver
from callvault.sdp.answer import StreamChoice, build_answer, build_offer, choose_streams
from callvault.sdp.errors import SdpError
from callvault.sdp.session import MediaDescription, SessionDescription
from callvault.sip.message import Request, Response, make_response
from callvault.siprec.metadata import MetadataError, merge
from callvault.siprec.offer import OfferError, read_offer

if TYPE_CHECKING:
    from callvault.recording.srs import SessionRecordingServer

log = logging.getLogger(__name__)


def pause_reason(media: MediaDescription | None) -> str:
    if media is None or media.port == 0:
        return "port0"
    connection = media.connection
    if connection is not None and connection.is_unspecified:
        return "hold"
    return "inactive"


async def set_stream_paused(
    srs: SessionRecordingServer,
    stream: LiveStream,
    paused: bool,
    reason: str,
) -> None:
    if stream.paused == paused:
        return
    wall = time.time()
    stream.paused = paused
    stream.endpoint.paused = paused
    if paused:
        stream.paused_since = srs.clock()
        stream.endpoint.stats.pause(wall)
    else:
        stream.paused_since = None
        stream.endpoint.stats.resume(wall)
    await srs.store.set_paused(stream.stream_id, paused, reason, wall)


async def signal_paused(
    srs: SessionRecordingServer,
    session: RecordingSession,
    stream: LiveStream,
    paused: bool,
    reason: str,
) -> None:
    """The SRC paused or resumed ``stream``; a pause a user asked for outlasts its resume."""
    stream.signalled_paused = paused
    await set_stream_paused(srs, stream, paused or session.user_paused, reason)


async def pause_by_user(
    srs: SessionRecordingServer, session: RecordingSession, paused: bool
) -> None:
    """A user paused or resumed the session's recording (REQUIREMENTS T3): while paused
    no stream is captured; resuming leaves what the SRC itself paused paused."""
    session.user_paused = paused
    for stream in session.streams:
        await set_stream_paused(srs, stream, paused or stream.signalled_paused, "user")


async def apply_update(
    srs: SessionRecordingServer, session: RecordingSession, request: Request
) -> Response:
    try:
        offer = read_offer(request.headers.get("Content-Type") or "", request.body)
    except (OfferError, SdpError, MetadataError) as exc:
        return make_response(request, getattr(exc, "status", 400), str(exc))
    wall = time.time()
    if offer.metadata is not None:
        if offer.metadata.datamode == "partial" and session.metadata is not None:
            session.metadata = merge(session.metadata, offer.metadata)
        else:
            session.metadata = offer.metadata
    if offer.metadata_raw is not None or offer.metadata is not None:
        await srs.store.record_metadata(session.segment_id, request, offer, session.metadata, wall)
    address = srs.media.advertised_address(session.dialog.peer.host)
    if offer.sdp is None:
        if request.method != "INVITE" or not session.streams:
            return make_response(request, 200, "OK")
        # An offerless re-INVITE: we offer our current streams again (RFC 3261 14.2).
        session.sdp_version += 1
        body = build_offer(
            [s.choice.label or str(s.index + 1) for s in session.streams],
            address=address,
            ports=[s.endpoint.rtp_port for s in session.streams],
            session_id=session.sdp_session_id,
            session_version=session.sdp_version,
        )
        return _ok(request, session, str(body))
    answer = await _renegotiate(srs, session, offer.sdp, address)
    return _ok(request, session, str(answer))


async def apply_answer(
    srs: SessionRecordingServer, session: RecordingSession, ack: Request
) -> None:
    """The SRC's SDP answer in the ACK to our offer: which codec each stream carries."""
    try:
        answer = SessionDescription.parse(ack.body)
    except SdpError as exc:
        log.warning("unusable SDP answer in ACK for %s: %s", session.dialog.call_id, exc)
        return
    changed: list[tuple[int, StreamChoice]] = []
    for index, choice in enumerate(choose_streams(answer)):
        stream = session.stream_at(index)
        if stream is None:
            continue
        if choice is None:
            await signal_paused(srs, session, stream, True, pause_reason(answer.media[index]))
            continue
        if choice.clock_rate != stream.choice.clock_rate:
            stream.endpoint.stats.set_clock_rate(choice.clock_rate)
        stream.choice = choice
        changed.append((stream.stream_id, choice))
    if changed:
        await srs.store.set_codecs(changed)


async def _renegotiate(
    srs: SessionRecordingServer,
    session: RecordingSession,
    sdp: SessionDescription,
    address: str,
) -> SessionDescription:
    choices = choose_streams(sdp)
    answer_choices: list[StreamChoice | None] = []
    ports: list[int] = []
    new_streams: list[LiveStream] = []
    recoded: list[tuple[int, StreamChoice]] = []
    for index, choice in enumerate(choices):
        stream = session.stream_at(index)
        media = sdp.media[index]
        if stream is None:
            if choice is None:
                answer_choices.append(None)
                ports.append(0)
                continue
            stream = await _open_stream(srs, session, choice)
            new_streams.append(stream)
        elif choice is None:
            # Port 0 (or nothing we can take any more): stop capturing, keep the port.
            await signal_paused(srs, session, stream, True, pause_reason(media))
            answer_choices.append(None)
            ports.append(0)
            continue
        else:
            if choice.clock_rate != stream.choice.clock_rate:
                stream.endpoint.stats.set_clock_rate(choice.clock_rate)
            if choice.srtp is not None and choice.srtp != stream.choice.srtp:
                # The SRC re-keyed (RFC 4568 7.1.4): decrypt with its new key from now on.
                stream.endpoint.srtp = SrtpReceiver(choice.srtp.suite, choice.srtp.key_salt)
            if (choice.codec, choice.payload_type) != (
                stream.choice.codec,
                stream.choice.payload_type,
            ):
                recoded.append((stream.stream_id, choice))
            stream.choice = choice
            await signal_paused(srs, session, stream, choice.paused, pause_reason(media))
        answer_choices.append(choice)
        ports.append(stream.endpoint.rtp_port)
    if recoded:
        await srs.store.set_codecs(recoded)
    if new_streams:
        ids = await srs.store.add_streams(
            session.segment_id,
            [(s.index, s.choice, s.endpoint.rtp_port) for s in new_streams],
            time.time(),
        )
        for stream in new_streams:
            stream.stream_id = ids[stream.index]
            stream.signalled_paused = stream.paused
            if session.user_paused:  # a stream added while a user paused the recording
                await set_stream_paused(srs, stream, True, "user")
        session.streams.extend(new_streams)
    session.sdp_version += 1
    return build_answer(
        sdp,
        answer_choices,
        address=address,
        ports=ports,
        session_id=session.sdp_session_id,
        session_version=session.sdp_version,
    )


async def _open_stream(
    srs: SessionRecordingServer, session: RecordingSession, choice: StreamChoice
) -> LiveStream:
    from callvault.recording.setup import open_live_stream

    return await open_live_stream(srs, session, choice)


def _ok(request: Request, session: RecordingSession, body: str) -> Response:
    return make_response(
        request,
        200,
        "OK",
        headers=[("Contact", session.dialog.local_contact)],
        body=body.encode(),
        content_type="application/sdp",
    )
