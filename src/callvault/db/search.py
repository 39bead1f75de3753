"""Finding calls by any number, name or id in them (REQUIREMENTS A5).

Every call keeps one lower-case ``search_text``: its public id, correlation keys
(SIP Call-IDs, SIPREC session and group ids, vendor ids) and each participant's AOR,
user part and name. A substring of it is found through an index, not a scan of every
call: an FTS5 table with the trigram tokenizer on SQLite (``call_fts``, kept in step by
triggers made in migration 0003), a pg_trgm GIN index on PostgreSQL
(``ix_call_search_trgm``). Neither object is in the ORM models (they are
backend-specific), so schema comparisons skip them through :func:`include_object`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, literal_column, select, text
from sqlalchemy.orm import Session

from callvault.db.models import Call, CallKey, Participant, Segment

__all__ = [
    "SEARCH_INDEX",
    "SEARCH_TABLE",
    "call_search_text",
    "include_object",
    "refresh_search_text",
    "search_condition",
]

SEARCH_TABLE = "call_fts"
SEARCH_INDEX = "ix_call_search_trgm"
_TRIGRAM = 3  # FTS5 trigram needs three characters to use its index


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter: the search index objects live outside the models."""
    if type_ == "table" and name and name.startswith(SEARCH_TABLE):
        return False
    return not (type_ == "index" and name == SEARCH_INDEX)


def call_search_text(session: Session, call_id: int) -> str:
    """The text a call is found by, from what the database holds about it now."""
    words: list[str] = []
    uid = session.scalar(select(Call.uid).where(Call.id == call_id))
    if uid:
        words.append(uid)
    words += session.scalars(select(CallKey.value).where(CallKey.call_id == call_id)).all()
    rows = session.execute(
        select(Participant.aor, Participant.name, Participant.address)
        .join(Segment, Segment.id == Participant.segment_id)
        .where(Segment.call_id == call_id)
    ).all()
    for row in rows:
        words += [w for w in row if w]
    return " ".join(dict.fromkeys(w.lower() for w in words))


def refresh_search_text(session: Session, call_id: int) -> None:
    call = session.get(Call, call_id)
    if call is not None:
        call.search_text = call_search_text(session, call_id)


def _like_pattern(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_ids(session: Session, needle: str) -> Select[tuple[Any]] | None:
    """The ids of the calls whose search text contains ``needle``, as a SELECT answered
    from the SQLite trigram table; None where there is none (PostgreSQL: the trigram
    index is on the call table itself; a needle shorter than a trigram).

    A phrase query on the trigram table is a substring match answered from its index; a
    LIKE with an ESCAPE clause would scan every row instead. The phrase is quoted
    FTS5-style (a double quote doubled) and bound, never interpolated.
    """
    needle = needle.strip().lower()
    if session.get_bind().dialect.name != "sqlite" or len(needle) < _TRIGRAM:
        return None
    phrase = '"' + needle.replace('"', '""') + '"'
    return (
        select(literal_column("rowid"))
        .select_from(text(SEARCH_TABLE))
        .where(
            text(f"{SEARCH_TABLE} MATCH :phrase").bindparams(
                bindparam("phrase", value=phrase, unique=True)
            )
        )
    )


def search_condition(session: Session, needle: str) -> ColumnElement[bool]:
    """A WHERE condition on ``Call`` for calls whose search text contains ``needle``."""
    matches = search_ids(session, needle)
    if matches is not None:
        return Call.id.in_(matches)
    return Call.search_text.like(_like_pattern(needle.strip().lower()), escape="\\")
