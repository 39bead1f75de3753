"""Who is asking, as FastAPI dependencies: a browser session, an API token, or nobody.

``Principal`` is a plain snapshot of the user taken once per request (role, playback
scope, groups, the addresses that are this user); :mod:`callvault.web.permissions`
decides from it. Requests that change something and come with the session cookie must
carry that session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``);
bearer-token requests need none (a browser never sends them by itself).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.config import Settings
from callvault.db import Database
from callvault.db.accounts import User, UserGroup
from callvault.recording.layout import user_part
from callvault.recording.retention import participant_only
from callvault.web.auth import LoginThrottle, find_session, find_token
from callvault.web.errors import Forbidden, Unauthorized

__all__ = [
    "COOKIE",
    "LiveCalls",
    "Principal",
    "WebContext",
    "admin",
    "context",
    "csrf_checked",
    "optional_principal",
    "principal",
    "principal_of",
]

COOKIE = "callvault_session"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LiveCalls(Protocol):
    """What the web app may ask of the recorder running in the same process."""

    async def pause_call(self, call_id: int, paused: bool) -> int:
        """Pause or resume the live sessions of a call; how many there were."""
        ...


@dataclass(slots=True)
class WebContext:
    """What every request handler needs, kept on ``app.state.ctx``."""

    database: Database
    data_dir: Path
    settings: Settings
    secret: bytes  # signs share links
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    live: LiveCalls | None = None  # the recorder in this process (callvault serve)

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    login: str
    display_name: str | None
    role: str
    scope: str
    timezone: str
    primary_group_id: int | None
    group_ids: frozenset[int]  # member groups, the primary group not included
    addresses: frozenset[str]  # participant addresses (AOR user parts) that are this user
    via: str  # "session" or "token"
    token_scopes: frozenset[str] | None = None  # None: a browser session, all it may do
    csrf_token: str | None = None
    session_id: str | None = None
    # The limited tier (retention.tier, REQUIREMENTS W2): only the users who took part in
    # a call reach it, whatever their role or scope.
    participant_only: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and self.allows("admin")

    def allows(self, scope: str) -> bool:
        """Whether an API token's scopes cover ``scope`` (a session covers everything)."""
        return self.token_scopes is None or scope in self.token_scopes


def user_addresses(user: User) -> frozenset[str]:
    found = {user.extension.lower()} if user.extension else set()
    for address in user.addresses or []:
        part = user_part(address)
        if part:
            found.add(part.lower())
    return frozenset(found)


def principal_of(
    db: Session, user: User, via: str, base: Settings | None = None, **extra: object
) -> Principal:
    """The snapshot of ``user`` for one request; ``base``: the process's settings (the
    tier an administrator saved wins over them)."""
    groups = frozenset(
        db.scalars(select(UserGroup.group_id).where(UserGroup.user_id == user.id)).all()
    )
    return Principal(
        user_id=user.id,
        login=user.login,
        display_name=user.display_name,
        role=user.role,
        scope=user.scope,
        timezone=user.timezone,
        primary_group_id=user.primary_group_id,
        group_ids=groups,
        addresses=user_addresses(user),
        via=via,
        participant_only=participant_only(db, base),
        **extra,  # type: ignore[arg-type]
    )


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


def _load(request: Request) -> Principal | None:
    ctx = context(request)
    now = ctx.now()
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        plaintext = authorization[7:].strip()

        def by_token(db: Session) -> Principal | None:
            token = find_token(db, plaintext, now)
            if token is None:
                return None
            return principal_of(
                db, token.user, "token", ctx.settings, token_scopes=frozenset(token.scopes)
            )

        found = ctx.database.write(by_token)
        if found is None:
            raise Unauthorized("the API token is unknown, expired or revoked")
        return found
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None

    def by_cookie(db: Session) -> Principal | None:
        row = find_session(db, cookie, now)
        if row is None:
            return None
        return principal_of(
            db, row.user, "session", ctx.settings, csrf_token=row.csrf_token, session_id=row.id
        )

    return ctx.database.write(by_cookie)


async def optional_principal(request: Request) -> Principal | None:
    if not hasattr(request.state, "principal"):
        request.state.principal = _load(request)
    found: Principal | None = request.state.principal
    return found


async def csrf_checked(
    request: Request, who: Annotated[Principal | None, Depends(optional_principal)]
) -> Principal | None:
    """Refuse a cookie-authenticated change that does not carry the session's token."""
    if who is None or who.via != "session" or request.method not in _UNSAFE:
        return who
    sent = request.headers.get("x-csrf-token")
    if sent is None and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not who.csrf_token or not hmac.compare_digest(sent, who.csrf_token):
        raise Forbidden("missing or wrong CSRF token; reload the page and try again")
    return who


async def principal(
    who: Annotated[Principal | None, Depends(csrf_checked)],
) -> Principal:
    if who is None:
        raise Unauthorized("log in first (session cookie or Authorization: Bearer token)")
    return who


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.is_admin:
        raise Forbidden("this needs an administrator")
    return who
