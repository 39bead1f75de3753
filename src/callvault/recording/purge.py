"""The purge job: delete the recordings whose time is up (REQUIREMENTS T5, X8, W2).

Theory of operation. First the policy is applied (:func:`retention.sync_policy`, then
dates for recordings that have none yet). Then, in batches of short write transactions,
every kept recording whose ``retain_until`` has passed and that no legal hold protects
is marked ``deleted`` (with ``deleted_at``), announced (webhook ``recording.deleted``),
audited (``recording.delete``) and its share links are deleted; a call's stitched
recording goes only once every segment recording of the call is gone. The hold check
and the marking commit together, so a hold placed at any moment either stops the
deletion or comes after it.

Files go after that commit (the *sweep*, :mod:`callvault.recording.sweep`): every
deleted recording whose row still names a file has it removed from its store (local
directory or S3, plaintext or ``.gpg``), then its ``path`` is cleared; the raw capture
of a segment goes once none of the segment's recordings is kept. A store that fails
leaves the row naming the file, and the next run tries again: nothing is forgotten,
and running the job twice is harmless.
With ``retention.delete_metadata`` a call whose recordings and captures are all gone is
deleted too (unless held); otherwise its metadata stays.

A dry run applies the policy (as the server would within minutes anyway) and reports
what would go, deleting nothing. Every real run leaves a ``retention.purge`` audit line
with its counts; the server runs the job when the last such line is a day old
(:func:`retention_tick`), so a restart never skips a day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from callvault.config import Settings
from callvault.db import Database
from callvault.db.accounts import AuditEvent, ShareLink
from callvault.db.models import Call, Recording, Segment
from callvault.db.safety import LegalHold
from callvault.recording import retention
from callvault.recording.events import emit, recording_payload
from callvault.recording.sweep import file_size, spent_segments, sweep
from callvault.runtime_settings import effective_settings

__all__ = [
    "PURGE_EVERY",
    "TICK_SECONDS",
    "PurgeReport",
    "PurgedRecording",
    "last_purge",
    "purge",
    "retention_tick",
    "run_retention",
]

log = logging.getLogger(__name__)

#: How often the server runs the purge job.
PURGE_EVERY = timedelta(days=1)
#: Seconds between the server's looks at the policy (a change applies within this).
TICK_SECONDS = 600.0
#: Recordings marked deleted per write transaction (keeps SQLite's writer lock short).
BATCH = 200
# The audit lines of runs (real ones tell the server when the job last ran).
_PURGE_TARGET = ("retention", "purge")
_DRY_RUN_TARGET = ("retention", "dry-run")


@dataclass(frozen=True, slots=True)
class PurgedRecording:
    id: int
    call_id: int
    kind: str
    retain_until: datetime | None
    size_bytes: int
    store: str
    path: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "call_id": self.call_id,
            "kind": self.kind,
            "retain_until": _iso(self.retain_until),
            "size_bytes": self.size_bytes,
            "store": self.store,
        }


@dataclass(slots=True)
class PurgeReport:
    """What a run deleted (or, in a dry run, would delete)."""

    as_of: datetime
    dry_run: bool
    recordings: list[PurgedRecording] = field(default_factory=list)
    captures: list[str] = field(default_factory=list)
    calls_deleted: list[int] = field(default_factory=list)
    share_links: int = 0
    held: list[int] = field(default_factory=list)  # due, but kept by a legal hold
    bytes_freed: int = 0
    rescheduled: int = 0  # recordings whose date the policy changed before the run
    errors: list[str] = field(default_factory=list)

    @property
    def call_ids(self) -> list[int]:
        return sorted({r.call_id for r in self.recordings})

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": _iso(self.as_of),
            "dry_run": self.dry_run,
            "recordings": [r.as_json() for r in self.recordings],
            "recording_ids": [r.id for r in self.recordings],
            "call_ids": self.call_ids,
            "captures": list(self.captures),
            "calls_deleted": list(self.calls_deleted),
            "share_links": self.share_links,
            "held": list(self.held),
            "bytes_freed": self.bytes_freed,
            "rescheduled": self.rescheduled,
            "errors": list(self.errors),
        }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True, slots=True)
class _Actor:
    name: str
    user_id: int | None = None
    ip: str | None = None

    def audit(self, db: Session, action: str, target: tuple[str, object], **detail: Any) -> None:
        db.add(
            AuditEvent(
                user_id=self.user_id,
                actor=self.name,
                action=action,
                target_type=target[0],
                target_id=str(target[1]),
                ip=self.ip,
                detail={k: v for k, v in detail.items() if v is not None},
            )
        )


# -- the run ---------------------------------------------------------------------------------


def purge(
    database: Database,
    now: datetime,
    dry_run: bool = False,
    *,
    base: Settings,
    data_dir: Path,
    as_of: datetime | None = None,
    actor: str = "retention",
    user_id: int | None = None,
    ip: str | None = None,
) -> PurgeReport:
    """Run retention: delete (or with ``dry_run`` list) what is due at ``as_of``.

    ``now`` is the real time (deletion times, the limited tier's switch); ``as_of``
    (default ``now``) is the moment whose due recordings go: a later date answers "what
    would go by then". ``actor`` names who ran it in the audit log ("retention" for the
    server's daily run, "cli:<login>" for the command, a user's login for the API).
    """
    when = as_of or now
    who = _Actor(actor, user_id, ip)
    report = PurgeReport(as_of=when, dry_run=dry_run)

    def prepare(db: Session) -> int:
        changed = retention.sync_policy(db, base, now, actor=actor)
        policy = retention.retention_policy(db, base, now)
        return changed + retention.schedule_unscheduled(db, policy)

    report.rescheduled = database.write(prepare)
    settings = database.read(lambda db: effective_settings(db, base, check=False))
    if dry_run:
        database.read(lambda db: _plan(db, report, data_dir, settings["retention.delete_metadata"]))
        database.write(lambda db: _audit_run(db, who, report, _DRY_RUN_TARGET))
        return report
    for stitched in (False, True):  # segment recordings first: a stitched one waits for them
        after: int | None = 0
        while after is not None:
            after = database.write(partial(_delete_batch, report, who, now, after, stitched))
    swept = sweep(database, settings, data_dir)
    report.captures += swept.captures
    report.bytes_freed += swept.bytes_freed
    report.errors += swept.errors
    if settings["retention.delete_metadata"]:
        database.write(lambda db: _delete_calls(db, report, who))
    database.write(lambda db: _audit_run(db, who, report, _PURGE_TARGET))
    return report


def _audit_run(db: Session, who: _Actor, report: PurgeReport, target: tuple[str, str]) -> None:
    who.audit(
        db,
        "retention.purge",
        target,
        as_of=_iso(report.as_of),
        dry_run=report.dry_run or None,
        recordings=len(report.recordings),
        calls=len(report.call_ids),
        captures=len(report.captures),
        calls_deleted=len(report.calls_deleted),
        share_links=report.share_links,
        held=len(report.held),
        bytes_freed=report.bytes_freed,
        errors=len(report.errors) or None,
    )


def _due(db: Session, as_of: datetime, *conditions: Any) -> Any:
    return (
        select(Recording)
        .where(
            Recording.state.in_(retention.RETAINED_STATES),
            Recording.deleted_at.is_(None),
            Recording.retain_until <= as_of,
            *conditions,
        )
        .order_by(Recording.id)
    )


def _blocked_stitch(db: Session, stitched: Recording, as_of: datetime, going: set[int]) -> bool:
    """Whether a segment recording of the stitched one's call is still kept."""
    siblings = db.scalars(
        select(Recording).where(
            Recording.call_id == stitched.call_id,
            Recording.kind != "call",
            Recording.state != "deleted",
        )
    ).all()
    due = {
        r.id
        for r in siblings
        if r.state in retention.RETAINED_STATES
        and r.retain_until is not None
        and r.retain_until <= as_of
    }
    held = retention.held_recording_ids(db, due)
    return any(r.id not in going and (r.id not in due or r.id in held) for r in siblings)


