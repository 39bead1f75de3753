"""The finalize job: from a segment's capture to the file people play.

Idempotent and restartable: the recording row says where it is (``waiting`` ->
``processing`` -> ``ready`` | ``failed``); the file is written under a temporary name
and renamed into place, so a crash mid-job leaves either nothing or a whole file, and
running the job again simply redoes it. For now the output is a WAV (16-bit PCM, one
participant per channel) from G.711 streams; the media pipeline issue widens it to
every codec and format behind the same entry point.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from callvault.db import Database
from callvault.db.models import Recording, Segment, Stream
from callvault.media.render import ChannelSpec, StreamSelector, UnsupportedCodec, render_stereo_wav
from callvault.recording.rescan import rescan_capture

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """Which streams (and so which participants) go into one output channel."""

    name: str
    stream_ids: tuple[int, ...]
    participants: tuple[str, ...]
    labels: tuple[str, ...]


def plan_channels(segment: Segment) -> list[ChannelPlan]:
    """One participant (or party) per channel: left is the recorded user, right the rest.

    Streams are grouped by the participant that sends them (SIPREC metadata); a stream
    with no known sender is a party of its own. The recorded user is the participant
    that BroadWorks names as the user, else the first participant the metadata lists.
    With one party the recording is mono (a mixed stream, say).
    """
    groups: dict[str, list[Stream]] = {}
    names: dict[str, tuple[str, ...]] = {}
    preferred: str | None = None
    for stream in sorted(segment.streams, key=lambda s: s.media_index):
        senders = [link.participant for link in stream.participant_links if link.role == "send"]
        key = f"participant:{senders[0].id}" if senders else f"stream:{stream.id}"
        groups.setdefault(key, []).append(stream)
        names.setdefault(key, tuple(p.aor or p.name or p.participant_key for p in senders))
        if senders and senders[0].user_id and preferred is None:
            preferred = key
    keys = list(groups)
    if preferred is not None:
        keys.remove(preferred)
        keys.insert(0, preferred)
    plans: list[ChannelPlan] = []
    for position, key in enumerate(keys[:2]):
        members = groups[key] if position == 0 else [s for k in keys[1:] for s in groups[k]]
        party = names[key] if position == 0 else tuple(n for k in keys[1:] for n in names[k])
        plans.append(
            ChannelPlan(
                name="left" if len(keys) > 1 and position == 0 else "right" if position else "mono",
                stream_ids=tuple(s.id for s in members),
                participants=party,
                labels=tuple(s.label or str(s.media_index) for s in members),
            )
        )
    return plans


def _selector(stream: Stream) -> StreamSelector:
    paused = tuple(
        (i.started_at.timestamp(), i.ended_at.timestamp() if i.ended_at else None)
        for i in stream.paused_intervals
    )
    return StreamSelector(
        local_port=stream.local_port or 0,
        codec=stream.codec or "",
        payload_type=stream.payload_type if stream.payload_type is not None else -1,
        clock_rate=stream.clock_rate or 8000,
        paused=paused,
    )


def finalize_recording(database: Database, data_dir: Path, recording_id: int) -> str:
    """Make recording ``recording_id``'s file; return the state it ends in."""
    job = database.write(lambda s: _claim(s, recording_id, data_dir))
    if job is None:
        return "skipped"
    capture, plans, selectors, start, end, uid = job
    out_dir = data_dir / "recordings" / datetime.fromtimestamp(start, UTC).strftime("%Y/%m/%d")
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{uid}.wav"
    partial = final.with_suffix(".wav.partial")
    try:
        specs = [ChannelSpec(streams=[selectors[i] for i in p.stream_ids]) for p in plans]
        result = render_stereo_wav(capture, specs, partial, start=start, end=end)
        digest, size = _sha256(partial)
        partial.replace(final)
    except (UnsupportedCodec, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        error = str(exc)
        log.error("recording %d failed: %s", recording_id, error)
        database.write(lambda s: _fail(s, recording_id, error))
        return "failed"
    relative = str(final.relative_to(data_dir))
    channel_map = [
        {"channel": p.name, "participants": list(p.participants), "labels": list(p.labels)}
        for p in plans
    ]

    def done(db: Session) -> None:
        recording = db.get(Recording, recording_id)
        if recording is None:
            return
        recording.state = "ready"
        recording.format = "wav"
        recording.codec = "pcm_s16le"
        recording.channels = result.channels
        recording.sample_rate = result.sample_rate
        recording.duration_s = round(result.duration_s, 3)
        recording.size_bytes = size
        recording.sha256 = digest
        recording.path = relative
        recording.channel_map = channel_map
        recording.error = None
        recording.ready_at = datetime.now(UTC)

    database.write(done)
    return "ready"


def _claim(db: Session, recording_id: int, data_dir: Path) -> Any:
    recording = db.get(Recording, recording_id)
    if recording is None or recording.state == "ready" or recording.segment is None:
        return None
    segment = recording.segment
    recording.state = "processing"
    recording.attempts += 1
    recording.started_at = datetime.now(UTC)
    if not segment.capture_path or not (data_dir / segment.capture_path).exists():
        recording.state = "failed"
        recording.error = f"capture file {segment.capture_path} is missing"
        return None
    capture = data_dir / segment.capture_path
    if segment.state == "interrupted":
        rescan_capture(capture, segment)
    plans = plan_channels(segment)
    selectors = {s.id: _selector(s) for s in segment.streams}
    start = segment.started_at.timestamp()
    end = (segment.ended_at or segment.started_at).timestamp()
    return capture, plans, selectors, start, end, recording.uid


def _fail(db: Session, recording_id: int, error: str) -> None:
    recording = db.get(Recording, recording_id)
    if recording is not None:
        recording.state = "failed"
        recording.error = error


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
