"""REST API: share links (REQUIREMENTS X9, U8): make one for a recording or for a whole
call, list them, revoke them.

Making a link needs what playing the recording needs (``visible_recording``, or
``visible_call`` and ``recordings:read`` for a call) and, for an API token, the
``recordings:share`` scope. A call's link plays its stitched recording (or its only
segment's); when there is none yet the answer is 409 saying how to make it. Users list
and revoke their own links, administrators everyone's. Creating and revoking are
audited; the public side is ``web/pages/share.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.accounts import ShareLink, User
from callvault.db.models import Recording
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.errors import BadRequest, NotFound
from callvault.web.params import RowId
from callvault.web.permissions import require_scope, visible_call, visible_recording
from callvault.web.principal import Principal, WebContext, context, principal
from callvault.web.sharing import (
    DEFAULT_DAYS,
    MAX_PASSCODE_LENGTH,
    call_share_target,
    create_link,
    link_expiry,
    link_json,
    link_token,
)

__all__ = ["ShareCreated", "ShareRequest", "router", "share_url"]

router = APIRouter(prefix="/api/v1", tags=["shares"])

Ctx = Annotated[WebContext, Depends(context)]
Who = Annotated[Principal, Depends(principal)]


class ShareRequest(BaseModel):
    expires_in_days: int | None = Field(
        None,
        ge=1,
        description=f"days the link works; default {DEFAULT_DAYS}, at most the setting "
        "web.share_max_days (default 30)",
    )
    passcode: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PASSCODE_LENGTH,
        description="asked for before the recording plays (any length from 1)",
    )


class ShareCreated(BaseModel):
    id: int
    url: str = Field(description="the public link, absolute: https://host/s/<token>")
    expires_at: str
    recording_id: int
    call_id: int | None
    passcode: bool


OptionalShare = Annotated[ShareRequest | None, Body()]


def share_url(request: Request, secret: bytes, link: ShareLink) -> str:
    return f"{str(request.base_url).rstrip('/')}/s/{link_token(secret, link)}"


def _create(
    request: Request,
    ctx: WebContext,
    who: Principal,
    options: ShareRequest | None,
    target: Any,
) -> ShareCreated:
    require_scope(who, "recordings:share")
    options = options or ShareRequest(expires_in_days=None, passcode=None)
    now = ctx.now()
    address = client_address(request)

    def create(db: Session) -> ShareLink:
        recording, call_id = target(db)
        expires_at = link_expiry(db, ctx.settings, now, options.expires_in_days)
        return create_link(
            db,
            who,
            recording,
            expires_at=expires_at,
            passcode=options.passcode,
            now=now,
            call_id=call_id,
            ip=address,
        )

    link = ctx.database.write(create)
    return ShareCreated(
        id=link.id,
        url=share_url(request, ctx.secret, link),
        expires_at=link.expires_at.isoformat().replace("+00:00", "Z"),
        recording_id=link.recording_id or 0,
        call_id=link.call_id,
        passcode=link.passcode_hash is not None,
    )


@router.post(
    "/recordings/{recording_id}/share",
    status_code=201,
    summary="Make a public share link to a recording (optional expiry in days and passcode)",
)
def share_recording(
    recording_id: RowId, request: Request, ctx: Ctx, who: Who, body: OptionalShare = None
) -> ShareCreated:
    def target(db: Session) -> tuple[Recording, None]:
        return visible_recording(db, who, recording_id), None

    return _create(request, ctx, who, body, target)


@router.post(
    "/calls/{call_id}/share",
    status_code=201,
    summary="Make a public share link to a call's stitched recording (409 until there is one)",
)
def share_call(
    call_id: RowId, request: Request, ctx: Ctx, who: Who, body: OptionalShare = None
) -> ShareCreated:
    def target(db: Session) -> tuple[Recording, int]:
        call = visible_call(db, who, call_id)
        require_scope(who, "recordings:read")
        return call_share_target(db, call), call.id

    return _create(request, ctx, who, body, target)


@router.get(
    "/shares",
    summary="Share links the caller made (administrators: everyone's), newest first",
)
def list_shares(
    request: Request,
    ctx: Ctx,
    who: Who,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    require_scope(who, "recordings:share")
    before: int | None = None
    if cursor:
        if not cursor.isdigit():
            raise BadRequest(f"cursor {cursor!r} is not one this list gave")
        before = int(cursor)
    now = ctx.now()

    def page(db: Session) -> list[tuple[ShareLink, User | None]]:
        query = select(ShareLink, User).outerjoin(User, User.id == ShareLink.created_by)
        if not who.is_admin:
            query = query.where(ShareLink.created_by == who.user_id)
        if before is not None:
            query = query.where(ShareLink.id < before)
        rows = db.execute(query.order_by(ShareLink.id.desc()).limit(limit + 1)).all()
        return [(link, user) for link, user in rows]

    rows = ctx.database.read(page)
    items = [
        link_json(link, share_url(request, ctx.secret, link), user, now)
        for link, user in rows[:limit]
    ]
    more = len(rows) > limit
    return {"items": items, "next_cursor": str(rows[limit - 1][0].id) if more else None}


@router.delete(
    "/shares/{share_id}",
    status_code=204,
    summary="Revoke a share link (its maker or an administrator): it answers 404 from now on",
)
def revoke_share(share_id: RowId, request: Request, ctx: Ctx, who: Who) -> Response:
    require_scope(who, "recordings:share")
    now = ctx.now()

    def revoke(db: Session) -> None:
        link = db.get(ShareLink, share_id)
        if link is None or not (who.is_admin or link.created_by == who.user_id):
            raise NotFound(f"no share link {share_id}")
        if link.revoked_at is not None:
            return  # already revoked: the same outcome, nothing new to audit
        link.revoked_at = now
        record(
            db,
            who,
            "share.revoke",
            target_type="recording",
            target_id=link.recording_id,
            ip=client_address(request),
            share_id=link.id,
            call_id=link.call_id,
        )

    ctx.database.write(revoke)
    return Response(status_code=204)
