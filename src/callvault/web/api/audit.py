"""REST API: the audit log (administrators only), as JSON pages and as a CSV file.

The log is append-only: there are read routes and nothing else. Filters: ``action``
(exact, or a prefix ending in ``*`` such as ``webhook.*``), ``user`` (the login shown
as the actor), ``target_type``, ``target_id``, ``from`` (inclusive) and ``to``
(exclusive; a time without an offset is UTC). Newest first, keyset-paginated on the
time and the row id. The admin page uses the same functions.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from callvault.db.accounts import AuditEvent
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.errors import BadRequest
from callvault.web.principal import Principal, WebContext, admin, context

__all__ = [
    "CSV_COLUMNS",
    "AuditFilter",
    "AuditOut",
    "audit_page",
    "csv_lines",
    "router",
]

router = APIRouter(prefix="/api/v1", tags=["audit"])

Admin = Annotated[Principal, Depends(admin)]
Ctx = Annotated[WebContext, Depends(context)]
MAX_PAGE = 500
_CSV_CHUNK = 1000  # rows per read transaction while streaming the export
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
CSV_COLUMNS = ("id", "at", "actor", "user_id", "action", "target_type", "target_id", "ip")


def _utc(value: datetime | None) -> datetime | None:
    """An aware UTC time; a time without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise BadRequest(f"{value.isoformat()} is out of range") from None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None
    user: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None  # ``from``
    until: datetime | None = None  # ``to``

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.action:
            if self.action.endswith("*"):
                prefix = self.action[:-1]
                found.append(AuditEvent.action.startswith(prefix, autoescape=True))
            else:
                found.append(AuditEvent.action == self.action)
        if self.user:
            found.append(AuditEvent.actor == self.user)
        if self.target_type:
            found.append(AuditEvent.target_type == self.target_type)
        if self.target_id:
            found.append(AuditEvent.target_id == self.target_id)
        if self.since is not None:
            found.append(AuditEvent.at >= self.since)
        if self.until is not None:
            found.append(AuditEvent.at < self.until)
        return found

    def query(self) -> dict[str, str]:
        """The filter as API query parameters (for links: next page, CSV export)."""
        values = {
            "action": self.action,
            "user": self.user,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "from": self.since.isoformat().replace("+00:00", "Z") if self.since else None,
            "to": self.until.isoformat().replace("+00:00", "Z") if self.until else None,
        }
        return {name: value for name, value in values.items() if value}


def _filter(
    action: str | None = None,
    user: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: Annotated[
        datetime | None, Query(alias="from", description="from this time (inclusive)")
    ] = None,
    until: Annotated[
        datetime | None, Query(alias="to", description="until this time (exclusive)")
    ] = None,
) -> AuditFilter:
    return AuditFilter(action, user, target_type, target_id, _utc(since), _utc(until))


Filter = Annotated[AuditFilter, Depends(_filter)]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    user_id: int | None
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: AuditEvent) -> AuditOut:
        return cls(
            id=row.id,
            at=row.at,
            actor=row.actor,
            user_id=row.user_id,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            ip=row.ip,
            detail=row.detail or {},
        )


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


def _cursor(row: AuditEvent) -> str:
    return f"{(row.at - _EPOCH) // _MICROSECOND}_{row.id}"


def _after(cursor: str) -> ColumnElement[bool]:
    """Lines older than the cursor's: by time, then by id for lines of the same instant."""
    at_us, _, row_id = cursor.partition("_")
    if not (at_us.isdigit() and row_id.isdigit()):
        raise BadRequest("cursor: not a cursor this list gave out")
    try:
        at = _EPOCH + int(at_us) * _MICROSECOND
    except OverflowError:
        raise BadRequest("cursor: not a cursor this list gave out") from None
    if int(row_id) > 2**31 - 1:  # an INTEGER column
        raise BadRequest("cursor: not a cursor this list gave out")
    return or_(AuditEvent.at < at, and_(AuditEvent.at == at, AuditEvent.id < int(row_id)))


def audit_page(
    db: Session, where: AuditFilter, limit: int, cursor: str | None
) -> tuple[list[AuditEvent], str | None]:
    """One page of the filtered log, newest first; the cursor of the next page or None."""
    query = select(AuditEvent).where(*where.conditions())
    if cursor:
        query = query.where(_after(cursor))
    order = (AuditEvent.at.desc(), AuditEvent.id.desc())
    rows = list(db.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, _cursor(rows[-1]) if more else None


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run a cell starting with these as a formula, and actors come from
    # what strangers typed (failed logins): neutralise them (OWASP "CSV injection").
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _chunk(
    db: Session, *, where: AuditFilter, after: str | None
) -> tuple[list[AuditEvent], str | None]:
    return audit_page(db, where, _CSV_CHUNK, after)


def csv_lines(ctx: WebContext, where: AuditFilter) -> Iterator[str]:
    """The filtered log as CSV text, read a chunk at a time (each its own transaction)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow((*CSV_COLUMNS, "detail"))
    cursor: str | None = None
    while True:
        rows, cursor = ctx.database.read(partial(_chunk, where=where, after=cursor))
        for row in rows:
            at = row.at.isoformat().replace("+00:00", "Z")
            values = (row.id, at, row.actor, row.user_id, row.action, row.target_type)
            detail = json.dumps(row.detail or {}, ensure_ascii=False, sort_keys=True)
            writer.writerow([_cell(v) for v in (*values, row.target_id, row.ip, detail)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if cursor is None:
            return


@router.get("/audit", summary="The audit log, newest first, filtered (administrators)")
def list_audit(
    ctx: Ctx,
    _who: Admin,
    where: Filter,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: str | None = None,
) -> AuditPage:
    rows, next_cursor = ctx.database.read(lambda db: audit_page(db, where, limit, cursor))
    return AuditPage(items=[AuditOut.of(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/audit/export.csv",
    summary="The filtered audit log as a CSV file (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_audit(request: Request, ctx: Ctx, who: Admin, where: Filter) -> StreamingResponse:
    # Exporting the log is itself worth a line: who took a copy, of what.
    ctx.database.write(
        lambda db: record(
            db, who, "audit.export", ip=client_address(request), filters=where.query() or None
        )
    )
    stamp = ctx.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        csv_lines(ctx, where),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="callvault-audit-{stamp}.csv"'},
    )
