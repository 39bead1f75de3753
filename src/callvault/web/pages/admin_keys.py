"""``/admin/keys``: administrators see the encryption keys and set a new one.

The page shows the active key (fingerprint, user ids, algorithm, expiry with T12
warnings, whether its private key is in the system and needs a passphrase), whether
``encryption.enabled`` is on, and the older keys. The form uploads the public key file,
optionally the private key file and its passphrase (only to check the pair: it is never
stored), and goes through :func:`callvault.web.api.keys.set_keys` (same checks, same
``keys.set`` audit line). A refused key shows the page again with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from callvault.web.api.keys import MAX_KEY_CHARS, KeysIn, keys_state, set_keys
from callvault.web.api.session import client_address
from callvault.web.errors import BadRequest, WebError
from callvault.web.principal import Principal, WebContext, admin, context
from callvault.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Ctx = Annotated[WebContext, Depends(context)]
Admin = Annotated[Principal, Depends(admin)]


def _times(key: dict[str, Any] | None) -> dict[str, Any] | None:
    """A key's ISO times as datetimes, for the ``local_time`` filter."""
    if key is None:
        return None
    return {
        **key,
        **{
            name: datetime.fromisoformat(key[name]) if key[name] else None
            for name in ("expires_at", "created_at")
        },
    }


def _page(
    request: Request, ctx: WebContext, who: Principal, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    saved = request.query_params.get("done") == "set"
    state = keys_state(ctx)
    state["active"] = _times(state["active"])
    state["older"] = [_times(key) for key in state["older"]]
    return render(
        request,
        "admin_keys.html",
        who,
        status_code=status_code,
        keys=state,
        notice="The key was set: new recordings are encrypted to it." if saved else None,
        **extra,
    )


async def _text(form: FormData, name: str) -> str | None:
    """An uploaded key file (or pasted text) as text; None when not given."""
    value = form.get(name)
    if isinstance(value, UploadFile):
        data = await value.read(MAX_KEY_CHARS + 1)
        if len(data) > MAX_KEY_CHARS:
            raise BadRequest(f"the {name.replace('_', ' ')} file is too large for a key")
        text = data.decode("utf-8", errors="replace")
    else:
        text = value or ""
    return text if text.strip() else None


@router.get("/admin/keys", response_class=HTMLResponse)
def keys_page(request: Request, ctx: Ctx, who: Admin) -> Response:
    return _page(request, ctx, who)


@router.post("/admin/keys", response_class=HTMLResponse)
async def keys_set(request: Request, ctx: Ctx, who: Admin) -> Response:
    form = await request.form()
    try:
        public = await _text(form, "public_key")
        if public is None:
            raise BadRequest("choose the public key file")
        passphrase = form.get("passphrase")
        body = KeysIn(
            public_key=public,
            private_key=await _text(form, "private_key"),
            passphrase=passphrase if isinstance(passphrase, str) and passphrase else None,
        )
        # gpg checks the pair (a fraction of a second): off the event loop.
        await run_in_threadpool(set_keys, ctx, who, client_address(request), body)
    except ValidationError as exc:
        return _page(request, ctx, who, 422, error=str(exc.errors()[0]["msg"]))
    except WebError as exc:
        return _page(request, ctx, who, exc.status, error=exc.detail)
    return RedirectResponse("/admin/keys?done=set", status_code=303)
