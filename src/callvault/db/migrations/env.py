"""Alembic environment for callvault: migrate on the connection Database.migrate() gives.

There is no alembic.ini: :func:`callvault.db.database.alembic_config` builds the
configuration in code and passes an open connection in ``config.attributes``. That
connection comes from :class:`callvault.db.Database`, so on SQLite the migration runs
under the single-writer lock inside ``BEGIN IMMEDIATE`` and is atomic (SQLite's DDL is
transactional once the driver stops managing transactions itself).

Several processes may start at once against one PostgreSQL database (recorders,
workers, web); an advisory lock makes them migrate one after another, and the later
ones find the schema already at head.

Offline mode (``--sql``) is not supported: revisions may use batch operations that
need a live SQLite connection.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from callvault.db.models import Base, UTCDateTime
from callvault.db.search import include_object

# Arbitrary, fixed: the key of the PostgreSQL advisory lock held while migrating.
MIGRATION_LOCK_KEY = 0x63_61_6C_6C  # "call"


def render_item(type_: str, obj: object, _autogen_context: Any) -> str | Literal[False]:
    """Write UTCDateTime as the plain column type it stores, so revisions need no models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        transactional_ddl=True,
        # SQLite cannot ALTER most things: autogenerate batch (copy-and-rename) ops.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
        include_object=include_object,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported by callvault")
_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError(
        "callvault migrations run on a connection from callvault.db.Database.migrate() "
        "or callvault.db.database.alembic_config(connection)"
    )
run_migrations(_connection)
