"""The declarative base of every callvault table and the column types they share.

- every timestamp is a timezone-aware UTC ``datetime`` (:class:`UTCDateTime` refuses
  naive values, so local time can never slip in);
- enumerated states are plain strings checked in Python (:func:`check_choice`), not
  CHECK constraints, so adding a state later needs no table rebuild on SQLite;
- constraint names are deterministic (``NAMING_CONVENTION``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase

__all__ = ["NAMING_CONVENTION", "Base", "UTCDateTime", "check_choice", "new_uid", "utcnow"]

# Deterministic constraint names: later migrations can drop or alter a constraint by
# name on PostgreSQL, and SQLite batch migrations need names to rebuild tables.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only kind the models accept)."""
    return datetime.now(UTC)


def new_uid() -> str:
    """A random public identifier (uuid4 hex) that does not reveal row counts."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no timezone-aware type: values are stored there as naive UTC text
    (lexically ordered, so ``ORDER BY`` works) and tagged UTC again on the way out.
    PostgreSQL stores ``timestamptz``; results are converted to UTC whatever the
    session's ``TimeZone`` is.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware UTC time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def check_choice(field: str, value: str, choices: frozenset[str]) -> str:
    if value not in choices:
        raise ValueError(f"{field} must be one of {sorted(choices)}, not {value!r}")
    return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}
