"""Admin pages: the audit log (filters, CSV export) and the webhooks with their delivery log.

Administrators only (others get 403; a visitor not logged in goes to the login page). The pages call
the same functions as the API (:mod:`callvault.web.api.audit`,
:mod:`callvault.web.api.webhooks`), so both audit and validate alike. Forms POST with
the session's CSRF token and answer with a redirect back to the page, except creating
a webhook, which shows the page with the new secret (the only time it is shown).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.accounts import Webhook
from callvault.recording.events import EVENTS
from callvault.web.api.audit import AuditFilter, audit_page
from callvault.web.api.session import client_address
from callvault.web.api.webhooks import (
    RowId,
    WebhookIn,
    WebhookPatch,
    create_webhook,
    delete_webhook,
    delivery_page,
    ping_webhook,
    retry_delivery,
    update_webhook,
)
from callvault.web.principal import Principal, WebContext, admin, context
from callvault.web.templating import render

router = APIRouter(include_in_schema=False)

Admin = Annotated[Principal, Depends(admin)]
Ctx = Annotated[WebContext, Depends(context)]
AUDIT_PAGE = 100
DELIVERIES_SHOWN = 10
# What a redirect after a form may say: a fixed set, so no text is reflected from the URL.
NOTICES = {
    "updated": "Webhook updated.",
    "deleted": "Webhook deleted.",
    "test": "Test event (ping) queued: it is sent within seconds.",
    "retry": "Delivery queued again: it is sent within seconds.",
}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _day(value: str | None, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """A date from the form, in the viewer's time zone; ``end``: the day after it starts."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), zone).astimezone(UTC)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    ctx: Ctx,
    who: Admin,
    action: str = "",
    user: str = "",
    target_type: str = "",
    target_id: str = "",
    since: Annotated[str, Query(alias="from")] = "",
    until: Annotated[str, Query(alias="to")] = "",
    cursor: str | None = None,
) -> Response:
    form = {
        "action": action.strip(),
        "user": user.strip(),
        "target_type": target_type.strip(),
        "target_id": target_id.strip(),
        "from": since,
        "to": until,
    }
    zone = _zone(who.timezone)
    try:
        where = AuditFilter(
            form["action"] or None,
            form["user"] or None,
            form["target_type"] or None,
            form["target_id"] or None,
            _day(since, zone, end=False),
            _day(until, zone, end=True),
        )
    except ValueError as exc:
        return render(
            request, "admin_audit.html", who, status_code=400, form=form, rows=[], error=str(exc)
        )
    rows, next_cursor = ctx.database.read(lambda db: audit_page(db, where, AUDIT_PAGE, cursor))
    kept = {name: value for name, value in form.items() if value}
    query = where.query()
    return render(
        request,
        "admin_audit.html",
        who,
        form=form,
        rows=rows,
        export_url="/api/v1/audit/export.csv" + (f"?{urlencode(query)}" if query else ""),
        next_url=f"/admin/audit?{urlencode({**kept, 'cursor': next_cursor})}"
        if next_cursor
        else None,
        first_url=f"/admin/audit?{urlencode(kept)}" if cursor else None,
    )


def _webhooks_page(
    request: Request,
    ctx: Ctx,
    who: Principal,
    *,
    status_code: int = 200,
    focus: int | None = None,
    cursor: str | None = None,
    **extra: object,
) -> Response:
    def load(db: Session) -> list[dict[str, object]]:
        found = []
        for hook in db.scalars(select(Webhook).order_by(Webhook.id)):
            start = cursor if hook.id == focus else None
            deliveries, more = delivery_page(db, hook.id, DELIVERIES_SHOWN, start)
            found.append({"hook": hook, "deliveries": deliveries, "more": more, "paged": start})
        return found

    return render(
        request,
        "admin_webhooks.html",
        who,
        status_code=status_code,
        hooks=ctx.database.read(load),
        events=EVENTS,
        **extra,
    )


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks(
    request: Request,
    ctx: Ctx,
    who: Admin,
    webhook: int | None = None,
    cursor: str | None = None,
    done: str | None = None,
) -> Response:
    return _webhooks_page(
        request, ctx, who, focus=webhook, cursor=cursor, notice=NOTICES.get(done or "")
    )


@router.post("/admin/webhooks", response_class=HTMLResponse)
def add_webhook(
    request: Request,
    ctx: Ctx,
    who: Admin,
    url: Annotated[str, Form()],
    events: Annotated[list[str] | None, Form()] = None,
    description: Annotated[str, Form()] = "",
    secret: Annotated[str, Form()] = "",
) -> Response:
    entered = {"url": url, "events": events or [], "description": description}
    try:
        fields = WebhookIn(
            url=url, events=events or [], description=description or None, secret=secret or None
        )
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        return _webhooks_page(request, ctx, who, status_code=400, error=problems, entered=entered)
    hook, created_secret = ctx.database.write(
        lambda db: create_webhook(db, who, client_address(request), fields)
    )
    return _webhooks_page(
        request, ctx, who, status_code=201, created=hook, created_secret=created_secret
    )


def _back(done: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/webhooks?done={done}", status_code=303)


@router.post("/admin/webhooks/{webhook_id}/active")
def set_active(
    webhook_id: RowId, request: Request, ctx: Ctx, who: Admin, active: Annotated[bool, Form()]
) -> Response:
    changes = WebhookPatch(active=active)
    ctx.database.write(
        lambda db: update_webhook(db, who, client_address(request), webhook_id, changes)
    )
    return _back("updated")


@router.post("/admin/webhooks/{webhook_id}/delete")
def remove(webhook_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    ctx.database.write(lambda db: delete_webhook(db, who, client_address(request), webhook_id))
    return _back("deleted")


@router.post("/admin/webhooks/{webhook_id}/test")
def send_test(webhook_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    ctx.database.write(
        lambda db: ping_webhook(db, who, client_address(request), webhook_id, ctx.now())
    )
    return _back("test")


@router.post("/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/retry")
def retry(
    webhook_id: RowId, delivery_id: RowId, request: Request, ctx: Ctx, who: Admin
) -> Response:
    ctx.database.write(
        lambda db: retry_delivery(
            db, who, client_address(request), webhook_id, delivery_id, ctx.now()
        )
    )
    return _back("retry")
