"""The Alembic migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from callvault.db import MIGRATIONS_DIR, Base, Database, alembic_config
from callvault.db.search import include_object

REPO = Path(__file__).resolve().parents[2]
MODEL_TABLES = set(Base.metadata.tables)


def _schema_diffs(url: str) -> list[Any]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include_object}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    """Tables the schema has, without the search index's own (FTS5 shadow tables)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        names = inspect(engine).get_table_names()
        return {n for n in names if include_object(None, n, "table", True, None)}
    finally:
        engine.dispose()


def test_upgrade_head_gives_the_models_schema(empty_db_url: str) -> None:
    # The comparison can fail: on the empty database it reports every table missing.
    missing = {diff[1].name for diff in _schema_diffs(empty_db_url) if diff[0] == "add_table"}
    assert missing == MODEL_TABLES

    with Database(empty_db_url) as db:
        db.migrate()
    assert _schema_diffs(empty_db_url) == []
    assert _tables(empty_db_url) == MODEL_TABLES | {"alembic_version"}


def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    with Database(empty_db_url) as db:
        db.migrate()
        engine = create_engine(db.url, poolclass=NullPool)
        with engine.connect() as connection, connection.begin():
            command.downgrade(alembic_config(connection), "base")
        engine.dispose()
        assert _tables(empty_db_url) == {"alembic_version"}
        db.migrate()
    assert _schema_diffs(empty_db_url) == []


def test_concurrent_migrate_in_one_process(empty_db_url: str) -> None:
    """Alembic's module globals must not be shared by two migrations at once."""
    databases = [Database(empty_db_url) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(databases))

    def migrate(db: Database) -> None:
        try:
            start.wait()
            db.migrate()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.dispose()
    assert errors == []
    assert _schema_diffs(empty_db_url) == []


MIGRATE_SCRIPT = """
import sys
from callvault.db import Database

db = Database(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
db.migrate()
db.dispose()
print("migrated", flush=True)
"""


def test_concurrent_migrate_from_two_processes(empty_db_url: str) -> None:
    """Recorders, workers and web start together; each runs migrate() at startup."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", MIGRATE_SCRIPT, empty_db_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    with Database(empty_db_url) as db:
        # Both sides have paid their start-up cost: now they really migrate at once.
        assert child.stdout.readline() == "ready\n"
        child.stdin.write("go\n")
        child.stdin.flush()
        db.migrate()
    stdout, stderr = child.communicate()
    assert (stdout, stderr, child.returncode) == ("migrated\n", "", 0)
    assert _schema_diffs(empty_db_url) == []


def test_one_linear_history() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == ["0004"]
    assert [rev.revision for rev in scripts.walk_revisions()] == ["0004", "0003", "0002", "0001"]
    assert Path(scripts.dir) == MIGRATIONS_DIR


def test_migrations_ship_in_the_wheel() -> None:
    """Every migration module matches the package-data patterns in pyproject.toml."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["callvault"]
    package = REPO / "src" / "callvault"
    needed = [
        path.relative_to(package).as_posix()
        for path in MIGRATIONS_DIR.rglob("*.py")
        if "__pycache__" not in path.parts
    ]
    assert "db/migrations/env.py" in needed
    assert "db/migrations/versions/0001_initial.py" in needed
    unshipped = [n for n in needed if not any(fnmatch.fnmatch(n, p) for p in patterns)]
    assert unshipped == []


def test_0002_keeps_rows_written_before_it(empty_db_url: str) -> None:
    """A database made by 0001 with a call in it upgrades; old rows get empty defaults."""
    engine = create_engine(empty_db_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
            connection.exec_driver_sql(
                "INSERT INTO call (id, uid, started_at, state, created_at) VALUES "
                "(1, 'c1', '2026-11-30 10:00:00', 'ended', '2026-11-30 10:00:00')"
            )
            connection.exec_driver_sql(
                "INSERT INTO segment (id, call_id, sip_call_id, state, started_at) VALUES "
                "(1, 1, 'abc@host', 'captured', '2026-11-30 10:00:00')"
            )
            connection.exec_driver_sql(
                "INSERT INTO stream (id, segment_id, media_index, srtp, packets, bytes, lost,"
                " reordered, duplicates, ssrc_changes, garbage, silent_stretches, updated_at)"
                " VALUES (1, 1, 0, false, 10, 1720, 0, 0, 0, 0, 0, '[]', '2026-11-30 10:00:00')"
            )
            connection.exec_driver_sql(
                "INSERT INTO recording (id, uid, call_id, segment_id, kind, format, codec,"
                " state, channel_map, attempts, created_at) VALUES (1, 'r1', 1, 1, 'segment',"
                " 'wav', 'pcm_s16le', 'ready', '[]', 1, '2026-11-30 10:00:00')"
            )
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()
    with Database(empty_db_url) as db:
        from callvault.db import Recording, Stream

        stream = db.read(lambda s: s.get(Stream, 1))
        recording = db.read(lambda s: s.get(Recording, 1))
    assert stream is not None and stream.payload_types == {} and stream.packets == 10
    assert recording is not None and recording.options == {} and recording.analysis == {}
    assert recording.state == "ready" and recording.not_before is None
