"""Events other systems are told about (webhooks), written as an outbox.

``emit`` adds one ``WebhookDelivery`` row per active webhook subscribed to the event, in
the transaction that makes the event true (a recording committed ready, a call ended),
so an event is never announced for something that did not commit and never lost for
something that did. Delivering the rows (signing, retrying) is the webhook
dispatcher's job (``callvault.web.webhooks``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.accounts import Webhook, WebhookDelivery
from callvault.db.base import new_uid, utcnow
from callvault.db.models import Call, Recording

__all__ = ["EVENTS", "call_payload", "emit", "recording_payload"]

EVENTS = ("recording.ready", "call.ended", "recording.deleted")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def recording_payload(recording: Recording) -> dict[str, Any]:
    return {
        "recording": {
            "id": recording.id,
            "uid": recording.uid,
            "call_id": recording.call_id,
            "segment_id": recording.segment_id,
            "kind": recording.kind,
            "format": recording.format,
            "codec": recording.codec,
            "channels": recording.channels,
            "duration_s": recording.duration_s,
            "size_bytes": recording.size_bytes,
            "sha256": recording.sha256,
            "file_name": recording.file_name,
            "audio_url": f"/api/v1/recordings/{recording.id}/audio",
            "download_url": f"/api/v1/recordings/{recording.id}/download",
        }
    }


def call_payload(call: Call) -> dict[str, Any]:
    return {
        "call": {
            "id": call.id,
            "uid": call.uid,
            "started_at": _iso(call.started_at),
            "ended_at": _iso(call.ended_at),
            "duration_s": call.duration_s,
            "direction": call.direction,
        }
    }


def emit(db: Session, event: str, data: dict[str, Any]) -> int:
    """Queue ``event`` for every webhook that wants it; returns how many deliveries."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
    hooks = db.scalars(select(Webhook).where(Webhook.active.is_(True))).all()
    wanted = [hook for hook in hooks if not hook.events or event in hook.events]
    now = utcnow()
    for hook in wanted:
        event_id = new_uid()
        db.add(
            WebhookDelivery(
                webhook_id=hook.id,
                event=event,
                event_id=event_id,
                payload={"id": event_id, "event": event, "occurred_at": _iso(now), "data": data},
                next_attempt_at=now,
            )
        )
    return len(wanted)
