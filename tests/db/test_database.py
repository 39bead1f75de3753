"""Database: transactions, the single SQLite writer, WAL readers, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from callvault.db import (
    BUSY_TIMEOUT_MS,
    SQLITE_FILENAME,
    Call,
    CallKey,
    Database,
    find_or_create_call,
)
from tests.db.builders import T0

REPO = Path(__file__).resolve().parents[2]
CORRELATION = "x-broadworks-correlation-info"


def _count_calls(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Call)) or 0


def _add_call(session: Session) -> int:
    call = Call(started_at=T0)
    session.add(call)
    session.flush()
    return call.id


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> Path:
    with Database.for_data_dir(tmp_path) as db:
        db.migrate()
    return tmp_path


def test_for_data_dir(tmp_path: Path) -> None:
    with Database.for_data_dir(tmp_path) as db:
        assert db.backend == "sqlite"
        assert db.url == f"sqlite:///{tmp_path / SQLITE_FILENAME}"
        db.migrate()
    assert (tmp_path / SQLITE_FILENAME).is_file()


def test_relative_sqlite_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Database("sqlite:///rel.db") as db:
        assert db.url == f"sqlite:///{tmp_path / 'rel.db'}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "SQLite needs a file path"),
        ("sqlite:///:memory:", "SQLite needs a file path"),
        ("mysql://u@h/db", "unsupported database URL mysql://u@h/db"),
    ],
)
def test_unsupported_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Database(url)


@pytest.mark.postgres
def test_password_is_hidden_in_repr(postgres_url: str) -> None:
    url = make_url(postgres_url).set(password="s3cret")
    with Database(url.render_as_string(hide_password=False)) as db:
        assert "s3cret" not in repr(db)
        assert "s3cret" in db.url
        assert db.backend == "postgresql"


def test_sqlite_pragmas(sqlite_dir: Path) -> None:
    query = "SELECT * FROM pragma_{}()"
    names = ["journal_mode", "foreign_keys", "busy_timeout", "synchronous", "query_only"]

    def pragmas(session: Session) -> dict[str, object]:
        return {n: session.execute(text(query.format(n))).scalar() for n in names}

    with Database.for_data_dir(sqlite_dir) as db:
        written = db.write(pragmas)
        read = db.read(pragmas)
    # synchronous 1 = NORMAL; durable across a process crash in WAL mode.
    common = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": BUSY_TIMEOUT_MS}
    assert written == {**common, "synchronous": 1, "query_only": 0}
    assert read == {**common, "synchronous": 1, "query_only": 1}
    assert BUSY_TIMEOUT_MS >= 5000


def test_write_commits(database: Database) -> None:
    call_id = database.write(_add_call)
    assert database.read(lambda s: s.get_one(Call, call_id).started_at) == T0


def test_write_rolls_back_when_fn_raises(database: Database) -> None:
    def fail(session: Session) -> None:
        _add_call(session)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        database.write(fail)
    assert database.read(_count_calls) == 0
    # The writer is usable again afterwards (lock released, connection returned).
    database.write(_add_call)
    assert database.read(_count_calls) == 1


def test_nested_write_is_refused(database: Database) -> None:
    with pytest.raises(RuntimeError, match="called inside a write transaction"):
        database.write(lambda _s: database.write(_add_call))
    assert database.read(_count_calls) == 0


def test_nested_write_through_another_object_is_refused(db_url: str) -> None:
    with (
        Database(db_url) as first,
        Database(db_url) as second,
        pytest.raises(RuntimeError, match="called inside a write transaction"),
    ):
        first.write(lambda _s: second.write(_add_call))


def test_read_is_read_only(database: Database) -> None:
    with pytest.raises(DBAPIError, match=r"readonly database|read-only transaction"):
        database.read(_add_call)
    assert database.read(_count_calls) == 0


def test_returned_objects_are_usable_after_the_transaction(database: Database) -> None:
    call = database.write(lambda s: s.get_one(Call, _add_call(s)))
    assert (call.state, call.started_at) == ("active", T0)


def test_reader_sees_committed_state_while_writer_is_mid_transaction(sqlite_dir: Path) -> None:
    writer_db = Database.for_data_dir(sqlite_dir)
    reader_db = Database.for_data_dir(sqlite_dir)
    flushed, checked = threading.Event(), threading.Event()

    def slow_write(session: Session) -> None:
        _add_call(session)
        flushed.set()
        checked.wait()

    writer = threading.Thread(target=writer_db.write, args=(slow_write,))
    writer.start()
    try:
        flushed.wait()
        # The writer holds the write lock with an uncommitted row: WAL lets the reader
        # in at once, and it sees the last committed state.
        assert reader_db.read(_count_calls) == 0
    finally:
        checked.set()
        writer.join()
    assert reader_db.read(_count_calls) == 1
    writer_db.dispose()
    reader_db.dispose()


def test_concurrent_writers_and_reader_never_lock(sqlite_dir: Path) -> None:
    """Two writer threads (separate Database objects) and a reader on the same file."""
    per_writer = 50
    writers = [Database.for_data_dir(sqlite_dir) for _ in range(2)]
    reader = Database.for_data_dir(sqlite_dir)
    errors: list[BaseException] = []

    def write_many(db: Database) -> None:
        try:
            for _ in range(per_writer):
                db.write(_add_call)
        except BaseException as exc:  # reported below: a thread's error is not a failure
            errors.append(exc)

    threads = [threading.Thread(target=write_many, args=(db,)) for db in writers]
    for thread in threads:
        thread.start()
    seen = [reader.read(_count_calls)]
    while any(thread.is_alive() for thread in threads):
        seen.append(reader.read(_count_calls))
        time.sleep(0.001)  # let the writer threads have the GIL now and then
    for thread in threads:
        thread.join()
    seen.append(reader.read(_count_calls))

    assert errors == []
    assert seen == sorted(seen), "a reader went back in time"
    assert seen[-1] == 2 * per_writer
    for db in [*writers, reader]:
        db.dispose()


WRITER_SCRIPT = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from callvault.db import Database, find_or_create_call

db = Database.for_data_dir(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
for n in range(int(sys.argv[2])):
    keys = [("x-broadworks-correlation-info", "shared"), ("sip-call-id", f"child-{n}")]
    db.write(lambda s: find_or_create_call(s, keys, datetime.now(UTC)))
print("done", flush=True)
"""


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _count_keys(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(CallKey)) or 0


