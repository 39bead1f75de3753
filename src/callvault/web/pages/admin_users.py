"""``/admin/users`` and ``/admin/groups``: administrators add, edit and delete users and
groups, set passwords and revoke users' API tokens.

The forms are parsed into the API's own request models and go through the API's
functions (``web.api.users``, ``web.api.groups``, ``web.api.tokens``): the same checks,
the same audit lines. A refused form shows its page again with the message, the error
status and what was typed (never a password).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from callvault.web.api.groups import add_group, list_groups, remove_group, rename
from callvault.web.api.session import client_address
from callvault.web.api.tokens import list_tokens, revoke_token
from callvault.web.api.users import (
    NewUser,
    RowId,
    UserChanges,
    add_user,
    change_user,
    get_user,
    list_users,
    remove_user,
    set_user_password,
)
from callvault.web.errors import BadRequest, WebError
from callvault.web.pages.account import as_times
from callvault.web.principal import Principal, WebContext, admin, context
from callvault.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

NOTICES = {
    "created": "The user was added.",
    "saved": "The changes were saved.",
    "password": "The password was set; the user's sessions were ended.",
    "deleted": "The user was deleted.",
    "revoked": "The token was revoked.",
    "group-created": "The group was added.",
    "group-renamed": "The group was renamed.",
    "group-deleted": "The group was deleted.",
}
ROLES = ("user", "supervisor", "admin")
SCOPES = {
    "own": "own calls",
    "primary_group": "own and the primary group's",
    "member_groups": "own, the primary and the member groups'",
    "all": "all calls",
}
TEXT_FIELDS = ("username", "extension", "display_name", "email", "primary_group")
_LIST_SPLIT = re.compile(r"[,\s]+")

Ctx = Annotated[WebContext, Depends(context)]
Admin = Annotated[Principal, Depends(admin)]


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'form'}: {error['msg']}"
        for error in exc.errors()
    )


def _names(text: str) -> list[str]:
    """``sales, support`` → ["sales", "support"] (groups may contain spaces: commas only)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _form_values(form: FormData) -> dict[str, Any]:
    """The user form as the API's JSON: empty text is null, lists are split."""
    values: dict[str, Any] = {}
    for name in (*TEXT_FIELDS, "timezone", "role", "scope"):
        value = form.get(name)
        values[name] = value.strip() or None if isinstance(value, str) else None
    groups = form.get("groups")
    addresses = form.get("addresses")
    values["groups"] = _names(groups) if isinstance(groups, str) else []
    values["addresses"] = (
        [a for a in _LIST_SPLIT.split(addresses) if a] if isinstance(addresses, str) else []
    )
    return values


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    """The submitted values as the form shows them again."""
    return {
        **values,
        "groups": ", ".join(values.get("groups") or []),
        "addresses": ", ".join(values.get("addresses") or []),
    }


