"""Persisting recording sessions: every write the SRS makes, run off the event loop.

All writes go through one thread (``SessionStore.run``), which is also the one writer
SQLite wants (STYLE rule 11). Each function here is one transaction: a session's rows
are committed before its 200 OK is sent, its pause/resume intervals when they happen,
its statistics every few seconds, and its end before its finalize job is enqueued.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db import Database
from callvault.db.models import (
    Call,
    MetadataEvent,
    Participant,
    PausedInterval,
    Recording,
    Segment,
    Stream,
    StreamParticipant,
)
from callvault.db.models import Setting as StoredSetting
from callvault.db.queries import find_or_create_call
from callvault.db.search import refresh_search_text
from callvault.recording.events import call_payload, emit
from callvault.recording.layout import is_internal, user_part
from callvault.rtp.stats import StreamStatsSnapshot
from callvault.sdp.answer import StreamChoice
from callvault.sip.events import Peer
from callvault.sip.message import Request
from callvault.siprec.metadata import RecordingMetadata
from callvault.siprec.offer import SiprecOffer

if TYPE_CHECKING:
    from callvault.recording.session import RecordingSession
    from callvault.recording.srs import SessionRecordingServer

T = TypeVar("T")
NODE = socket.gethostname()


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True, slots=True)
class NewSegment:
    request: Request
    peer: Peer
    offer: SiprecOffer
    keys: list[tuple[str, str]]
    started_at: float
    capture_path: str
    local_tag: str
    streams: list[tuple[int, StreamChoice, int]]  # (m-line index, choice, local RTP port)


@dataclass(frozen=True, slots=True)
class SegmentIds:
    call_id: int
    segment_id: int
    stream_ids: dict[int, int]  # m-line index -> stream row id


class SessionStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._writer, lambda: self.database.write(lambda s: fn(s, *args))
        )

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    async def create_segment(self, new: NewSegment) -> SegmentIds:
        return await self.run(create_segment, new)

    async def add_streams(
        self, segment_id: int, streams: list[tuple[int, StreamChoice, int]], wall: float
    ) -> dict[int, int]:
        return await self.run(add_streams, segment_id, streams, wall)

    async def record_metadata(
        self,
        segment_id: int,
        request: Request,
        offer: SiprecOffer,
        metadata: RecordingMetadata | None,
        wall: float,
    ) -> None:
        await self.run(record_metadata, segment_id, request, offer, metadata, wall)

    async def set_paused(self, stream_id: int, paused: bool, reason: str, wall: float) -> None:
        await self.run(set_paused, stream_id, paused, reason, wall)

    async def set_codecs(self, changes: list[tuple[int, StreamChoice]]) -> None:
        await self.run(set_codecs, changes)

    async def end_segment(self, session: RecordingSession) -> int | None:
        snapshots = _snapshots(session)
        assert session.end_reason is not None and session.ended_at is not None
        return await self.run(
            end_segment,
            session.segment_id,
            session.end_reason.value,
            session.ended_at,
            snapshots,
        )

    async def save_stats(self, srs: SessionRecordingServer) -> None:
        snapshots: list[tuple[int, StreamStatsSnapshot]] = []
        for session in list(srs.sessions.values()):
            if session.live:
                snapshots.extend(_snapshots(session))
        if snapshots:
            await self.run(save_stats, snapshots)


def _snapshots(session: RecordingSession) -> list[tuple[int, StreamStatsSnapshot]]:
    return [(s.stream_id, s.endpoint.stats.snapshot()) for s in session.streams if s.stream_id]


# -- transactions (run in the writer thread) ------------------------------------------


def create_segment(db: Session, new: NewSegment) -> SegmentIds:
    request, metadata = new.request, new.offer.metadata
    call = find_or_create_call(db, new.keys, at(new.started_at))
    if call.state != "active":
        call.state = "active"
        call.ended_at = None
    segment = Segment(
        call_id=call.id,
        sip_call_id=request.call_id,
        local_tag=new.local_tag,
        remote_tag=request.from_tag,
        src_address=f"{new.peer.host}:{new.peer.port}",
        transport=new.peer.transport,
        user_agent=request.headers.get("User-Agent") or request.headers.get("Server"),
        state="active",
        started_at=at(new.started_at),
        capture_path=new.capture_path,
        node=NODE,
        metadata_namespace=metadata.namespace if metadata else None,
        recording_session_id=metadata.recording_session_id if metadata else None,
        group_id=metadata.group_id if metadata else None,
    )
    db.add(segment)
    db.flush()
    stream_ids = add_streams(db, segment.id, new.streams, new.started_at)
    record_metadata(
        db, segment.id, request, new.offer, metadata, new.started_at, refresh_search=False
    )
    db.flush()
    refresh_search_text(db, call.id)  # the call's keys are searchable even without metadata
    return SegmentIds(call.id, segment.id, stream_ids)


def add_streams(
    db: Session, segment_id: int, streams: Sequence[tuple[int, StreamChoice, int]], wall: float
) -> dict[int, int]:
    ids: dict[int, int] = {}
    for index, choice, port in streams:
        row = Stream(
            segment_id=segment_id,
            label=choice.label,
            media_index=index,
            codec=choice.codec,
            payload_type=choice.payload_type,
            clock_rate=choice.clock_rate,
            local_port=port,
            remote_address=(
                f"{choice.remote_address}:{choice.remote_port}" if choice.remote_address else None
            ),
            srtp=choice.srtp is not None,
            direction="recvonly",
            payload_types=payload_types_of(choice),
        )
        db.add(row)
        db.flush()
        if choice.paused:
            db.add(PausedInterval(stream_id=row.id, started_at=at(wall), reason="inactive"))
        ids[index] = row.id
    return ids


def record_metadata(
    db: Session,
    segment_id: int,
    request: Request,
    offer: SiprecOffer,
    metadata: RecordingMetadata | None,
    wall: float,
    *,
    refresh_search: bool = True,
) -> None:
    """Store the raw metadata of this message and apply it to participants/streams.

    ``metadata`` is the session's view after this message (a ``partial`` update
    already merged into what came before). The call's search text is made again from
    the new participants unless ``refresh_search`` is false (the caller does it).
    """
    if offer.metadata_raw is None and metadata is None:
        return
    db.add(
        MetadataEvent(
            segment_id=segment_id,
            received_at=at(wall),
            sip_method=request.method,
            cseq=request.cseq[0],
            content_type=request.headers.get("Content-Type"),
            datamode=offer.metadata.datamode if offer.metadata else None,
            raw=offer.metadata_raw or b"",
            warnings=list(offer.metadata.warnings) if offer.metadata else [],
        )
    )
    if metadata is not None:
        _apply_participants(db, segment_id, metadata, wall)
        segment = db.get(Segment, segment_id) if refresh_search else None
        if segment is not None:
            db.flush()
            refresh_search_text(db, segment.call_id)


def _apply_participants(
    db: Session, segment_id: int, metadata: RecordingMetadata, wall: float
) -> None:
    existing = {
        p.participant_key: p
        for p in db.scalars(select(Participant).where(Participant.segment_id == segment_id))
    }
    streams = list(db.scalars(select(Stream).where(Stream.segment_id == segment_id)))
    by_label: dict[str | None, Stream] = {s.label: s for s in streams if s.label is not None}
    label_of = {s.stream_id: s.label for s in metadata.streams}
    for meta_stream in metadata.streams:
        labelled = by_label.get(meta_stream.label)
        if labelled is not None and labelled.metadata_stream_id != meta_stream.stream_id:
            labelled.metadata_stream_id = meta_stream.stream_id
    bw = metadata.broadworks
    seen: set[str] = set()
    for item in metadata.participants:
        seen.add(item.participant_id)
        person = existing.get(item.participant_id)
        if person is None:
            person = Participant(
                segment_id=segment_id,
                participant_key=item.participant_id,
                associated_at=_parse_time(item.associate_time) or at(wall),
            )
            db.add(person)
            existing[item.participant_id] = person
        person.aor = item.aor
        person.address = (user_part(item.aor) or "").lower() or None
        person.name = item.name
        if item.disassociate_time:
            person.disassociated_at = _parse_time(item.disassociate_time) or at(wall)
        if bw is not None and bw.user_id and item.aor and bw.user_id in item.aor:
            person.service_provider_id = bw.service_provider_id
            person.group_id = bw.group_id
            person.user_id = bw.user_id
        db.flush()
        wanted = {("send", label_of.get(s)) for s in item.sends} | {
            ("recv", label_of.get(s)) for s in item.receives
        }
        links = {(link.role, link.stream_id) for link in person.stream_links}
        for role, label in wanted:
            stream = by_label.get(label) if label is not None else None
            if stream is not None and (role, stream.id) not in links:
                db.add(StreamParticipant(stream_id=stream.id, participant_id=person.id, role=role))
    if metadata.datamode == "complete":
        # A complete snapshot without a participant means it left (a transfer).
        for key, gone in existing.items():
            if key not in seen and gone.disassociated_at is None:
                gone.disassociated_at = at(wall)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def set_paused(db: Session, stream_id: int, paused: bool, reason: str, wall: float) -> None:
    open_interval = db.scalars(
        select(PausedInterval).where(
            PausedInterval.stream_id == stream_id, PausedInterval.ended_at.is_(None)
        )
    ).first()
    if paused and open_interval is None:
        db.add(PausedInterval(stream_id=stream_id, started_at=at(wall), reason=reason))
    elif not paused and open_interval is not None:
        open_interval.ended_at = at(wall)


def set_codecs(db: Session, changes: Sequence[tuple[int, StreamChoice]]) -> None:
    for stream_id, choice in changes:
        row = db.get(Stream, stream_id)
        if row is not None:
            row.codec = choice.codec
            row.payload_type = choice.payload_type
            row.clock_rate = choice.clock_rate
            # Keep the earlier payload types: packets captured before the change are
            # still decoded with the codec they were sent in.
            row.payload_types = {**(row.payload_types or {}), **payload_types_of(choice)}


def call_direction(db: Session, call: Call) -> str | None:
    """``inbound``, ``outbound`` or ``internal``, from the first segment's first two
    parties (SRCs list the caller first) and who is internal (``recording.layout``)."""
    stored = db.get(StoredSetting, "recording.internal_aors")
    globs = [g.strip() for g in (stored.value if stored else "").split(",") if g.strip()]
    for segment in call.segments:
        people = sorted(segment.participants, key=lambda p: p.id)
        if len(people) < 2:
            continue
        caller, callee = (is_internal(p.aor, p.user_id, globs) for p in people[:2])
        if caller and callee:
            return "internal"
        if caller != callee:
            return "outbound" if caller else "inbound"
        return "external"
    return None


def payload_types_of(choice: StreamChoice) -> dict[str, dict[str, Any]]:
    """The payload types a stream's answer accepts, as ``Stream.payload_types`` keeps them."""
    types: dict[str, dict[str, Any]] = {
        str(choice.payload_type): {
            "codec": choice.codec,
            "clock_rate": choice.clock_rate,
            "channels": choice.channels,
            "fmtp": choice.fmtp,
        }
    }
    # RFC 4733 and RFC 3389 payloads run on the voice codec's clock (the answer only
    # accepts them at that rate).
    if choice.telephone_event_pt is not None:
        types[str(choice.telephone_event_pt)] = {
            "codec": "telephone-event",
            "clock_rate": choice.clock_rate,
            "channels": 1,
            "fmtp": None,
        }
    if choice.cn_pt is not None:
        types[str(choice.cn_pt)] = {
            "codec": "CN",
            "clock_rate": choice.clock_rate,
            "channels": 1,
            "fmtp": None,
        }
    return types


