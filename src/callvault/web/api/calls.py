"""REST API: the call list with every filter, one call, the CSV export, saved filters,
tagging a call with a group, and the API's own docs page.

Filters are read by :class:`callvault.web.calls_query.CallFilter` from the URL exactly
as the calls page reads them, so a page URL's query string works here unchanged. Every
call read goes through :mod:`callvault.web.permissions`: a call one may not see is a
404, never a 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.db.accounts import CallGroup, Group, SavedFilter
from callvault.web.api.session import client_address
from callvault.web.audit import record
from callvault.web.calls_query import (
    MAX_LIMIT,
    CallFilter,
    call_detail,
    csv_page,
    search_calls,
)
from callvault.web.errors import BadRequest, Conflict, Forbidden, NotFound
from callvault.web.params import RowId
from callvault.web.permissions import require_scope, visible_call
from callvault.web.principal import Principal, WebContext, context, principal

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["calls"])

Ctx = Annotated[WebContext, Depends(context)]
Who = Annotated[Principal, Depends(principal)]


def call_filter(
    request: Request,
    who: Who,
    q: Annotated[
        str | None,
        Query(description="text found anywhere in the call's numbers, names and ids (A5)"),
    ] = None,
    min_duration: Annotated[str | None, Query(description="seconds, at least")] = None,
    max_duration: Annotated[str | None, Query(description="seconds, at most")] = None,
    date_from: Annotated[
        str | None,
        Query(
            alias="from",
            description="started on or after: a date (the whole day, in the user's time "
            "zone) or an ISO date and time",
        ),
    ] = None,
    date_to: Annotated[
        str | None,
        Query(alias="to", description="started before the end of this date, or before this time"),
    ] = None,
    direction: Annotated[
        str | None, Query(description="inbound, outbound, internal or external")
    ] = None,
    participant: Annotated[
        str | None, Query(description="part of a participant's AOR, number or name")
    ] = None,
    group: Annotated[
        str | None, Query(description="a group's name (within the caller's playback scope)")
    ] = None,
    has_recording: Annotated[
        str | None, Query(description="true: only calls with a playable recording")
    ] = None,
    state: Annotated[str | None, Query(description="active (in progress) or ended")] = None,
    sort: Annotated[
        str | None, Query(description="-started_at (default), started_at, -duration, duration")
    ] = None,
) -> CallFilter:
    """The filter of the URL (the parameters above are read from it, and documented)."""
    return CallFilter.from_query(request.query_params, who.timezone)


Filter = Annotated[CallFilter, Depends(call_filter)]


class CallList(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


@router.get("/calls", summary="Calls the caller may see, filtered, newest first, a page at a time")
def list_calls(
    ctx: Ctx,
    who: Who,
    flt: Filter,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> CallList:
    """Each item has the fields of `callvault calls list --json` plus `caller`, `callee`,
    `source`, `destination`, `recording_state`, `has_recording` and each recording's
    `audio_url` and `download_url`."""
    page = ctx.database.read(lambda db: search_calls(db, who, flt, limit=limit, cursor=cursor))
    return CallList(items=page.items, next_cursor=page.next_cursor)


@router.get("/calls/export.csv", summary="The filtered call list as a CSV file")
def export_calls(request: Request, ctx: Ctx, who: Who, flt: Filter) -> StreamingResponse:
    """Every call the filter finds (no paging), streamed; audited as `calls.export`."""
    require_scope(who, "calls:read")
    ctx.database.write(
        lambda db: record(db, who, "calls.export", ip=client_address(request), query=flt.to_query())
    )

    def batch(cursor: str | None, header: bool) -> tuple[list[str], str | None]:
        # One short read per batch: a long export must not hold a snapshot open.
        return ctx.database.read(lambda db: csv_page(db, who, flt, cursor, header=header))

    def lines() -> Iterator[str]:
        found, cursor = batch(None, True)
        yield from found
        while cursor is not None:
            found, cursor = batch(cursor, False)
            yield from found

    stamp = ctx.now().astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'},
    )


@router.get("/calls/{call_id}", summary="One call: timeline, participants, stream health")
def get_call(call_id: RowId, ctx: Ctx, who: Who) -> dict[str, Any]:
    """Segments with offsets on the call's timeline, streams with health and `flags`
    (`silent`, `one-sided`, `high loss`), recordings with DTMF and paused marks, tagged
    groups; `metadata_events` (the raw SIPREC metadata) for administrators only."""
    return ctx.database.read(lambda db: call_detail(db, who, call_id))


# -- saved filters (D1) ---------------------------------------------------------------------


class NewFilter(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    query: str = Field(max_length=2000, description="a call-list query string, e.g. q=107")


def _filter_json(row: SavedFilter) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "query": row.query,
        "created_at": row.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


@router.get("/filters", summary="The caller's saved call-list filters")
def list_filters(ctx: Ctx, who: Who) -> dict[str, Any]:
    def read(db: Session) -> list[dict[str, Any]]:
        rows = db.scalars(
            select(SavedFilter)
            .where(SavedFilter.user_id == who.user_id)
            .order_by(SavedFilter.name, SavedFilter.id)
        )
        return [_filter_json(row) for row in rows]

    require_scope(who, "calls:read")
    return {"items": ctx.database.read(read), "next_cursor": None}


@router.post("/filters", status_code=201, summary="Save a call-list filter under a name")
def create_filter(body: NewFilter, ctx: Ctx, who: Who) -> dict[str, Any]:
    """The query is checked as the list would read it and stored in its canonical form;
    409 when the caller already has a filter of that name."""
    require_scope(who, "calls:read")
    name = body.name.strip()
    if not name:
        raise BadRequest("name: must not be blank", parameter="name")
    query = CallFilter.parse(body.query, who.timezone).to_query()

    def save(db: Session) -> dict[str, Any]:
        row = SavedFilter(user_id=who.user_id, name=name, query=query)
        db.add(row)
        db.flush()
        return _filter_json(row)

    try:
        return ctx.database.write(save)
    except IntegrityError:
        raise Conflict(f"you already have a filter called {name!r}") from None


@router.delete("/filters/{filter_id}", status_code=204, summary="Delete one of one's saved filters")
def delete_filter(filter_id: RowId, ctx: Ctx, who: Who) -> Response:
    def remove(db: Session) -> int:
        done = db.execute(
            delete(SavedFilter).where(
                SavedFilter.id == filter_id, SavedFilter.user_id == who.user_id
            )
        )
        return int(getattr(done, "rowcount", 0) or 0)

    require_scope(who, "calls:read")
    if not ctx.database.write(remove):
        raise NotFound(f"no filter {filter_id}")
    return Response(status_code=204)


# -- tagging a call with a group (D8) ---------------------------------------------------------


def _tag(
    ctx: WebContext, who: Principal, request: Request, call_id: int, name: str, on: bool
) -> dict[str, Any]:
    require_scope(who, "calls:read")
    # Tagging changes who sees a call: a token needs the admin scope for it, whoever holds it.
    require_scope(who, "admin")

    def change(db: Session) -> dict[str, Any]:
        visible_call(db, who, call_id)
        if not (who.is_admin or who.role == "supervisor"):
            raise Forbidden("only administrators and supervisors tag calls with groups")
        group = db.scalars(select(Group).where(Group.name == name)).first()
        if group is None:
            raise NotFound(f"no group {name!r}")
        if not who.is_admin and group.id not in who.group_ids | {who.primary_group_id}:
            raise Forbidden(f"you are not a supervisor of the group {name!r}")
        tagged = db.get(CallGroup, (call_id, group.id))
        if on and tagged is None:
            db.add(CallGroup(call_id=call_id, group_id=group.id))
        elif not on and tagged is not None:
            db.delete(tagged)
        if (tagged is None) == on:  # something changed
            record(
                db,
                who,
                "call.tag" if on else "call.untag",
                target_type="call",
                target_id=call_id,
                ip=client_address(request),
                group=name,
            )
        db.flush()
        groups = db.scalars(
            select(Group.name)
            .join(CallGroup, CallGroup.group_id == Group.id)
            .where(CallGroup.call_id == call_id)
            .order_by(Group.name)
        )
        return {"call_id": call_id, "groups": list(groups)}

    return ctx.database.write(change)


@router.put("/calls/{call_id}/groups/{group_name}", summary="Tag a call with a group")
def tag_call(
    call_id: RowId, group_name: str, request: Request, ctx: Ctx, who: Who
) -> dict[str, Any]:
    """The group's members with a group scope then see the call. For administrators and
    the group's supervisors; answers the call's groups."""
    return _tag(ctx, who, request, call_id, group_name, True)


@router.delete("/calls/{call_id}/groups/{group_name}", summary="Remove a group's tag from a call")
def untag_call(
    call_id: RowId, group_name: str, request: Request, ctx: Ctx, who: Who
) -> dict[str, Any]:
    """For administrators and the group's supervisors; answers the call's groups."""
    return _tag(ctx, who, request, call_id, group_name, False)


# -- the docs page ----------------------------------------------------------------------------


@router.get("/docs", response_class=HTMLResponse, summary="This API's documentation as a page")
def api_docs(request: Request) -> HTMLResponse:
    """Every operation of the OpenAPI document (method, path, summary, parameters), on a
    self-contained page: no script or style from elsewhere (no internet is assumed)."""
    schema = request.app.openapi()
    rows: list[str] = []
    for path, operations in sorted(schema.get("paths", {}).items()):
        for method, operation in operations.items():
            parameters = "".join(
                f"<li><code>{escape(p['name'])}</code> ({escape(p.get('in', ''))}"
                f"{', required' if p.get('required') else ''})"
                f"{': ' + escape(p['description']) if p.get('description') else ''}</li>"
                for p in operation.get("parameters", [])
            )
            body = operation.get("requestBody", {}).get("content", {})
            rows.append(
                f'<section id="{escape(operation.get("operationId", ""))}">'
                f"<h2><span class=method>{escape(method.upper())}</span> "
                f"<code>{escape(path)}</code></h2>"
                f"<p>{escape(operation.get('summary', ''))}</p>"
                f"<p class=description>{escape(operation.get('description', ''))}</p>"
                + (f"<ul>{parameters}</ul>" if parameters else "")
                + (f"<p>Body: {escape(', '.join(body))}</p>" if body else "")
                + "</section>"
            )
    info = schema.get("info", {})
    page = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{escape(info.get('title', 'API'))} API</title>"
        "<style>body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}section{border-top:1px solid #ccc;padding:.4rem 0}"
        "h2{font-size:1rem;margin:.4rem 0}.method{display:inline-block;min-width:4.5rem}"
        ".description{color:#444;white-space:pre-wrap}</style>"
        f"<h1>{escape(info.get('title', 'API'))} {escape(info.get('version', ''))}</h1>"
        f"<p>{escape(info.get('description', ''))}</p>"
        '<p>The machine-readable document: <a href="/api/v1/openapi.json">openapi.json</a>.</p>'
        + "".join(rows)
        + "</html>"
    )
    return HTMLResponse(page)
