"""Connections, transactions and migrations for SQLite and PostgreSQL.

:class:`Database` is the one door to the database: ``write(fn)`` runs ``fn`` in a
transaction and commits it, ``read(fn)`` runs ``fn`` in a read-only transaction,
``migrate()`` brings the schema to the newest Alembic revision. It knows nothing about
calls or recordings; those are in :mod:`callvault.db.queries`.

SQLite (the embedded default) follows datasette's ``execute_write_fn`` pattern:
- one writer: every ``write`` in the process takes a lock shared by all
  :class:`Database` objects on the same file, then ``BEGIN IMMEDIATE`` on the single
  writer connection, so writers queue in Python instead of failing with "database is
  locked"; writers in other processes (``callvault serve`` and a CLI command) wait on
  SQLite's busy timeout;
- concurrent readers: the file is in WAL mode, so readers in any thread or process
  see the last committed state and are never blocked by the writer. Reader
  connections set ``query_only`` so a read can never try to upgrade to a write lock;
- ``synchronous=NORMAL``: in WAL mode a committed transaction survives a crash or
  ``kill -9`` of the process (it is in the WAL file, which the OS keeps); only a power
  loss or OS crash may lose the last transactions before a checkpoint. The recorder
  resumes unfinished work from the database after a restart, so that window only
  means a call may be re-examined, never that the database is corrupt. FULL would
  add an fsync per commit on the packet path's writer.
- the sqlite3 driver's own transaction handling is switched off
  (``isolation_level=None``) and BEGIN is emitted by SQLAlchemy's ``begin`` event,
  which makes SAVEPOINTs and transactional DDL work as documented by SQLAlchemy.

PostgreSQL needs none of this: ``write`` is a plain transaction (READ COMMITTED),
``read`` a ``READ ONLY`` one, and migrations take an advisory lock (see env.py).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATIONS_DIR", "SQLITE_FILENAME", "Database", "alembic_config"]

T = TypeVar("T")

SQLITE_FILENAME = "callvault.db"
# How long a writer in another process waits for the write lock before failing.
BUSY_TIMEOUT_MS = 10_000
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# One lock per SQLite file for the whole process, so that two Database objects on the
# same file (say the recorder's and the web app's) still queue their writes here.
_sqlite_write_locks: dict[str, threading.Lock] = {}
_sqlite_write_locks_guard = threading.Lock()
# Which databases the current thread is writing to: a nested write() would wait for
# itself (SQLite) or silently commit separately (PostgreSQL); both are bugs.
_writing = threading.local()
# Alembic keeps the running migration in module globals (alembic.context, alembic.op):
# two migrations at once in one process would trample each other, whatever backend.
_migrate_lock = threading.Lock()
_open_databases: weakref.WeakSet[Database] = weakref.WeakSet()


def _sqlite_write_lock(key: str) -> threading.Lock:
    with _sqlite_write_locks_guard:
        return _sqlite_write_locks.setdefault(key, threading.Lock())


def _after_fork_in_child() -> None:
    # A forked child (Celery prefork, multiprocessing "fork") inherits locks another
    # thread may have held, and pooled connections the parent still uses: start over
    # with fresh locks and let the pools open new connections (SQLAlchemy's advice).
    global _sqlite_write_locks, _sqlite_write_locks_guard, _writing, _migrate_lock
    _sqlite_write_locks = {}
    _sqlite_write_locks_guard = threading.Lock()
    _writing = threading.local()
    _migrate_lock = threading.Lock()
    for database in list(_open_databases):
        database._forget_inherited_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for callvault's migrations, without any ini file.

    With ``connection``, ``env.py`` migrates on it. A new revision is written with
    ``alembic.command.revision(alembic_config(conn), "message", autogenerate=True)``
    on a connection to an up-to-date scratch database.
    """
    # Imported here: alembic is only needed to migrate, and costs CLI start-up time.
    from alembic.config import Config

    config = Config()
    # Config values go through configparser interpolation: escape '%'.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _install_sqlite_pragmas(engine: Engine, *, writer: bool) -> None:
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL below may have to wait for a lock.
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            if not writer:
                cursor.execute("PRAGMA query_only = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin)


class Database:
    """A SQLite file or a PostgreSQL database, with one write path and one read path.

    ``url`` is ``sqlite:///path/to/callvault.db`` or ``postgresql+psycopg://...``.
    ORM objects returned by ``write``/``read`` stay usable after the call (sessions do
    not expire them on commit) but are detached: load what you need inside ``fn``.
    """

    def __init__(self, url: str | URL) -> None:
        self._url: URL = make_url(url)
        backend = self._url.get_backend_name()
        self._serialise_writes = backend == "sqlite"
        if backend == "sqlite":
            database = self._url.database
            if not database or database == ":memory:" or database.startswith("file:"):
                raise ValueError(
                    "SQLite needs a file path (sqlite:///path/to/callvault.db): "
                    "the writer and the readers share it through WAL"
                )
            path = Path(database).resolve()
            self._url = self._url.set(database=str(path))
            # A single writer connection: the process-wide lock serialises its use.
            self._write_engine = create_engine(self._url, pool_size=1, max_overflow=0)
            self._read_engine = create_engine(self._url)
            _install_sqlite_pragmas(self._write_engine, writer=True)
            _install_sqlite_pragmas(self._read_engine, writer=False)
            self._key = f"sqlite:{path}"
        elif backend == "postgresql":
            engine = create_engine(self._url, pool_pre_ping=True)
            self._write_engine = engine
            self._read_engine = engine.execution_options(postgresql_readonly=True)
            self._key = self._url.render_as_string(hide_password=True)
        else:
            raise ValueError(
                f"unsupported database URL {self._url.render_as_string(hide_password=True)}: "
                "use sqlite:///path or postgresql+psycopg://user@host/db"
            )
        self._backend = backend
        _open_databases.add(self)

    @classmethod
    def for_data_dir(cls, path: Path) -> Database:
        """The embedded database: ``callvault.db`` in the (existing) data directory."""
        return cls(URL.create("sqlite", database=str(path / SQLITE_FILENAME)))

    @property
    def url(self) -> str:
        """The database URL, password included (hand it to worker processes)."""
        return self._url.render_as_string(hide_password=False)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._backend

    @property
    def engine(self) -> Engine:
        """The engine reads use. Never write through it: use :meth:`write`."""
        return self._read_engine

    @contextmanager
    def _single_writer(self) -> Iterator[None]:
        held: set[str] = _writing.__dict__.setdefault("keys", set())
        if self._key in held:
            raise RuntimeError(
                "Database.write() called inside a write transaction on the same "
                "database; pass the session down instead"
            )
        lock = _sqlite_write_lock(self._key) if self._serialise_writes else nullcontext()
        with lock:
            held.add(self._key)
            try:
                yield
            finally:
                held.discard(self._key)

    def write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a write transaction and commit; roll back if it raises."""
        with (
            self._single_writer(),
            Session(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            return fn(session)

    def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a read-only transaction (a consistent snapshot on SQLite WAL)."""
        with Session(self._read_engine, expire_on_commit=False) as session, session.begin():
            return fn(session)

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (idempotent, one transaction)."""
        from alembic import command  # imported here: see alembic_config

        with (
            _migrate_lock,
            self._single_writer(),
            self._write_engine.connect() as connection,
        ):
            command.upgrade(alembic_config(connection), "head")

    def dispose(self) -> None:
        """Close every pooled connection (call before forking and at shutdown)."""
        self._write_engine.dispose()
        self._read_engine.dispose()

    def _forget_inherited_connections(self) -> None:
        self._write_engine.dispose(close=False)
        self._read_engine.dispose(close=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self._url.render_as_string(hide_password=True)!r})"
