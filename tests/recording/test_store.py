"""The recorder's database writes, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from callvault.db import Database
from callvault.db.models import Recording, Segment
from callvault.db.queries import calls_as_json
from callvault.recording.recovery import recover_interrupted
from callvault.recording.store import create_segment, end_segment, record_metadata, set_paused
from callvault.siprec.offer import read_offer
from tests.recording.helpers import corpus_request, new_segment


def test_segment_with_participants_and_stream_senders(database: Database) -> None:
    ids = database.write(lambda s: create_segment(s, new_segment("cisco_cube_2streams_gtd.sip")))
    assert set(ids.stream_ids) == {0, 1}
    calls = database.read(calls_as_json)
    assert len(calls) == 1
    call = calls[0]
    assert call["state"] == "active"
    assert {p["aor"] for p in call["participants"]} == {
        "sip:7301@35.162.237.204",
        "sip:7300@35.162.237.204",
    }
    streams = {s["label"]: s for s in call["streams"]}
    assert streams["1"]["sent_by"] == ["sip:7301@35.162.237.204"]
    assert streams["2"]["sent_by"] == ["sip:7300@35.162.237.204"]
    assert streams["1"]["codec"] == "PCMU"


def test_raw_metadata_of_every_message_is_kept(database: Database) -> None:
    new = new_segment("cisco_cube_2streams_gtd.sip")
    ids = database.write(lambda s: create_segment(s, new))

    def raw(session: object) -> list[bytes]:
        segment = session.get(Segment, ids.segment_id)  # type: ignore[attr-defined]
        return [event.raw for event in segment.metadata_events]

    events = database.read(raw)
    assert len(events) == 1
    assert new.offer.metadata_raw is not None and events[0] == new.offer.metadata_raw
    # A later message (an UPDATE with new metadata) adds an event of its own.
    update = corpus_request("avaya_sbce_update_new_participant.sip")
    offer = read_offer(update.headers.get("Content-Type") or "", update.body)
    database.write(
        lambda s: record_metadata(s, ids.segment_id, update, offer, offer.metadata, 1.7e9 + 5)
    )
    assert len(database.read(raw)) == 2


def test_transfer_leg_joins_the_call_by_a_shared_key(database: Database) -> None:
    first = new_segment("webex_calling_2streams_metadata_first.sip")
    database.write(lambda s: create_segment(s, first))
    # Same BroadWorks correlation id, otherwise a different recording session.
    second = new_segment("webex_calling_2streams_metadata_first.sip", started_at=1.7e9 + 60)
    second = type(second)(
        **{
            **{f: getattr(second, f) for f in second.__dataclass_fields__},
            "keys": [
                ("broadworks-correlation", "45a32b36-2a6a-4ec1-9cf3-47824099fcd4"),
                ("rs-call-id", "another-leg"),
            ],
        }
    )
    database.write(lambda s: create_segment(s, second))
    calls = database.read(calls_as_json)
    assert len(calls) == 1
    assert len(calls[0]["segments"]) == 2


def test_pause_intervals_and_end(database: Database) -> None:
    ids = database.write(lambda s: create_segment(s, new_segment("sonus_ribbon_sbc_2streams.sip")))
    stream_id = ids.stream_ids[0]
    database.write(lambda s: set_paused(s, stream_id, True, "hold", 1_700_000_010.0))
    database.write(lambda s: set_paused(s, stream_id, True, "hold", 1_700_000_011.0))  # no-op
    database.write(lambda s: set_paused(s, stream_id, False, "hold", 1_700_000_015.0))
    database.write(lambda s: set_paused(s, stream_id, True, "inactive", 1_700_000_020.0))
    recording_id = database.write(
        lambda s: end_segment(s, ids.segment_id, "bye", 1_700_000_030.0, [])
    )
    assert recording_id is not None
    call = database.read(calls_as_json)[0]
    assert call["state"] == "ended"
    assert call["duration_s"] == 30.0
    stream = next(s for s in call["streams"] if s["label"] == call["streams"][0]["label"])
    paused = sorted(stream["paused"], key=lambda p: p["started_at"])
    assert [(p["reason"], p["ended_at"] is not None) for p in paused] == [
        ("hold", True),
        ("inactive", True),  # closed at the end of the segment
    ]
    assert call["recordings"][0]["state"] == "waiting"
    assert call["segments"][0]["state"] == "captured"


def test_recovery_closes_active_segments_and_queues_them(
    database: Database, tmp_path: Path
) -> None:
    ids = database.write(lambda s: create_segment(s, new_segment("avaya_sbce_2streams.sip")))
    capture = tmp_path / "captures" / "avaya_sbce_2streams.sip.pcap"
    capture.parent.mkdir(parents=True)
    capture.write_bytes(b"")
    queued = database.write(lambda s: recover_interrupted(s, 1_700_000_100.0, tmp_path))
    assert len(queued) == 1

    def state(session: object) -> tuple[str, str | None, str]:
        segment = session.get(Segment, ids.segment_id)  # type: ignore[attr-defined]
        recording = session.get(Recording, queued[0])  # type: ignore[attr-defined]
        return segment.state, segment.end_reason, recording.state

    assert database.read(state) == ("interrupted", "crash_recovery", "waiting")
    # Running recovery again queues the same unfinished recording, nothing more.
    assert database.write(lambda s: recover_interrupted(s, 1_700_000_200.0, tmp_path)) == queued