def test_writer_in_another_process(sqlite_dir: Path) -> None:
    """`callvault serve` writes while a CLI process reads and writes the same file.

    Both write read-then-write transactions (find_or_create_call): with a deferred
    BEGIN, one of them would fail with "database is locked" when the other commits
    between its SELECT and its INSERT; BEGIN IMMEDIATE makes it wait instead.
    """
    child = _python(WRITER_SCRIPT, str(sqlite_dir), "60")
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    child.stdin.write("go\n")
    child.stdin.flush()
    with Database.for_data_dir(sqlite_dir) as db:
        seen = [db.read(_count_keys)]
        for n in range(30):
            keys = [(CORRELATION, "shared"), ("sip-call-id", f"parent-{n}")]
            db.write(lambda s, keys=keys: find_or_create_call(s, keys, T0))
            seen.append(db.read(_count_keys))
        stdout, stderr = child.communicate()
        assert (child.returncode, stdout, stderr) == (0, "done\n", "")
        seen.append(db.read(_count_keys))
        calls = db.read(_count_calls)
    assert seen == sorted(seen), "a reader went back in time"
    assert (calls, seen[-1]) == (1, 1 + 60 + 30)


KILLED_WRITER_SCRIPT = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from callvault.db import Call, Database

db = Database.for_data_dir(Path(sys.argv[1]))
call_id = db.write(lambda s: (s.add(c := Call(started_at=datetime.now(UTC))), s.flush(), c.id)[2])
print(call_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_committed_write_survives_kill_9(sqlite_dir: Path) -> None:
    child = _python(KILLED_WRITER_SCRIPT, str(sqlite_dir))
    stdout, stderr = child.communicate()
    assert child.returncode == -signal.SIGKILL, stderr
    call_id = int(stdout)
    with Database.for_data_dir(sqlite_dir) as db:
        assert db.read(lambda s: s.get(Call, call_id)) is not None
        # The killed writer left no lock behind.
        db.write(_add_call)
        assert db.read(_count_calls) == 2


def test_migrate_is_idempotent(database: Database) -> None:
    database.write(_add_call)
    database.migrate()
    assert database.read(_count_calls) == 1


def test_forked_child_gets_its_own_writer(sqlite_dir: Path) -> None:
    """Fork while a thread is mid-write (Celery prefork does not wait for us)."""
    db = Database.for_data_dir(sqlite_dir)
    db.write(_add_call)
    holding, release = threading.Event(), threading.Event()

    def hold(_session: Session) -> None:
        holding.set()
        release.wait()

    writer = threading.Thread(target=db.write, args=(hold,))
    writer.start()
    holding.wait()
    pid = os.fork()
    if pid == 0:  # child: the inherited lock is held by a thread that does not exist here
        status = 1
        try:
            db.write(_add_call)
            status = 0
        finally:
            os._exit(status)
    release.set()
    writer.join()
    try:
        _, status = os.waitpid(pid, 0)
    except BaseException:  # e.g. pytest-timeout on a child stuck on an inherited lock
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    assert os.waitstatus_to_exitcode(status) == 0
    assert db.read(_count_calls) == 2
    db.dispose()
