"""REST API: a call's own retention (REQUIREMENTS X8), legal holds on calls and
recordings, and the purge job on demand (T5, W2).

Who may do what:
- a call's retention and holds: administrators, and supervisors who may see the call
  (:mod:`callvault.web.permissions`; anyone else who may see it gets 403, whoever may
  not gets 404); a supervisor releases only the holds they placed themselves. API
  tokens need the ``admin`` scope to change them, as for tagging. An
  administrator governs retention under every tier, including W2's limited tier, where
  administrators may not reach the recordings themselves: holding a call for a court or
  shortening its retention reveals nothing of what was said.
- reading a call's retention: whoever may see the call.
- the list of holds and the purge job: administrators.

Every change is audited in the transaction that makes it (``call.retention``,
``hold.set``, ``hold.release``; the purge job audits each deletion itself).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.models import Call, Recording
from callvault.db.safety import LegalHold
from callvault.recording import retention
from callvault.recording.purge import purge
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.errors import BadRequest, Conflict, Forbidden, NotFound
from callvault.web.params import RowId
from callvault.web.permissions import require_scope, visible_call, visible_recording
from callvault.web.principal import Principal, WebContext, admin, context, principal

__all__ = ["governed_call", "governed_recording", "router"]

router = APIRouter(prefix="/api/v1", tags=["retention"])

Ctx = Annotated[WebContext, Depends(context)]
Who = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]


class CallRetention(BaseModel):
    days: int | None = Field(
        ...,
        ge=0,
        le=retention.MAX_DAYS,
        description="days after the call's end; 0 keeps it for ever; null: the policy's "
        "(retention.days)",
    )


class HoldRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=2000, description="why (a case, a request)")


class PurgeRequest(BaseModel):
    dry_run: bool = Field(default=False, description="only say what would be deleted")
    as_of: datetime | None = Field(
        default=None, description="delete what is due at this time instead of now (UTC if naive)"
    )


def _may_govern(who: Principal) -> None:
    require_scope(who, "calls:read")
    # Retention and holds decide what is destroyed: tokens need the admin scope.
    require_scope(who, "admin")


def governed_call(db: Session, who: Principal, call_id: int) -> Call:
    """The call, if ``who`` may set its retention and holds (see the module's rules)."""
    _may_govern(who)
    if who.is_admin:
        call = db.get(Call, call_id)
        if call is None:
            raise NotFound(f"no call {call_id}")
        return call
    call = visible_call(db, who, call_id)
    if who.role != "supervisor":
        raise Forbidden("only administrators and supervisors set retention and legal holds")
    return call


def governed_recording(db: Session, who: Principal, recording_id: int) -> Recording:
    """The recording, if ``who`` may put it on hold."""
    _may_govern(who)
    if who.is_admin:
        recording = db.get(Recording, recording_id)
        if recording is None:
            raise NotFound(f"no recording {recording_id}")
        return recording
    recording = visible_recording(db, who, recording_id)
    if who.role != "supervisor":
        raise Forbidden("only administrators and supervisors set legal holds")
    return recording


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def retention_json(db: Session, call: Call, policy: retention.RetentionPolicy) -> dict[str, Any]:
    """A call's retention: its own setting, the policy, its hold and each recording's date."""
    rows = db.scalars(
        select(Recording).where(Recording.call_id == call.id).order_by(Recording.id)
    ).all()
    held = retention.held_recording_ids(db, [r.id for r in rows])
    hold = retention.active_hold(db, call_id=call.id)
    return {
        "call_id": call.id,
        "retention_days": call.retention_days,
        "policy": policy.as_json(),
        "hold": retention.hold_json(hold) if hold else None,
        "recordings": [
            {
                "id": r.id,
                "kind": r.kind,
                "state": r.state,
                "retain_until": _iso(r.retain_until),
                "deleted_at": _iso(r.deleted_at),
                "held": r.id in held,
            }
            for r in rows
        ],
    }


@router.get("/calls/{call_id}/retention", summary="A call's retention and its recordings' dates")
def get_call_retention(call_id: RowId, ctx: Ctx, who: Who) -> dict[str, Any]:
    """`retention_days` (the call's own: null = the policy's, 0 = for ever), the `policy`
    (`days`, `tier`, `tier_since`), the call's `hold`, and per recording `retain_until`
    (null: kept for ever), `deleted_at` and `held`."""

    def read(db: Session) -> dict[str, Any]:
        # Administrators govern retention under every tier (see the module's rules).
        call = governed_call(db, who, call_id) if who.is_admin else visible_call(db, who, call_id)
        return retention_json(db, call, retention.retention_policy(db, ctx.settings, ctx.now()))

    return ctx.database.read(read)


@router.put("/calls/{call_id}/retention", summary="Set a call's own retention (X8)")
def set_call_retention(
    call_id: RowId, body: CallRetention, request: Request, ctx: Ctx, who: Who
) -> dict[str, Any]:
    """`{"days": N}` keeps the call's recordings N days after its end (0: for ever),
    `{"days": null}` returns it to the policy; the recordings get their new dates at
    once. Under the limited tier a call's retention can shorten the 30 days, not
    lengthen them. For administrators and supervisors who may see the call; audited as
    `call.retention`."""

    def change(db: Session) -> dict[str, Any]:
        call = governed_call(db, who, call_id)
        before = call.retention_days
        policy = retention.retention_policy(db, ctx.settings, ctx.now())
        retention.set_call_retention(db, call, body.days, policy)
        record(
            db,
            who,
            "call.retention",
            target_type="call",
            target_id=call.id,
            ip=client_address(request),
            days=body.days,
            previous=before,
            policy="yes" if body.days is None else None,
        )
        return retention_json(db, call, policy)

    return ctx.database.write(change)


def _hold(
    ctx: WebContext,
    who: Principal,
    request: Request,
    target: str,
    target_id: int,
    reason: str | None,
    on: bool,
) -> dict[str, Any]:
    def change(db: Session) -> dict[str, Any]:
        if target == "call":
            governed_call(db, who, target_id)
            where = {"call_id": target_id}
        else:
            governed_recording(db, who, target_id)
            where = {"recording_id": target_id}
        if not on and not who.is_admin:
            # A supervisor releases only the holds they placed: one an administrator
            # placed (for a court, say) is not theirs to lift.
            placed = retention.active_hold(db, **where)
            if placed is not None and placed.set_by != who.login:
                raise Forbidden(
                    f"this hold was placed by {placed.set_by}: only an administrator or "
                    "they may release it"
                )
        try:
            if on:
                hold = retention.place_hold(db, reason=reason, by=who.login, **where)
            else:
                hold = retention.release_hold(db, by=who.login, **where)
        except retention.HoldConflict as exc:
            if on:
                raise Conflict(str(exc)) from None
            raise NotFound(str(exc)) from None
        record(
            db,
            who,
            "hold.set" if on else "hold.release",
            target_type=target,
            target_id=target_id,
            ip=client_address(request),
            hold_id=hold.id,
            reason=hold.reason if on else None,
        )
        return retention.hold_json(hold)

    return ctx.database.write(change)


Reason = Annotated[HoldRequest | None, Body()]


@router.post("/calls/{call_id}/hold", status_code=201, summary="Put a legal hold on a call")
def hold_call(
    call_id: RowId, request: Request, ctx: Ctx, who: Who, body: Reason = None
) -> dict[str, Any]:
    """None of the call's recordings (nor the call) is deleted until the hold is
    released; `{"reason": "..."}` is optional. 409 when the call is on hold already.
    Audited as `hold.set`."""
    return _hold(ctx, who, request, "call", call_id, body.reason if body else None, True)


@router.delete("/calls/{call_id}/hold", summary="Release the legal hold on a call")
def release_call(call_id: RowId, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    """Retention applies to the call again (its recordings go at the next purge if their
    date has passed). 404 when the call is not on hold. Audited as `hold.release`."""
    return _hold(ctx, who, request, "call", call_id, None, False)


@router.post(
    "/recordings/{recording_id}/hold",
    status_code=201,
    summary="Put a legal hold on one recording",
)
def hold_recording(
    recording_id: RowId, request: Request, ctx: Ctx, who: Who, body: Reason = None
) -> dict[str, Any]:
    """The recording is not deleted until the hold is released (nor its segment's
    capture). 409 when it is on hold already or deleted."""
    return _hold(ctx, who, request, "recording", recording_id, body.reason if body else None, True)


@router.delete("/recordings/{recording_id}/hold", summary="Release the legal hold on a recording")
def release_recording(recording_id: RowId, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    """404 when the recording is not on hold."""
    return _hold(ctx, who, request, "recording", recording_id, None, False)


@router.get("/holds", summary="Legal holds (administrators)")
def list_holds(
    ctx: Ctx,
    who: Admin,
    released: Annotated[bool, Query(description="true: released holds too")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> dict[str, Any]:
    """`{"items": [...], "next_cursor": ...}`, oldest first: `id`, `call_id` or
    `recording_id`, `reason`, `set_by`, `set_at`, `released_by`, `released_at`,
    `active`."""
    if cursor is not None and not (cursor.isdigit() and len(cursor) < 10):
        raise BadRequest("cursor: not a cursor this list gave", parameter="cursor")
    after = int(cursor) if cursor else 0

    def read(db: Session) -> dict[str, Any]:
        query = select(LegalHold).where(LegalHold.id > after).order_by(LegalHold.id)
        if not released:
            query = query.where(LegalHold.released_at.is_(None))
        rows = db.scalars(query.limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": [retention.hold_json(row) for row in rows],
            "next_cursor": str(rows[-1].id) if more else None,
        }

    return ctx.database.read(read)


@router.post("/retention/purge", summary="Run retention now (administrators)")
def run_purge(
    request: Request,
    ctx: Ctx,
    who: Admin,
    body: Annotated[PurgeRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Deletes every copy of the recordings whose date has passed and that no hold
    keeps, as the daily job does, and answers the report: `recordings` (`id`,
    `call_id`, `kind`, `retain_until`, `size_bytes`, `store`), `recording_ids`,
    `call_ids`, `captures`, `calls_deleted`, `share_links`, `held`, `bytes_freed`,
    `errors`. `{"dry_run": true}` deletes nothing; `as_of` answers what is due then.
    Each deletion is audited as `recording.delete`, the run as `retention.purge`."""
    wanted = body or PurgeRequest()
    as_of = wanted.as_of
    if as_of is not None:
        try:
            as_of = as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
        except (OverflowError, ValueError):
            raise BadRequest("as_of: out of range", parameter="as_of") from None
    report = purge(
        ctx.database,
        ctx.now(),
        wanted.dry_run,
        base=ctx.settings,
        data_dir=ctx.data_dir,
        as_of=as_of,
        actor=who.login,
        user_id=who.user_id,
        ip=client_address(request),
    )
    return report.as_json()
