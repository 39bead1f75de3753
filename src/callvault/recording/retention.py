"""The retention policy: how long each recording is kept (REQUIREMENTS T5, X8, W2, W12).

A recording's ``retain_until`` is the end of its call plus ``retention.days`` (0: kept
for ever, ``retain_until`` stays empty); a call's own ``retention_days`` (X8, set by an
administrator or a supervisor) wins over the policy, and 0 there keeps the call's
recordings for ever. Under the ``limited`` tier (W2) every recording goes 30 days after
its call, or 30 days after the switch to ``limited`` when that came later (switching
restarts deletion); a call's own retention may shorten that, never lengthen it.
Switching back to ``unlimited`` stops that deletion unless ``retention.days`` says
otherwise. A legal hold on the call or on the recording blocks deletion until it is
released, whatever the dates say. Turning recording off (``recording.enabled``) does
not touch this: recordings already made keep their dates (W12).

Dates are stored, so the purge job (:mod:`callvault.recording.purge`) finds what is due
with one indexed range. They are (re)computed when a recording becomes ready
(:func:`schedule_recordings`), when a call's own retention changes
(:func:`set_call_retention`) and when the policy changes (:func:`sync_policy`, which the
server runs every few minutes and the purge job runs first). The policy last applied is
an audit line (``retention.policy``) — the compliance record of each change and the
memory that tells when the limited tier began.

Under the limited tier only the users who took part in a call may reach its recordings
(administrators and group scopes do not): :func:`participant_only` and
:func:`participant_call_ids` give the web layer's permission check what it needs.

Functions run inside the caller's transaction and never commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, update
from sqlalchemy.orm import Session

from callvault.config import SETTINGS_BY_NAME, Settings
from callvault.db.accounts import AuditEvent
from callvault.db.models import Call, Participant, Recording, Segment
from callvault.db.models import Setting as StoredSetting
from callvault.db.safety import LegalHold
from callvault.runtime_settings import DATABASE, effective_settings

__all__ = [
    "LIMITED_TIER_DAYS",
    "MAX_DAYS",
    "RETAINED_STATES",
    "HoldConflict",
    "NoSuchTarget",
    "RetentionPolicy",
    "active_hold",
    "applied_policy",
    "held_recording_ids",
    "hold_json",
    "participant_call_ids",
    "participant_only",
    "place_hold",
    "release_hold",
    "reschedule",
    "retention_policy",
    "schedule_recordings",
    "schedule_unscheduled",
    "set_call_retention",
    "sync_policy",
]

#: How long the limited tier keeps a recording (W2's free tier).
LIMITED_TIER_DAYS = 30
#: The longest retention that can be set (about a hundred years; keeps dates in range).
MAX_DAYS = 36500
#: Recordings retention governs: those with data (a file, or a capture of a failed one).
#: Recordings still being made get their date when they are ready.
RETAINED_STATES = ("ready", "failed")
# The audit lines that remember the policy in force (indexed by target).
_POLICY_TARGET = ("retention", "policy")


class NoSuchTarget(LookupError):
    """The call or recording named does not exist."""


class HoldConflict(ValueError):
    """A hold cannot be placed or released as asked (already held, nothing to release)."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The policy in force: ``tier_since`` is when the limited tier began (None: before
    anything was recorded, or unknown), which W2's restarted deletion counts from."""

    days: int
    tier: str = "unlimited"
    tier_since: datetime | None = None

    @property
    def limited(self) -> bool:
        return self.tier == "limited"

    @property
    def deletes(self) -> bool:
        """Whether recordings without a call retention of their own are ever deleted."""
        return self.limited or self.days > 0

    def retain_until(self, ended: datetime, override: int | None) -> datetime | None:
        """When a recording of a call that ended at ``ended`` may go (None: never)."""
        if self.limited:
            start = max(ended, self.tier_since) if self.tier_since else ended
            until = start + timedelta(days=LIMITED_TIER_DAYS)
            if override:  # a call's own retention may shorten the tier's, not lengthen it
                until = min(until, ended + timedelta(days=override))
            return until
        days = self.days if override is None else override
        return ended + timedelta(days=days) if days else None

    def as_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "tier": self.tier,
            "tier_since": _iso(self.tier_since),
        }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _parse_iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- the policy in force ------------------------------------------------------------------


def applied_policy(db: Session) -> RetentionPolicy | None:
    """The policy the recordings' dates were last computed with (None: never)."""
    row = db.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.target_type == _POLICY_TARGET[0],
            AuditEvent.target_id == _POLICY_TARGET[1],
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    detail = row.detail or {}
    return RetentionPolicy(
        int(detail.get("days", 0)),
        str(detail.get("tier", "unlimited")),
        _parse_iso(detail.get("tier_since")),
    )


