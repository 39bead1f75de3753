"""REST API: pause and resume the recording of a call in progress (REQUIREMENTS T3).

An agent pauses while a customer reads out a card number, and resumes after: nothing
the SRC sends meanwhile is captured, and the paused stretch is marked in the recording
(reason ``user``) like a pause the SRC signals by re-INVITE. The SRC's own pauses are
left alone: resuming does not start a stream the SRC made inactive.

Allowed when ``recording.user_pause`` is on, for whoever may see the call (its
participants, a supervisor of their group, administrators; W2's limited tier: only its
participants); API tokens need the ``calls:pause`` scope. The recorder must run in this
process (``callvault serve``): the request reaches its live sessions directly. Audited
as ``recording.pause`` and ``recording.resume``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from callvault.runtime_settings import effective_settings
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.errors import Conflict
from callvault.web.params import RowId
from callvault.web.permissions import require_scope, visible_call
from callvault.web.principal import Principal, WebContext, context, principal

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["calls"])

Ctx = Annotated[WebContext, Depends(context)]
Who = Annotated[Principal, Depends(principal)]

_ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such call, or not one the caller may see"},
    409: {
        "description": "recording.user_pause is off, the call is not being recorded now, "
        "or no recorder runs in this process"
    },
}


def _may_pause(ctx: WebContext, who: Principal, call_id: int) -> None:
    """``NotFound`` for a call ``who`` may not see; ``Conflict`` when pausing is off or
    the call has ended."""
    require_scope(who, "calls:pause")

    def check(db: Session) -> None:
        call = visible_call(db, who, call_id)
        if not effective_settings(db, ctx.settings, check=False)["recording.user_pause"]:
            raise Conflict(
                "pausing recordings is off: an administrator turns it on with recording.user_pause",
                setting="recording.user_pause",
            )
        if call.state != "active":
            raise Conflict(f"call {call_id} is not in progress", state=call.state)

    ctx.database.read(check)


async def _set_paused(
    ctx: WebContext, who: Principal, request: Request, call_id: int, paused: bool
) -> dict[str, Any]:
    await run_in_threadpool(_may_pause, ctx, who, call_id)
    if ctx.live is None:  # a web app of its own, without the recorder: it never will be
        raise Conflict("no recorder runs in this process: pause from callvault serve")
    sessions = await ctx.live.pause_call(call_id, paused)
    if not sessions:
        raise Conflict(f"call {call_id} is not being recorded by this server now")
    action = "recording.pause" if paused else "recording.resume"
    ip = client_address(request)
    await run_in_threadpool(
        ctx.database.write,
        lambda db: record(
            db, who, action, target_type="call", target_id=call_id, ip=ip, sessions=sessions
        ),
    )
    return {"call_id": call_id, "paused": paused, "sessions": sessions}


@router.post(
    "/calls/{call_id}/pause",
    summary="Pause the recording of a call in progress (T3)",
    responses=_ANSWERS,
)
async def pause_call(call_id: RowId, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    """Stop capturing the call's media until it is resumed; `{"call_id", "paused": true,
    "sessions"}` (how many recording sessions of the call were paused)."""
    return await _set_paused(ctx, who, request, call_id, True)


@router.post(
    "/calls/{call_id}/resume",
    summary="Resume the recording of a paused call (T3)",
    responses=_ANSWERS,
)
async def resume_call(call_id: RowId, request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    """Capture the call's media again (streams the SRC itself paused stay paused)."""
    return await _set_paused(ctx, who, request, call_id, False)
