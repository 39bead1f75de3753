"""Calls with finished recordings for retention tests (built with ``golden``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callvault.db import Database
from callvault.db.models import Recording
from callvault.recording.finalize import finalize_recording
from callvault.recording.purge import PurgeReport, purge
from tests.media import payloads
from tests.recording.golden import (
    CUBE,
    PORTS,
    RECORDER,
    SBC,
    START,
    captured_session,
    settings_for,
    tone_packets,
    write_session_capture,
)

ORACLE = "oracle_acme_sbc_2streams.sip"  # 9000 and 1002: another call than CUBE's
#: When the golden calls end (3 s after START): retention counts from here.
END = datetime.fromtimestamp(START + 3.0, UTC)


def days(n: float) -> datetime:
    """``n`` days after the golden calls ended."""
    return END + timedelta(days=n)


def ready_call(
    database: Database, data_dir: Path, corpus: str = CUBE, start: float = START
) -> tuple[int, int]:
    """A finished two-party call: (call id, recording id), its capture on disk."""
    recording_id, _ = captured_session(database, corpus, start=start)
    write_session_capture(
        data_dir,
        {
            PORTS[0]: tone_packets(500, t0=start + 0.5),
            PORTS[1]: tone_packets(1500, t0=start + 0.5, ssrc=2),
        },
        corpus,
    )
    settings = settings_for(data_dir)
    assert finalize_recording(database, data_dir, recording_id, settings=settings) == "ready"
    row = database.read(lambda s: s.get(Recording, recording_id))
    assert row is not None
    return row.call_id, recording_id


def transferred_call(database: Database, data_dir: Path) -> tuple[int, list[int], int]:
    """CUBE's call in two segments (a transfer) and its stitched recording:
    (call id, segment recording ids, stitched recording id)."""
    first, _ = captured_session(database)
    second, _ = captured_session(
        database, start=START + 4.0, first_port=30004, capture="captures/second.pcap"
    )
    write_session_capture(
        data_dir,
        {
            PORTS[0]: tone_packets(500, t0=START + 0.5),
            PORTS[1]: tone_packets(1500, t0=START + 0.5, ssrc=2),
        },
    )
    payloads.write_capture(
        data_dir / "captures" / "second.pcap",
        [
            (SBC, (RECORDER, 30004), tone_packets(700, t0=START + 4.5, ssrc=3)),
            (SBC, (RECORDER, 30006), tone_packets(1500, t0=START + 4.5, ssrc=4)),
        ],
    )
    settings = settings_for(data_dir)
    for recording_id in (first, second):
        assert finalize_recording(database, data_dir, recording_id, settings=settings) == "ready"
    rows = database.read(lambda s: s.scalars(select(Recording).order_by(Recording.id)).all())
    stitched = [r for r in rows if r.kind == "call"]
    assert len(stitched) == 1 and stitched[0].state == "ready"
    return stitched[0].call_id, [first, second], stitched[0].id


def run_purge(
    database: Database, data_dir: Path, as_of: datetime, *, dry_run: bool = False
) -> PurgeReport:
    return purge(
        database,
        datetime.now(UTC),
        dry_run,
        base=settings_for(data_dir),
        data_dir=data_dir,
        as_of=as_of,
    )


def recording(database: Database, recording_id: int) -> Recording:
    row = database.read(lambda s: s.get(Recording, recording_id))
    assert row is not None
    return row
