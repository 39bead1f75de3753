"""Stitched call recordings: every segment of a call on the call's own timeline.

A transferred call is several recording sessions (segments) of one call (REQUIREMENTS
D4, U1). With ``recording.stitch = transfers`` the call also gets one recording of kind
``call`` that joins them (X9): each segment is decoded again from its capture (not from
its encoded file, which would add a second generation of coding loss), mixed by the
same layout rules, and placed at its start time on the call's timeline; overlapping
segments (a consultation during an attended transfer) are summed, gaps are silence.

Channels stay meaningful across segments: in stereo the left channel holds each
segment's left party (with the default rule, whichever agent had the call then) and
the right channel the others. A segment with a single voice goes left when that party
is internal, right when external, and to both channels when it is a mixed stream.
``separate`` has no stitched form of its own: stitched recordings use ``stereo`` then.

The stitched recording is (re)made when every segment of the call has ended and been
finalized; a segment arriving later (the call came back) makes it again. It is made on
demand too (``callvault calls stitch``). It needs every segment's raw capture: once
captures are encrypted or removed (``encryption.captures``) it is not made again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callvault.config import Settings
from callvault.crypto.sealing import (
    EncryptionTarget,
    EncryptionUnavailable,
    capture_problem,
    encryption_target,
    sealed_name,
    settle_captures,
    stored_path,
)
from callvault.db import Database
from callvault.db.models import Call, Recording, Segment, Stream, StreamParticipant
from callvault.media.session import StreamSource, decode_stream, mix, read_capture, stream_rate
from callvault.recording import retention
from callvault.recording.artifact import party_talk, write_artifact
from callvault.recording.events import emit, recording_payload
from callvault.recording.finalize import (
    apply_artifact,
    describe_failure,
    fail_recordings,
    gave_up,
    remove_replaced,
    stream_sources,
)
from callvault.recording.layout import OutputPlan, Party, parties_of, phone_number, plan_outputs
from callvault.recording.policy import RecordingPolicy, policy_from
from callvault.runtime_settings import effective_settings

__all__ = ["make_stitched", "request_stitch", "stitch_if_complete"]

log = logging.getLogger(__name__)

Pcm = npt.NDArray[np.int16]

_DONE = ("ready", "failed")
_NO_MEDIA = ("active", "metadata_only", "rejected")


@dataclass(frozen=True, slots=True)
class _Piece:
    segment_id: int
    capture: Path
    sources: tuple[StreamSource, ...]
    plan: OutputPlan
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class _StitchJob:
    recording_id: int
    pieces: tuple[_Piece, ...]
    start: float
    end: float
    final: Path
    relative: str
    file_name: str
    policy: RecordingPolicy
    channels: int
    previous: str | None
    previous_store: str
    call_id: int
    encryption: EncryptionTarget | None = None


def _load_call(db: Session, call_id: int) -> Call | None:
    return db.scalars(
        select(Call)
        .where(Call.id == call_id)
        .options(
            selectinload(Call.recordings),
            selectinload(Call.segments).selectinload(Segment.participants),
            selectinload(Call.segments).selectinload(Segment.recordings),
            selectinload(Call.segments)
            .selectinload(Segment.streams)
            .selectinload(Stream.paused_intervals),
            selectinload(Call.segments)
            .selectinload(Segment.streams)
            .selectinload(Stream.participant_links)
            .selectinload(StreamParticipant.participant),
        )
    ).one_or_none()


def _media_segments(call: Call) -> list[Segment]:
    return [s for s in call.segments if s.state not in _NO_MEDIA and s.capture_path]


def request_stitch(db: Session, call_id: int, *, only_if_complete: bool) -> int | None:
    """The call's stitched recording row, created or set ``waiting``; None when not due.

    With ``only_if_complete`` it is due only when the call has two or more segments
    with media, none is still live, every segment recording is done, and the stitched
    file (if any) does not already cover exactly these segments.
    """
    call = _load_call(db, call_id)
    if call is None:
        return None
    segments = _media_segments(call)
    stitched = next((r for r in call.recordings if r.kind == "call"), None)
    if only_if_complete:
        if len(segments) < 2 or any(s.state == "active" for s in call.segments):
            return None
        pending = [
            r for s in segments for r in s.recordings if r.kind != "call" and r.state not in _DONE
        ]
        if pending:
            return None
        if stitched is not None and stitched.state in ("processing", "waiting"):
            return None  # already on its way
        covered = (stitched.analysis or {}).get("segment_ids") if stitched else None
        if (
            stitched is not None
            and stitched.state == "ready"
            and covered == [s.id for s in segments]
        ):
            return None  # made already, from exactly these segments
    if stitched is not None and stitched.state == "deleted":
        return None  # deleted by retention: never made again
    if not segments or (only_if_complete and any(capture_problem(s) for s in segments)):
        return None
    if stitched is None:
        stitched = Recording(call_id=call.id, segment_id=None, kind="call", state="waiting")
        db.add(stitched)
        db.flush()
    else:
        stitched.state = "waiting"
    return stitched.id


def stitch_if_complete(
    database: Database, data_dir: Path, call_id: int, base: Settings, now: float
) -> str | None:
    """Make the call's stitched recording if it is due (called after each finalize)."""
    recording_id = database.write(lambda s: request_stitch(s, call_id, only_if_complete=True))
    if recording_id is None:
        return None
    return make_stitched(database, data_dir, recording_id, base, now, force=False)


