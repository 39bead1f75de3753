"""Users and groups as administrators manage them (CLI, admin pages and API alike).

Groups are created on first use (``--groups sales,support``). Every change is checked
here (roles, scopes, time zones, unique logins) with a ``ValueError`` naming the field,
the value and what is allowed; a new password ends the user's other sessions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from callvault.config import parse_timezone
from callvault.db.accounts import ROLES, SCOPES, Group, User, UserGroup
from callvault.web.auth import end_user_sessions, hash_password

__all__ = [
    "UserFields",
    "create_user",
    "group_named",
    "set_password",
    "update_user",
    "user_json",
    "users_json",
]


@dataclass(frozen=True, slots=True)
class UserFields:
    """What an administrator can set on a user; ``None`` leaves a field as it is."""

    username: str | None = None
    extension: str | None = None
    display_name: str | None = None
    email: str | None = None
    timezone: str | None = None
    role: str | None = None
    scope: str | None = None
    primary_group: str | None = None
    groups: tuple[str, ...] | None = None
    addresses: tuple[str, ...] | None = None
    active: bool | None = None


def group_named(db: Session, name: str) -> Group:
    """The group called ``name``, created if it does not exist yet."""
    name = name.strip()
    if not name:
        raise ValueError("a group needs a name")
    group = db.scalars(select(Group).where(Group.name == name)).first()
    if group is None:
        group = Group(name=name)
        db.add(group)
        db.flush()
    return group


def _check(fields: UserFields) -> None:
    if fields.role is not None and fields.role not in ROLES:
        raise ValueError(f"role {fields.role!r}: expected one of {', '.join(sorted(ROLES))}")
    if fields.scope is not None and fields.scope not in SCOPES:
        raise ValueError(f"scope {fields.scope!r}: expected one of {', '.join(sorted(SCOPES))}")
    if fields.timezone is not None:
        try:
            parse_timezone(fields.timezone)
        except ValueError as exc:
            raise ValueError(f"timezone {fields.timezone!r}: {exc}") from None
    if fields.extension is not None and fields.extension and not fields.extension.isalnum():
        raise ValueError(f"extension {fields.extension!r}: letters and digits only")


def _unique(db: Session, user: User) -> None:
    clauses = []
    if user.username:
        clauses.append(func.lower(User.username) == user.username.lower())
    if user.extension:
        clauses.append(User.extension == user.extension)
    if not clauses:
        raise ValueError("a user needs a username or an extension (or both)")
    with db.no_autoflush:  # the user itself may not be in the database yet
        found = db.scalars(select(User).where(or_(*clauses))).all()
    clash = next((other for other in found if other is not user), None)
    if clash is not None:
        taken = (
            user.username
            if clash.username
            and user.username
            and (clash.username.lower() == user.username.lower())
            else user.extension
        )
        raise ValueError(f"{taken!r} is already the login of another user")


def _apply(db: Session, user: User, fields: UserFields) -> None:
    # Text fields: "" clears an optional one; the required ones only take real values.
    for name in ("username", "extension", "display_name", "email"):
        value = getattr(fields, name)
        if value is not None:
            setattr(user, name, value.strip() or None)
    for name in ("timezone", "role", "scope"):
        value = getattr(fields, name)
        if value:
            setattr(user, name, value)
    if fields.active is not None:
        user.active = fields.active
    if fields.addresses is not None:
        user.addresses = [a.strip() for a in fields.addresses if a.strip()]
    if fields.primary_group is not None:
        user.primary_group_id = (
            group_named(db, fields.primary_group).id if fields.primary_group else None
        )
    _unique(db, user)
    db.flush()
    if fields.groups is not None:
        wanted = {group_named(db, name).id for name in fields.groups if name.strip()}
        db.execute(delete(UserGroup).where(UserGroup.user_id == user.id))
        db.add_all(UserGroup(user_id=user.id, group_id=gid) for gid in sorted(wanted))
    if fields.active is False:
        end_user_sessions(db, user.id)


def create_user(db: Session, fields: UserFields, password: str | None) -> User:
    _check(fields)
    user = User(
        role=fields.role or "user",
        scope=fields.scope or "own",
        timezone=fields.timezone or "UTC",
        password_hash=hash_password(password) if password else None,
    )
    db.add(user)
    _apply(db, user, fields)
    return user


def update_user(db: Session, user: User, fields: UserFields) -> User:
    _check(fields)
    _apply(db, user, fields)
    return user


def set_password(
    db: Session, user: User, password: str, now: datetime, keep_session: str | None = None
) -> int:
    """Set a new password; end the user's sessions (but ``keep_session``). Returns how many."""
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.failed_logins = 0
    user.locked_until = None
    return end_user_sessions(db, user.id, keep=keep_session)


def user_json(db: Session, user: User) -> dict[str, Any]:
    groups = db.scalars(
        select(Group.name)
        .join(UserGroup, UserGroup.group_id == Group.id)
        .where(UserGroup.user_id == user.id)
        .order_by(Group.name)
    ).all()
    primary = db.get(Group, user.primary_group_id) if user.primary_group_id else None
    return {
        "id": user.id,
        "username": user.username,
        "extension": user.extension,
        "display_name": user.display_name,
        "email": user.email,
        "timezone": user.timezone,
        "role": user.role,
        "scope": user.scope,
        "primary_group": primary.name if primary else None,
        "groups": list(groups),
        "addresses": list(user.addresses or []),
        "active": user.active,
        "has_password": user.password_hash is not None,
        "last_login_at": user.last_login_at.isoformat().replace("+00:00", "Z")
        if user.last_login_at
        else None,
    }


def users_json(db: Session, users: Iterable[User] | None = None) -> list[dict[str, Any]]:
    rows = users if users is not None else db.scalars(select(User).order_by(User.id)).all()
    return [user_json(db, user) for user in rows]
