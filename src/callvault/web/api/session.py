"""``/api/v1/session``: log in and out; ``/api/v1/me``: who the caller is.

The login here is the one the login page uses too: throttled per client address,
audited (failures included), and it sets the session cookie (HttpOnly, SameSite=Lax,
Secure when the request came over HTTPS).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from callvault.web.audit import record
from callvault.web.auth import SESSION_ABSOLUTE, NewSession, authenticate, end_session, new_session
from callvault.web.errors import Unauthorized
from callvault.web.principal import COOKIE, Principal, WebContext, context, principal, principal_of

router = APIRouter(prefix="/api/v1", tags=["session"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=256, description="username or extension")
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    id: int
    login: str
    display_name: str | None
    role: str
    scope: str
    timezone: str
    via: str
    csrf_token: str | None = None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def log_in(
    ctx: WebContext, request: Request, username: str, password: str
) -> tuple[NewSession, Principal]:
    """Check the credentials and open a session; ``Unauthorized`` or ``TooManyRequests``."""
    address = client_address(request)
    ctx.throttle.check(address)
    now = ctx.now()
    agent = request.headers.get("user-agent")

    def attempt(db: Any) -> tuple[NewSession, Principal] | str:
        user = authenticate(db, username, password, now)
        if isinstance(user, str):
            record(db, None, "login.failed", ip=address, actor=username[:256], reason=user)
            return user
        opened = new_session(db, user, now, address, agent)
        db.flush()
        who = principal_of(db, user, "session", ctx.settings, csrf_token=opened.csrf_token)
        record(db, who, "login", target_type="user", target_id=user.id, ip=address)
        return opened, who

    outcome = ctx.database.write(attempt)
    if isinstance(outcome, str):
        ctx.throttle.failed(address)
        raise Unauthorized(outcome)
    return outcome


def set_session_cookie(request: Request, response: Response, opened: NewSession) -> None:
    response.set_cookie(
        COOKIE,
        opened.cookie,
        max_age=int(SESSION_ABSOLUTE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def log_out(ctx: WebContext, request: Request, response: Response, who: Principal | None) -> None:
    cookie = request.cookies.get(COOKIE)

    def end(db: Any) -> None:
        if cookie:
            end_session(db, cookie)
        if who is not None:
            record(
                db,
                who,
                "logout",
                target_type="user",
                target_id=who.user_id,
                ip=client_address(request),
            )

    ctx.database.write(end)
    response.delete_cookie(COOKIE, path="/")


def _me(who: Principal) -> Me:
    return Me(
        id=who.user_id,
        login=who.login,
        display_name=who.display_name,
        role=who.role,
        scope=who.scope,
        timezone=who.timezone,
        via=who.via,
        csrf_token=who.csrf_token,
    )


@router.post("/session", summary="Log in (username may be the extension); sets the session cookie")
def create_session(
    credentials: Credentials,
    request: Request,
    response: Response,
    ctx: Annotated[WebContext, Depends(context)],
) -> Me:
    opened, who = log_in(ctx, request, credentials.username, credentials.password)
    set_session_cookie(request, response, opened)
    return _me(who)


@router.delete("/session", status_code=204, summary="Log out: end this session")
def delete_session(
    request: Request,
    ctx: Annotated[WebContext, Depends(context)],
    who: Annotated[Principal, Depends(principal)],
) -> Response:
    response = Response(status_code=204)
    log_out(ctx, request, response, who)
    return response


@router.get("/me", summary="Who the caller is")
def me(who: Annotated[Principal, Depends(principal)]) -> Me:
    return _me(who)
