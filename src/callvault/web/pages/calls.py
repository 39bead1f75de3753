"""Pages: the calls list (A2, A5, D1, D2) and one call (D3, D4, D5, U2).

Both only present: what a viewer may see and how a URL filters the list are decided by
:mod:`callvault.web.calls_query` and :mod:`callvault.web.calls_detail` (which go through
:mod:`callvault.web.permissions`); playing, downloading and sharing are the API's, called
from the page by ``static/app.js``. What this module adds is the view: times turned into
datetimes for the viewer's zone, and the call's timeline laid out in percent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from callvault.db.accounts import Group, SavedFilter
from callvault.db.models import PausedInterval, Segment, Stream
from callvault.runtime_settings import effective_settings
from callvault.web.calls_detail import call_detail
from callvault.web.calls_query import DIRECTIONS, SORTS, CallFilter, CallPage, search_calls
from callvault.web.errors import BadRequest
from callvault.web.params import RowId
from callvault.web.permissions import scope_groups
from callvault.web.principal import Principal, WebContext, context, principal
from callvault.web.templating import local_time, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
SORT_LABELS = {
    "-started_at": "Newest first",
    "started_at": "Oldest first",
    "-duration": "Longest first",
    "duration": "Shortest first",
}
assert set(SORT_LABELS) == set(SORTS)


STATE_LABELS = {
    "recording": "recording",
    "waiting": "waiting",
    "processing": "processing",
    "ready": "ready",
    "failed": "failed",
    "none": "no recording",
}


def clock(seconds: float | None) -> str:
    """A duration as people read it: ``4:05``, ``1:02:03``; a dash while unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def parse_time(value: str | datetime | None) -> datetime | None:
    """An ISO 8601 time of the JSON shapes as an aware datetime (``local_time`` input)."""
    if value is None or isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def party(person: dict[str, Any] | None) -> str:
    """A caller or callee in a few words: the name, else the number."""
    if not person:
        return "unknown"
    return str(person.get("name") or person.get("number") or person.get("aor") or "unknown")


def title_of(item: dict[str, Any]) -> str:
    """What the player shows while a call plays."""
    return f"{party(item.get('caller'))} → {party(item.get('callee'))}"


def _group_names(db: Session, who: Principal) -> list[str]:
    """The groups ``who`` may filter by: every group for whoever sees every call."""
    statement = select(Group.name).order_by(Group.name)
    if not (who.is_admin or who.scope == "all"):
        statement = statement.where(Group.id.in_(sorted(scope_groups(who))))
    return list(db.scalars(statement))


def _saved_filters(db: Session, who: Principal) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(SavedFilter)
        .where(SavedFilter.user_id == who.user_id)
        .order_by(SavedFilter.name, SavedFilter.id)
    )
    return [{"id": row.id, "name": row.name, "query": row.query.lstrip("?")} for row in rows]


def _with_times(item: dict[str, Any]) -> dict[str, Any]:
    """The item with its start as a datetime (``local_time`` shows it in the zone)."""
    return {**item, "started": parse_time(item["started_at"])}


def _playable(item: dict[str, Any]) -> dict[str, Any] | None:
    """The recording a row's play button plays: the whole call's when it was stitched,
    else the first ready one."""
    ready: list[dict[str, Any]] = [r for r in item["recordings"] if r["state"] == "ready"]
    whole = [r for r in ready if r["kind"] == "call"]
    chosen = whole or ready
    return chosen[0] if chosen else None


def _varies(response: Response) -> Response:
    # The same URL answers a whole page or only <main> (X-Callvault-Partial): caches
    # must keep the two apart.
    response.headers["Vary"] = "X-Callvault-Partial"
    return response


@router.get("/calls", response_class=HTMLResponse, summary="The calls list")
def calls_page(
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    ctx: Annotated[WebContext, Depends(context)],
) -> Response:
    """The calls the user may see, filtered by the URL's query (the quick filter)."""
    # A form sent without the script carries every field, the empty ones too.
    params = {key: value for key, value in request.query_params.items() if value.strip()}
    cursor = params.pop("cursor", None)
    params.pop("limit", None)
    error: str | None = None
    try:
        flt = CallFilter.from_query(params, who.timezone)
    except BadRequest as exc:
        # Nothing listed, the form shows what was typed so it can be put right.
        error, flt, cursor = exc.detail, CallFilter(tz=who.timezone), None

    def read(db: Session) -> tuple[CallPage, list[dict[str, Any]], list[str]]:
        nonlocal error
        page = CallPage([], None)
        if error is None:
            try:
                page = search_calls(db, who, flt, limit=PAGE_SIZE, cursor=cursor)
            except BadRequest as exc:  # a cursor of another list
                error = exc.detail
        return page, _saved_filters(db, who), _group_names(db, who)

    page, saved, groups = ctx.database.read(read)
    query = flt.to_query()
    rows = [{**_with_times(item), "play": _playable(item)} for item in page.items]
    return _varies(
        render(
            request,
            "calls.html",
            who,
            status_code=400 if error else 200,
            error=error,
            flt=flt,
            query=query,
            rows=rows,
            next_cursor=page.next_cursor,
            first_page=cursor is None,
            saved=saved,
            groups=groups,
            values=params if error else dict(parse_qsl(query)),
            directions=DIRECTIONS,
            sorts=SORT_LABELS,
            state_labels=STATE_LABELS,
            clock=clock,
            title_of=title_of,
            live=any(
                row["state"] == "active" or row.get("recording_state") in ("waiting", "processing")
                for row in rows
            ),
        )
    )


