"""The reads and writes the recorder, the job runners and the CLI share.

Every function takes an open :class:`~sqlalchemy.orm.Session` and neither commits nor
opens transactions: run it inside :meth:`callvault.db.Database.write` or
:meth:`~callvault.db.Database.read`, which own the transaction.

- :func:`find_or_create_call` is the write path that groups segments into calls: a
  transfer leg arrives as a new SIPREC session but carries an identifier the first leg
  carried too (BroadWorks correlation info, Avaya UCID, Session-ID, ...).
- :func:`calls_as_json` is the contract of ``callvault calls list --json``; :func:`call_json`
  turns one call loaded with :func:`call_json_options` into that form (the web API's call
  items start from it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from callvault.db.models import (
    RECORDING_STATES,
    SEGMENT_STATES,
    Call,
    CallKey,
    Recording,
    Segment,
    Stream,
    StreamParticipant,
)

__all__ = [
    "MAX_CALL_KEY_VALUE_LENGTH",
    "call_json",
    "call_json_options",
    "calls_as_json",
    "find_or_create_call",
    "normalise_call_key",
    "recording_by_id",
    "recordings_due",
    "recordings_in_state",
    "segments_in_state",
]

# Longer values (a peer may send a huge Call-ID) are stored as their SHA-256: they
# still match exactly, and the unique index stays within PostgreSQL's btree limit.
MAX_CALL_KEY_VALUE_LENGTH = 512
_MAX_CALL_KEY_KIND_LENGTH = 64
# Each retry follows a lost race for a key; more than a few means something else.
_FIND_OR_CREATE_ATTEMPTS = 5


def normalise_call_key(kind: str, value: str) -> tuple[str, str] | None:
    """The (kind, value) stored for a correlation key, or None for an empty value.

    Kinds are lower-cased; values are compared exactly (callers fold case where the
    header's definition says values are case-insensitive).
    """
    kind = kind.strip().lower()
    value = value.strip()
    if not kind or len(kind) > _MAX_CALL_KEY_KIND_LENGTH:
        raise ValueError(f"call key kind must be 1-{_MAX_CALL_KEY_KIND_LENGTH} characters")
    if not value:
        return None
    if len(value) > MAX_CALL_KEY_VALUE_LENGTH:
        digest = hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest()
        value = f"sha256:{digest}"
    return kind, value


def find_or_create_call(
    session: Session, keys: Sequence[tuple[str, str]], started_at: datetime
) -> Call:
    """The call any of ``keys`` already belongs to, or a new active call; every key is
    then recorded on it.

    When keys point at different calls the oldest call (lowest id) wins and the keys
    already on other calls stay there: calls are never merged behind anyone's back.
    ``started_at`` moves an existing call's start earlier if this segment began first;
    the call's state is the caller's business.

    Race-safe: two sessions creating a call for the same key at once collide on the
    unique (kind, value) constraint; the loser's SAVEPOINT rolls back and it looks
    again, finding the winner's call (on PostgreSQL READ COMMITTED each statement sees
    what was committed before it; on SQLite writers are serialised anyway).
    """
    wanted: list[tuple[str, str]] = []
    for kind, value in keys:
        key = normalise_call_key(kind, value)
        if key is not None and key not in wanted:
            wanted.append(key)
    match = or_(false(), *(and_(CallKey.kind == k, CallKey.value == v) for k, v in wanted))
    last_error: IntegrityError | None = None
    for _ in range(_FIND_OR_CREATE_ATTEMPTS):
        found = (
            session.execute(select(CallKey.kind, CallKey.value, CallKey.call_id).where(match)).all()
            if wanted
            else []
        )
        try:
            with session.begin_nested():
                if found:
                    call = session.get_one(Call, min(call_id for _, _, call_id in found))
                    if started_at < call.started_at:
                        call.started_at = started_at
                else:
                    call = Call(started_at=started_at, state="active")
                    session.add(call)
                    session.flush()
                known = {(kind, value) for kind, value, _ in found}
                session.add_all(
                    CallKey(call_id=call.id, kind=kind, value=value)
                    for kind, value in wanted
                    if (kind, value) not in known
                )
                session.flush()
        except IntegrityError as exc:
            last_error = exc
            continue
        return call
    raise RuntimeError(
        f"find_or_create_call: no stable call after {_FIND_OR_CREATE_ATTEMPTS} attempts"
    ) from last_error


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _participants_json(call: Call) -> list[dict[str, Any]]:
    # One entry per person across segments: keyed by AOR (by name when the metadata
    # gave no AOR), keeping the first non-empty display name seen.
    people: dict[tuple[str, str | None], dict[str, Any]] = {}
    for segment in call.segments:
        for participant in segment.participants:
            key = ("aor", participant.aor) if participant.aor else ("name", participant.name)
            entry = people.setdefault(key, {"aor": participant.aor, "name": participant.name})
            if not entry["name"] and participant.name:
                entry["name"] = participant.name
    return list(people.values())


def _stream_json(stream: Stream) -> dict[str, Any]:
    senders = sorted(
        (link.participant for link in stream.participant_links if link.role == "send"),
        key=lambda participant: participant.id,
    )
    return {
        "segment_id": stream.segment_id,
        "label": stream.label,
        "codec": stream.codec,
        "packets": stream.packets,
        "bytes": stream.bytes,
        "lost": stream.lost,
        "reordered": stream.reordered,
        "duplicates": stream.duplicates,
        "jitter_ms": stream.jitter_ms,
        "ssrc_changes": stream.ssrc_changes,
        "garbage": stream.garbage,
        "first_packet_at": _iso(stream.first_packet_at),
        "last_packet_at": _iso(stream.last_packet_at),
        "paused": [
            {
                "started_at": _iso(interval.started_at),
                "ended_at": _iso(interval.ended_at),
                "reason": interval.reason,
            }
            for interval in stream.paused_intervals
        ],
        "sent_by": [participant.aor for participant in senders if participant.aor],
    }


def call_json(call: Call) -> dict[str, Any]:
    """One call as ``callvault calls list --json`` prints it (load it with
    :func:`call_json_options`, or every relationship costs a query)."""
    duration = (
        (call.ended_at - call.started_at).total_seconds() if call.ended_at is not None else None
    )
    return {
        "id": call.id,
        "uid": call.uid,
        "started_at": _iso(call.started_at),
        "ended_at": _iso(call.ended_at),
        "duration_s": duration,
        "state": call.state,
        # inbound/outbound/internal/external, decided when the call ends (None before).
        "direction": call.direction,
        "participants": _participants_json(call),
        "segments": [
            {
                "id": segment.id,
                "sip_call_id": segment.sip_call_id,
                "state": segment.state,
                "started_at": _iso(segment.started_at),
                "ended_at": _iso(segment.ended_at),
                "end_reason": segment.end_reason,
                "capture_path": segment.capture_path,
            }
            for segment in call.segments
        ],
        "streams": [
            _stream_json(stream) for segment in call.segments for stream in segment.streams
        ],
        "recordings": [_recording_json(recording) for recording in call.recordings],
    }


def _recording_json(recording: Recording) -> dict[str, Any]:
    made = recording.state == "ready"
    return {
        "id": recording.id,
        "uid": recording.uid,
        "kind": recording.kind,
        "segment_id": recording.segment_id,
        "participant_key": recording.participant_key,
        # What the file is, once there is one (a waiting recording has no format yet).
        "format": recording.format if made else None,
        "codec": recording.codec if made else None,
        "channels": recording.channels,
        "sample_rate": recording.sample_rate,
        "duration_s": recording.duration_s,
        "size_bytes": recording.size_bytes,
        "sha256": recording.sha256,
        "state": recording.state,
        # A recording waiting for a mixer window says until when (mixer.windows).
        "waiting_until": _iso(recording.not_before),
        "error": recording.error,
        "layout": recording.layout,
        "channel_map": recording.channel_map,
        "file_name": recording.file_name,
        "path": recording.path,
        # Where the file is kept and for how long (issue 5): size_bytes and sha256 above
        # describe the stored bytes, the ciphertext when encrypted.
        "store": recording.store,
        "stored_at": _iso(recording.stored_at),
        "encrypted": bool(recording.encrypted),
        "key_fingerprint": recording.key_fingerprint,
        "retain_until": _iso(recording.retain_until),
        "deleted_at": _iso(recording.deleted_at),
    }


def recordings_due(session: Session, now: datetime, *, window_open: bool = False) -> list[int]:
    """Recordings waiting for a mixer window that may start now, oldest first.

    ``not_before`` says when the window was due to open; ``window_open`` (the windows in
    force now say the mixer may run) also takes those whose time is still to come, so a
    change of ``mixer.windows`` applies to recordings already waiting.
    """
    statement = select(Recording.id).where(
        Recording.state == "waiting", Recording.not_before.is_not(None)
    )
    if not window_open:
        statement = statement.where(Recording.not_before <= now)
    return list(session.scalars(statement.order_by(Recording.not_before, Recording.id)))


def calls_as_json(session: Session, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Calls newest first, as ``callvault calls list --json`` prints them.

    Times are ISO 8601 UTC strings ending in ``Z`` (or null); ``duration_s`` is null
    while a call is active. Segments are in start order, streams in segment then
    m-line order. Loads with a fixed number of queries whatever the number of calls.
    """
    statement = (
        select(Call).order_by(Call.started_at.desc(), Call.id.desc()).options(*call_json_options())
    )
    if limit is not None:
        statement = statement.limit(limit)
    return [call_json(call) for call in session.scalars(statement)]


