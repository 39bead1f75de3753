"""The public side of share links: ``/s/<token>`` for anyone holding the link, no login.

The page shows a player, a download button, the call's date and the recording's
duration, and nothing else about the call (no numbers, names or ids: the download gets
a neutral file name for the same reason). A link with a passcode first shows a form;
the right passcode sets a signed cookie scoped to that link's path
(:mod:`callvault.web.sharing`); wrong ones are throttled per address and per link with
the login throttle. Every use is audited as ``share.use`` with the actor
``share:<link id>``: the page, each playback and each download (once, on the request
that starts at byte 0, not on every range request of the same playback).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from callvault.db.accounts import ShareLink
from callvault.db.models import Call, Recording
from callvault.web.api.session import client_address
from callvault.web.audio import content_disposition, serve
from callvault.web.audit import record
from callvault.web.errors import Forbidden, TooManyRequests
from callvault.web.playback import playback_body
from callvault.web.principal import WebContext, context
from callvault.web.sharing import (
    MAX_PASSCODE_LENGTH,
    UNLOCK_COOKIE,
    check_passcode,
    live_link,
    record_use,
    shared_recording,
    unlock_cookie,
    unlocked,
)
from callvault.web.templating import render

router = APIRouter(include_in_schema=False)

Ctx = Annotated[WebContext, Depends(context)]

# The token is in the URL: no other site may see it in a Referer, no search engine may
# keep the page, and no cache may replay it after the link is revoked.
_PRIVATE = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    clock = (
        f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
    )
    return f"{clock} ({whole} s)"


def _public_name(recording: Recording, started_at: datetime) -> str:
    """A download name that says when, not who (the template may hold phone numbers)."""
    suffix = PurePosixPath(recording.file_name or "").suffix or f".{recording.format}"
    return f"call-recording-{started_at:%Y-%m-%d_%H.%M.%S}{suffix}"


def _open(ctx: WebContext, token: str) -> tuple[ShareLink, Recording, datetime]:
    now = ctx.now()

    def load(db: Session) -> tuple[ShareLink, Recording, datetime]:
        link = live_link(db, ctx.secret, token, now)
        recording = shared_recording(db, link)
        call = db.get(Call, recording.call_id)
        return link, recording, call.started_at if call else recording.created_at

    return ctx.database.read(load)


def _use(ctx: WebContext, link: ShareLink, recording: Recording, what: str, ip: str) -> None:
    now = ctx.now()

    def count(db: Session) -> None:
        row = db.get(ShareLink, link.id)
        if row is not None:
            record_use(db, row, recording, what, ip, now)

    ctx.database.write(count)


def _passcode_form(
    request: Request, token: str, error: str | None = None, status_code: int = 200
) -> Response:
    response = render(
        request,
        "share_passcode.html",
        None,
        status_code=status_code,
        action=f"/s/{token}",
        error=error,
        max_length=MAX_PASSCODE_LENGTH,
    )
    response.headers.update(_PRIVATE)
    return response


@router.get("/s/{token}")
def share_page(token: str, request: Request, ctx: Ctx) -> Response:
    """The shared recording's page: player, download, date and duration."""
    link, recording, started_at = _open(ctx, token)
    if not unlocked(ctx.secret, link, request.cookies.get(UNLOCK_COOKIE), ctx.now()):
        return _passcode_form(request, token)
    _use(ctx, link, recording, "page", client_address(request))
    response = render(
        request,
        "share.html",
        None,
        started_at=started_at,
        started_iso=started_at.isoformat().replace("+00:00", "Z"),
        duration=_duration(recording.duration_s),
        ready=recording.state == "ready",
        audio_url=f"/s/{token}/audio",
        download_url=f"/s/{token}/download",
        expires_at=link.expires_at,
    )
    response.headers.update(_PRIVATE)
    return response


@router.post("/s/{token}")
def unlock(
    token: str,
    request: Request,
    ctx: Ctx,
    passcode: Annotated[str, Form(max_length=4 * MAX_PASSCODE_LENGTH)] = "",
) -> Response:
    """Check a link's passcode; the right one sets the unlock cookie for this link."""
    link, recording, _ = _open(ctx, token)
    page = RedirectResponse(f"/s/{token}", status_code=303)
    if link.passcode_hash is None:
        return page
    address = client_address(request)
    keys = (f"share:{address}", f"share-link:{link.uid}")
    try:
        for key in keys:
            ctx.throttle.check(key)
    except TooManyRequests as exc:
        response = _passcode_form(request, token, exc.detail, exc.status)
        response.headers["Retry-After"] = str(exc.extra.get("retry_after", 60))
        return response
    if not check_passcode(link, passcode):
        for key in keys:
            ctx.throttle.failed(key)
        ctx.database.write(
            lambda db: record(
                db,
                None,
                "share.passcode_failed",
                target_type="recording",
                target_id=recording.id,
                ip=address,
                actor=f"share:{link.id}",
                share_id=link.id,
            )
        )
        return _passcode_form(request, token, "wrong passcode", 401)
    for key in keys:
        ctx.throttle.succeeded(key)
    value, lifetime = unlock_cookie(ctx.secret, link, ctx.now())
    page.set_cookie(
        UNLOCK_COOKIE,
        value,
        max_age=lifetime,
        path=f"/s/{token}",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return page


def _file(token: str, request: Request, ctx: WebContext, *, download: bool) -> Response:
    link, recording, started_at = _open(ctx, token)
    if not unlocked(ctx.secret, link, request.cookies.get(UNLOCK_COOKIE), ctx.now()):
        raise Forbidden("this link needs its passcode: open the link's page and enter it")
    body = playback_body(ctx, recording, as_stored=download, shared=True)
    kind = "attachment" if download else "inline"
    name = _public_name(recording, started_at)
    served = serve(request, body, disposition=content_disposition(kind, name))
    if served.from_start:
        _use(ctx, link, recording, "download" if download else "audio", client_address(request))
    served.response.headers.update({"Referrer-Policy": "no-referrer"})
    return served.response


@router.get("/s/{token}/audio")
def share_audio(token: str, request: Request, ctx: Ctx) -> Response:
    """The shared audio for the page's player (Range; transcoded when the browser needs)."""
    return _file(token, request, ctx, download=False)


@router.get("/s/{token}/download")
def share_download(token: str, request: Request, ctx: Ctx) -> Response:
    """The shared recording as stored, as an attachment."""
    return _file(token, request, ctx, download=True)