@router.get("/calls/{call_id}", response_class=HTMLResponse, summary="One call")
def call_page(
    call_id: RowId,
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    ctx: Annotated[WebContext, Depends(context)],
) -> Response:
    """A call: its timeline, participants, stream health, recordings with waveforms."""
    detail, pausing, user_paused = ctx.database.read(
        lambda db: (
            call_detail(db, who, call_id),
            bool(effective_settings(db, ctx.settings, check=False)["recording.user_pause"]),
            _paused_by_user(db, call_id),
        )
    )
    started = parse_time(detail["started_at"])
    assert started is not None
    recordings = detail["recordings"]
    return _varies(
        render(
            request,
            "call.html",
            who,
            call=detail,
            started=started,
            timeline=lay_out(detail, (ctx.now() - started).total_seconds()),
            live=detail["state"] == "active"
            or any(r["state"] in ("waiting", "processing") for r in recordings),
            # T3: a call in progress can be paused from here when recording.user_pause is on
            pausable=pausing and detail["state"] == "active" and who.allows("calls:pause"),
            user_paused=user_paused,
            clock=clock,
            state_labels=STATE_LABELS,
            ended=parse_time(detail["ended_at"]),
            title=f"{local_time(started, who.timezone, '%Y-%m-%d %H:%M')} · {title_of(detail)}",
            offset_time=lambda seconds: local_time(
                started + timedelta(seconds=seconds or 0), who.timezone, "%H:%M:%S"
            ),
        )
    )


def _paused_by_user(db: Session, call_id: int) -> bool:
    """Whether a user paused the call's recording and has not resumed it (T3)."""
    open_pause = (
        select(PausedInterval.id)
        .join(Stream, Stream.id == PausedInterval.stream_id)
        .join(Segment, Segment.id == Stream.segment_id)
        .where(
            Segment.call_id == call_id,
            PausedInterval.reason == "user",
            PausedInterval.ended_at.is_(None),
        )
    )
    return bool(db.scalar(select(exists(open_pause))))


# -- the timeline ------------------------------------------------------------------------


def _percent(seconds: float, total: float) -> float:
    return round(max(0.0, min(100.0, 100.0 * seconds / total)), 3)


def _merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping intervals as one (both streams on hold is one hold)."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def lay_out(detail: dict[str, Any], elapsed: float) -> dict[str, Any]:
    """The call's timeline in percent of its length: a bar per segment (with the
    recording that plays it), paused stretches, DTMF digits; ``elapsed`` stands in for
    the length of a call still in progress."""
    total = detail.get("timeline_s") or elapsed
    total = max(float(total), 1.0)
    ready = [r for r in detail["recordings"] if r["state"] == "ready"]
    whole = next((r for r in ready if r["kind"] == "call"), None)
    bars = []
    for index, segment in enumerate(detail["segments"], start=1):
        start = segment["start_offset_s"] or 0.0
        end = segment["end_offset_s"] if segment["end_offset_s"] is not None else total
        recording = next(
            (r for r in ready if r["kind"] == "segment" and r["segment_id"] == segment["id"]),
            None,
        )
        bars.append(
            {
                "index": index,
                "segment": segment,
                "start": start,
                "length": max(0.0, end - start),
                "left": _percent(start, total),
                "width": _percent(end - start, total),
                "recording": recording,
                "names": [p["name"] or p["aor"] or "?" for p in segment["participants"]],
            }
        )
    ends = {s["id"]: s["end_offset_s"] for s in detail["segments"]}
    paused = _merged(
        [
            (a, b if b is not None else (ends.get(stream["segment_id"]) or total))
            for stream in detail["streams"]
            for a, b in stream["health"]["paused"]
            if a is not None
        ]
    )
    # DTMF from the per-leg files (a stitched file repeats them), placed on the call.
    marked = [r for r in ready if r["kind"] == "segment"] or ([whole] if whole else [])
    digits = sorted(
        {
            (round(float(mark["at"]) + (r["offset_s"] or 0.0), 2), str(mark.get("digit", "")))
            for r in marked
            for mark in r["dtmf"]
        }
    )
    return {
        "total": total,
        "whole": whole,
        "bars": bars,
        "paused": [
            {"start": a, "end": b, "left": _percent(a, total), "width": _percent(b - a, total)}
            for a, b in paused
        ],
        "dtmf": [{"at": at, "digit": digit, "left": _percent(at, total)} for at, digit in digits],
        "ticks": [{"at": total * p / 100} for p in (0, 25, 50, 75, 100)],
    }
