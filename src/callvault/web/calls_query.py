"""The call list: filters from a URL, the search, keyset pages and the CSV export.

:class:`CallFilter` is what a call-list URL says (``?q=107&min_duration=60&from=...``),
validated once here so the API, the pages, saved filters and the CSV link all read the
same query string the same way (``BadRequest`` names the bad parameter).
:func:`search_calls` answers one page of the calls a viewer may see
(:func:`callvault.web.permissions.visible_calls` is always part of the query), newest
first by default, with an opaque cursor for the next page: keyset pagination on
(sort key, id), so a call recorded while someone pages through the list never shifts
or repeats a row. :func:`export_csv` walks the same pages as CSV lines.

What a row and the detail of one call show lives in :mod:`callvault.web.calls_detail`
(``call_detail`` is re-exported here: this module is the interface the pages use).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    intersect,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.orm import Session

from callvault.db.accounts import CallGroup, Group
from callvault.db.models import Call, Participant, Recording
from callvault.db.queries import call_json_options
from callvault.db.search import search_condition, search_ids
from callvault.setting_values import parse_timezone
from callvault.web.calls_detail import CSV_COLUMNS, call_detail, call_items, csv_header, csv_line
from callvault.web.errors import BadRequest
from callvault.web.permissions import (
    group_addresses,
    require_scope,
    scope_groups,
    visible_call_sets,
    visible_calls,
)
from callvault.web.principal import Principal

__all__ = [
    "CSV_COLUMNS",
    "DIRECTIONS",
    "FILTER_PARAMS",
    "MAX_LIMIT",
    "PAGING_PARAMS",
    "SORTS",
    "CallFilter",
    "CallPage",
    "call_detail",
    "call_items",
    "csv_page",
    "export_csv",
    "filter_conditions",
    "search_calls",
]

DIRECTIONS = ("inbound", "outbound", "internal", "external")
STATES = ("active", "ended")
SORTS = ("-started_at", "started_at", "-duration", "duration")
# URL parameter -> CallFilter field ("from"/"to" are Python keywords).
FILTER_PARAMS: dict[str, str] = {
    "q": "q",
    "min_duration": "min_duration",
    "max_duration": "max_duration",
    "from": "date_from",
    "to": "date_to",
    "direction": "direction",
    "participant": "participant",
    "group": "group",
    "has_recording": "has_recording",
    "state": "state",
    "sort": "sort",
}
# Read by the list itself, not filters: a saved filter or a CSV link ignores them.
PAGING_PARAMS = frozenset({"limit", "cursor"})
MAX_LIMIT = 500
_MAX_TEXT = 200  # longer search text is a mistake or an attack, not a phone number
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _text(name: str, value: str) -> str | None:
    value = value.strip()
    if len(value) > _MAX_TEXT:
        raise BadRequest(f"{name}: at most {_MAX_TEXT} characters", parameter=name)
    return value or None


def _seconds(name: str, value: str) -> float | None:
    if not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise BadRequest(
            f"{name}: expected a number of seconds, got {value!r}", parameter=name
        ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise BadRequest(f"{name}: expected seconds >= 0, got {value!r}", parameter=name)
    return seconds


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str | None:
    value = value.strip().lower()
    if value and value not in allowed:
        raise BadRequest(f"{name}: expected one of {', '.join(allowed)}", parameter=name)
    return value or None


def _boolean(name: str, value: str) -> bool | None:
    value = value.strip().lower()
    if not value:
        return None
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise BadRequest(f"{name}: expected true or false, got {value!r}", parameter=name)


def _moment(name: str, value: str, tz: str, *, end: bool) -> datetime | None:
    """A date (the whole day in ``tz``) or a date and time (in ``tz`` unless it says its
    offset). ``end`` gives the exclusive upper bound: a date's next midnight."""
    value = value.strip()
    if not value:
        return None
    zone = parse_timezone(tz)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), zone).astimezone(UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except (ValueError, OverflowError):
        raise BadRequest(
            f"{name}: expected a date (2024-05-01) or a date and time (2024-05-01T14:30), "
            f"got {value!r}",
            parameter=name,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What the call list is asked for. ``date_to`` is exclusive (calls that started
    before it); ``tz`` is the viewer's zone the dates were read in."""

    q: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    direction: str | None = None
    participant: str | None = None
    group: str | None = None
    has_recording: bool | None = None
    state: str | None = None
    sort: str = "-started_at"
    tz: str = "UTC"

    @classmethod
    def from_query(cls, params: Mapping[str, str], tz: str = "UTC") -> CallFilter:
        """Read URL query parameters; ``BadRequest`` names the first bad one. Unknown
        parameters are refused (a typo would otherwise silently widen the list);
        ``limit`` and ``cursor`` are left to the list."""
        try:
            parse_timezone(tz)
        except ValueError:
            tz = "UTC"  # a user's zone is validated when set; never fail a list on it
        unknown = sorted(set(params) - set(FILTER_PARAMS) - PAGING_PARAMS)
        if unknown:
            raise BadRequest(
                f"{unknown[0]}: unknown filter parameter; known: {', '.join(FILTER_PARAMS)}",
                parameter=unknown[0],
            )

        def get(name: str) -> str:
            return str(params.get(name) or "")

        flt = cls(
            q=_text("q", get("q")),
            min_duration=_seconds("min_duration", get("min_duration")),
            max_duration=_seconds("max_duration", get("max_duration")),
            date_from=_moment("from", get("from"), tz, end=False),
            date_to=_moment("to", get("to"), tz, end=True),
            direction=_choice("direction", get("direction"), DIRECTIONS),
            participant=_text("participant", get("participant")),
            group=_text("group", get("group")),
            has_recording=_boolean("has_recording", get("has_recording")),
            state=_choice("state", get("state"), STATES),
            sort=_choice("sort", get("sort"), SORTS) or "-started_at",
            tz=tz,
        )
        if (
            flt.min_duration is not None
            and flt.max_duration is not None
            and flt.min_duration > flt.max_duration
        ):
            raise BadRequest("max_duration: smaller than min_duration", parameter="max_duration")
        return flt

    @classmethod
    def parse(cls, query: str, tz: str = "UTC") -> CallFilter:
        """:meth:`from_query` on a query string (``q=107&min_duration=60``, ``?`` optional)."""
        return cls.from_query(dict(parse_qsl(query.lstrip("?"), keep_blank_values=True)), tz)

    def to_query(self) -> str:
        """The same filter as a URL query string; dates that are whole days in ``tz``
        are written as dates, so a saved filter reads the way it was typed."""
        zone = parse_timezone(self.tz)
        pairs: list[tuple[str, str]] = []
        for param, name in FILTER_PARAMS.items():
            value = getattr(self, name)
            if value is None or (name == "sort" and value == "-started_at"):
                continue
            if isinstance(value, datetime):
                local = value.astimezone(zone)
                if local.time() == time():
                    day = local.date() - timedelta(days=1) if name == "date_to" else local.date()
                    text = day.isoformat()
                else:
                    text = local.isoformat()
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, float):
                text = f"{value:g}"
            else:
                text = str(value)
            pairs.append((param, text))
        return urlencode(pairs)

    def is_empty(self) -> bool:
        """No condition at all (sort and zone aside)."""
        return all(
            getattr(self, f.name) is None for f in fields(self) if f.name not in ("sort", "tz")
        )

    def with_sort(self, sort: str) -> CallFilter:
        """The same filter sorted otherwise (column headers link to this)."""
        return replace(self, sort=_choice("sort", sort, SORTS) or "-started_at")


@dataclass(frozen=True, slots=True)
class CallPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


# -- the query -------------------------------------------------------------------------


def _participant_condition(db: Session, needle: str) -> ColumnElement[bool]:
    pattern = "%" + needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern += "%"
    matches = select(Participant.call_id).where(
        or_(
            Participant.address.like(pattern, escape="\\"),
            Participant.aor.ilike(pattern, escape="\\"),
            Participant.name.ilike(pattern, escape="\\"),
        )
    )
    # The search text holds every participant's AOR, user part and name, so its index
    # narrows the calls first; the participant rows then confirm which field matched.
    return and_(search_condition(db, needle), Call.id.in_(matches))


def _group_condition(db: Session, who: Principal, name: str) -> ColumnElement[bool]:
    group_id = db.scalar(select(Group.id).where(Group.name == name))
    if group_id is None:
        return false()
    if not (who.is_admin or who.scope == "all" or group_id in scope_groups(who)):
        return false()  # outside the viewer's scope: no rows, and no hint it exists
    conditions = [Call.id.in_(select(CallGroup.call_id).where(CallGroup.group_id == group_id))]
    addresses = group_addresses(db, frozenset({group_id}))
    if addresses:
        took_part = select(Participant.call_id).where(Participant.address.in_(sorted(addresses)))
        conditions.append(Call.id.in_(took_part))
    return or_(*conditions)


def _ready() -> ColumnElement[bool]:
    return exists().where(Recording.call_id == Call.id, Recording.state == "ready")


def filter_conditions(db: Session, who: Principal, flt: CallFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``flt`` for ``who``, visibility first."""
    return [visible_calls(db, who), *_narrowing(db, who, flt)]


def _narrowing(
    db: Session, who: Principal, flt: CallFilter, *, search: bool = True
) -> list[ColumnElement[bool]]:
    """The conditions of ``flt`` itself (visibility aside; the substring too unless
    ``search`` is false)."""
    conditions: list[ColumnElement[bool]] = []
    if flt.q and search:
        conditions.append(search_condition(db, flt.q))
    if flt.min_duration is not None:
        conditions.append(Call.duration_s >= flt.min_duration)
    if flt.max_duration is not None:
        conditions.append(Call.duration_s <= flt.max_duration)
    if flt.date_from is not None:
        conditions.append(Call.started_at >= flt.date_from)
    if flt.date_to is not None:
        conditions.append(Call.started_at < flt.date_to)
    if flt.direction:
        conditions.append(Call.direction == flt.direction)
    if flt.participant:
        conditions.append(_participant_condition(db, flt.participant))
    if flt.group:
        conditions.append(_group_condition(db, who, flt.group))
    if flt.has_recording is not None:
        conditions.append(_ready() if flt.has_recording else ~_ready())
    if flt.state:
        conditions.append(Call.state == flt.state)
    return conditions


# -- keyset cursors ----------------------------------------------------------------------


def _encode_cursor(sort: str, key: Any, call_id: int) -> str:
    raw = json.dumps({"s": sort, "k": key, "i": call_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key, call_id = data["k"], data["i"]
        if data["s"] != sort or not isinstance(call_id, int):
            raise ValueError("another sort")
        if sort.endswith("started_at"):
            key = datetime.fromisoformat(key)
            if key.tzinfo is None:
                raise ValueError("naive time")
        elif key is not None and not isinstance(key, int | float):
            raise ValueError("bad duration")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(
            "cursor: not a cursor of this list (it is only valid with the same sort)",
            parameter="cursor",
        ) from None
    return key, call_id


def _sort_key(call: Call, sort: str) -> Any:
    if sort.endswith("started_at"):
        return call.started_at.astimezone(UTC).isoformat()
    return call.duration_s


def _sort_column(sort: str) -> Any:
    return Call.started_at if sort.endswith("started_at") else Call.duration_s


def _ordering(sort: str, key: Any = None, call_id: Any = None) -> tuple[Any, ...]:
    """ORDER BY of ``sort`` on ``Call`` (or on ``key``/``call_id`` of a subquery)."""
    key = _sort_column(sort) if key is None else key
    call_id = Call.id if call_id is None else call_id
    if sort.startswith("-"):
        first, second = key.desc(), call_id.desc()
    else:
        first, second = key.asc(), call_id.asc()
    if not sort.endswith("started_at"):
        # Calls still in progress have no duration yet: last, whichever the direction.
        first = first.nulls_last()
    return (first, second)


def _after(sort: str, key: Any, call_id: int) -> ColumnElement[bool]:
    """Rows after the cursor's row in ``sort`` order."""
    descending = sort.startswith("-")
    column = Call.started_at if sort.endswith("started_at") else Call.duration_s
    beyond_id = Call.id < call_id if descending else Call.id > call_id
    if key is None:  # among the calls without a duration, which come last
        return and_(column.is_(None), beyond_id)
    beyond = column < key if descending else column > key
    condition = or_(beyond, and_(column == key, beyond_id))
    if column is Call.duration_s:
        condition = or_(condition, column.is_(None))
    return condition


def _page_ids(
    db: Session,
    who: Principal,
    conditions: list[ColumnElement[bool]],
    sort: str,
    count: int,
    found: Select[tuple[Any]] | None = None,
) -> list[int]:
    """The ids of the first ``count`` calls ``who`` may see that meet ``conditions``
    (and are among ``found``, the ids a SQLite substring search matched).

    A viewer who sees calls for more than one reason (took part, tagged) gets one query
    per reason, each ordered and cut to ``count``, merged by a UNION and cut again: the
    same rows as one query with the reasons OR-ed, since every row of the first
    ``count`` is among the first ``count`` of its own reason. Why: on PostgreSQL each
    part is a semi-join whose size the planner estimates from the participant
    statistics, where the OR of two ``IN (subquery)`` is assumed to keep 75 % of the
    calls; a supervisor's search (2 % of 1,000,000 calls visible) was then planned as a
    walk of ``ix_call_started_at`` filtering row by row. Measured with bench/calls_query.py
    (a surname, ``min_duration=60``, a supervisor of 40 agents, tuned server): the
    walk read 570,000 rows (240 ms); the semi-join reads the ~20,000 rows of the
    trigram match or of the group's calls (30-80 ms).

    On SQLite the substring's ids (``found``) are intersected with each reason's ids
    first (``INTERSECT`` of two id lists): a surname matches ~20,000 calls and a
    supervisor's group ~20,000, and SQLite otherwise reads one side's calls one by one
    to test the other (50-240 ms; intersected 16-24 ms).
    """
    sets = visible_call_sets(db, who)
    reasons: list[ColumnElement[bool]]
    if sets is None:
        reasons = [true() if found is None else Call.id.in_(found)]
    else:
        reasons = [
            Call.id.in_(ids if found is None else intersect(ids, found)) for ids in sets
        ] or [false()]
    if len(reasons) > 1:
        key = _sort_column(sort)
        parts = [
            select(Call.id, key.label("key"))
            .where(visible, *conditions)
            .order_by(*_ordering(sort))
            .limit(count)
            .subquery()
            for visible in reasons
        ]
        merged = union(*(select(part.c.id, part.c.key) for part in parts)).subquery()
        statement = select(merged.c.id).order_by(*_ordering(sort, merged.c.key, merged.c.id))
        return list(db.scalars(statement.limit(count)))
    statement = select(Call.id).where(reasons[0], *conditions).order_by(*_ordering(sort))
    return list(db.scalars(statement.limit(count)))


def search_calls(
    db: Session, who: Principal, flt: CallFilter, *, limit: int = 50, cursor: str | None = None
) -> CallPage:
    """One page of the calls ``who`` may see that match ``flt``; ``next_cursor`` asks
    for the page after it (None on the last page)."""
    require_scope(who, "calls:read")
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: expected 1 to {MAX_LIMIT}", parameter="limit")
    # SQLite answers the substring from its trigram table as a set of ids: intersected
    # with the visible ids before any call row is read (see _page_ids).
    found = search_ids(db, flt.q) if flt.q else None
    conditions = _narrowing(db, who, flt, search=found is None)
    if cursor:
        key, call_id = _decode_cursor(cursor, flt.sort)
        conditions.append(_after(flt.sort, key, call_id))
    ids = _page_ids(db, who, conditions, flt.sort, limit + 1, found)
    more = len(ids) > limit
    ids = ids[:limit]
    # Ids first, rows second: sorting the matches carries only the sort key and the id,
    # not every column of every match (twice as fast when a scope matches thousands).
    loaded = db.scalars(select(Call).where(Call.id.in_(ids)).options(*call_json_options()))
    by_id = {call.id: call for call in loaded}
    calls = [by_id[call_id] for call_id in ids if call_id in by_id]
    next_cursor = (
        _encode_cursor(flt.sort, _sort_key(calls[-1], flt.sort), calls[-1].id) if more else None
    )
    return CallPage(call_items(db, calls), next_cursor)


# -- CSV ---------------------------------------------------------------------------------


def csv_page(
    db: Session, who: Principal, flt: CallFilter, cursor: str | None, *, header: bool
) -> tuple[list[str], str | None]:
    """One batch of CSV lines and the cursor of the next (for streaming in several
    short transactions rather than one long one)."""
    page = search_calls(db, who, flt, limit=MAX_LIMIT, cursor=cursor)
    lines = [csv_header()] if header else []
    lines += [csv_line(item, flt.tz) for item in page.items]
    return lines, page.next_cursor


def export_csv(db: Session, who: Principal, flt: CallFilter) -> Iterator[str]:
    """The filtered list as CSV lines (RFC 4180, CRLF), the header first; times in
    the ``date``/``time`` columns are in the filter's zone, the others UTC."""
    cursor: str | None = None
    header = True
    while True:
        lines, cursor = csv_page(db, who, flt, cursor, header=header)
        header = False
        yield from lines
        if cursor is None:
            return
