"""``/api/v1/users`` (administrators) and ``/api/v1/me/password`` (everyone, by session).

The checks live in :mod:`callvault.web.people` (shared with ``callvault users``); this
module turns them into HTTP: a bad value is 400, a clash with stored data (a taken
login, the last active administrator, deleting or deactivating yourself) is 409.
Every change is audited in the same transaction with the fields it changed, never a
password. The functions without a route decorator are what the admin and account
pages call, so the pages and the API cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.db.accounts import User
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.auth import verify_password
from callvault.web.errors import BadRequest, Conflict, Forbidden, NotFound
from callvault.web.params import MAX_ID, RowId
from callvault.web.people import (
    Clash,
    UserFields,
    check_admin_remains,
    create_user,
    delete_user,
    set_password,
    update_user,
    user_json,
    users_json,
)
from callvault.web.principal import Principal, WebContext, admin, context, principal

__all__ = [
    "MAX_ID",
    "NewUser",
    "RowId",
    "UserChanges",
    "add_user",
    "change_own_password",
    "change_user",
    "get_user",
    "list_users",
    "parse_id_cursor",
    "remove_user",
    "router",
    "set_user_password",
    "write_or_refuse",
]

router = APIRouter(prefix="/api/v1", tags=["users"])
T = TypeVar("T")

#: A row id in a path: out of range is a 422, never a database error.

Role = Literal["user", "supervisor", "admin"]
Scope = Literal["own", "primary_group", "member_groups", "all"]
GroupName = Annotated[str, Field(max_length=128)]
Address = Annotated[str, Field(max_length=256)]
# Text fields that null (or "") clears; the others can only be given a new value.
CLEARABLE = ("username", "extension", "display_name", "email", "primary_group")
# What an audit line of a change compares (the rest is not set by administrators).
AUDITED = (
    "username",
    "extension",
    "display_name",
    "email",
    "timezone",
    "role",
    "scope",
    "primary_group",
    "groups",
    "addresses",
    "active",
)


def write_or_refuse(ctx: WebContext, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a write transaction; its ``ValueError`` becomes 400 (409 for a
    :class:`Clash`), a unique index hit by a concurrent change 409."""
    try:
        return ctx.database.write(work)
    except Clash as exc:
        raise Conflict(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    except IntegrityError:
        raise Conflict("someone changed the same thing at the same time; try again") from None


class NewUser(BaseModel):
    """A user as ``callvault users add`` makes one; groups are created on first use."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(None, max_length=128, description="login name")
    extension: str | None = Field(
        None, max_length=32, description="a login too, and how the user's calls are found"
    )
    password: str | None = Field(
        None, max_length=1024, description="at least 8 characters; none: cannot log in yet"
    )
    display_name: str | None = Field(None, max_length=256)
    email: str | None = Field(None, max_length=256)
    timezone: str | None = Field(None, max_length=64, description="IANA zone, default UTC")
    role: Role = "user"
    scope: Scope = Field("own", description="calls the user may play besides their own")
    primary_group: GroupName | None = None
    groups: list[GroupName] = Field(default_factory=list, max_length=100)
    addresses: list[Address] = Field(
        default_factory=list, max_length=100, description="other AORs or lines that are this user"
    )
    active: bool = True

    def fields(self) -> UserFields:
        return UserFields(
            username=self.username,
            extension=self.extension,
            display_name=self.display_name,
            email=self.email,
            timezone=self.timezone,
            role=self.role,
            scope=self.scope,
            primary_group=self.primary_group,
            groups=tuple(self.groups),
            addresses=tuple(self.addresses),
            active=self.active,
        )


class UserChanges(BaseModel):
    """Only the fields given change; null clears username, extension, display_name,
    email and primary_group; ``groups`` and ``addresses`` replace the lists."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(None, max_length=128)
    extension: str | None = Field(None, max_length=32)
    display_name: str | None = Field(None, max_length=256)
    email: str | None = Field(None, max_length=256)
    timezone: str | None = Field(None, max_length=64)
    role: Role | None = None
    scope: Scope | None = None
    primary_group: GroupName | None = None
    groups: list[GroupName] | None = Field(None, max_length=100)
    addresses: list[Address] | None = Field(None, max_length=100)
    active: bool | None = Field(None, description="false ends the user's sessions")

    def fields(self) -> UserFields:
        given: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if value is None and name not in CLEARABLE:
                raise BadRequest(f"{name} can not be null; leave it out to keep it")
            if name in CLEARABLE:
                value = value or ""
            elif name in ("groups", "addresses"):
                value = tuple(value)
            given[name] = value
        return UserFields(**given)


class UserOut(BaseModel):
    id: int
    username: str | None
    extension: str | None
    display_name: str | None
    email: str | None
    timezone: str
    role: str
    scope: str
    primary_group: str | None
    groups: list[str]
    addresses: list[str]
    active: bool
    has_password: bool
    last_login_at: str | None


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class NewPassword(BaseModel):
    password: str = Field(min_length=1, max_length=1024, description="at least 8 characters")


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024, description="at least 8 characters")


