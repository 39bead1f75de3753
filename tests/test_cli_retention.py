"""`callvault purge` and `callvault hold`, as an operator runs them (both backends)."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from callvault.cli import main
from callvault.db import Database
from callvault.db.accounts import AuditEvent
from callvault.db.models import Recording
from tests.cli_support import drop_callvault_environment
from tests.recording.golden import CUBE, configure
from tests.recording.retained import END, ORACLE, ready_call


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_callvault_environment(monkeypatch)


Run = Callable[..., Result]


@pytest.fixture
def run(db_url: str, tmp_path: Path) -> Run:
    def run(*args: str) -> Result:
        return CliRunner().invoke(
            main, [*args, "--data", str(tmp_path)], env={"CALLVAULT_DATABASE_URL": db_url}
        )

    return run


def _state(database: Database, recording_id: int) -> tuple[str, str | None]:
    row = database.read(lambda s: s.get(Recording, recording_id))
    assert row is not None
    return row.state, row.path


def test_purge_lists_then_deletes(database: Database, tmp_path: Path, run: Run) -> None:
    configure(database, tmp_path, {"retention.days": "30"})
    call_id, recording_id = ready_call(database, tmp_path)
    state, path = _state(database, recording_id)
    assert path is not None and (tmp_path / path).exists()

    plan = run("purge", "--dry-run", "--as-of", "2023-12-20")
    assert plan.exit_code == 0, plan.output
    assert plan.output.startswith(
        "dry run, as of 2023-12-20T00:00:00Z: would delete 1 recordings of 1 calls, "
        "1 captures, 0 share links;"
    )
    assert f"  recording {recording_id} (call {call_id}, segment," in plan.output
    assert f"  capture captures/{CUBE}.pcap" in plan.output
    assert _state(database, recording_id) == (state, path) and (tmp_path / path).exists()

    early = run("purge", "--as-of", "2023-12-01T00:00:00Z", "--json")
    assert early.exit_code == 0, early.output
    assert json.loads(early.output)["recording_ids"] == []

    done = run("purge", "--as-of", "2023-12-20", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["recording_ids"] == [recording_id] and report["call_ids"] == [call_id]
    assert report["bytes_freed"] > 0 and report["dry_run"] is False
    assert _state(database, recording_id) == ("deleted", None)
    assert not (tmp_path / path).exists()
    actors = database.read(
        lambda s: s.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "recording.delete")
        ).all()
    )
    assert actors == [f"cli:{getpass.getuser()}"]


def test_a_bad_date_is_refused(tmp_path: Path, run: Run, database: Database) -> None:
    result = run("purge", "--as-of", "yesterday")
    assert result.exit_code == 2
    assert "'yesterday' is not an ISO date" in result.output
    early = run("purge", "--as-of", "0001-01-01T00:00+01:00")  # before the first UTC day
    assert early.exit_code == 2 and "out of the range of dates" in early.output


def test_holds_from_the_command_line(database: Database, tmp_path: Path, run: Run) -> None:
    configure(database, tmp_path, {"retention.days": "30"})
    call_id, recording_id = ready_call(database, tmp_path)
    other_call, other = ready_call(database, tmp_path, ORACLE, start=END.timestamp() + 60)

    held = run("hold", "set", str(call_id), "--reason", "case 42")
    assert held.exit_code == 0, held.output
    assert held.output.startswith(f"call {call_id} is on hold (hold ")
    one = run("hold", "set", str(other), "--recording")
    assert one.output.startswith(f"recording {other} is on hold")
    twice = run("hold", "set", str(call_id))
    assert twice.exit_code == 1 and f"call {call_id} is on hold already" in twice.output
    missing = run("hold", "set", "999")
    assert missing.exit_code == 1 and "no call 999" in missing.output

    listed = json.loads(run("hold", "list", "--json").output)
    assert [(h["call_id"], h["recording_id"], h["reason"]) for h in listed] == [
        (call_id, None, "case 42"),
        (None, other, None),
    ]
    assert listed[0]["set_by"] == f"cli:{getpass.getuser()}"

    report = json.loads(run("purge", "--as-of", "2024-06-01", "--json").output)
    assert report["recording_ids"] == [] and report["held"] == [recording_id, other]
    text = run("purge", "--as-of", "2024-06-01", "--dry-run").output
    assert f"kept by a legal hold: recordings {recording_id}, {other}" in text

    released = run("hold", "release", str(call_id))
    assert released.exit_code == 0 and "released" in released.output
    again = run("hold", "release", str(call_id))
    assert again.exit_code == 1 and f"call {call_id} is not on hold" in again.output
    report = json.loads(run("purge", "--as-of", "2024-06-01", "--json").output)
    assert report["recording_ids"] == [recording_id] and report["held"] == [other]
    assert _state(database, other)[0] == "ready" and other_call != call_id

    active = run("hold", "list").output
    assert active.startswith(f"hold 2: recording {other}, set ") and "(active)" in active
    everything = run("hold", "list", "--all").output
    assert "(released " in everything
    audited = database.read(
        lambda s: s.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.like("hold.%"))
            .order_by(AuditEvent.id)
        ).all()
    )
    assert audited == ["hold.set", "hold.set", "hold.release"]
