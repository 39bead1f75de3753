"""Users and groups as administrators manage them (CLI, admin pages and API alike).

Groups are created on first use (``--groups sales,support``). Every change is checked
here (roles, scopes, time zones, unique logins) with a ``ValueError`` naming the field,
the value and what is allowed; a new password ends the user's other sessions.

A change that contradicts what is already stored (a login or group name another one
has, removing the last active administrator, deleting a group that is still someone's
primary group) raises :class:`Clash`, a ``ValueError`` the HTTP layer answers with 409.
Deleting a user keeps their audit lines: the database clears ``user_id`` and the
``actor`` text stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, union
from sqlalchemy.orm import Session

from callvault.config import parse_timezone
from callvault.db.accounts import ROLES, SCOPES, CallGroup, Group, User, UserGroup
from callvault.web.auth import end_user_sessions, hash_password

__all__ = [
    "Clash",
    "UserFields",
    "check_admin_remains",
    "create_group",
    "create_user",
    "delete_group",
    "delete_user",
    "group_json",
    "group_named",
    "groups_json",
    "rename_group",
    "set_password",
    "update_user",
    "user_json",
    "users_json",
]


class Clash(ValueError):
    """The change contradicts stored data (taken name, last administrator, group in use)."""


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


# Column sizes: a longer value is refused here rather than by PostgreSQL mid-write.
_LIMITS = {
    "username": 128,
    "extension": 32,
    "display_name": 256,
    "email": 256,
    "timezone": 64,
    "group": 128,
}


def _printable(field: str, value: str) -> None:
    # Control characters make no sense in a name, and PostgreSQL refuses NUL outright.
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{field} {value[:20]!r}: control characters are not allowed")


def _group_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError("a group needs a name")
    _printable("group", name)
    if len(name) > _LIMITS["group"]:
        raise ValueError(f"group {name[:20]!r}...: at most {_LIMITS['group']} characters")
    return name


def group_named(db: Session, name: str) -> Group:
    """The group called ``name``, created if it does not exist yet."""
    name = _group_name(name)
    group = db.scalars(select(Group).where(Group.name == name)).first()
    if group is None:
        group = Group(name=name)
        db.add(group)
        db.flush()
    return group


def _check(fields: UserFields) -> None:
    for name in ("username", "extension", "display_name", "email", "timezone"):
        value, limit = getattr(fields, name), _LIMITS[name]
        if value is not None and len(value.strip()) > limit:
            raise ValueError(f"{name} {value[:20]!r}...: at most {limit} characters")
        if value is not None:
            _printable(name, value.strip())
    for address in fields.addresses or ():
        _printable("address", address.strip())
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
        raise Clash(f"{taken!r} is already the login of another user")


def _apply(db: Session, user: User, fields: UserFields) -> None:
    # Text fields: "" clears an optional one; the required ones only take real values.
    for name in ("username", "extension", "display_name", "email"):
        value = getattr(fields, name)
        if value is not None:
            setattr(user, name, value.strip() or None)
    for name in ("timezone", "role", "scope"):
        value = getattr(fields, name)
        if value and value.strip():
            setattr(user, name, value.strip())
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


def check_admin_remains(db: Session, user: User, fields: UserFields | None = None) -> None:
    """Refuse leaving nobody to administer: ``fields`` would demote or deactivate ``user``,
    or (``fields`` None) ``user`` is about to be deleted."""
    if user.role != "admin" or not user.active:
        return
    if fields is not None:
        stays_admin = (fields.role or user.role) == "admin"
        stays_active = user.active if fields.active is None else fields.active
        if stays_admin and stays_active:
            return
    others = db.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.active.is_(True), User.id != user.id)
    )
    if not others:
        raise Clash(f"{user.login!r} is the last active administrator; make another one first")


def delete_user(db: Session, user: User) -> None:
    """Delete a user with their sessions, tokens, memberships and saved filters (the
    database cascades); audit lines stay with ``user_id`` cleared, share links they made
    stay with ``created_by`` cleared."""
    check_admin_remains(db, user)
    db.execute(delete(User).where(User.id == user.id))
    db.expunge(user)


def create_group(db: Session, name: str) -> Group:
    """A new group; ``Clash`` if the name is taken (unlike :func:`group_named`)."""
    name = _group_name(name)
    if db.scalars(select(Group).where(Group.name == name)).first() is not None:
        raise Clash(f"there is already a group called {name!r}")
    return group_named(db, name)


def rename_group(db: Session, group: Group, name: str) -> None:
    name = _group_name(name)
    other = db.scalars(select(Group).where(Group.name == name, Group.id != group.id)).first()
    if other is not None:
        raise Clash(f"there is already a group called {name!r}")
    group.name = name
    db.flush()


def delete_group(db: Session, group: Group) -> dict[str, int]:
    """Delete a group that is nobody's primary group (``Clash`` otherwise: those users
    would silently lose what their playback scope shows). Member-group memberships and
    call tags go with it; returns how many of each."""
    primary = db.scalar(
        select(func.count()).select_from(User).where(User.primary_group_id == group.id)
    )
    if primary:
        raise Clash(
            f"group {group.name!r} is the primary group of {primary} user(s); "
            "give them another primary group first"
        )
    gone = {
        "memberships": db.scalar(
            select(func.count()).select_from(UserGroup).where(UserGroup.group_id == group.id)
        )
        or 0,
        "call_tags": db.scalar(
            select(func.count()).select_from(CallGroup).where(CallGroup.group_id == group.id)
        )
        or 0,
    }
    db.execute(delete(Group).where(Group.id == group.id))
    db.expunge(group)
    return gone


def groups_json(db: Session, groups: Sequence[Group]) -> list[dict[str, Any]]:
    """Groups with how many users have each (as primary or member group: ``members``)
    and how many have it as their primary group (``primary_members``)."""
    ids = [group.id for group in groups]
    pairs = union(
        select(User.id.label("user_id"), User.primary_group_id.label("group_id")).where(
            User.primary_group_id.in_(ids)
        ),
        select(UserGroup.user_id, UserGroup.group_id).where(UserGroup.group_id.in_(ids)),
    ).subquery()
    members: dict[int, int] = {
        group_id: count
        for group_id, count in db.execute(
            select(pairs.c.group_id, func.count(pairs.c.user_id)).group_by(pairs.c.group_id)
        )
    }
    primary: dict[int | None, int] = {
        group_id: count
        for group_id, count in db.execute(
            select(User.primary_group_id, func.count())
            .where(User.primary_group_id.in_(ids))
            .group_by(User.primary_group_id)
        )
    }
    return [
        {
            "id": group.id,
            "name": group.name,
            "members": members.get(group.id, 0),
            "primary_members": primary.get(group.id, 0),
            "created_at": group.created_at.isoformat().replace("+00:00", "Z"),
        }
        for group in groups
    ]


def group_json(db: Session, group: Group) -> dict[str, Any]:
    return groups_json(db, [group])[0]