def call_json_options() -> tuple[LoaderOption, ...]:
    """Loader options that fetch everything :func:`call_json` reads, in a fixed number
    of queries whatever the number of calls selected."""
    return (
        selectinload(Call.segments).options(
            selectinload(Segment.participants),
            selectinload(Segment.streams).options(
                selectinload(Stream.paused_intervals),
                selectinload(Stream.participant_links).selectinload(StreamParticipant.participant),
            ),
        ),
        selectinload(Call.recordings),
    )


def _checked_states(states: Iterable[str], allowed: frozenset[str], what: str) -> list[str]:
    wanted = list(states)
    unknown = sorted(set(wanted) - allowed)
    if unknown:
        raise ValueError(f"unknown {what} state(s) {unknown}; known: {sorted(allowed)}")
    return wanted


def recording_by_id(session: Session, id: int) -> Recording | None:
    """The recording with this id, or None."""
    return session.get(Recording, id)


def recordings_in_state(session: Session, states: Iterable[str]) -> list[Recording]:
    """Recordings in any of ``states`` (e.g. waiting/processing after a restart), by id."""
    wanted = _checked_states(states, RECORDING_STATES, "recording")
    statement = select(Recording).where(Recording.state.in_(wanted)).order_by(Recording.id)
    return list(session.scalars(statement))


def segments_in_state(
    session: Session, states: Iterable[str], *, node: str | None = None
) -> list[Segment]:
    """Segments in any of ``states``, by id; ``node`` keeps one recorder's segments
    (after a restart a node recovers its own active segments, not its neighbours')."""
    wanted = _checked_states(states, SEGMENT_STATES, "segment")
    statement = select(Segment).where(Segment.state.in_(wanted)).order_by(Segment.id)
    if node is not None:
        statement = statement.where(Segment.node == node)
    return list(session.scalars(statement))