def make_stitched(
    database: Database,
    data_dir: Path,
    recording_id: int,
    base: Settings,
    now: float,
    force: bool,
) -> str:
    claim = database.write(lambda s: _claim(s, recording_id, data_dir, base, now, force))
    if isinstance(claim, str):
        return claim
    try:
        artifact = _work(claim)
    except Exception as exc:
        error = describe_failure(f"stitched recording {recording_id}", exc)
        database.write(lambda s: fail_recordings(s, [recording_id], error))
        return "failed"

    def commit(db: Session) -> None:
        row = db.get(Recording, recording_id)
        if row is None:
            return
        apply_artifact(row, artifact, claim.relative, claim.file_name, claim.policy)
        row.channel_map = _channel_map(claim)
        db.flush()
        retention.schedule_recordings(db, base, [row.id])
        emit(db, "recording.ready", recording_payload(row))

    database.write(commit)
    made = stored_path(claim.relative, claim.encryption is not None)
    remove_replaced(database, base, [(claim.previous_store, claim.previous)], {made})
    settle_captures(database, data_dir, claim.call_id, base)
    return "ready"


def _claim(
    db: Session, recording_id: int, data_dir: Path, base: Settings, now: float, force: bool
) -> _StitchJob | str:
    row = db.get(Recording, recording_id)
    if row is None or row.kind != "call" or row.state == "deleted":
        return "skipped"
    if gave_up(row):
        return "failed"
    settings = effective_settings(db, base)
    policy = policy_from(settings)
    if not force and (wait := policy.wait_until(now)) is not None:
        row.state, row.not_before = "waiting", wait
        return "deferred"
    call = _load_call(db, row.call_id)
    assert call is not None
    try:
        encryption = encryption_target(db, settings)
        problem = next(filter(None, map(capture_problem, _media_segments(call))), None)
    except EncryptionUnavailable as exc:
        problem = str(exc)
    if problem:
        # A stitched file made before stays (the row is ready again); else it failed.
        row.state, row.error = ("ready", None) if row.sha256 else ("failed", problem)
        log.warning("stitched recording %s not made: %s", row.id, problem)
        return "failed"
    layout = "stereo" if policy.layout == "separate" else policy.layout
    pieces: list[_Piece] = []
    everyone: list[Party] = []
    for segment in _media_segments(call):
        capture = data_dir / (segment.capture_path or "")
        if not capture.exists():
            continue
        parties = parties_of(segment, policy.internal_aors)
        plans = plan_outputs(parties, layout, policy.left_channel)
        if not plans:
            continue
        everyone += parties
        pieces.append(
            _Piece(
                segment.id,
                capture,
                stream_sources(segment.streams),
                plans[0],
                segment.started_at.timestamp(),
                (segment.ended_at or segment.started_at).timestamp(),
            )
        )
    row.attempts += 1
    row.started_at = datetime.now(UTC)
    row.not_before = None
    if not pieces:
        row.state, row.error = "failed", "no segment of the call has a capture to stitch"
        return "failed"
    row.state, row.error = "processing", None
    start = min(p.start for p in pieces)
    agents = [p for p in everyone if p.internal and p.name]
    relative, file_name = policy.file_path(
        db,
        row,
        when=datetime.fromtimestamp(start, UTC),
        phone_number=phone_number(everyone),
        name=agents[0].name if agents else None,
        data_dir=data_dir,
    )
    if encryption is not None:
        relative, file_name = sealed_name(db, row, relative, file_name, data_dir)
    return _StitchJob(
        recording_id=row.id,
        pieces=tuple(pieces),
        start=start,
        end=max(p.end for p in pieces),
        final=data_dir / relative,
        relative=relative,
        file_name=file_name,
        policy=policy,
        channels=1 if layout == "mono" else 2,
        previous=row.path,
        previous_store=row.store,
        call_id=row.call_id,
        encryption=encryption,
    )


