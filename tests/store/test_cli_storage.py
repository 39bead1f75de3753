"""`callvault storage move` and `callvault verify`, as an operator runs them (both
database backends, a real moto server)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from callvault.cli import main
from callvault.db import Database
from callvault.db.accounts import AuditEvent
from callvault.store.uploader import upload_next
from tests.recording.golden import START, configure
from tests.store.conftest import REGION, MotoServer
from tests.store.helpers import T0, ready_file, row, use_s3

FILES = {
    "recordings/2023/11/14/first.ogg": b"first recording" * 100,
    "recordings/2023/11/15/second.mp3": b"second recording" * 200,
}


def run(database: Database, data: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main, [*args, "--data", str(data)], env={"CALLVAULT_DATABASE_URL": database.url}
    )


def with_bucket(database: Database, data: Path, moto: MotoServer, bucket: str) -> None:
    """The bucket configured, the backend still local (new recordings stay here)."""
    configure(
        database,
        data,
        {
            "storage.s3.bucket": bucket,
            "storage.s3.endpoint_url": moto.url,
            "storage.s3.region": REGION,
        },
    )


def recordings(database: Database, data: Path) -> list[int]:
    return [
        ready_file(database, data, key, content, start=START + 60 * n)
        for n, (key, content) in enumerate(FILES.items())
    ]


def in_bucket(moto: MotoServer, bucket: str) -> dict[str, bytes]:
    client = moto.client()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_move_to_s3_and_back(
    database: Database, tmp_path: Path, moto: MotoServer, bucket: str
) -> None:
    with_bucket(database, tmp_path, moto, bucket)
    ids = recordings(database, tmp_path)

    dry = run(database, tmp_path, "storage", "move", "--to", "s3", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would move 2 recordings (4700 bytes) from local to s3" in dry.output
    assert all(row(database, i).store == "local" for i in ids) and not in_bucket(moto, bucket)

    up = run(database, tmp_path, "storage", "move", "--to", "s3")
    assert up.exit_code == 0, up.output
    assert "moved 2 recordings (4700 bytes) to s3" in up.output
    assert "storage.backend is local" in up.output
    assert in_bucket(moto, bucket) == {"callvault/" + k: v for k, v in FILES.items()}
    for recording_id, key in zip(ids, FILES, strict=True):
        moved = row(database, recording_id)
        assert moved.store == "s3" and moved.stored_at is not None
        assert not (tmp_path / key).exists()
    audit = database.read(
        lambda s: s.scalars(select(AuditEvent).where(AuditEvent.action == "storage.move")).all()
    )
    assert [(a.target_id, a.detail["moved"], a.actor[:4]) for a in audit] == [("s3", 2, "cli:")]

    again = run(database, tmp_path, "storage", "move", "--to", "s3")
    assert again.exit_code == 0 and "moved 0 recordings" in again.output

    down = run(database, tmp_path, "storage", "move", "--to", "local")
    assert down.exit_code == 0, down.output
    assert "moved 2 recordings (4700 bytes) to local" in down.output
    assert in_bucket(moto, bucket) == {}
    for recording_id, (key, content) in zip(ids, FILES.items(), strict=True):
        assert row(database, recording_id).store == "local"
        assert (tmp_path / key).read_bytes() == content
    assert not list(tmp_path.rglob("*.download"))


def test_moving_back_is_refused_while_the_backend_is_s3(
    database: Database, tmp_path: Path, moto: MotoServer, bucket: str
) -> None:
    use_s3(database, tmp_path, moto.url, bucket)
    result = run(database, tmp_path, "storage", "move", "--to", "local")
    assert result.exit_code == 1
    assert "set storage.backend local first" in result.output


def test_moving_to_s3_needs_a_bucket(database: Database, tmp_path: Path) -> None:
    recordings(database, tmp_path)
    result = run(database, tmp_path, "storage", "move", "--to", "s3")
    assert result.exit_code == 1
    assert "storage.s3.bucket is empty" in result.output


def test_an_interrupted_move_is_finished_by_running_it_again(
    database: Database, tmp_path: Path, moto: MotoServer, bucket: str
) -> None:
    with_bucket(database, tmp_path, moto, bucket)
    first, second = recordings(database, tmp_path)
    first_key, second_key = FILES
    (tmp_path / second_key).unlink()  # this one cannot be read: it fails, the other moves
    failed = run(database, tmp_path, "storage", "move", "--to", "s3")
    assert failed.exit_code == 1
    assert "moved 1 recordings" in failed.output
    assert f"recording {second} ({second_key})" in failed.output
    assert row(database, second).store == "local"
    # As if the first move had stopped between switching the row and removing the file.
    (tmp_path / first_key).write_bytes(FILES[first_key])
    (tmp_path / second_key).write_bytes(FILES[second_key])

    again = run(database, tmp_path, "storage", "move", "--to", "s3")

    assert again.exit_code == 0, again.output
    assert "moved 1 recordings" in again.output
    assert "removed 1 copies left in local" in again.output
    assert row(database, first).store == row(database, second).store == "s3"
    assert not (tmp_path / first_key).exists() and not (tmp_path / second_key).exists()


def verify(database: Database, data: Path) -> tuple[int, dict[str, object]]:
    result = run(database, data, "verify", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_verify_finds_missing_altered_orphan_and_leftover_files(
    database: Database, tmp_path: Path, moto: MotoServer, bucket: str
) -> None:
    base = use_s3(database, tmp_path, moto.url, bucket)
    intact = ready_file(database, tmp_path, "recordings/a/intact.ogg", b"fine")
    gone = ready_file(database, tmp_path, "recordings/a/gone.ogg", b"lost", start=START + 60)
    changed = ready_file(database, tmp_path, "recordings/a/changed.ogg", b"orig", start=START + 120)
    for _ in range(3):
        outcome = upload_next(database, base, tmp_path, T0)
        assert outcome is not None and outcome.uploaded
    clean_code, clean = verify(database, tmp_path)
    assert clean_code == 0 and clean["ok"] is True and clean["checked"] == 3
    assert clean["problems"] == []

    client = moto.client()
    client.delete_object(Bucket=bucket, Key="callvault/recordings/a/gone.ogg")
    client.put_object(Bucket=bucket, Key="callvault/recordings/a/changed.ogg", Body=b"evil")
    client.put_object(Bucket=bucket, Key="callvault/recordings/old/stray.ogg", Body=b"?")
    (tmp_path / "recordings" / "b").mkdir(parents=True)
    (tmp_path / "recordings" / "b" / "stray.wav").write_bytes(b"??")
    (tmp_path / "recordings" / "a" / "intact.ogg").write_bytes(b"fine")  # left behind

    code, report = verify(database, tmp_path)

    assert code == 1 and report["ok"] is False
    found = {(p["problem"], p["store"], p["key"], p["recording_id"]) for p in report["problems"]}
    assert found == {
        ("missing", "s3", "recordings/a/gone.ogg", gone),
        ("altered", "s3", "recordings/a/changed.ogg", changed),
        ("orphan", "s3", "recordings/old/stray.ogg", None),
        ("orphan", "local", "recordings/b/stray.wav", None),
        ("leftover", "local", "recordings/a/intact.ogg", intact),
    }
    altered = next(p for p in report["problems"] if p["problem"] == "altered")
    assert hashlib.sha256(b"evil").hexdigest() in altered["detail"]
    text = run(database, tmp_path, "verify")
    assert text.exit_code == 1
    assert "MISSING: recording" in text.output and "5 problems" in text.output


@pytest.mark.parametrize("size_too", [True, False], ids=["size", "same-size"])
def test_verify_compares_local_files_with_the_database(
    database: Database, tmp_path: Path, size_too: bool
) -> None:
    recording_id = ready_file(database, tmp_path, "recordings/x.wav", b"RIFF data")
    (tmp_path / "recordings" / "x.wav").write_bytes(b"RIFF data!" if size_too else b"RIFF dada")
    code, report = verify(database, tmp_path)
    assert code == 1
    [problem] = report["problems"]
    assert (problem["problem"], problem["recording_id"]) == ("altered", recording_id)
    assert ("10 bytes" if size_too else "SHA-256") in problem["detail"]