def _delete_batch(
    report: PurgeReport, who: _Actor, now: datetime, after: int, stitched: bool, db: Session
) -> int | None:
    """Mark one batch deleted; returns the last id looked at (None: nothing left)."""
    kind = Recording.kind == "call" if stitched else Recording.kind != "call"
    rows = db.scalars(
        _due(db, report.as_of, kind, Recording.id > after).limit(BATCH).with_for_update()
    ).all()
    if not rows:
        return None
    held = retention.held_recording_ids(db, [r.id for r in rows])
    touched: set[int] = set()
    gone: list[int] = []
    for row in rows:
        if row.id in held:
            report.held.append(row.id)
            continue
        if stitched and _blocked_stitch(db, row, report.as_of, set()):
            continue
        report.recordings.append(_purged(row))
        emit(db, "recording.deleted", recording_payload(row))
        who.audit(
            db,
            "recording.delete",
            ("recording", row.id),
            call_id=row.call_id,
            kind=row.kind,
            reason="retention",
            retain_until=_iso(row.retain_until),
            as_of=_iso(report.as_of),
            size_bytes=row.size_bytes,
            store=row.store,
        )
        # The file goes after this commits (the sweep); its path stays until it is gone.
        row.state = "deleted"
        row.deleted_at = now
        gone.append(row.id)
        touched.add(row.call_id)
    if gone:
        removed = db.execute(delete(ShareLink).where(ShareLink.recording_id.in_(gone)))
        report.share_links += int(getattr(removed, "rowcount", 0) or 0)
        emptied = [c for c in touched if not _kept(db, c)]
        if emptied:
            removed = db.execute(delete(ShareLink).where(ShareLink.call_id.in_(emptied)))
            report.share_links += int(getattr(removed, "rowcount", 0) or 0)
    db.flush()
    return int(rows[-1].id)