def _list_page(
    request: Request, ctx: WebContext, who: Principal, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    cursor = request.query_params.get("cursor")
    try:
        users = list_users(ctx, 200, cursor)
    except WebError:
        users = list_users(ctx, 200)
    return render(
        request,
        "admin_users.html",
        who,
        status_code=status_code,
        users=[as_times(user) for user in users["items"]],
        next_cursor=users["next_cursor"],
        groups=list_groups(ctx)["items"],
        roles=ROLES,
        scopes=SCOPES,
        notice=NOTICES.get(request.query_params.get("done", "")),
        form=extra.pop("form", {"role": "user", "scope": "own"}),
        **extra,
    )


def _user_page(
    request: Request,
    ctx: WebContext,
    who: Principal,
    user_id: int,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    user = as_times(get_user(ctx, user_id))
    return render(
        request,
        "admin_user.html",
        who,
        status_code=status_code,
        user=user,
        form=extra.pop("form", _typed(user)),
        tokens=[as_times(t) for t in list_tokens(ctx, who, user_id, limit=500)["items"]],
        roles=ROLES,
        scopes=SCOPES,
        notice=NOTICES.get(request.query_params.get("done", "")),
        **extra,
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, ctx: Ctx, who: Admin) -> Response:
    return _list_page(request, ctx, who)


@router.post("/admin/users", response_class=HTMLResponse)
async def users_add(request: Request, ctx: Ctx, who: Admin) -> Response:
    form = await request.form()
    values = _form_values(form)
    password = form.get("password")
    try:
        given = {k: v for k, v in values.items() if v is not None}  # absent: the default
        if isinstance(password, str) and password:
            given["password"] = password
        body = NewUser.model_validate(given)
    except ValidationError as exc:
        return _list_page(request, ctx, who, 422, error=_validation_text(exc), form=_typed(values))
    try:
        made = add_user(ctx, who, client_address(request), body)
    except WebError as exc:
        return _list_page(request, ctx, who, exc.status, error=exc.detail, form=_typed(values))
    return RedirectResponse(f"/admin/users/{made['id']}?done=created", status_code=303)


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_page(user_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    return _user_page(request, ctx, who, user_id)


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
async def user_save(user_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    form = await request.form()
    values = _form_values(form)
    # Role, scope and time zone can not be cleared: an empty one keeps what is stored.
    given = {k: v for k, v in values.items() if v is not None or k in TEXT_FIELDS}
    given["active"] = form.get("active") == "on"
    shown = {**_typed(values), "active": given["active"]}
    try:
        changes = UserChanges.model_validate(given).fields()
        change_user(ctx, who, client_address(request), user_id, changes)
    except ValidationError as exc:
        return _user_page(request, ctx, who, user_id, 422, error=_validation_text(exc), form=shown)
    except WebError as exc:
        get_user(ctx, user_id)  # a user deleted meanwhile is a 404 page, not a form
        return _user_page(request, ctx, who, user_id, exc.status, error=exc.detail, form=shown)
    return RedirectResponse(f"/admin/users/{user_id}?done=saved", status_code=303)


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse)
async def user_password(user_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    form = await request.form()
    password, again = form.get("password"), form.get("password_again")
    try:
        if not isinstance(password, str) or not password:
            raise BadRequest("type the new password")
        if password != again:
            raise BadRequest("the two passwords differ")
        set_user_password(ctx, who, client_address(request), user_id, password)
    except WebError as exc:
        get_user(ctx, user_id)
        return _user_page(
            request, ctx, who, user_id, exc.status, error=exc.detail, section="password"
        )
    return RedirectResponse(f"/admin/users/{user_id}?done=password", status_code=303)


@router.post("/admin/users/{user_id}/delete", response_class=HTMLResponse)
def user_delete(user_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    try:
        remove_user(ctx, who, client_address(request), user_id)
    except WebError as exc:
        get_user(ctx, user_id)
        return _user_page(request, ctx, who, user_id, exc.status, error=exc.detail)
    return RedirectResponse("/admin/users?done=deleted", status_code=303)


@router.post("/admin/users/{user_id}/tokens/{token_id}/revoke")
def user_token_revoke(
    user_id: RowId, token_id: RowId, request: Request, ctx: Ctx, who: Admin
) -> Response:
    owner = revoke_token(ctx, who, client_address(request), token_id)
    return RedirectResponse(f"/admin/users/{owner}?done=revoked", status_code=303)


def _group_name(form: FormData) -> str:
    name = form.get("name")
    return name if isinstance(name, str) else ""


@router.post("/admin/groups", response_class=HTMLResponse)
async def group_add(request: Request, ctx: Ctx, who: Admin) -> Response:
    name = _group_name(await request.form())
    try:
        add_group(ctx, who, client_address(request), name)
    except WebError as exc:
        return _list_page(request, ctx, who, exc.status, group_error=exc.detail)
    return RedirectResponse("/admin/users?done=group-created#groups", status_code=303)


@router.post("/admin/groups/{group_id}", response_class=HTMLResponse)
async def group_rename(group_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    name = _group_name(await request.form())
    try:
        rename(ctx, who, client_address(request), group_id, name)
    except WebError as exc:
        return _list_page(request, ctx, who, exc.status, group_error=exc.detail)
    return RedirectResponse("/admin/users?done=group-renamed#groups", status_code=303)


@router.post("/admin/groups/{group_id}/delete", response_class=HTMLResponse)
def group_delete(group_id: RowId, request: Request, ctx: Ctx, who: Admin) -> Response:
    try:
        remove_group(ctx, who, client_address(request), group_id)
    except WebError as exc:
        return _list_page(request, ctx, who, exc.status, group_error=exc.detail)
    return RedirectResponse("/admin/users?done=group-deleted#groups", status_code=303)