def _targets(plan: OutputPlan, channels: int) -> list[list[int]]:
    """For each of the plan's channels, the stitched channels it goes into."""
    if channels == 1:
        return [[0] for _ in plan.channels]
    if len(plan.channels) == 2:
        return [[0], [1]]
    parties = plan.channels[0].parties
    if len(parties) == 1 and parties[0].key.startswith("stream:"):
        return [[0, 1]]  # a mixed stream: both voices, both sides
    return [[0] if parties and all(p.internal for p in parties) else [1]]


def _work(job: _StitchJob) -> Any:
    rate = max(stream_rate(s) for p in job.pieces for s in p.sources) if job.pieces else 8000
    total = max(0, round((job.end - job.start) * rate))
    acc = np.zeros((job.channels, total), dtype=np.int32)
    talk: list[dict[str, Any]] = []
    paused: list[list[tuple[float, float]]] = [[] for _ in range(job.channels)]
    dtmf: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    for piece in job.pieces:
        capture = read_capture(piece.capture, {s.local_port for s in piece.sources})
        length = max(0, round((piece.end - piece.start) * rate))
        decoded = {
            s.key: decode_stream(
                s,
                capture.packets.get(s.local_port, []),
                sample_rate=rate,
                start=piece.start,
                end=piece.end,
            )
            for s in piece.sources
        }
        offset = round((piece.start - job.start) * rate)
        shift = offset / rate
        pauses = {s.key: s.paused for s in piece.sources}
        for channel, targets in zip(
            piece.plan.channels, _targets(piece.plan, job.channels), strict=True
        ):
            streams = [decoded[i] for i in channel.stream_ids if i in decoded]
            pcm = mix([s.pcm for s in streams], length)
            n = min(length, total - offset)
            for target in targets:
                acc[target, offset : offset + n] += pcm[:n]
                paused[target] += [
                    (a - job.start, (b if b is not None else piece.end) - job.start)
                    for s in streams
                    for a, b in pauses.get(s.key, ())
                ]
            for party in channel.parties:
                own = [decoded[i].pcm for i in party.stream_ids if i in decoded]
                talk.append(party_talk(party.label, targets[0], mix(own, length), rate, shift))
            dtmf += [
                {
                    "at": round(e.start - job.start, 3),
                    "digit": e.digit,
                    "duration": round(e.duration, 3),
                    "channel": targets[0],
                }
                for s in streams
                for e in s.dtmf
            ]
        segments.append(
            {
                "segment_id": piece.segment_id,
                "start": round(shift, 3),
                "end": round(piece.end - job.start, 3),
                "channel_map": [c.as_json() for c in piece.plan.channels],
            }
        )
    channels = list(np.clip(acc, -32768, 32767).astype(np.int16))
    job.final.parent.mkdir(parents=True, exist_ok=True)
    return write_artifact(
        job.final,
        channels,
        rate,
        job.policy.output_format,
        talk=talk,
        paused=paused,
        dtmf=dtmf,
        extra={"segments": segments, "segment_ids": [p.segment_id for p in job.pieces]},
        seal=job.encryption,
    )


def _channel_map(job: _StitchJob) -> list[dict[str, Any]]:
    names = ["mono"] if job.channels == 1 else ["left", "right"]
    out: list[dict[str, Any]] = [{"channel": n, "participants": []} for n in names]
    for piece in job.pieces:
        for channel, targets in zip(
            piece.plan.channels, _targets(piece.plan, job.channels), strict=True
        ):
            for target in targets:
                for party in channel.parties:
                    if party.label not in out[target]["participants"]:
                        out[target]["participants"].append(party.label)
    return out
