"""The finalize job: from a segment's capture to the files people play.

Theory of operation. The recording row says where the job is: ``waiting`` ->
``processing`` -> ``ready`` | ``failed``. The *claim* (one write transaction) reads the
effective recording settings, checks the mixer windows (outside them the row stays
``waiting`` with ``not_before`` set, and the server's scheduler enqueues it again
then), plans the files (``layout``), reserves their names and marks the rows
``processing``. The *work* runs with no transaction open: read the capture once, decode
every stream, mix the channels, encode, analyse. Each file is written under a temporary
name and renamed into place, so a crash leaves either nothing or a whole file, and
running the job again redoes it (the job is idempotent). The *commit* stores size,
SHA-256, channel map, peaks and analysis. Then, when the call's segments are all done
and the policy asks for it, the stitched call recording is made (``stitch``).

``separate`` makes one file per party: the segment's own row holds the first party,
rows of kind ``participant`` the others (found again by ``participant_key`` on a rerun).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callvault.config import Settings, load_settings
from callvault.crypto.openpgp import OpenPGPError
from callvault.crypto.sealing import (
    EncryptionTarget,
    EncryptionUnavailable,
    capture_problem,
    encryption_target,
    mark_encryption,
    sealed_name,
    settle_captures,
    stored_path,
)
from callvault.db import Database
from callvault.db.models import Recording, Segment, Stream, StreamParticipant
from callvault.media.decoders import UnsupportedCodec
from callvault.media.encode import EncodeError, OutputFormat
from callvault.media.session import (
    DecodedStream,
    PayloadFormat,
    StreamSource,
    decode_stream,
    mix,
    read_capture,
    stream_rate,
)
from callvault.recording import retention
from callvault.recording.artifact import Artifact, party_talk, write_artifact
from callvault.recording.events import emit, recording_payload
from callvault.recording.layout import OutputPlan, Party, parties_of, phone_number, plan_outputs
from callvault.recording.policy import RecordingPolicy, policy_from
from callvault.recording.rescan import rescan_capture
from callvault.rtp.pcap import PcapError
from callvault.runtime_settings import effective_settings
from callvault.store import StoreError, store_for
from callvault.store.uploader import stored_locally

log = logging.getLogger(__name__)

Pcm = npt.NDArray[np.int16]

__all__ = ["finalize_recording", "stream_sources"]


@dataclass(frozen=True, slots=True)
class _Output:
    recording_id: int
    plan: OutputPlan
    final: Path  # absolute path of the file to write
    relative: str
    file_name: str
    previous: str | None  # the file an earlier run made (a remake in another format)
    previous_store: str = "local"  # where that file is (the uploader may have moved it)


@dataclass(frozen=True, slots=True)
class _SegmentJob:
    recording_id: int
    call_id: int
    capture: Path
    sources: tuple[StreamSource, ...]
    outputs: tuple[_Output, ...]
    start: float
    end: float
    policy: RecordingPolicy
    encryption: EncryptionTarget | None = None  # encrypt each file to this key


def finalize_recording(
    database: Database,
    data_dir: Path,
    recording_id: int,
    *,
    settings: Settings | None = None,
    now: float | None = None,
    force: bool = False,
) -> str:
    """Make recording ``recording_id``'s file(s); return the state it ends in.

    ``force`` ignores the mixer windows (an operator asking for it now). Returns
    ``ready``, ``failed``, ``deferred`` (waiting for a mixer window) or ``skipped``.
    """
    from callvault.recording import stitch  # the stitch path builds on this module

    base = settings or load_settings({"data_dir": str(data_dir)})
    moment = time.time() if now is None else now
    kind = database.read(
        lambda s: s.scalar(select(Recording.kind).where(Recording.id == recording_id))
    )
    if kind is None:
        return "skipped"
    if kind == "call":
        return stitch.make_stitched(database, data_dir, recording_id, base, moment, force)
    claim = database.write(lambda s: _claim(s, recording_id, data_dir, base, moment, force))
    if isinstance(claim, str):
        return claim
    try:
        results = _work(claim)
    except Exception as exc:
        error = describe_failure(f"recording {recording_id}", exc)
        ids = [o.recording_id for o in claim.outputs] or [recording_id]
        database.write(lambda s: fail_recordings(s, ids, error))
        return "failed"
    database.write(lambda s: _commit(s, base, claim, results))
    sealed = claim.encryption is not None
    made = {stored_path(output.relative, sealed) for output in claim.outputs}
    remove_replaced(database, base, [(o.previous_store, o.previous) for o in claim.outputs], made)
    stitched = None
    if claim.policy.stitch == "transfers":
        stitched = stitch.stitch_if_complete(database, data_dir, claim.call_id, base, moment)
    if stitched != "ready":  # a stitched recording made just now settled them already
        settle_captures(database, data_dir, claim.call_id, base)
    return "ready"


# -- claim ----------------------------------------------------------------------------


def _claim(
    db: Session, recording_id: int, data_dir: Path, base: Settings, now: float, force: bool
) -> _SegmentJob | str:
    recording = db.get(Recording, recording_id)
    if recording is None or recording.segment_id is None:
        return "skipped"
    if (recording.state == "ready" and not force) or recording.state == "deleted":
        return "skipped"  # a deleted recording (retention) is never made again
    if gave_up(recording):
        return "failed"
    settings = effective_settings(db, base)
    policy = policy_from(settings)
    if not force and (wait := policy.wait_until(now)) is not None:
        recording.state = "waiting"
        recording.not_before = wait
        return "deferred"
    try:
        encryption = encryption_target(db, settings)
    except EncryptionUnavailable as exc:
        recording.state, recording.error = "failed", str(exc)
        return "failed"
    segment = db.scalars(
        select(Segment)
        .where(Segment.id == recording.segment_id)
        .options(
            selectinload(Segment.participants),
            selectinload(Segment.streams).selectinload(Stream.paused_intervals),
            selectinload(Segment.streams)
            .selectinload(Stream.participant_links)
            .selectinload(StreamParticipant.participant),
        )
    ).one()
    if problem := capture_problem(segment):
        if recording.state == "ready":  # keep the file it has; say why nothing was made
            log.warning("recording %s not made again: %s", recording.id, problem)
            return "skipped"
        recording.state, recording.error = "failed", problem
        return "failed"
    recording.attempts += 1
    recording.started_at = datetime.now(UTC)
    recording.not_before = None
    if not segment.capture_path or not (data_dir / segment.capture_path).exists():
        recording.state = "failed"
        recording.error = f"capture file {segment.capture_path} is missing"
        return "failed"
    capture = data_dir / segment.capture_path
    if segment.state == "interrupted":
        rescan_capture(capture, segment)
    parties = parties_of(segment, policy.internal_aors)
    plans = plan_outputs(parties, policy.layout, policy.left_channel)
    start = segment.started_at.timestamp()
    end = (segment.ended_at or segment.started_at).timestamp()
    outputs = _reserve(db, recording, plans, parties, policy, data_dir, encryption is not None)
    return _SegmentJob(
        recording_id=recording.id,
        call_id=recording.call_id,
        capture=capture,
        sources=stream_sources(segment.streams),
        outputs=outputs,
        start=start,
        end=end,
        policy=policy,
        encryption=encryption,
    )


#: Claims of a recording whose job never got to record an outcome (its worker died, as a
#: crash in native code does) before it is given up as failed.
MAX_ATTEMPTS = 3


def gave_up(recording: Recording) -> bool:
    """Mark a recording failed when its earlier jobs kept dying; True if it was."""
    if recording.state != "processing" or recording.attempts < MAX_ATTEMPTS:
        return False
    recording.state = "failed"
    recording.error = (
        f"given up after {recording.attempts} attempts: the job died each time (see the server log)"
    )
    return True


def stream_sources(streams: list[Stream]) -> tuple[StreamSource, ...]:
    """What finalize needs of each stream row: port, payload types, pauses."""
    out = []
    for stream in streams:
        types = {
            int(pt): PayloadFormat(
                str(v.get("codec", "")),
                int(v.get("clock_rate") or 8000),
                int(v.get("channels") or 1),
                v.get("fmtp"),
            )
            for pt, v in (stream.payload_types or {}).items()
        }
        if not types and stream.payload_type is not None and stream.codec:
            # Rows written before payload types were kept: the one codec they name.
            types = {stream.payload_type: PayloadFormat(stream.codec, stream.clock_rate or 8000)}
        paused = tuple(
            (i.started_at.timestamp(), i.ended_at.timestamp() if i.ended_at else None)
            for i in stream.paused_intervals
        )
        out.append(StreamSource(stream.id, stream.local_port or 0, types, paused))
    return tuple(out)


def _reserve(
    db: Session,
    recording: Recording,
    plans: list[OutputPlan],
    parties: list[Party],
    policy: RecordingPolicy,
    data_dir: Path,
    sealed: bool = False,
) -> tuple[_Output, ...]:
    """Rows and file names for every planned file; marks them processing."""
    existing = {
        r.participant_key: r
        for r in db.scalars(
            select(Recording).where(
                Recording.segment_id == recording.segment_id, Recording.kind == "participant"
            )
        )
    }
    started = recording.segment.started_at if recording.segment else recording.created_at
    outputs = []
    for index, plan in enumerate(plans):
        row = recording
        if index and plan.participant_key is not None:
            kept = existing.get(plan.participant_key)
            if kept is not None and kept.state == "deleted":
                continue  # deleted by retention while a sibling is held: stays deleted
            row = kept or Recording(
                call_id=recording.call_id,
                segment_id=recording.segment_id,
                kind="participant",
                participant_key=plan.participant_key,
            )
            db.add(row)
            db.flush()
        elif plan.participant_key is not None:
            row.participant_key = plan.participant_key
        row.state = "processing"
        row.error = None
        left = plan.channels[0].parties[0] if plan.channels and plan.channels[0].parties else None
        named = [p for c in plan.channels for p in c.parties]
        relative, file_name = policy.file_path(
            db,
            row,
            when=started,
            phone_number=phone_number(parties if plan.participant_key is None else named, left),
            name=_agent_name(named),
            data_dir=data_dir,
        )
        if sealed:
            relative, file_name = sealed_name(db, row, relative, file_name, data_dir)
        outputs.append(
            _Output(row.id, plan, data_dir / relative, relative, file_name, row.path, row.store)
        )
    return tuple(outputs)


def _agent_name(parties: list[Party]) -> str | None:
    for party in parties:
        if party.internal and party.name:
            return party.name
    return next((p.name for p in parties if p.name), None)


# -- work -----------------------------------------------------------------------------


def _work(job: _SegmentJob) -> list[tuple[_Output, Artifact]]:
    wanted = {s.local_port for s in job.sources if s.local_port}
    capture = read_capture(job.capture, wanted)
    rate = max((stream_rate(s) for s in job.sources), default=8000)
    decoded = {
        s.key: decode_stream(
            s, capture.packets.get(s.local_port, []), sample_rate=rate, start=job.start, end=job.end
        )
        for s in job.sources
    }
    total = max(0, round((job.end - job.start) * rate))
    results = []
    for output in job.outputs:
        output.final.parent.mkdir(parents=True, exist_ok=True)
        artifact = render_plan(
            output.plan,
            decoded,
            job.sources,
            rate,
            total,
            job.start,
            output.final,
            job.policy,
            job.encryption,
        )
        results.append((output, artifact))
    return results


def render_plan(
    plan: OutputPlan,
    decoded: dict[int, DecodedStream],
    sources: tuple[StreamSource, ...],
    rate: int,
    total: int,
    start: float,
    final: Path,
    policy: RecordingPolicy,
    seal: EncryptionTarget | None = None,
) -> Artifact:
    """Mix one planned file's channels from decoded streams, then encode and analyse it
    (and encrypt it, with ``seal``)."""
    pauses = {s.key: s.paused for s in sources}
    end = start + total / rate
    channels: list[Pcm] = []
    talk: list[dict[str, Any]] = []
    paused: list[list[tuple[float, float]]] = []
    dtmf: list[dict[str, Any]] = []
    for index, channel in enumerate(plan.channels):
        streams = [decoded[i] for i in channel.stream_ids if i in decoded]
        channels.append(mix([s.pcm for s in streams], total))
        for party in channel.parties:
            own = [decoded[i].pcm for i in party.stream_ids if i in decoded]
            talk.append(
                party_talk(party.label, index, mix(own, total) if own else channels[-1], rate)
            )
        paused.append(
            [
                (a - start, (b if b is not None else end) - start)
                for s in streams
                for a, b in pauses.get(s.key, ())
            ]
        )
        for stream in streams:
            dtmf += [
                {
                    "at": round(e.start - start, 3),
                    "digit": e.digit,
                    "duration": round(e.duration, 3),
                    "channel": index,
                }
                for e in stream.dtmf
            ]
    extra: dict[str, Any] = {
        "streams": [
            {
                "stream_id": s.key,
                "packets": s.packets,
                "decoded": s.used,
                "undecodable": s.undecodable,
                "concealed_gaps": s.concealed,
                "unsupported": s.unsupported,
                "seconds_with_audio": round(s.seconds_covered, 3),
            }
            for s in decoded.values()
            if any(s.key in c.stream_ids for c in plan.channels)
        ]
    }
    if plan.rule_note:
        extra["notes"] = [plan.rule_note]
    return write_artifact(
        final,
        channels,
        rate,
        policy.output_format,
        talk=talk,
        paused=paused,
        dtmf=dtmf,
        extra=extra,
        seal=seal,
    )


# -- commit ---------------------------------------------------------------------------


def _commit(
    db: Session, base: Settings, job: _SegmentJob, results: list[tuple[_Output, Artifact]]
) -> None:
    rows: list[Recording] = []
    for output, artifact in results:
        row = db.get(Recording, output.recording_id)
        if row is None:
            continue
        apply_artifact(row, artifact, output.relative, output.file_name, job.policy)
        row.channel_map = [c.as_json() for c in output.plan.channels]
        rows.append(row)
    db.flush()
    # The deletion date of the retention policy (and the call's own), before anyone is
    # told the recording is ready, so the payload and the API agree from the start.
    retention.schedule_recordings(db, base, [row.id for row in rows])
    for row in rows:
        emit(db, "recording.ready", recording_payload(row))


def apply_artifact(
    row: Recording, artifact: Artifact, relative: str, file_name: str, policy: RecordingPolicy
) -> None:
    encoded = artifact.file
    fmt: OutputFormat = policy.output_format
    row.state = "ready"
    row.format = fmt.container
    row.codec = encoded.codec
    row.channels = encoded.channels
    row.sample_rate = encoded.sample_rate
    row.duration_s = round(encoded.duration_s, 3)
    row.size_bytes = encoded.size_bytes
    row.sha256 = encoded.sha256
    row.path = relative
    row.file_name = file_name
    row.layout = policy.layout
    row.channel_rule = policy.left_channel
    row.options = policy.format_options
    row.peaks = artifact.peaks
    row.peaks_per_second = artifact.peaks_per_second
    row.analysis = artifact.analysis
    mark_encryption(row, artifact.sealed, encoded)
    row.error = None
    row.ready_at = datetime.now(UTC)
    stored_locally(row, row.ready_at)  # a remake is local again (with S3: uploaded again)


def remove_replaced(
    database: Database, base: Settings, previous: list[tuple[str, str | None]], made: set[str]
) -> None:
    """Delete the files earlier runs made (``(store, path)`` pairs), now that the new
    ones (``made``, local paths) are committed: one under another name (a remake in
    another format must not leave the old file behind), and one under the same name
    kept in another store (the S3 copy of a recording now made again locally). A store
    that cannot be reached keeps its file (``callvault verify`` lists it as belonging to
    no recording)."""
    replaced = [
        (name, path) for name, path in previous if path and (path not in made or name != "local")
    ]
    if not replaced:
        return
    settings = database.read(lambda db: effective_settings(db, base, check=False))
    for name, path in replaced:
        assert path is not None
        try:
            store_for(settings, name).delete(path)
        except StoreError as exc:
            log.warning("could not remove the replaced file %s from %s: %s", path, name, exc)


_BAD_INPUT = (UnsupportedCodec, EncodeError, PcapError, OSError, ValueError, OpenPGPError)


def describe_failure(what: str, exc: Exception) -> str:
    """The error stored on a failed recording; logged, with a traceback for a bug.

    Anything else than bad input (a capture that cannot be read, a format that cannot
    take this audio) is a bug: the row says so too, instead of staying ``processing``
    and looking like work in progress for ever.
    """
    if isinstance(exc, _BAD_INPUT):
        error = f"{type(exc).__name__}: {exc}"
        log.error("%s failed: %s", what, error)
    else:
        error = f"internal error: {type(exc).__name__}: {exc}"
        log.exception("%s failed: %s", what, error)
    return error


def fail_recordings(db: Session, recording_ids: list[int], error: str) -> None:
    """Say why the job failed. A recording made before (a remake failed) stays ready
    with its earlier file, which nothing touched: only a commit replaces it."""
    for recording_id in recording_ids:
        recording = db.get(Recording, recording_id)
        if recording is None:
            continue
        if recording.ready_at is not None and recording.path and recording.sha256:
            recording.state = "ready"
            recording.error = f"making it again failed, the earlier file stays: {error}"
        else:
            recording.state = "failed"
            recording.error = error
