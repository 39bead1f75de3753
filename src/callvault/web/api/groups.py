"""``/api/v1/groups``: groups with member counts; add, rename, delete (administrators).

Groups are also created on first use when a user is given one. A group that is still
some user's primary group can not be deleted (409): those users' playback scope would
silently shrink. Member-group memberships and call tags go with a deleted group, and
the audit line says how many. Renaming keeps every membership (they refer to the id).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.accounts import Group
from callvault.web.api.session import client_address
from callvault.web.api.users import RowId, write_or_refuse
from callvault.web.audit import record
from callvault.web.errors import BadRequest, NotFound
from callvault.web.people import create_group, delete_group, group_json, groups_json, rename_group
from callvault.web.principal import Principal, WebContext, admin, context

__all__ = ["add_group", "list_groups", "remove_group", "rename", "router"]

router = APIRouter(prefix="/api/v1", tags=["groups"])


class GroupName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)


class GroupOut(BaseModel):
    id: int
    name: str
    members: int = Field(description="users with the group as primary or member group")
    primary_members: int = Field(description="users with it as their primary group")
    created_at: str


class GroupPage(BaseModel):
    items: list[GroupOut]
    next_cursor: str | None


def _group(db: Session, group_id: int) -> Group:
    group = db.get(Group, group_id)
    if group is None:
        raise NotFound(f"no group {group_id}")
    return group


def list_groups(ctx: WebContext, limit: int = 500, cursor: str | None = None) -> dict[str, Any]:
    """Groups by name (names are unique, so the last name is the cursor)."""

    if cursor and any(ord(c) < 32 for c in cursor):
        raise BadRequest("cursor: not one this API gave out")

    def page(db: Session) -> dict[str, Any]:
        query = select(Group).order_by(Group.name).limit(limit + 1)
        if cursor:
            query = query.where(Group.name > cursor)
        rows = db.scalars(query).all()
        items = groups_json(db, rows[:limit])
        return {"items": items, "next_cursor": items[-1]["name"] if len(rows) > limit else None}

    return ctx.database.read(page)


def add_group(ctx: WebContext, who: Principal, ip: str, name: str) -> dict[str, Any]:
    def work(db: Session) -> dict[str, Any]:
        made = group_json(db, create_group(db, name))
        record(
            db,
            who,
            "group.create",
            target_type="group",
            target_id=made["id"],
            ip=ip,
            name=made["name"],
        )
        return made

    return write_or_refuse(ctx, work)


def rename(ctx: WebContext, who: Principal, ip: str, group_id: int, name: str) -> dict[str, Any]:
    def work(db: Session) -> dict[str, Any]:
        group = _group(db, group_id)
        before = group.name
        rename_group(db, group, name)
        if group.name != before:
            record(
                db,
                who,
                "group.update",
                target_type="group",
                target_id=group.id,
                ip=ip,
                changes={"name": [before, group.name]},
            )
        return group_json(db, group)

    return write_or_refuse(ctx, work)


def remove_group(ctx: WebContext, who: Principal, ip: str, group_id: int) -> None:
    def work(db: Session) -> None:
        group = _group(db, group_id)
        name = group.name
        gone = delete_group(db, group)
        record(
            db,
            who,
            "group.delete",
            target_type="group",
            target_id=group_id,
            ip=ip,
            name=name,
            removed=gone,
        )

    write_or_refuse(ctx, work)


Ctx = Annotated[WebContext, Depends(context)]
Admin = Annotated[Principal, Depends(admin)]


@router.get(
    "/groups", response_model=GroupPage, summary="Groups with member counts (administrators)"
)
def groups_index(
    ctx: Ctx,
    who: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, Any]:
    return list_groups(ctx, limit, cursor)


@router.post(
    "/groups",
    status_code=201,
    response_model=GroupOut,
    summary="Add a group (administrators)",
    responses={409: {"description": "a group with that name exists"}},
)
def groups_create(body: GroupName, request: Request, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return add_group(ctx, who, client_address(request), body.name)


@router.patch(
    "/groups/{group_id}",
    response_model=GroupOut,
    summary="Rename a group (administrators)",
    responses={409: {"description": "another group has that name"}},
)
def groups_update(
    group_id: RowId, body: GroupName, request: Request, ctx: Ctx, who: Admin
) -> dict[str, Any]:
    return rename(ctx, who, client_address(request), group_id, body.name)


@router.delete(
    "/groups/{group_id}",
    status_code=204,
    summary="Delete a group (administrators); 409 while it is someone's primary group",
    responses={409: {"description": "still the primary group of some users"}},
)
def groups_delete(group_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    remove_group(ctx, who, client_address(request), group_id)
    return Response(status_code=204)