def retention_policy(db: Session, base: Settings, now: datetime) -> RetentionPolicy:
    """The policy the settings ask for now, with the limited tier's start worked out."""
    settings = effective_settings(db, base, check=False)
    days, tier = int(settings["retention.days"]), str(settings["retention.tier"])
    if tier != "limited":
        return RetentionPolicy(days, tier)
    applied = applied_policy(db)
    if applied is not None and applied.limited:
        return RetentionPolicy(days, tier, applied.tier_since)  # no switch since then
    if settings.sources.get("retention.tier") == DATABASE:
        # Set by an administrator: the switch happened when the value was saved.
        row = db.get(StoredSetting, "retention.tier")
        return RetentionPolicy(days, tier, row.updated_at if row else now)
    # From the file or the environment: the switch is noticed now (after a restart), or
    # the tier was limited from the start (nothing applied yet: nothing to restart).
    return RetentionPolicy(days, tier, now if applied is not None else None)


def sync_policy(db: Session, base: Settings, now: datetime, *, actor: str = "retention") -> int:
    """Apply a changed policy to every recording's date; returns how many changed.

    Nothing happens while the policy is the one applied last. A change is audited
    (``retention.policy``, with the new policy and how many recordings got new dates).
    """
    policy = retention_policy(db, base, now)
    applied = applied_policy(db)
    if applied == policy:
        return 0
    changed = reschedule(db, policy)
    db.add(
        AuditEvent(
            actor=actor,
            action="retention.policy",
            target_type=_POLICY_TARGET[0],
            target_id=_POLICY_TARGET[1],
            detail={**policy.as_json(), "rescheduled": changed},
        )
    )
    db.flush()
    return changed


# -- dates ---------------------------------------------------------------------------------


def _dated_rows(db: Session, *conditions: ColumnElement[bool]) -> Iterable[Any]:
    """(recording id, retain_until, when its call ended, the call's retention) rows."""
    return db.execute(
        select(
            Recording.id,
            Recording.retain_until,
            Call.ended_at,
            Segment.ended_at,
            Call.started_at,
            Call.retention_days,
        )
        .join(Call, Call.id == Recording.call_id)
        .outerjoin(Segment, Segment.id == Recording.segment_id)
        .where(
            Recording.state.in_(RETAINED_STATES),
            Recording.deleted_at.is_(None),
            *conditions,
        )
        .order_by(Recording.id)
    )


def _update_dates(db: Session, policy: RetentionPolicy, rows: Iterable[Any]) -> int:
    changes = []
    for recording_id, current, call_ended, segment_ended, started, override in rows:
        # A segment's recording may be ready while its call goes on (a transfer leg):
        # its segment's end stands in until the call has ended.
        ended = call_ended or segment_ended or started
        wanted = policy.retain_until(ended, override)
        if wanted != current:
            changes.append({"id": recording_id, "retain_until": wanted})
    db.flush()
    for start in range(0, len(changes), 500):
        db.execute(update(Recording), changes[start : start + 500])
    # A bulk UPDATE by primary key leaves loaded rows as they were: reload their date.
    for row in list(db.identity_map.values()):
        if isinstance(row, Recording):
            db.expire(row, ["retain_until"])
    return len(changes)


def reschedule(
    db: Session,
    policy: RetentionPolicy,
    *,
    call_ids: Collection[int] | None = None,
    recording_ids: Collection[int] | None = None,
) -> int:
    """Recompute ``retain_until`` (of every kept recording, or of these calls' or these
    recordings'); returns how many dates changed."""
    conditions: list[ColumnElement[bool]] = []
    if call_ids is not None:
        conditions.append(Recording.call_id.in_(sorted(call_ids)))
    if recording_ids is not None:
        conditions.append(Recording.id.in_(sorted(recording_ids)))
    return _update_dates(db, policy, _dated_rows(db, *conditions))


def schedule_recordings(
    db: Session, base: Settings, recording_ids: Collection[int], now: datetime | None = None
) -> int:
    """Give recordings that just became ready their date (the finalize job's commit)."""
    policy = retention_policy(db, base, now or datetime.now(UTC))
    return reschedule(db, policy, recording_ids=recording_ids)


def schedule_unscheduled(db: Session, policy: RetentionPolicy) -> int:
    """Dates for kept recordings that have none but should: a safety net for recordings
    that became ready without :func:`schedule_recordings` being called."""
    wanted: list[ColumnElement[bool]] = [Recording.retain_until.is_(None)]
    if not policy.deletes:
        # Under "keep for ever" only calls with a retention of their own have dates.
        wanted.append(Call.retention_days > 0)
    return _update_dates(db, policy, _dated_rows(db, *wanted))


