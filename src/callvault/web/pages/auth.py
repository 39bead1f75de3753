"""The login page, logging out, and the root redirect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from callvault.web.api.session import log_in, log_out, set_session_cookie
from callvault.web.errors import TooManyRequests, Unauthorized
from callvault.web.principal import Principal, WebContext, context, csrf_checked, optional_principal
from callvault.web.templating import render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an open redirect to another host.
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/calls"
    return target


@router.get("/")
def root(who: Annotated[Principal | None, Depends(optional_principal)]) -> RedirectResponse:
    return RedirectResponse("/calls" if who else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", None, next=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login_form(
    request: Request,
    ctx: Annotated[WebContext, Depends(context)],
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        opened, _ = log_in(ctx, request, username, password)
    except (Unauthorized, TooManyRequests) as exc:
        return render(
            request,
            "login.html",
            None,
            status_code=exc.status,
            error=exc.detail,
            username=username,
            next=_safe_next(next),
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, opened)
    return response


@router.post("/logout")
def logout(
    request: Request,
    ctx: Annotated[WebContext, Depends(context)],
    who: Annotated[Principal | None, Depends(csrf_checked)],
) -> Response:
    response = RedirectResponse("/login", status_code=303)
    log_out(ctx, request, response, who)
    return response