def _kept(db: Session, call_id: int) -> bool:
    """Whether the call still has a recording that is not deleted."""
    return (
        db.scalar(
            select(Recording.id)
            .where(Recording.call_id == call_id, Recording.state != "deleted")
            .limit(1)
        )
        is not None
    )


def _purged(row: Recording) -> PurgedRecording:
    return PurgedRecording(
        row.id, row.call_id, row.kind, row.retain_until, row.size_bytes or 0, row.store, row.path
    )


# -- dry run --------------------------------------------------------------------------------


def _plan(db: Session, report: PurgeReport, data_dir: Path, delete_metadata: bool) -> None:
    """Fill ``report`` with what a real run at ``report.as_of`` would delete."""
    due = db.scalars(_due(db, report.as_of)).all()
    held = retention.held_recording_ids(db, [r.id for r in due])
    report.held = sorted(held)
    going = {r.id for r in due if r.id not in held and r.kind != "call"}
    for row in due:
        if (
            row.kind == "call"
            and row.id not in held
            and not _blocked_stitch(db, row, report.as_of, going)
        ):
            going.add(row.id)
    chosen = [r for r in due if r.id in going]
    report.recordings = [_purged(r) for r in chosen]
    report.bytes_freed = sum(r.size_bytes or 0 for r in chosen if r.path)
    calls = {r.call_id for r in chosen}
    links = db.scalars(select(ShareLink.id).where(ShareLink.recording_id.in_(sorted(going)))).all()
    emptied = [c for c in calls if not _kept_besides(db, c, going)]
    call_links = db.scalars(select(ShareLink.id).where(ShareLink.call_id.in_(emptied))).all()
    report.share_links = len(set(links) | set(call_links))
    for segment in spent_segments(db, going):
        report.captures.append(segment.capture_path or "")
        report.bytes_freed += file_size(data_dir, segment.capture_path)
    if delete_metadata:
        report.calls_deleted = sorted(c for c in emptied if not _call_held(db, c))


def _kept_besides(db: Session, call_id: int, going: Collection[int]) -> bool:
    rows = db.scalars(
        select(Recording.id).where(Recording.call_id == call_id, Recording.state != "deleted")
    ).all()
    return any(r not in going for r in rows)


def _call_held(db: Session, call_id: int) -> bool:
    return (
        db.scalar(
            select(LegalHold.id)
            .where(LegalHold.call_id == call_id, LegalHold.released_at.is_(None))
            .limit(1)
        )
        is not None
    )


def _delete_calls(db: Session, report: PurgeReport, who: _Actor) -> None:
    """``retention.delete_metadata``: calls with nothing left but metadata go too."""
    has_any = exists().where(Recording.call_id == Call.id)
    has_left = exists().where(
        Recording.call_id == Call.id, (Recording.state != "deleted") | Recording.path.is_not(None)
    )
    has_capture = exists().where(
        Segment.call_id == Call.id,
        Segment.capture_path.is_not(None),
        Segment.capture_path != "",
        Segment.capture_state != "removed",
    )
    held = exists().where(LegalHold.call_id == Call.id, LegalHold.released_at.is_(None))
    calls = db.scalars(
        select(Call)
        .where(Call.state == "ended", has_any, ~has_left, ~has_capture, ~held)
        .order_by(Call.id)
    ).all()
    for call in calls:
        who.audit(
            db, "call.delete", ("call", call.id), reason="retention.delete_metadata", uid=call.uid
        )
        report.calls_deleted.append(call.id)
        db.delete(call)
    db.flush()


# -- in the server -------------------------------------------------------------------------


def last_purge(db: Session) -> datetime | None:
    """When the purge job last ran for real (from its audit line)."""
    return db.scalar(
        select(AuditEvent.at)
        .where(AuditEvent.target_type == _PURGE_TARGET[0], AuditEvent.target_id == _PURGE_TARGET[1])
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def run_retention(
    database: Database, base: Settings, data_dir: Path, now: datetime
) -> PurgeReport | None:
    """Apply a changed policy; purge when the last run is a day old. For the server."""
    database.write(lambda db: retention.sync_policy(db, base, now))
    last = database.read(last_purge)
    if last is not None and now - last < PURGE_EVERY:
        return None
    report = purge(database, now, base=base, data_dir=data_dir)
    if report.recordings or report.errors:
        log.info(
            "retention deleted %d recordings of %d calls (%d bytes); %d errors",
            len(report.recordings),
            len(report.call_ids),
            report.bytes_freed,
            len(report.errors),
        )
    return report


async def retention_tick(database: Database, base: Settings, data_dir: Path) -> None:
    """The server's periodic task: :func:`run_retention` off the event loop."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, run_retention, database, base, data_dir, datetime.now(UTC))