def _apply_snapshot(row: Stream, snap: StreamStatsSnapshot) -> None:
    row.ssrc = snap.ssrc
    row.packets = snap.packets
    row.bytes = snap.bytes_received
    row.lost = snap.lost
    row.reordered = snap.reordered
    row.duplicates = snap.duplicates
    row.jitter_ms = round(snap.jitter_ms, 3)
    row.ssrc_changes = snap.ssrc_changes
    row.garbage = snap.garbage
    row.first_packet_at = at(snap.first_packet_at) if snap.first_packet_at else None
    row.last_packet_at = at(snap.last_packet_at) if snap.last_packet_at else None
    row.silent_stretches = [[a, b] for a, b in snap.silent_stretches]


def save_stats(db: Session, snapshots: Sequence[tuple[int, StreamStatsSnapshot]]) -> None:
    rows = {
        s.id: s for s in db.scalars(select(Stream).where(Stream.id.in_([i for i, _ in snapshots])))
    }
    for stream_id, snap in snapshots:
        if stream_id in rows:
            _apply_snapshot(rows[stream_id], snap)


def end_segment(
    db: Session,
    segment_id: int,
    reason: str,
    ended_wall: float,
    snapshots: Sequence[tuple[int, StreamStatsSnapshot]],
) -> int | None:
    """Mark the segment captured and create its waiting recording; returns its id."""
    save_stats(db, snapshots)
    segment = db.get(Segment, segment_id)
    if segment is None:
        return None
    ended = at(ended_wall)
    for stream in segment.streams:
        for interval in stream.paused_intervals:
            if interval.ended_at is None:
                interval.ended_at = ended
    segment.state = "captured"
    segment.ended_at = ended
    segment.end_reason = reason
    call = segment.call
    if all(s.state != "active" or s.id == segment_id for s in call.segments):
        call.state = "ended"
        call.ended_at = ended
        call.duration_s = round((ended - call.started_at).total_seconds(), 3)
        call.direction = call_direction(db, call)
        emit(db, "call.ended", call_payload(call))
    if not segment.streams:
        segment.state = "metadata_only"
        return None
    recording = Recording(call_id=segment.call_id, segment_id=segment.id, state="waiting")
    db.add(recording)
    db.flush()
    return recording.id
