"""ORM models of the people side: users, groups, web sessions, API tokens, saved filters,
the audit log, share links and webhooks.

Same conventions as :mod:`callvault.db.models` (aware UTC timestamps, states checked in
Python, cascades in the database). Secrets are never stored: sessions, API tokens and
share-link passcodes are kept as SHA-256 or argon2 hashes only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from callvault.db.base import Base, check_choice, new_uid, utcnow

__all__ = [
    "DELIVERY_STATES",
    "ROLES",
    "SCOPES",
    "ApiToken",
    "AuditEvent",
    "CallGroup",
    "Group",
    "SavedFilter",
    "ShareLink",
    "User",
    "UserGroup",
    "WebSession",
    "Webhook",
    "WebhookDelivery",
]

ROLES = frozenset({"user", "supervisor", "admin"})
# Playback scope (REQUIREMENTS D8); every scope includes the user's own calls.
SCOPES = frozenset({"own", "primary_group", "member_groups", "all"})
DELIVERY_STATES = frozenset({"pending", "delivered", "failed"})


class Group(Base):
    __tablename__ = "group"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Group id={self.id} name={self.name!r}>"


class User(Base):
    """A person who logs in (by username or extension, REQUIREMENTS A1) or uses tokens.

    ``addresses`` are AORs or line numbers that are this user besides the extension (a
    call belongs to the user when any of them took part in it).
    """

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str | None] = mapped_column(String(128), unique=True)
    extension: Mapped[str | None] = mapped_column(String(32), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(256))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    role: Mapped[str] = mapped_column(String(16), default="user")
    scope: Mapped[str] = mapped_column(String(16), default="own")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    primary_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("group.id", ondelete="SET NULL")
    )
    addresses: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    primary_group: Mapped[Group | None] = relationship(foreign_keys=[primary_group_id])
    member_groups: Mapped[list[Group]] = relationship(secondary="user_group", viewonly=True)

    @validates("role")
    def _validate_role(self, _key: str, value: str) -> str:
        return check_choice("User.role", value, ROLES)

    @validates("scope")
    def _validate_scope(self, _key: str, value: str) -> str:
        return check_choice("User.scope", value, SCOPES)

    @property
    def login(self) -> str:
        return self.username or self.extension or f"user-{self.id}"

    def __repr__(self) -> str:
        return f"<User id={self.id} login={self.login!r} role={self.role}>"


class UserGroup(Base):
    """Member groups of a user (the primary group is on the user row)."""

    __tablename__ = "user_group"
    __table_args__ = (Index("ix_user_group_group_id", "group_id"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("group.id", ondelete="CASCADE"), primary_key=True
    )


class CallGroup(Base):
    """A call tagged with a group: the group's supervisors see it (REQUIREMENTS D8)."""

    __tablename__ = "call_group"
    __table_args__ = (Index("ix_call_group_group_id", "group_id"),)

    call_id: Mapped[int] = mapped_column(
        ForeignKey("call.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("group.id", ondelete="CASCADE"), primary_key=True
    )


class WebSession(Base):
    """A logged-in browser: ``id`` is the SHA-256 of the cookie's secret."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A bearer token for integrations: hashed, scoped, revocable."""

    __tablename__ = "api_token"
    __table_args__ = (Index("ix_api_token_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class SavedFilter(Base):
    """A user's named call-list filter (REQUIREMENTS D1): the query string of the list."""

    __tablename__ = "saved_filter"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    query: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only: who did what, when, from where. Rows are never updated or deleted
    by callvault (deleting a user keeps their events, with ``user_id`` cleared)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ShareLink(Base):
    """A public, expiring, revocable link to one recording or to a call's stitched one.

    The URL carries ``uid`` and a signature over it and the expiry; the row makes the
    link revocable and holds the optional passcode's hash.
    """

    __tablename__ = "share_link"
    __table_args__ = (
        Index("ix_share_link_recording_id", "recording_id"),
        Index("ix_share_link_call_id", "call_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recording.id", ondelete="CASCADE"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    passcode_hash: Mapped[str | None] = mapped_column(String(256))
    uses: Mapped[int] = mapped_column(Integer, default=0)
    last_used_at: Mapped[datetime | None]


class Webhook(Base):
    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))  # the HMAC-SHA256 key (shared)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook, and how delivering it went (the delivery log)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        Index("ix_webhook_delivery_webhook_id", "webhook_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(32), default=new_uid)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    @validates("state")
    def _validate_state(self, _key: str, value: str) -> str:
        return check_choice("WebhookDelivery.state", value, DELIVERY_STATES)
