"""The audit log (append-only): who did what, when, from where.

Logins (and failed ones), plays, downloads, shares, share-link uses, deletions and
settings changes are recorded with :func:`record` in the same transaction as the thing
they describe, so an action and its audit line commit together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from callvault.db.accounts import AuditEvent
from callvault.web.principal import Principal

__all__ = ["record"]


def record(
    db: Session,
    who: Principal | None,
    action: str,
    *,
    target_type: str | None = None,
    target_id: object = None,
    ip: str | None = None,
    actor: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add one audit line; ``actor`` names someone who is not a user (a share link)."""
    event = AuditEvent(
        user_id=who.user_id if who else None,
        actor=actor or (who.login if who else "anonymous"),
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        ip=ip,
        detail={k: v for k, v in detail.items() if v is not None},
    )
    if who is not None and who.via == "token":
        event.detail["via"] = "api token"
    db.add(event)
    return event
