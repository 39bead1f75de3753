"""REST API: webhooks and their delivery log (administrators only).

A webhook is a URL, the events it wants (``recording.ready``, ``call.ended``,
``recording.deleted``; an empty list means every event) and a shared secret that signs
each delivery (see :mod:`callvault.web.webhooks` for the headers and how to verify
them). The secret is generated unless given, and shown once, in the answer to the
creation. Every change is audited (``webhook.create``, ``webhook.update``,
``webhook.delete``, ``webhook.test``, ``webhook.retry``). The functions here are what
the admin pages call too.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.accounts import Webhook, WebhookDelivery
from callvault.recording.events import EVENTS
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.errors import BadRequest, Conflict, NotFound
from callvault.web.params import MAX_ID, RowId
from callvault.web.principal import Principal, WebContext, admin, context
from callvault.web.webhooks import queue_ping, redeliver

__all__ = [
    "MAX_ID",
    "DeliveryOut",
    "RowId",
    "WebhookIn",
    "WebhookOut",
    "check_events",
    "check_url",
    "create_webhook",
    "delete_webhook",
    "delivery_page",
    "ping_webhook",
    "retry_delivery",
    "router",
    "update_webhook",
]

router = APIRouter(prefix="/api/v1", tags=["webhooks"])

Admin = Annotated[Principal, Depends(admin)]
Ctx = Annotated[WebContext, Depends(context)]
MAX_PAGE = 200
# Ids are INTEGER columns: a bigger number in a URL is refused, not a database error.


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host, or ``ValueError`` saying what is wrong."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL needs a host")
    if len(url) > 2048:
        raise ValueError("the URL is longer than 2048 characters")
    return url


def check_events(events: list[str]) -> list[str]:
    """Known events without duplicates, in the order given (empty: every event)."""
    unknown = [event for event in events if event not in EVENTS]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; expected some of {', '.join(EVENTS)}")
    return list(dict.fromkeys(events))


class WebhookIn(BaseModel):
    url: str = Field(description="http:// or https:// URL the events are POSTed to")
    events: list[str] = Field(description=f"some of {', '.join(EVENTS)}; [] for every event")
    description: str | None = Field(default=None, max_length=256)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=128,
        description="the HMAC-SHA256 key; generated (and shown once) when not given",
    )

    _url = field_validator("url")(check_url)
    _events = field_validator("events")(check_events)


class WebhookPatch(BaseModel):
    url: str | None = None
    events: list[str] | None = None
    active: bool | None = None
    description: str | None = Field(default=None, max_length=256, description="'' clears it")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_events(value)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, hook: Webhook) -> WebhookOut:
        return cls(
            id=hook.id,
            url=hook.url,
            events=list(hook.events or []),
            description=hook.description,
            active=hook.active,
            created_at=hook.created_at,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown only in this answer: store it now")


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event: str
    event_id: str = Field(description="the X-Callvault-Delivery header: same on every retry")
    state: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime | None = Field(description="when pending: the next attempt")
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=row.id,
            webhook_id=row.webhook_id,
            event=row.event,
            event_id=row.event_id,
            state=row.state,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
            last_status=row.last_status,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            payload=row.payload,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def _webhook(db: Session, webhook_id: int) -> Webhook:
    hook = db.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return hook


def create_webhook(db: Session, who: Principal, ip: str, fields: WebhookIn) -> tuple[Webhook, str]:
    """Add a webhook; returns it and its secret (the only time the secret is shown)."""
    secret = fields.secret or secrets.token_urlsafe(32)
    hook = Webhook(
        url=fields.url,
        events=fields.events,
        description=fields.description or None,
        secret=secret,
        active=True,
    )
    db.add(hook)
    db.flush()
    record(
        db,
        who,
        "webhook.create",
        target_type="webhook",
        target_id=hook.id,
        ip=ip,
        url=hook.url,
        events=hook.events,
    )
    return hook, secret


def update_webhook(
    db: Session, who: Principal, ip: str, webhook_id: int, changes: WebhookPatch
) -> Webhook:
    hook = _webhook(db, webhook_id)
    wanted: dict[str, Any] = {}
    if changes.url is not None:
        wanted["url"] = changes.url
    if changes.events is not None:
        wanted["events"] = changes.events
    if changes.active is not None:
        wanted["active"] = changes.active
    if changes.description is not None:
        wanted["description"] = changes.description or None  # "" clears it
    changed: dict[str, Any] = {}
    for name, value in wanted.items():
        if getattr(hook, name) != value:
            changed[name] = [getattr(hook, name), value]
            setattr(hook, name, value)
    if changed:
        record(
            db,
            who,
            "webhook.update",
            target_type="webhook",
            target_id=hook.id,
            ip=ip,
            changes=changed,
        )
    return hook


def delete_webhook(db: Session, who: Principal, ip: str, webhook_id: int) -> None:
    """Remove a webhook and its delivery log (undelivered events are dropped)."""
    hook = _webhook(db, webhook_id)
    record(db, who, "webhook.delete", target_type="webhook", target_id=hook.id, ip=ip, url=hook.url)
    db.delete(hook)


def delivery_page(
    db: Session, webhook_id: int, limit: int, cursor: str | None
) -> tuple[list[WebhookDelivery], str | None]:
    """A webhook's deliveries, newest first, ``limit`` at a time (keyset on the id)."""
    _webhook(db, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if cursor:
        if not cursor.isdigit() or int(cursor) > MAX_ID:
            raise BadRequest("cursor: not a cursor this list gave out")
        query = query.where(WebhookDelivery.id < int(cursor))
    rows = list(db.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, str(rows[-1].id) if more else None


def _active(hook: Webhook) -> None:
    if not hook.active:
        raise Conflict(f"webhook {hook.id} is inactive: activate it first")


def ping_webhook(
    db: Session, who: Principal, ip: str, webhook_id: int, now: datetime
) -> WebhookDelivery:
    hook = _webhook(db, webhook_id)
    _active(hook)
    delivery = queue_ping(db, hook, now)
    record(db, who, "webhook.test", target_type="webhook", target_id=hook.id, ip=ip)
    return delivery


def retry_delivery(
    db: Session, who: Principal, ip: str, webhook_id: int, delivery_id: int, now: datetime
) -> WebhookDelivery:
    hook = _webhook(db, webhook_id)
    delivery = db.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != hook.id:
        raise NotFound(f"webhook {webhook_id} has no delivery {delivery_id}")
    _active(hook)
    again = redeliver(db, delivery, now)
    record(
        db,
        who,
        "webhook.retry",
        target_type="webhook",
        target_id=hook.id,
        ip=ip,
        delivery_id=delivery.id,
        event=delivery.event,
        event_id=delivery.event_id,
    )
    return again


@router.get("/webhooks", summary="The webhooks (administrators)")
def list_webhooks(ctx: Ctx, _who: Admin) -> list[WebhookOut]:
    hooks = ctx.database.read(lambda db: db.scalars(select(Webhook).order_by(Webhook.id)).all())
    return [WebhookOut.of(hook) for hook in hooks]


@router.post(
    "/webhooks",
    status_code=201,
    summary="Add a webhook; the answer carries its secret, shown only this once",
)
def post_webhook(body: WebhookIn, request: Request, ctx: Ctx, who: Admin) -> WebhookCreated:
    hook, secret = ctx.database.write(
        lambda db: create_webhook(db, who, client_address(request), body)
    )
    return WebhookCreated(**WebhookOut.of(hook).model_dump(), secret=secret)


@router.patch("/webhooks/{webhook_id}", summary="Change a webhook's URL, events, state or note")
def patch_webhook(
    webhook_id: RowId, body: WebhookPatch, request: Request, ctx: Ctx, who: Admin
) -> WebhookOut:
    hook = ctx.database.write(
        lambda db: update_webhook(db, who, client_address(request), webhook_id, body)
    )
    return WebhookOut.of(hook)


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook and its log")
def remove_webhook(webhook_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    ctx.database.write(lambda db: delete_webhook(db, who, client_address(request), webhook_id))
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="A webhook's delivery log, newest first (keyset pagination)",
)
def list_deliveries(
    webhook_id: RowId,
    ctx: Ctx,
    _who: Admin,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: str | None = None,
) -> DeliveryPage:
    rows, next_cursor = ctx.database.read(lambda db: delivery_page(db, webhook_id, limit, cursor))
    return DeliveryPage(items=[DeliveryOut.of(row) for row in rows], next_cursor=next_cursor)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    summary="Send a delivery again now (a settled one is queued anew with the same event id)",
)
def retry(
    webhook_id: RowId, delivery_id: RowId, request: Request, ctx: Ctx, who: Admin
) -> DeliveryOut:
    row = ctx.database.write(
        lambda db: retry_delivery(
            db, who, client_address(request), webhook_id, delivery_id, ctx.now()
        )
    )
    return DeliveryOut.of(row)


@router.post(
    "/webhooks/{webhook_id}/test",
    status_code=202,
    summary="Queue a ping event to the webhook (answers the queued delivery)",
)
def send_test(webhook_id: RowId, request: Request, ctx: Ctx, who: Admin) -> DeliveryOut:
    row = ctx.database.write(
        lambda db: ping_webhook(db, who, client_address(request), webhook_id, ctx.now())
    )
    return DeliveryOut.of(row)
