"""``/account``: the logged-in user's details, password change and API tokens.

The forms post here and this module calls the same functions as the API
(``web.api.users.change_own_password``, ``web.api.tokens``), so a page can not do
what the API refuses. A refused change shows the account page again with the message
and the error status; a new token is shown on the page that answers its form, once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from callvault.web.api.session import client_address
from callvault.web.api.tokens import MAX_DAYS, create_token, list_tokens, revoke_token
from callvault.web.api.users import RowId, change_own_password, get_user
from callvault.web.auth import TOKEN_SCOPES
from callvault.web.errors import BadRequest, WebError
from callvault.web.principal import Principal, WebContext, context, principal
from callvault.web.templating import render

__all__ = ["as_times", "router"]

router = APIRouter(include_in_schema=False)

# Messages after a redirect: the query names one, so no text from the URL is shown.
NOTICES = {
    "password": "Your password was changed; your other sessions were ended.",
    "revoked": "The token was revoked.",
}
TIME_FIELDS = ("created_at", "last_used_at", "expires_at", "revoked_at", "last_login_at")

Ctx = Annotated[WebContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


def as_times(item: dict[str, Any]) -> dict[str, Any]:
    """An API dict with its ISO times as datetimes, for the ``local_time`` filter."""
    return {
        key: datetime.fromisoformat(value) if key in TIME_FIELDS and value else value
        for key, value in item.items()
    }


def _page(
    request: Request, ctx: WebContext, who: Principal, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    tokens = list_tokens(ctx, who, limit=500)["items"]
    scopes = sorted(s for s in TOKEN_SCOPES if s != "admin" or who.is_admin)
    return render(
        request,
        "account.html",
        who,
        status_code=status_code,
        user=as_times(get_user(ctx, who.user_id)),
        tokens=[as_times(token) for token in tokens],
        scopes=scopes,
        max_days=MAX_DAYS,
        notice=NOTICES.get(request.query_params.get("done", "")),
        **extra,
    )


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, ctx: Ctx, who: Caller) -> Response:
    return _page(request, ctx, who)


@router.post("/account/password", response_class=HTMLResponse)
def account_password(
    request: Request,
    ctx: Ctx,
    who: Caller,
    current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)],
    new_password_again: Annotated[str, Form(max_length=1024)],
) -> Response:
    try:
        if new_password != new_password_again:
            raise BadRequest("the two new passwords differ")
        change_own_password(ctx, who, client_address(request), current_password, new_password)
    except WebError as exc:
        return _page(request, ctx, who, exc.status, error=exc.detail, section="password")
    return RedirectResponse("/account?done=password", status_code=303)


@router.post("/account/tokens", response_class=HTMLResponse)
def account_tokens(
    request: Request,
    ctx: Ctx,
    who: Caller,
    name: Annotated[str, Form(max_length=128)] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    expires_in_days: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        days = None
        if expires_in_days.strip():
            if not expires_in_days.strip().isdigit() or not 1 <= int(expires_in_days) <= MAX_DAYS:
                raise BadRequest(f"expires in: a number of days from 1 to {MAX_DAYS}, or empty")
            days = int(expires_in_days)
        if not scopes:
            raise BadRequest("choose at least one scope for the token")
        made = create_token(ctx, who, client_address(request), name, scopes, days)
    except WebError as exc:
        return _page(request, ctx, who, exc.status, error=exc.detail, section="tokens")
    return _page(request, ctx, who, new_token=made)


@router.post("/account/tokens/{token_id}/revoke")
def account_token_revoke(token_id: RowId, request: Request, ctx: Ctx, who: Caller) -> Response:
    revoke_token(ctx, who, client_address(request), token_id)
    return RedirectResponse("/account?done=revoked", status_code=303)
