"""``/api/v1/tokens``: the caller's API tokens: list, create (shown once), revoke.

Only a logged-in browser session creates tokens (a token can not mint more tokens,
which would outlive its own revocation); ``admin`` is only for administrators. The
secret is returned once by the create call and stored as a hash (``web.auth``); lists
show the prefix to tell tokens apart. Anyone revokes their own tokens, administrators
anyone's; someone else's token is "not found" to a non-administrator.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.accounts import ApiToken, User
from callvault.web.api.session import client_address
from callvault.web.api.users import MAX_ID, RowId, parse_id_cursor, write_or_refuse
from callvault.web.audit import record
from callvault.web.auth import TOKEN_SCOPES, new_api_token
from callvault.web.errors import BadRequest, Forbidden, NotFound, Unauthorized
from callvault.web.principal import Principal, WebContext, context, principal

__all__ = ["create_token", "list_tokens", "revoke_token", "router", "token_json"]

router = APIRouter(prefix="/api/v1", tags=["tokens"])
MAX_DAYS = 3650


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="what the token is for")
    scopes: list[str] = Field(
        min_length=1,
        max_length=len(TOKEN_SCOPES),
        description="any of " + ", ".join(sorted(TOKEN_SCOPES)) + " (admin: administrators)",
    )
    expires_in_days: int | None = Field(None, ge=1, le=MAX_DAYS, description="none: until revoked")


class TokenOut(BaseModel):
    id: int
    user_id: int
    name: str
    prefix: str = Field(description="the first characters of the token")
    scopes: list[str]
    state: str = Field(description="active, expired or revoked")
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None


class CreatedToken(TokenOut):
    token: str = Field(description="the token itself: shown this once, never again")


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def token_json(token: ApiToken, now: datetime) -> dict[str, Any]:
    if token.revoked_at is not None:
        state = "revoked"
    elif token.expires_at is not None and token.expires_at <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": list(token.scopes),
        "state": state,
        "created_at": _iso(token.created_at),
        "last_used_at": _iso(token.last_used_at),
        "expires_at": _iso(token.expires_at),
        "revoked_at": _iso(token.revoked_at),
    }


def list_tokens(
    ctx: WebContext,
    who: Principal,
    user_id: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The tokens of ``user_id`` (default the caller; another user's: administrators),
    newest first."""
    owner = who.user_id if user_id is None else user_id
    if owner != who.user_id and not who.is_admin:
        raise Forbidden("only administrators see other users' tokens")
    before = parse_id_cursor(cursor)
    now = ctx.now()

    def page(db: Session) -> dict[str, Any]:
        query = select(ApiToken).where(ApiToken.user_id == owner)
        if before is not None:
            query = query.where(ApiToken.id < before)
        rows = db.scalars(query.order_by(ApiToken.id.desc()).limit(limit + 1)).all()
        items = [token_json(row, now) for row in rows[:limit]]
        return {"items": items, "next_cursor": str(items[-1]["id"]) if len(rows) > limit else None}

    return ctx.database.read(page)


def create_token(
    ctx: WebContext, who: Principal, ip: str, name: str, scopes: list[str], days: int | None
) -> dict[str, Any]:
    """A new token for the caller; the answer holds the plaintext (``token``), once."""
    if who.via != "session":
        raise Forbidden("API tokens are created from a logged-in browser session, not a token")
    if "admin" in scopes and not who.is_admin:
        raise Forbidden("only administrators can hold tokens with the 'admin' scope")
    name = name.strip()
    if not name:
        raise BadRequest("a token needs a name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BadRequest("a token's name can not hold control characters")
    now = ctx.now()
    expires = now + timedelta(days=days) if days else None

    def work(db: Session) -> dict[str, Any]:
        user = db.get(User, who.user_id)
        if user is None:  # deleted since the request began
            raise Unauthorized("your account no longer exists")
        token, plaintext = new_api_token(db, user, name, set(scopes), now, expires)
        record(
            db,
            who,
            "token.create",
            target_type="token",
            target_id=token.id,
            ip=ip,
            name=name,
            scopes=list(token.scopes),
            expires_at=_iso(expires),
        )
        return {**token_json(token, now), "token": plaintext}

    return write_or_refuse(ctx, work)


def revoke_token(ctx: WebContext, who: Principal, ip: str, token_id: int) -> int:
    """Revoke a token (idempotent); returns its owner's id."""
    now = ctx.now()

    def work(db: Session) -> int:
        token = db.get(ApiToken, token_id)
        if token is None or (token.user_id != who.user_id and not who.is_admin):
            raise NotFound(f"no token {token_id}")
        if token.revoked_at is None:
            token.revoked_at = now
            record(
                db,
                who,
                "token.revoke",
                target_type="token",
                target_id=token.id,
                ip=ip,
                name=token.name,
                owner=token.user_id,
            )
        return token.user_id

    return write_or_refuse(ctx, work)


Ctx = Annotated[WebContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


@router.get(
    "/tokens",
    response_model=TokenPage,
    summary="Your API tokens, newest first (never the secrets); user_id: administrators",
)
def tokens_index(
    ctx: Ctx,
    who: Caller,
    user_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="another user's (administrators)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    return list_tokens(ctx, who, user_id, limit, cursor)


@router.post(
    "/tokens",
    status_code=201,
    response_model=CreatedToken,
    summary="Create an API token (browser session only); the answer shows it once",
    responses={403: {"description": "asked with a token, or 'admin' by a non-administrator"}},
)
def tokens_create(body: NewToken, request: Request, ctx: Ctx, who: Caller) -> dict[str, Any]:
    return create_token(
        ctx, who, client_address(request), body.name, body.scopes, body.expires_in_days
    )


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    summary="Revoke an API token (yours; administrators: anyone's)",
)
def tokens_delete(token_id: RowId, request: Request, ctx: Ctx, who: Caller) -> Response:
    revoke_token(ctx, who, client_address(request), token_id)
    return Response(status_code=204)
