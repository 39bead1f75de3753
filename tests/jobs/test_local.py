"""The embedded job runner keeps finalizing when a worker process dies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from callvault.db import Database
from callvault.db.models import Recording
from callvault.jobs.local import LocalJobRunner
from callvault.recording.finalize import MAX_ATTEMPTS, finalize_recording
from tests.recording.golden import captured_session, settings_for, two_tones


def _workers() -> list[int]:
    """The pool's worker processes (spawned children of this one), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def _state(database: Database, recording_id: int) -> str:
    return database.read(lambda s: s.get_one(Recording, recording_id).state)


def _wait_ready(database: Database, runner: LocalJobRunner, recording_id: int) -> None:
    for _ in range(600):  # bounded: 60 s
        if _state(database, recording_id) == "ready" and not runner.is_pending(recording_id):
            return
        time.sleep(0.1)
    raise AssertionError(f"recording {recording_id}: {_state(database, recording_id)}")


def test_a_killed_worker_does_not_stop_later_jobs(tmp_path: Path) -> None:
    database = Database.for_data_dir(tmp_path)
    database.migrate()
    first, _ = captured_session(database)
    two_tones(tmp_path)
    runner = LocalJobRunner(data_dir=tmp_path, database_url=database.url, workers=1)
    try:
        runner.enqueue_finalize(first)
        _wait_ready(database, runner, first)
        workers = _workers()
        assert workers
        for pid in workers:  # as the OOM killer would
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)  # the pool notices its worker is gone

        # Made again from scratch: the runner must submit it to a working pool.
        database.write(lambda s: setattr(s.get_one(Recording, first), "state", "waiting"))
        runner.enqueue_finalize(first)
        _wait_ready(database, runner, first)
        assert runner.restarts == 1
    finally:
        runner.shutdown()
        database.dispose()


def test_a_job_that_keeps_dying_is_given_up(database: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)

    def died_mid_job(session: object) -> None:
        row = session.get_one(Recording, recording_id)  # type: ignore[attr-defined]
        row.state, row.attempts = "processing", MAX_ATTEMPTS

    database.write(died_mid_job)
    state = finalize_recording(database, tmp_path, recording_id, settings=settings_for(tmp_path))
    assert state == "failed"
    row = database.read(lambda s: s.get_one(Recording, recording_id))
    assert (
        row.error
        == f"given up after {MAX_ATTEMPTS} attempts: the job died each time (see the server log)"
    )
