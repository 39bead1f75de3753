"""Removing what deleted recordings leave behind: their files and their captures.

The purge job (:mod:`callvault.recording.purge`) commits recordings as ``deleted``
first; the sweep then removes each one's file from the store that holds it (local
directory or S3; plaintext or ``.gpg`` ciphertext: whatever ``path`` names) and clears
``path`` once the store has done it, and removes the raw capture of every segment none
of whose recordings is kept any more (``capture_state`` becomes ``removed``). A store
that fails leaves the row as it was, so the next run tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from callvault.config import Settings
from callvault.db import Database
from callvault.db.models import Recording, Segment
from callvault.store import LocalStore, store_for

__all__ = ["Swept", "file_size", "spent_segments", "sweep"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Swept:
    """What a sweep removed: capture paths, bytes, and what it could not remove."""

    captures: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    errors: list[str] = field(default_factory=list)


def spent_segments(db: Session, going: Collection[int] = ()) -> list[Segment]:
    """Segments with a capture on disk none of whose recordings is kept any more
    (``going``: recordings about to be deleted count as gone)."""
    gone_or_going = Recording.state == "deleted"
    if going:
        gone_or_going = gone_or_going | Recording.id.in_(sorted(going))
    has_gone = exists().where(Recording.segment_id == Segment.id, gone_or_going)
    has_kept = exists().where(
        Recording.segment_id == Segment.id, Recording.kind != "call", ~gone_or_going
    )
    return list(
        db.scalars(
            select(Segment)
            .where(
                Segment.capture_path.is_not(None),
                Segment.capture_path != "",
                Segment.capture_state != "removed",
                has_gone,
                ~has_kept,
            )
            .order_by(Segment.id)
        )
    )


def file_size(data_dir: Path, relative: str | None) -> int:
    if not relative:
        return 0
    try:
        return (data_dir / relative).stat().st_size
    except OSError:
        return 0


def sweep(database: Database, settings: Settings, data_dir: Path) -> Swept:
    """Remove the files of deleted recordings and the captures nobody needs any more."""
    swept = Swept()
    files = database.read(
        lambda db: db.execute(
            select(Recording.id, Recording.store, Recording.path, Recording.size_bytes)
            .where(Recording.state == "deleted", Recording.path.is_not(None))
            .order_by(Recording.id)
        ).all()
    )
    removed: list[int] = []
    # A copy may linger in the other store too: the local file of an upload whose
    # clean-up was cut short (a crash between the switch and the unlink), the object of
    # an interrupted move back to local. Those are removed as well, best effort.
    others = ["local", "s3"] if settings["storage.s3.bucket"] else ["local"]
    for recording_id, store_name, path, size in files:
        try:
            store_for(settings, store_name).delete(str(path))
        except Exception as exc:  # a store outage must not stop the rest of the run
            swept.errors.append(f"recording {recording_id}: cannot delete {path}: {exc}")
            log.error("retention: cannot delete %s of recording %d: %s", path, recording_id, exc)
            continue
        for other in others:
            if other != store_name:
                try:
                    store_for(settings, other).delete(str(path))
                except Exception as exc:
                    log.warning("retention: cannot check %s for %s: %s", other, path, exc)
        removed.append(recording_id)
        swept.bytes_freed += size or 0

    def forget(db: Session) -> None:
        for recording_id in removed:
            row = db.get(Recording, recording_id)
            if row is not None:
                row.path = None

    database.write(forget)
    local = LocalStore(data_dir)
    spent = database.read(lambda db: [(s.id, s.capture_path) for s in spent_segments(db)])
    cleared: list[int] = []
    for segment_id, capture in spent:
        size = file_size(data_dir, capture)
        try:
            local.delete(capture or "")
        except Exception as exc:
            swept.errors.append(f"segment {segment_id}: cannot delete {capture}: {exc}")
            log.error("retention: cannot delete capture %s: %s", capture, exc)
            continue
        cleared.append(segment_id)
        swept.captures.append(capture or "")
        swept.bytes_freed += size

    def mark(db: Session) -> None:
        for segment_id in cleared:
            segment = db.get(Segment, segment_id)
            if segment is not None:
                segment.capture_state = "removed"

    database.write(mark)
    return swept
