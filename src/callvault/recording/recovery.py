"""Crash recovery: what a killed process left behind is closed and finalized.

The database says which sessions were live (``segment.state == "active"``); their
capture files hold every packet flushed before the crash (at most
``capture.flush_interval`` is lost). Such a segment is closed as ``interrupted`` at the
time its capture was last written, its open pause intervals are closed, and a
recording is queued for it. Recordings whose finalize never finished are queued again
(finalize is idempotent).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.models import Recording, Segment

log = logging.getLogger(__name__)


def recover_interrupted(db: Session, now: float, data_dir: Path) -> list[int]:
    """Close segments left active; return the recordings to (re)finalize."""
    queue: list[int] = []
    for segment in db.scalars(select(Segment).where(Segment.state == "active")):
        ended = _last_written(data_dir, segment.capture_path) or datetime.fromtimestamp(now, UTC)
        ended = max(ended, segment.started_at)
        segment.state = "interrupted"
        segment.ended_at = ended
        segment.end_reason = "crash_recovery"
        for stream in segment.streams:
            for interval in stream.paused_intervals:
                if interval.ended_at is None:
                    interval.ended_at = ended
        call = segment.call
        if all(s.state != "active" for s in call.segments):
            call.state = "ended"
            call.ended_at = max((s.ended_at for s in call.segments if s.ended_at), default=ended)
            call.duration_s = round((call.ended_at - call.started_at).total_seconds(), 3)
        if segment.streams and not segment.recordings:
            recording = Recording(call_id=call.id, segment_id=segment.id, state="waiting")
            db.add(recording)
        log.warning("segment %d (%s) was interrupted; closing it", segment.id, segment.sip_call_id)
    db.flush()
    for recording in db.scalars(
        select(Recording).where(Recording.state.in_(("waiting", "processing")))
    ):
        queue.append(recording.id)
    return queue


def _last_written(data_dir: Path, capture_path: str | None) -> datetime | None:
    if not capture_path:
        return None
    try:
        return datetime.fromtimestamp((data_dir / capture_path).stat().st_mtime, UTC)
    except OSError:
        return None