class SessionsEnded(BaseModel):
    sessions_ended: int = Field(description="how many of the user's sessions were ended")


def parse_id_cursor(cursor: str | None) -> int | None:
    """The id a ``next_cursor`` of an id-ordered list carries; 400 for anything else."""
    if not cursor:
        return None
    if not cursor.isascii() or not cursor.isdigit() or not 0 < int(cursor) <= MAX_ID:
        raise BadRequest(f"cursor {cursor[:40]!r} is not one this API gave out")
    return int(cursor)


def _user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def list_users(ctx: WebContext, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
    """Users by id, ``limit`` at a time; ``next_cursor`` fetches the next page."""
    after = parse_id_cursor(cursor) or 0

    def page(db: Session) -> dict[str, Any]:
        rows = db.scalars(
            select(User).where(User.id > after).order_by(User.id).limit(limit + 1)
        ).all()
        items = users_json(db, rows[:limit])
        more = len(rows) > limit
        return {"items": items, "next_cursor": str(items[-1]["id"]) if more else None}

    return ctx.database.read(page)


def get_user(ctx: WebContext, user_id: int) -> dict[str, Any]:
    return ctx.database.read(lambda db: user_json(db, _user(db, user_id)))


def add_user(ctx: WebContext, who: Principal, ip: str, body: NewUser) -> dict[str, Any]:
    def work(db: Session) -> dict[str, Any]:
        made = user_json(db, create_user(db, body.fields(), body.password or None))
        given = {k: made[k] for k in AUDITED if made[k] not in (None, [], "")}
        record(
            db,
            who,
            "user.create",
            target_type="user",
            target_id=made["id"],
            ip=ip,
            fields=given,
            has_password=made["has_password"],
        )
        return made

    return write_or_refuse(ctx, work)


def change_user(
    ctx: WebContext, who: Principal, ip: str, user_id: int, changes: UserFields
) -> dict[str, Any]:
    """Apply ``changes``; deactivating ends the user's sessions (tokens stop working)."""

    def work(db: Session) -> dict[str, Any]:
        user = _user(db, user_id)
        check_admin_remains(db, user, changes)
        if user.id == who.user_id and changes.active is False:
            raise Clash("you can not deactivate yourself")
        before = user_json(db, user)
        after = user_json(db, update_user(db, user, changes))
        changed = {k: [before[k], after[k]] for k in AUDITED if before[k] != after[k]}
        if changed:
            record(
                db,
                who,
                "user.update",
                target_type="user",
                target_id=user.id,
                ip=ip,
                changes=changed,
            )
        return after

    return write_or_refuse(ctx, work)


def set_user_password(ctx: WebContext, who: Principal, ip: str, user_id: int, password: str) -> int:
    """An administrator sets the password; the user's sessions end (but the admin's own
    current one when it is their own account). Returns how many ended."""
    now = ctx.now()

    def work(db: Session) -> int:
        user = _user(db, user_id)
        keep = who.session_id if user.id == who.user_id else None
        ended = set_password(db, user, password, now, keep_session=keep)
        record(
            db,
            who,
            "user.password",
            target_type="user",
            target_id=user.id,
            ip=ip,
            sessions_ended=ended,
        )
        return ended

    return write_or_refuse(ctx, work)


def remove_user(ctx: WebContext, who: Principal, ip: str, user_id: int) -> None:
    """Delete a user; their audit lines stay (``user_id`` cleared, the actor text kept)."""

    def work(db: Session) -> None:
        user = _user(db, user_id)
        check_admin_remains(db, user)
        if user.id == who.user_id:
            raise Clash("you can not delete yourself")
        gone = user_json(db, user)
        delete_user(db, user)
        record(
            db,
            who,
            "user.delete",
            target_type="user",
            target_id=user_id,
            ip=ip,
            login=user.login,
            role=gone["role"],
        )

    write_or_refuse(ctx, work)


def change_own_password(ctx: WebContext, who: Principal, ip: str, current: str, new: str) -> int:
    """Change the caller's password after checking the current one; the caller's other
    sessions end, this one stays. A wrong current password counts as a failed login
    for the address (throttled like the login) and is audited."""
    if who.via != "session":
        raise Forbidden("only a logged-in browser session can change the password")
    ctx.throttle.check(ip)
    now = ctx.now()

    def work(db: Session) -> int | None:
        user = _user(db, who.user_id)
        if not verify_password(user.password_hash, current):
            record(db, who, "user.password.failed", target_type="user", target_id=user.id, ip=ip)
            return None
        ended = set_password(db, user, new, now, keep_session=who.session_id)
        record(
            db,
            who,
            "user.password",
            target_type="user",
            target_id=user.id,
            ip=ip,
            own=True,
            sessions_ended=ended,
        )
        return ended

    ended = write_or_refuse(ctx, work)
    if ended is None:
        ctx.throttle.failed(ip)
        raise BadRequest("the current password is wrong")
    return ended


Ctx = Annotated[WebContext, Depends(context)]
Admin = Annotated[Principal, Depends(admin)]


@router.get("/users", response_model=UserPage, summary="Users, by id (administrators)")
def users_index(
    ctx: Ctx,
    who: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    return list_users(ctx, limit, cursor)


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    summary="Add a user (administrators); groups are created on first use",
    responses={400: {"description": "a bad value"}, 409: {"description": "login taken"}},
)
def users_create(body: NewUser, request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return add_user(ctx, who, client_address(request), body)


@router.get("/users/{user_id}", response_model=UserOut, summary="One user (administrators)")
def users_show(user_id: RowId, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return get_user(ctx, user_id)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    summary="Change a user (administrators); active=false ends their sessions",
    responses={409: {"description": "login taken, the last active administrator, or yourself"}},
)
def users_update(
    user_id: RowId, body: UserChanges, request: Request, ctx: Ctx, who: Admin
) -> dict[str, Any]:
    return change_user(ctx, who, client_address(request), user_id, body.fields())


@router.post(
    "/users/{user_id}/password",
    response_model=SessionsEnded,
    summary="Set a user's password (administrators); ends that user's sessions",
)
def users_password(
    user_id: RowId, body: NewPassword, request: Request, ctx: Ctx, who: Admin
) -> dict[str, int]:
    ended = set_user_password(ctx, who, client_address(request), user_id, body.password)
    return {"sessions_ended": ended}


@router.delete(
    "/users/{user_id}",
    status_code=204,
    summary="Delete a user (administrators); their audit lines stay",
    responses={409: {"description": "yourself, or the last active administrator"}},
)
def users_delete(user_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    remove_user(ctx, who, client_address(request), user_id)
    return Response(status_code=204)


@router.post(
    "/me/password",
    response_model=SessionsEnded,
    summary="Change your own password (browser session only); ends your other sessions",
    responses={400: {"description": "the current password is wrong, or the new one too short"}},
)
def me_password(
    body: PasswordChange,
    request: Request,
    ctx: Ctx,
    who: Annotated[Principal, Depends(principal)],
) -> dict[str, int]:
    ended = change_own_password(
        ctx, who, client_address(request), body.current_password, body.new_password
    )
    return {"sessions_ended": ended}
