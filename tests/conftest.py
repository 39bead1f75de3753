"""Fixtures shared by the whole test suite: a real PostgreSQL and fresh databases.

- ``postgres_url`` (session): a throwaway PostgreSQL 15 cluster (initdb into a temp
  dir, 127.0.0.1 on a free port, fsync off), or ``CALLVAULT_TEST_POSTGRES_URL`` when
  set. Missing PostgreSQL binaries FAIL the tests that need them: a skipped backend
  would let a PostgreSQL-only bug through.
- ``empty_db_url``: a fresh database with no tables per test, parametrised over
  SQLite (a file in ``tmp_path``) and PostgreSQL (a schema of its own, selected
  through ``search_path``, dropped afterwards; far faster than CREATE DATABASE).
- ``db_url``: a fresh database migrated to the newest revision, on both backends.
  SQLite: a new file per test. PostgreSQL: one schema migrated once per session and
  emptied before each test (TRUNCATE ... RESTART IDENTITY, so ids start at 1 again):
  running the migrations per test would dominate the suite's time. Tests must not
  change that schema's structure; use ``empty_db_url`` for migration tests.
- ``database``: a :class:`callvault.db.Database` on ``db_url``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from callvault.db import Database

PG_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGRES_URL_ENV = "CALLVAULT_TEST_POSTGRES_URL"
TEST_DATABASE = "callvault_test"


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(command: list[str], what: str, log: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        details = result.stdout + result.stderr
        if log is not None and log.exists():
            details += "\n--- server log ---\n" + log.read_text(errors="replace")[-4000:]
        pytest.fail(f"{what} failed ({' '.join(command)}):\n{details}", pytrace=False)


class _Cluster:
    """A PostgreSQL cluster in a temporary directory, removed by :meth:`stop`."""

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl"):
            if not (PG_BIN / tool).exists():
                pytest.fail(
                    f"PostgreSQL 15 is needed for these tests but {PG_BIN / tool} is missing: "
                    f"install it (`apt-get install -y postgresql`) or set {POSTGRES_URL_ENV}",
                    pytrace=False,
                )
        self.root = Path(tempfile.mkdtemp(prefix="callvault-pg-"))
        # The postgres user must reach its directory inside root's mkdtemp (0700).
        self.root.chmod(0o755)
        self.dir = self.root / "pg"
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.log = self.dir / "log"
        self.port = 0
        self.started = False

    def start(self) -> None:
        _run(
            _as_postgres_user(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            "initdb",
        )
        self.port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            _as_postgres_user(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "30",
                    "-o",
                    options,
                    "start",
                ]
            ),
            "pg_ctl start",
            self.log,
        )
        self.started = True
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f"CREATE DATABASE {TEST_DATABASE}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{TEST_DATABASE}"

    def stop(self) -> None:
        try:
            if self.started:
                subprocess.run(
                    _as_postgres_user(
                        [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
                    ),
                    capture_output=True,
                    check=False,
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://`` URL of an empty database on a real PostgreSQL."""
    configured = os.environ.get(POSTGRES_URL_ENV)
    if configured:
        yield configured
        return
    cluster = _Cluster()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def _postgres_schema(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A new schema and a URL whose connections use it (and are tagged with its name)."""
    base = make_url(postgres_url)
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with _admin(base) as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = base.update_query_dict({"options": f"-csearch_path={schema}", "application_name": schema})
    try:
        yield schema, url.render_as_string(hide_password=False)
    finally:
        with _admin(base) as connection:
            _end_sessions(connection, schema)
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def _admin(url: URL) -> Iterator[Connection]:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _end_sessions(connection: Connection, application_name: str) -> None:
    # Connections a test leaked would otherwise block DROP or TRUNCATE forever.
    connection.exec_driver_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = '{application_name}' AND pid <> pg_backend_pid()"
    )


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh database with no tables, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'callvault.db'}"
        return
    with _postgres_schema(request.getfixturevalue("postgres_url")) as (_schema, url):
        yield url


@pytest.fixture(scope="session")
def _migrated_postgres(postgres_url: str) -> Iterator[tuple[str, str]]:
    with _postgres_schema(postgres_url) as (schema, url):
        _migrate(url)
        yield schema, url


def _migrate(url: str) -> None:
    database = Database(url)
    try:
        database.migrate()
    finally:
        database.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to a fresh database migrated to the newest revision, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'callvault.db'}"
        _migrate(url)
        return url
    schema, url = request.getfixturevalue("_migrated_postgres")
    with _admin(make_url(request.getfixturevalue("postgres_url"))) as connection:
        _end_sessions(connection, schema)
        tables = connection.exec_driver_sql(
            "SELECT tablename FROM pg_tables "
            f"WHERE schemaname = '{schema}' AND tablename <> 'alembic_version'"
        ).scalars()
        names = ", ".join(f"{schema}.{name}" for name in tables)
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    return url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """A :class:`Database` on a fresh migrated database (SQLite and PostgreSQL)."""
    db = Database(db_url)
    try:
        yield db
    finally:
        db.dispose()
