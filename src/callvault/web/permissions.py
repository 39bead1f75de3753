"""Who may see which call and play which recording: decided here and nowhere else.

Rules (REQUIREMENTS D7, D8, D9):

- A call belongs to a user when the user took part in any of its segments: one of the
  call's participants has an address (AOR user part) that is the user's extension or
  one of the user's addresses. Having taken part in a conference gives the whole
  conference, before the user joined and after the user left (D9), because the call is
  the unit.
- A call belongs to a group when a member of the group (primary or member group) took
  part in it, or when the call was tagged with the group.
- Playback scope: ``own`` (the user's calls), ``primary_group`` (and the primary group's),
  ``member_groups`` (and those of the primary and every member group), ``all``. Every
  scope includes the user's own calls. Administrators see all calls.
- An API token acts as its user within its scopes: ``calls:read`` to list and read calls,
  ``recordings:read`` to fetch audio.
- Whoever may not see a call or a recording is told it does not exist (``NotFound``).

Everything is a SQL condition or a query, so the call list filters in the database and
a check costs one indexed lookup.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select, true
from sqlalchemy.orm import Session

from callvault.db.accounts import CallGroup, User, UserGroup
from callvault.db.models import Call, Recording
from callvault.recording.retention import participant_call_ids
from callvault.web.errors import Forbidden, NotFound
from callvault.web.principal import Principal, user_addresses

__all__ = [
    "group_addresses",
    "require_scope",
    "scope_groups",
    "visible_call",
    "visible_call_sets",
    "visible_calls",
    "visible_recording",
]


def require_scope(who: Principal, scope: str) -> None:
    """A token without ``scope`` may not do this at all (not a per-call secret: 403)."""
    if not who.allows(scope):
        raise Forbidden(f"this API token lacks the {scope!r} scope")


def scope_groups(who: Principal) -> frozenset[int]:
    """The groups whose calls ``who`` may see besides their own."""
    if who.scope == "primary_group":
        return frozenset({who.primary_group_id} - {None})  # type: ignore[arg-type]
    if who.scope == "member_groups":
        return who.group_ids | frozenset({who.primary_group_id} - {None})  # type: ignore[arg-type]
    return frozenset()


def group_addresses(db: Session, group_ids: frozenset[int]) -> frozenset[str]:
    """Every address of every user whose primary or member group is one of ``group_ids``."""
    if not group_ids:
        return frozenset()
    members = select(UserGroup.user_id).where(UserGroup.group_id.in_(group_ids))
    users = db.scalars(
        select(User).where(
            User.active.is_(True),
            or_(User.primary_group_id.in_(group_ids), User.id.in_(members)),
        )
    ).all()
    found: set[str] = set()
    for user in users:
        found |= user_addresses(user)
    return frozenset(found)


def visible_call_sets(db: Session, who: Principal) -> list[Select[Any]] | None:
    """The calls ``who`` may see as one SELECT of call ids per reason (took part, tagged
    with a group in scope): a call is visible when it is in any. ``None``: every call.

    The call list asks each separately and merges the pages (see
    :func:`callvault.web.calls_query.search_calls`): PostgreSQL cannot estimate how
    many rows an OR of two ``IN (subquery)`` keeps (it assumes 75 %), so a supervisor's
    search planned as if most calls were theirs.
    """
    if who.participant_only:  # the limited tier (W2): nobody else's scope counts
        return [participant_call_ids(who.addresses)] if who.addresses else []
    if who.is_admin or who.scope == "all":
        return None
    groups = scope_groups(who)
    addresses = who.addresses | group_addresses(db, groups)
    sets: list[Select[Any]] = []
    if addresses:
        sets.append(participant_call_ids(addresses))
    if groups:
        sets.append(select(CallGroup.call_id).where(CallGroup.group_id.in_(groups)))
    return sets


def visible_calls(db: Session, who: Principal) -> ColumnElement[bool]:
    """A WHERE condition on ``Call``: the calls ``who`` may see."""
    sets = visible_call_sets(db, who)
    if sets is None:
        return true()
    return or_(*(Call.id.in_(ids) for ids in sets)) if sets else false()


def visible_call(db: Session, who: Principal, call_id: int) -> Call:
    """The call, if ``who`` may see it; ``NotFound`` otherwise (also when it is absent)."""
    require_scope(who, "calls:read")
    call = db.scalars(select(Call).where(Call.id == call_id, visible_calls(db, who))).first()
    if call is None:
        raise NotFound(f"no call {call_id}")
    return call


def visible_recording(db: Session, who: Principal, recording_id: int) -> Recording:
    """The recording, if ``who`` may play it: whoever may see its call may."""
    require_scope(who, "recordings:read")
    recording = db.scalars(
        select(Recording)
        .join(Call, Call.id == Recording.call_id)
        .where(Recording.id == recording_id, visible_calls(db, who))
    ).first()
    if recording is None:
        raise NotFound(f"no recording {recording_id}")
    return recording
