"""ORM models: calls, their recording segments, participants, streams and recordings.

This module only declares tables and their relationships; the write path and the
queries live in :mod:`callvault.db.queries`, the engine and transactions in
:mod:`callvault.db.database`. The Alembic migrations own the schema in a database;
a test checks that ``upgrade head`` produces exactly these tables.

Conventions:
- every timestamp is a timezone-aware UTC ``datetime`` (:class:`UTCDateTime` refuses
  naive values, so local time can never slip in); epoch floats appear only inside
  JSON (``Stream.silent_stretches``), where a compact number beats a string;
- enumerated states are plain strings checked in Python (``@validates``), not CHECK
  constraints, so adding a state later needs no table rebuild on SQLite;
- deletes cascade in the database (``ON DELETE CASCADE``) and in the ORM
  (``passive_deletes``): deleting a call removes everything recorded about it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from callvault.db.base import Base, UTCDateTime, check_choice, new_uid, utcnow

__all__ = [
    "CALL_STATES",
    "CAPTURE_STATES",
    "PAUSE_REASONS",
    "RECORDING_KINDS",
    "RECORDING_STATES",
    "SEGMENT_STATES",
    "STORES",
    "STREAM_ROLES",
    "Base",
    "Call",
    "CallKey",
    "MetadataEvent",
    "Participant",
    "PausedInterval",
    "Recording",
    "Segment",
    "Setting",
    "Stream",
    "StreamParticipant",
    "UTCDateTime",
    "new_uid",
    "utcnow",
]

CALL_STATES = frozenset({"active", "ended"})
SEGMENT_STATES = frozenset(
    {"active", "captured", "interrupted", "failed", "metadata_only", "rejected"}
)
# deleted: removed by retention or by hand; the row stays as the record that it existed.
RECORDING_STATES = frozenset({"waiting", "processing", "ready", "failed", "deleted"})
# Where a stored file lives (storage.backend when it was stored).
STORES = frozenset({"local", "s3"})
# A capture after its recordings are made: as written, encrypted, or removed.
CAPTURE_STATES = frozenset({"plain", "encrypted", "removed"})
# segment: one recording session; call: the segments of a call stitched on its
# timeline; participant: one party of a segment (the "separate" layout).
RECORDING_KINDS = frozenset({"segment", "call", "participant"})
PAUSE_REASONS = frozenset({"inactive", "hold", "port0", "user"})  # user: T3
STREAM_ROLES = frozenset({"send", "recv"})


class Call(Base):
    """One customer interaction; groups the recording sessions (segments) it spans."""

    __tablename__ = "call"
    __table_args__ = (
        Index("ix_call_started_at", "started_at"),
        Index("ix_call_duration_s", "duration_s"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # ended_at - started_at, kept as a column so "longer than 60 s" is an index range.
    duration_s: Mapped[float | None] = mapped_column(Float)
    # Every number, name and id of the call in one text (REQUIREMENTS A5: a value matched
    # anywhere); indexed for substring search by FTS5 trigram (SQLite) or pg_trgm.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # Retention set for this call by an authorised user (REQUIREMENTS X8): days from the
    # call's end, 0 = keep for ever; None = the policy (retention.days).
    retention_days: Mapped[int | None] = mapped_column(Integer)
    direction: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    keys: Mapped[list[CallKey]] = relationship(
        back_populates="call", cascade="all, delete-orphan", passive_deletes=True
    )
    segments: Mapped[list[Segment]] = relationship(
        back_populates="call",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="[Segment.started_at, Segment.id]",
    )
    recordings: Mapped[list[Recording]] = relationship(
        back_populates="call",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Recording.id",
    )

    @validates("state")
    def _validate_state(self, _key: str, value: str) -> str:
        return check_choice("Call.state", value, CALL_STATES)

    def __repr__(self) -> str:
        return f"<Call id={self.id} uid={self.uid} state={self.state}>"


class CallKey(Base):
    """A correlation identifier (kind, value) seen on a segment, pointing at its call.

    Kinds: ``siprec_group``, ``siprec_session``, ``x-broadworks-correlation-info``,
    ``avaya-ucid``, ``session-id``, ``cisco-guid``, ``sip-call-id``, ... The unique
    constraint makes :func:`callvault.db.queries.find_or_create_call` race-safe.
    """

    __tablename__ = "call_key"
    __table_args__ = (
        UniqueConstraint("kind", "value"),
        Index("ix_call_key_call_id", "call_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship(back_populates="keys")

    def __repr__(self) -> str:
        return f"<CallKey {self.kind}={self.value!r} call_id={self.call_id}>"


class Segment(Base):
    """One SIPREC recording session (one SIP dialog) of a call."""

    __tablename__ = "segment"
    __table_args__ = (
        Index("ix_segment_sip_call_id", "sip_call_id"),
        Index("ix_segment_call_id", "call_id"),
        Index("ix_segment_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    sip_call_id: Mapped[str] = mapped_column(String)
    local_tag: Mapped[str | None] = mapped_column(String)
    remote_tag: Mapped[str | None] = mapped_column(String)
    src_address: Mapped[str | None] = mapped_column(String)
    transport: Mapped[str | None] = mapped_column(String(8))
    user_agent: Mapped[str | None] = mapped_column(String)
    state: Mapped[str] = mapped_column(String(16), default="active")
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    capture_path: Mapped[str | None] = mapped_column(String)
    capture_state: Mapped[str] = mapped_column(String(16), default="plain")
    node: Mapped[str | None] = mapped_column(String)
    metadata_namespace: Mapped[str | None] = mapped_column(String)
    recording_session_id: Mapped[str | None] = mapped_column(String)
    group_id: Mapped[str | None] = mapped_column(String)

    call: Mapped[Call] = relationship(back_populates="segments")
    participants: Mapped[list[Participant]] = relationship(
        back_populates="segment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Participant.id",
    )
    streams: Mapped[list[Stream]] = relationship(
        back_populates="segment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Stream.media_index",
    )
    metadata_events: Mapped[list[MetadataEvent]] = relationship(
        back_populates="segment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="MetadataEvent.id",
    )
    recordings: Mapped[list[Recording]] = relationship(
        back_populates="segment", passive_deletes=True, order_by="Recording.id"
    )

    @validates("state")
    def _validate_state(self, _key: str, value: str) -> str:
        return check_choice("Segment.state", value, SEGMENT_STATES)

    @validates("capture_state")
    def _validate_capture_state(self, _key: str, value: str) -> str:
        return check_choice("Segment.capture_state", value, CAPTURE_STATES)

    def __repr__(self) -> str:
        return f"<Segment id={self.id} call_id={self.call_id} state={self.state}>"


class Participant(Base):
    """A participant of a segment as described by the SIPREC metadata."""

    __tablename__ = "participant"
    __table_args__ = (
        UniqueConstraint("segment_id", "participant_key"),
        # "Which calls did these addresses take part in": the permission check's lookup,
        # answered from the index alone.
        Index("ix_participant_address_call_id", "address", "call_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segment.id", ondelete="CASCADE"))
    # The segment's call, kept here too (set on insert from the segment) so that finding a
    # user's calls needs no join.
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    participant_key: Mapped[str] = mapped_column(String)
    aor: Mapped[str | None] = mapped_column(String)
    # The AOR's user part, lower case (``sip:2001@pbx`` -> ``2001``): what a user's
    # extension or addresses are matched against to find their calls.
    address: Mapped[str | None] = mapped_column(String)
    name: Mapped[str | None] = mapped_column(String)
    associated_at: Mapped[datetime | None]
    disassociated_at: Mapped[datetime | None]
    # BroadWorks extension data (REQUIREMENTS W9).
    service_provider_id: Mapped[str | None] = mapped_column(String)
    group_id: Mapped[str | None] = mapped_column(String)
    user_id: Mapped[str | None] = mapped_column(String)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    segment: Mapped[Segment] = relationship(back_populates="participants")
    stream_links: Mapped[list[StreamParticipant]] = relationship(
        back_populates="participant", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Participant id={self.id} key={self.participant_key!r} aor={self.aor!r}>"


class Stream(Base):
    """One media stream (one SDP m-line) of a segment, with its RTP statistics.

    ``silent_stretches`` is a JSON list of ``[start, end]`` pairs in seconds since the
    Unix epoch (floats): stretches where the stream carried no packets.
    """

    __tablename__ = "stream"
    __table_args__ = (UniqueConstraint("segment_id", "media_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segment.id", ondelete="CASCADE"))
    label: Mapped[str | None] = mapped_column(String)
    metadata_stream_id: Mapped[str | None] = mapped_column(String)
    media_index: Mapped[int] = mapped_column(Integer)
    codec: Mapped[str | None] = mapped_column(String(32))
    payload_type: Mapped[int | None] = mapped_column(Integer)
    clock_rate: Mapped[int | None] = mapped_column(Integer)
    local_port: Mapped[int | None] = mapped_column(Integer)
    remote_address: Mapped[str | None] = mapped_column(String)
    srtp: Mapped[bool] = mapped_column(Boolean, default=False)
    direction: Mapped[str | None] = mapped_column(String(16))
    ssrc: Mapped[int | None] = mapped_column(BigInteger)
    packets: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    lost: Mapped[int] = mapped_column(BigInteger, default=0)
    reordered: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    jitter_ms: Mapped[float | None] = mapped_column(Float)
    ssrc_changes: Mapped[int] = mapped_column(Integer, default=0)
    garbage: Mapped[int] = mapped_column(BigInteger, default=0)
    first_packet_at: Mapped[datetime | None]
    last_packet_at: Mapped[datetime | None]
    silent_stretches: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    # Every payload type the stream was ever answered with (a re-INVITE may change the
    # codec mid-stream), telephone-event and CN included: {"0": {"codec": "PCMU",
    # "clock_rate": 8000, "channels": 1, "fmtp": null}, "101": {"codec":
    # "telephone-event", ...}}. Finalize decodes each packet by its own payload type.
    payload_types: Mapped[dict[str, dict[str, Any]]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    segment: Mapped[Segment] = relationship(back_populates="streams")
    participant_links: Mapped[list[StreamParticipant]] = relationship(
        back_populates="stream", cascade="all, delete-orphan", passive_deletes=True
    )
    paused_intervals: Mapped[list[PausedInterval]] = relationship(
        back_populates="stream",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="[PausedInterval.started_at, PausedInterval.id]",
    )

    def __repr__(self) -> str:
        return f"<Stream id={self.id} segment_id={self.segment_id} m={self.media_index}>"


class StreamParticipant(Base):
    """Who sends (``send``) or receives (``recv``) a stream, from the metadata."""

    __tablename__ = "stream_participant"
    __table_args__ = (Index("ix_stream_participant_participant_id", "participant_id"),)

    stream_id: Mapped[int] = mapped_column(
        ForeignKey("stream.id", ondelete="CASCADE"), primary_key=True
    )
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(8), primary_key=True)

    stream: Mapped[Stream] = relationship(back_populates="participant_links")
    participant: Mapped[Participant] = relationship(back_populates="stream_links")

    @validates("role")
    def _validate_role(self, _key: str, value: str) -> str:
        return check_choice("StreamParticipant.role", value, STREAM_ROLES)


class PausedInterval(Base):
    """A time a stream was paused (a=inactive, hold, port 0); open while ongoing."""

    __tablename__ = "paused_interval"
    __table_args__ = (Index("ix_paused_interval_stream_id", "stream_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("stream.id", ondelete="CASCADE"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(16))

    stream: Mapped[Stream] = relationship(back_populates="paused_intervals")

    @validates("reason")
    def _validate_reason(self, _key: str, value: str) -> str:
        return check_choice("PausedInterval.reason", value, PAUSE_REASONS)


class MetadataEvent(Base):
    """One rs-metadata body as received (INVITE, re-INVITE, UPDATE), kept verbatim.

    ``raw`` holds the exact bytes: what a peer sent is evidence, so it is not
    re-encoded; :attr:`raw_text` decodes it for display.
    """

    __tablename__ = "metadata_event"
    __table_args__ = (Index("ix_metadata_event_segment_id", "segment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segment.id", ondelete="CASCADE"))
    received_at: Mapped[datetime]
    sip_method: Mapped[str] = mapped_column(String(16))
    cseq: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String)
    datamode: Mapped[str | None] = mapped_column(String(16))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)

    segment: Mapped[Segment] = relationship(back_populates="metadata_events")

    @property
    def raw_text(self) -> str:
        """The raw body decoded as UTF-8, undecodable bytes replaced (U+FFFD)."""
        return self.raw.decode("utf-8", errors="replace")


class Recording(Base):
    """An audio artifact made from captured media, and the state of making it."""

    __tablename__ = "recording"
    __table_args__ = (
        Index("ix_recording_call_id", "call_id"),
        Index("ix_recording_segment_id", "segment_id"),
        Index("ix_recording_state", "state"),
        # The purge job's and the uploader's lookups.
        Index("ix_recording_retain_until", "retain_until"),
        Index("ix_recording_next_upload_at", "next_upload_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    # SET NULL, not CASCADE: a stored artifact outlives a segment row removed alone.
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segment.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="segment")
    format: Mapped[str] = mapped_column(String(16), default="wav")
    codec: Mapped[str] = mapped_column(String(32), default="pcm_s16le")
    channels: Mapped[int | None] = mapped_column(Integer)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(String)
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    error: Mapped[str | None] = mapped_column(Text)
    channel_map: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # How it was (or will be) made: layout (stereo, mono, conference, separate), the
    # left-channel rule in force, and the format options (bit rate, ...).
    layout: Mapped[str | None] = mapped_column(String(16))
    channel_rule: Mapped[str | None] = mapped_column(String(256))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The templated download name (recording.filename_template), extension included.
    file_name: Mapped[str | None] = mapped_column(String(512))
    # For kind "participant": whose audio this file holds.
    participant_key: Mapped[str | None] = mapped_column(String)
    # Waiting for a mixer window (mixer.windows): not to be started before this time.
    not_before: Mapped[datetime | None]
    # What the player draws: peak amplitude per point and channel (uint8, interleaved
    # by channel), ``peaks_per_second`` points per second of audio.
    peaks: Mapped[bytes | None] = mapped_column(LargeBinary)
    peaks_per_second: Mapped[float | None] = mapped_column(Float)
    # Timeline facts in seconds from the start of the file: {"talk": [[channel, start,
    # end], ...], "paused": [[start, end], ...], "dtmf": [{"at", "digit", "duration",
    # "channel"}, ...], "silence_ratio": [per channel], "segments": [...] (stitched)}.
    analysis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # OpenPGP: the stored file is ciphertext for the key with this fingerprint.
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    key_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # Where the file is: its store and, once the store confirmed size and checksum, when.
    store: Mapped[str] = mapped_column(String(16), default="local")
    stored_at: Mapped[datetime | None]
    upload_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_upload_at: Mapped[datetime | None]
    upload_error: Mapped[str | None] = mapped_column(Text)
    # Retention: deleted by the purge job after this (None: kept); a legal hold wins.
    retain_until: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]

    call: Mapped[Call] = relationship(back_populates="recordings")
    segment: Mapped[Segment | None] = relationship(back_populates="recordings")

    @validates("state")
    def _validate_state(self, _key: str, value: str) -> str:
        return check_choice("Recording.state", value, RECORDING_STATES)

    @validates("kind")
    def _validate_kind(self, _key: str, value: str) -> str:
        return check_choice("Recording.kind", value, RECORDING_KINDS)

    @validates("store")
    def _validate_store(self, _key: str, value: str) -> str:
        return check_choice("Recording.store", value, STORES)

    def __repr__(self) -> str:
        return f"<Recording id={self.id} uid={self.uid} state={self.state}>"


class Setting(Base):
    """A runtime setting changed by an administrator (CLI, later the admin page and API).

    Only settings declared ``runtime`` in :mod:`callvault.config` are stored here; the
    text is the value as given (validated before it is written), parsed on read.
    """

    __tablename__ = "setting"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))

    def __repr__(self) -> str:
        return f"<Setting {self.name}={self.value!r}>"


@event.listens_for(Participant, "before_insert")
def _participant_call(_mapper: Any, connection: Connection, target: Participant) -> None:
    if getattr(target, "call_id", None) is not None:
        return  # set by hand: keep it
    segment_id = target.segment_id if target.segment_id is not None else target.segment.id
    call_id = connection.scalar(select(Segment.call_id).where(Segment.id == segment_id))
    if call_id is None:
        raise ValueError(f"participant of segment {segment_id}, which does not exist")
    target.call_id = call_id
