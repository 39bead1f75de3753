"""Recordings for the store tests: made by the real finalize job, or rows written
directly when only the stored file matters."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callvault.config import Settings
from callvault.db import Database
from callvault.db.models import Recording
from callvault.recording.finalize import finalize_recording
from callvault.runtime_settings import effective_settings
from tests.recording.golden import START, captured_session, configure, settings_for, two_tones
from tests.store.conftest import REGION

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def use_s3(database: Database, data_dir: Path, endpoint: str, bucket: str) -> Settings:
    """Switch to the S3 backend as an administrator does; returns the base settings."""
    configure(
        database,
        data_dir,
        {
            "storage.backend": "s3",
            "storage.s3.bucket": bucket,
            "storage.s3.endpoint_url": endpoint,
            "storage.s3.region": REGION,
        },
    )
    return settings_for(data_dir)


def effective(database: Database, data_dir: Path) -> Settings:
    return database.read(lambda s: effective_settings(s, settings_for(data_dir)))


def finalized(database: Database, data_dir: Path, *, start: float = START) -> int:
    """A two-party call captured and finalized into a ready recording; its id.

    Each one is a new segment of the same corpus call: stitching is off, or every new
    one would remake the whole call's recording too."""
    configure(database, data_dir, {"recording.stitch": "never"})
    two_tones(data_dir, t0=start + 0.5)
    capture = f"captures/call-{int(start)}.pcap"
    (data_dir / "captures" / "cisco_cube_2streams_gtd.sip.pcap").rename(data_dir / capture)
    recording_id, _ = captured_session(database, start=start, capture=capture)
    state = finalize_recording(
        database, data_dir, recording_id, settings=settings_for(data_dir), now=start + 10
    )
    assert state == "ready"
    return recording_id


def row(database: Database, recording_id: int) -> Recording:
    found = database.read(lambda s: s.get(Recording, recording_id))
    assert found is not None
    return found


def ready_file(
    database: Database,
    data_dir: Path,
    key: str,
    data: bytes,
    *,
    start: float = START,
    **fields: Any,
) -> int:
    """A ready recording row whose file ``key`` holds ``data`` in the data directory
    (written directly: for tests where only the stored file matters)."""
    path = data_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    recording_id, _ = captured_session(database, start=start)

    def ready(s: Any) -> None:
        recording = s.get(Recording, recording_id)
        recording.state = "ready"
        recording.path = key
        recording.sha256 = hashlib.sha256(data).hexdigest()
        recording.size_bytes = len(data)
        recording.stored_at = T0
        recording.ready_at = T0
        for name, value in fields.items():
            setattr(recording, name, value)

    database.write(ready)
    return recording_id
