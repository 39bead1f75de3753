"""Queries: grouping segments into calls, the `calls list --json` contract, lookups."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from callvault.db import (
    MAX_CALL_KEY_VALUE_LENGTH,
    Call,
    CallKey,
    Database,
    Participant,
    PausedInterval,
    Recording,
    Segment,
    Stream,
    StreamParticipant,
    calls_as_json,
    find_or_create_call,
    normalise_call_key,
    recording_by_id,
    recordings_in_state,
    segments_in_state,
)
from tests.db.builders import T0, add_full_call, at

CORRELATION = "x-broadworks-correlation-info"


def _keys_of(session: Session, call_id: int) -> set[tuple[str, str]]:
    rows = session.execute(select(CallKey.kind, CallKey.value).where(CallKey.call_id == call_id))
    return {(kind, value) for kind, value in rows}


def _call_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Call)) or 0


# --- find_or_create_call -------------------------------------------------------------


def test_first_segment_creates_a_call_with_every_key(database: Database) -> None:
    keys = [("sip-call-id", "leg-1@pbx"), (CORRELATION, "corr-1"), ("avaya-ucid", "00001")]
    call = database.write(lambda s: find_or_create_call(s, keys, T0))
    assert (call.state, call.started_at, call.ended_at) == ("active", T0, None)
    assert database.read(lambda s: _keys_of(s, call.id)) == set(keys)


def test_transfer_segment_joins_the_call_by_a_shared_key(database: Database) -> None:
    first = database.write(
        lambda s: find_or_create_call(s, [("sip-call-id", "leg-1"), (CORRELATION, "corr-1")], T0)
    )
    second = database.write(
        lambda s: find_or_create_call(
            s, [("sip-call-id", "leg-2"), (CORRELATION, "corr-1")], at(30)
        )
    )
    assert second.id == first.id
    assert second.started_at == T0
    assert database.read(lambda s: _keys_of(s, first.id)) == {
        ("sip-call-id", "leg-1"),
        ("sip-call-id", "leg-2"),
        (CORRELATION, "corr-1"),
    }
    other = database.write(
        lambda s: find_or_create_call(
            s, [("sip-call-id", "leg-3"), (CORRELATION, "corr-2")], at(40)
        )
    )
    assert other.id != first.id
    assert database.read(_call_count) == 2


def test_an_earlier_segment_moves_the_call_start(database: Database) -> None:
    database.write(lambda s: find_or_create_call(s, [("session-id", "ab12")], at(10)))
    call = database.write(lambda s: find_or_create_call(s, [("session-id", "ab12")], T0))
    assert database.read(lambda s: s.get_one(Call, call.id).started_at) == T0


def test_keys_on_two_calls_pick_the_oldest_and_move_nothing(database: Database) -> None:
    a = database.write(lambda s: find_or_create_call(s, [("avaya-ucid", "u1")], T0))
    b = database.write(lambda s: find_or_create_call(s, [("cisco-guid", "g1")], at(1)))
    keys = [("cisco-guid", "g1"), ("avaya-ucid", "u1"), ("sip-call-id", "leg-9")]
    joined = database.write(lambda s: find_or_create_call(s, keys, at(2)))
    assert joined.id == min(a.id, b.id)
    assert database.read(lambda s: _keys_of(s, a.id)) == {
        ("avaya-ucid", "u1"),
        ("sip-call-id", "leg-9"),
    }
    assert database.read(lambda s: _keys_of(s, b.id)) == {("cisco-guid", "g1")}


def test_kinds_are_case_insensitive_and_blank_values_ignored(database: Database) -> None:
    first = database.write(
        lambda s: find_or_create_call(s, [("X-BroadWorks-Correlation-Info", " c9 "), ("x", "")], T0)
    )
    again = database.write(lambda s: find_or_create_call(s, [(CORRELATION, "c9")], T0))
    assert again.id == first.id
    assert database.read(lambda s: _keys_of(s, first.id)) == {(CORRELATION, "c9")}


def test_no_keys_always_creates_a_new_call(database: Database) -> None:
    ids = {database.write(lambda s: find_or_create_call(s, [], T0)).id for _ in range(2)}
    assert len(ids) == 2


def test_overlong_values_are_stored_as_their_hash_and_still_match(database: Database) -> None:
    huge = "x" * 5000 + "@example.com"
    first = database.write(lambda s: find_or_create_call(s, [("sip-call-id", huge)], T0))
    again = database.write(lambda s: find_or_create_call(s, [("sip-call-id", huge)], T0))
    assert again.id == first.id
    ((_, stored),) = database.read(lambda s: _keys_of(s, first.id))
    assert stored.startswith("sha256:") and len(stored) == 71
    assert normalise_call_key("sip-call-id", "y" * MAX_CALL_KEY_VALUE_LENGTH) == (
        "sip-call-id",
        "y" * MAX_CALL_KEY_VALUE_LENGTH,
    )


def test_bad_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="call key kind must be 1-64 characters"):
        normalise_call_key(" ", "v")


def _race(database: Database, *key_sets: list[tuple[str, str]]) -> list[int]:
    """find_or_create_call from one thread per key set, all released at once."""
    start = threading.Barrier(len(key_sets))
    results: list[int] = []
    errors: list[BaseException] = []

    def attach(keys: list[tuple[str, str]]) -> None:
        start.wait()
        try:
            results.append(database.write(lambda s: find_or_create_call(s, keys, T0).id))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=attach, args=(keys,)) for keys in key_sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_two_threads_with_the_same_key_make_one_call(database: Database) -> None:
    rounds = 5
    for n in range(rounds):
        shared = (CORRELATION, f"corr-{n}")
        results = _race(
            database, [shared, ("sip-call-id", f"a{n}")], [shared, ("sip-call-id", f"b{n}")]
        )
        assert len(results) == 2 and results[0] == results[1]
        assert database.read(lambda s, c=results[0]: len(_keys_of(s, c))) == 3
    assert database.read(_call_count) == rounds


def _wait_for_lock_waiter(url: str, writer: threading.Thread) -> None:
    """Return once another PostgreSQL session waits on a lock (or the writer is done)."""
    engine = create_engine(url, poolclass=NullPool)
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    try:
        with engine.connect() as connection:
            while writer.is_alive() and not connection.execute(query).scalar():
                time.sleep(0.005)
    finally:
        engine.dispose()


def test_losing_a_race_for_a_key_finds_the_winners_call(database: Database) -> None:
    """The second writer looked before the first committed, then collides and retries."""
    keys_first = [(CORRELATION, "race"), ("sip-call-id", "leg-1")]
    keys_second = [(CORRELATION, "race"), ("sip-call-id", "leg-2")]
    flushed, release = threading.Event(), threading.Event()
    results: dict[str, int] = {}

    def first(session: Session) -> None:
        results["first"] = find_or_create_call(session, keys_first, T0).id
        flushed.set()
        release.wait()

    def second() -> None:
        results["second"] = database.write(lambda s: find_or_create_call(s, keys_second, at(5)).id)

    winner = threading.Thread(target=database.write, args=(first,))
    winner.start()
    flushed.wait()
    loser = threading.Thread(target=second)
    loser.start()
    if database.backend == "postgresql":
        # The loser saw no key (uncommitted), created a call and now waits on the unique
        # index for the winner. (On SQLite it waits for the single writer instead.)
        _wait_for_lock_waiter(database.url, loser)
    release.set()
    winner.join()
    loser.join()

    assert results["second"] == results["first"]
    assert database.read(_call_count) == 1
    assert database.read(lambda s: _keys_of(s, results["first"])) == {
        (CORRELATION, "race"),
        ("sip-call-id", "leg-1"),
        ("sip-call-id", "leg-2"),
    }


# --- calls_as_json ---------------------------------------------------------------------


def _add_transfer_leg(session: Session) -> None:
    """A second, still active segment on the full call, and a newer empty call."""
    call = find_or_create_call(session, [(CORRELATION, "corr-1")], at(30))
    segment = Segment(call=call, sip_call_id="leg-2@pbx", state="active", started_at=at(30))
    alice = Participant(segment=segment, participant_key="a2", aor="sip:alice@example.com")
    carol = Participant(
        segment=segment, participant_key="c2", aor="sip:carol@example.org", name="Carol"
    )
    Participant(segment=segment, participant_key="x2", aor=None, name="Anonymous")
    voice = Stream(segment=segment, label="1", media_index=0, codec="PCMU", packets=10, bytes=1720)
    StreamParticipant(stream=voice, participant=carol, role="send")
    StreamParticipant(stream=voice, participant=alice, role="recv")
    muted = Stream(segment=segment, label="2", media_index=1, codec="PCMU")
    PausedInterval(stream=muted, started_at=at(31), ended_at=None, reason="inactive")
    Recording(call=call, segment=segment, uid="11112222333344445555666677778888")
    session.add(segment)
    session.add(Call(uid="99990000999900009999000099990000", started_at=at(3600)))
    session.flush()


def test_calls_as_json_contract(database: Database) -> None:
    database.write(add_full_call)
    database.write(_add_transfer_leg)

    def ids(session: Session) -> dict[str, int]:
        segments = session.scalars(select(Segment).order_by(Segment.started_at)).all()
        calls = session.scalars(select(Call).order_by(Call.started_at)).all()
        recordings = session.scalars(select(Recording).order_by(Recording.id)).all()
        return {
            "call": calls[0].id,
            "empty_call": calls[1].id,
            "seg1": segments[0].id,
            "seg2": segments[1].id,
            "rec1": recordings[0].id,
            "rec2": recordings[1].id,
        }

    i = database.read(ids)
    stream_defaults = {"reordered": 0, "duplicates": 0, "jitter_ms": None, "ssrc_changes": 0}
    expected = [
        {
            "id": i["empty_call"],
            "uid": "99990000999900009999000099990000",
            "started_at": "2024-05-01T11:00:00.123456Z",
            "ended_at": None,
            "duration_s": None,
            "state": "active",
            "direction": None,
            "participants": [],
            "segments": [],
            "streams": [],
            "recordings": [],
        },
        {
            "id": i["call"],
            "uid": "0123456789abcdef0123456789abcdef",
            "started_at": "2024-05-01T10:00:00.123456Z",
            "ended_at": "2024-05-01T10:01:00.623456Z",
            "duration_s": 60.5,
            "state": "ended",
            "direction": "inbound",
            "participants": [
                {"aor": "sip:alice@example.com", "name": "Alice"},
                {"aor": "sip:bob@example.net", "name": "Bob"},
                {"aor": "sip:carol@example.org", "name": "Carol"},
                {"aor": None, "name": "Anonymous"},
            ],
            "segments": [
                {
                    "id": i["seg1"],
                    "sip_call_id": "a84b4c76e66710@pc33.example.com",
                    "state": "captured",
                    "started_at": "2024-05-01T10:00:00.123456Z",
                    "ended_at": "2024-05-01T10:01:00.623456Z",
                    "end_reason": "bye",
                    "capture_path": "captures/2024/05/01/call-1.pcap",
                },
                {
                    "id": i["seg2"],
                    "sip_call_id": "leg-2@pbx",
                    "state": "active",
                    "started_at": "2024-05-01T10:00:30.123456Z",
                    "ended_at": None,
                    "end_reason": None,
                    "capture_path": None,
                },
            ],
            "streams": [
                {
                    "segment_id": i["seg1"],
                    "label": "1",
                    "codec": "PCMA",
                    "packets": 3000,
                    "bytes": 5_000_000_000,
                    "lost": -2,
                    "reordered": 3,
                    "duplicates": 4,
                    "jitter_ms": 1.25,
                    "ssrc_changes": 1,
                    "garbage": 7,
                    "first_packet_at": "2024-05-01T10:00:00.623456Z",
                    "last_packet_at": "2024-05-01T10:01:00.373456Z",
                    "paused": [
                        {
                            "started_at": "2024-05-01T10:00:20.123456Z",
                            "ended_at": "2024-05-01T10:00:25.123456Z",
                            "reason": "hold",
                        }
                    ],
                    "sent_by": ["sip:alice@example.com"],
                },
                {
                    "segment_id": i["seg2"],
                    "label": "1",
                    "codec": "PCMU",
                    "packets": 10,
                    "bytes": 1720,
                    "lost": 0,
                    **stream_defaults,
                    "garbage": 0,
                    "first_packet_at": None,
                    "last_packet_at": None,
                    "paused": [],
                    "sent_by": ["sip:carol@example.org"],
                },
                {
                    "segment_id": i["seg2"],
                    "label": "2",
                    "codec": "PCMU",
                    "packets": 0,
                    "bytes": 0,
                    "lost": 0,
                    **stream_defaults,
                    "garbage": 0,
                    "first_packet_at": None,
                    "last_packet_at": None,
                    "paused": [
                        {
                            "started_at": "2024-05-01T10:00:31.123456Z",
                            "ended_at": None,
                            "reason": "inactive",
                        }
                    ],
                    "sent_by": [],
                },
            ],
            "recordings": [
                {
                    "id": i["rec1"],
                    "uid": "fedcba9876543210fedcba9876543210",
                    "kind": "segment",
                    "segment_id": i["seg1"],
                    "participant_key": "p-alice",
                    "format": None,
                    "codec": None,
                    "channels": 2,
                    "sample_rate": 8000,
                    "duration_s": 60.0,
                    "size_bytes": 5_000_000_000,
                    "sha256": "ab" * 32,
                    "state": "failed",
                    "waiting_until": "2024-05-01T11:00:00.123456Z",
                    "error": "decoder exploded",
                    "layout": "stereo",
                    "channel_map": [
                        {"channel": 0, "participants": ["sip:alice@example.com"], "labels": ["1"]}
                    ],
                    "file_name": "2024-05-01_12.00.00-1001-1.ogg",
                    "path": "recordings/2024/05/01/call-1.wav",
                    "store": "s3",
                    "stored_at": "2024-05-01T10:01:10.123456Z",
                    "encrypted": True,
                    "key_fingerprint": "0123456789ABCDEF0123456789ABCDEF01234567",
                    "retain_until": "2024-07-30T10:00:00.123456Z",
                    "deleted_at": "2024-07-31T10:00:00.123456Z",
                },
                {
                    "id": i["rec2"],
                    "uid": "11112222333344445555666677778888",
                    "kind": "segment",
                    "segment_id": i["seg2"],
                    "participant_key": None,
                    "format": None,
                    "codec": None,
                    "channels": None,
                    "sample_rate": None,
                    "duration_s": None,
                    "size_bytes": None,
                    "sha256": None,
                    "state": "waiting",
                    "waiting_until": None,
                    "error": None,
                    "layout": None,
                    "channel_map": [],
                    "file_name": None,
                    "path": None,
                    "store": "local",
                    "stored_at": None,
                    "encrypted": False,
                    "key_fingerprint": None,
                    "retain_until": None,
                    "deleted_at": None,
                },
            ],
        },
    ]
    got = database.read(calls_as_json)
    assert got == expected
    # Exactly these keys, in this order, and plain JSON types only.
    assert [list(call) for call in got] == [list(call) for call in expected]
    assert json.loads(json.dumps(got)) == expected
    assert database.read(lambda s: calls_as_json(s, limit=1)) == expected[:1]


def test_calls_as_json_on_an_empty_database(database: Database) -> None:
    assert database.read(calls_as_json) == []


def _statements_for_calls_as_json(database: Database) -> int:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        database.read(calls_as_json)
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    return len(statements)


def test_calls_as_json_uses_a_fixed_number_of_queries(database: Database) -> None:
    database.write(add_full_call)
    one_call = _statements_for_calls_as_json(database)

    def more(session: Session) -> None:
        for n in range(4):
            call = Call(started_at=at(100 + n))
            segment = Segment(call=call, sip_call_id=f"more-{n}", started_at=at(100 + n))
            p = Participant(segment=segment, participant_key="p", aor=f"sip:{n}@example.com")
            stream = Stream(segment=segment, media_index=0)
            StreamParticipant(stream=stream, participant=p, role="send")
            PausedInterval(stream=stream, started_at=at(101 + n), reason="port0")
            Recording(call=call, segment=segment)
            session.add(call)

    database.write(more)
    assert _statements_for_calls_as_json(database) == one_call
    assert one_call <= 8


# --- lookups ---------------------------------------------------------------------------


def _add_states(session: Session) -> None:
    call = Call(started_at=T0)
    for n, (state, node) in enumerate(
        [("active", "rec-1"), ("active", "rec-2"), ("captured", "rec-1"), ("failed", None)]
    ):
        segment = Segment(call=call, sip_call_id=f"s{n}", state=state, node=node, started_at=T0)
        Recording(call=call, segment=segment, state=["waiting", "processing", "ready", "failed"][n])
    session.add(call)


def test_lookups_by_state_and_id(database: Database) -> None:
    database.write(_add_states)

    def check(session: Session) -> None:
        active = segments_in_state(session, ["active"])
        assert [s.sip_call_id for s in active] == ["s0", "s1"]
        mine = segments_in_state(session, ("active", "captured"), node="rec-1")
        assert [s.sip_call_id for s in mine] == ["s0", "s2"]
        assert segments_in_state(session, []) == []

        pending = recordings_in_state(session, {"waiting", "processing"})
        assert [r.state for r in pending] == ["waiting", "processing"]
        assert [r.state for r in recordings_in_state(session, ["failed"])] == ["failed"]

        found = recording_by_id(session, pending[1].id)
        assert found is not None and found.uid == pending[1].uid
        assert recording_by_id(session, 987654) is None

    database.read(check)


def test_unknown_states_are_refused_by_lookups(database: Database) -> None:
    with pytest.raises(ValueError, match=r"unknown segment state\(s\) \['done'\]"):
        database.read(lambda s: segments_in_state(s, ["active", "done"]))
    with pytest.raises(ValueError, match=r"unknown recording state\(s\) \['finished'\]"):
        database.read(lambda s: recordings_in_state(s, ["finished"]))