def set_call_retention(db: Session, call: Call, days: int | None, policy: RetentionPolicy) -> int:
    """Set a call's own retention (None: the policy's; 0: for ever) and re-date its
    recordings; returns how many dates changed."""
    if days is not None and not 0 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 0-{MAX_DAYS} or null, not {days}")
    call.retention_days = days
    db.flush()
    return reschedule(db, policy, call_ids=[call.id])


# -- legal holds ---------------------------------------------------------------------------


def active_hold(
    db: Session, *, call_id: int | None = None, recording_id: int | None = None
) -> LegalHold | None:
    """The hold in force on exactly this call or this recording, if any."""
    if (call_id is None) == (recording_id is None):
        raise ValueError("name a call or a recording")
    target = (
        LegalHold.call_id == call_id
        if call_id is not None
        else LegalHold.recording_id == recording_id
    )
    return db.scalars(
        select(LegalHold).where(target, LegalHold.released_at.is_(None)).order_by(LegalHold.id)
    ).first()


def place_hold(
    db: Session,
    *,
    call_id: int | None = None,
    recording_id: int | None = None,
    reason: str | None,
    by: str,
) -> LegalHold:
    """Hold a call (all its recordings, and the call itself) or one recording.

    The recordings held are locked first, as the purge locks them before it looks for
    holds: on PostgreSQL a hold and a purge running at once then happen one after the
    other (the hold refused as "deleted already", or the purge sees the hold), never a
    hold confirmed on a recording the purge is deleting.
    """
    if call_id is not None:
        if db.get(Call, call_id) is None:
            raise NoSuchTarget(f"no call {call_id}")
        db.scalars(select(Recording.id).where(Recording.call_id == call_id).with_for_update()).all()
    if recording_id is not None:
        recording = db.scalars(
            select(Recording)
            .where(Recording.id == recording_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if recording is None:
            raise NoSuchTarget(f"no recording {recording_id}")
        if recording.state == "deleted":
            raise HoldConflict(f"recording {recording_id} was deleted already")
    if active_hold(db, call_id=call_id, recording_id=recording_id) is not None:
        what = f"call {call_id}" if call_id is not None else f"recording {recording_id}"
        raise HoldConflict(f"{what} is on hold already")
    hold = LegalHold(
        call_id=call_id,
        recording_id=recording_id,
        reason=(reason or "").strip() or None,
        set_by=by,
        set_at=datetime.now(UTC),
    )
    db.add(hold)
    db.flush()
    return hold


def release_hold(
    db: Session, *, call_id: int | None = None, recording_id: int | None = None, by: str
) -> LegalHold:
    """Release the hold on a call or a recording: retention applies again from now on."""
    hold = active_hold(db, call_id=call_id, recording_id=recording_id)
    if hold is None:
        what = f"call {call_id}" if call_id is not None else f"recording {recording_id}"
        raise HoldConflict(f"{what} is not on hold")
    hold.released_by = by
    hold.released_at = datetime.now(UTC)
    db.flush()
    return hold


def hold_json(hold: LegalHold) -> dict[str, Any]:
    """A hold as the API and ``callvault hold list --json`` show it."""
    return {
        "id": hold.id,
        "call_id": hold.call_id,
        "recording_id": hold.recording_id,
        "reason": hold.reason,
        "set_by": hold.set_by,
        "set_at": _iso(hold.set_at),
        "released_by": hold.released_by,
        "released_at": _iso(hold.released_at),
        "active": hold.released_at is None,
    }


def held_recording_ids(db: Session, recording_ids: Collection[int]) -> set[int]:
    """Those of ``recording_ids`` under a hold, of their own or of their call's."""
    if not recording_ids:
        return set()
    active = LegalHold.released_at.is_(None)
    held_calls = select(LegalHold.call_id).where(active, LegalHold.call_id.is_not(None))
    held_recordings = select(LegalHold.recording_id).where(
        active, LegalHold.recording_id.is_not(None)
    )
    rows = db.scalars(
        select(Recording.id).where(
            Recording.id.in_(sorted(recording_ids)),
            or_(Recording.call_id.in_(held_calls), Recording.id.in_(held_recordings)),
        )
    )
    return set(rows)


# -- who may reach recordings under the limited tier ----------------------------------------


def participant_only(db: Session, base: Settings | None = None) -> bool:
    """Whether only the users who took part in a call may reach it (the limited tier).

    The value saved by an administrator wins; else ``base`` (the process's settings:
    file, environment, default); else the default.
    """
    row = db.get(StoredSetting, "retention.tier")
    if row is not None:
        return row.value == "limited"
    if base is not None:
        return bool(base["retention.tier"] == "limited")
    return SETTINGS_BY_NAME["retention.tier"].default == "limited"


def participant_call_ids(addresses: Collection[str]) -> Select[Any]:
    """The ids of the calls one of ``addresses`` (AOR user parts, lower case, as
    ``Principal.addresses``) took part in."""
    return select(Participant.call_id).where(Participant.address.in_(sorted(addresses)))
