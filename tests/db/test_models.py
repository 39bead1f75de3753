"""Every model round-trips on SQLite and PostgreSQL; deletes cascade; bad values are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from callvault.db import (
    ApiToken,
    AuditEvent,
    Base,
    Call,
    CallGroup,
    CallKey,
    Database,
    EncryptionKey,
    Group,
    LegalHold,
    MetadataEvent,
    Participant,
    PausedInterval,
    Recording,
    SavedFilter,
    Segment,
    Setting,
    ShareLink,
    Stream,
    StreamParticipant,
    User,
    UserGroup,
    Webhook,
    WebhookDelivery,
    WebSession,
    utcnow,
)
from tests.db.builders import RAW_METADATA, T0, add_full_call

ALL_MODELS: list[type[Base]] = [
    Call,
    CallKey,
    Segment,
    Participant,
    Stream,
    StreamParticipant,
    PausedInterval,
    MetadataEvent,
    Recording,
    Setting,
    Group,
    User,
    UserGroup,
    CallGroup,
    WebSession,
    ApiToken,
    SavedFilter,
    AuditEvent,
    ShareLink,
    Webhook,
    WebhookDelivery,
    EncryptionKey,
    LegalHold,
]

# What outlives a call: settings, people and their things belong to the installation;
# the audit log is append-only. Share links and the call's group tag go with the call.
KEPT: dict[type[Base], int] = {
    Setting: 1,
    Group: 2,
    User: 1,
    UserGroup: 1,
    WebSession: 1,
    ApiToken: 1,
    SavedFilter: 1,
    AuditEvent: 1,
    Webhook: 1,
    WebhookDelivery: 1,
    EncryptionKey: 1,
}

Snapshot = dict[tuple[str, tuple[Any, ...]], dict[str, Any]]


def _columns(obj: Base) -> dict[str, Any]:
    return {attr.key: getattr(obj, attr.key) for attr in inspect(type(obj)).column_attrs}


def _snapshot(session: Session) -> Snapshot:
    """Every row of every model, keyed by (model, primary key)."""
    rows: Snapshot = {}
    for model in ALL_MODELS:
        for obj in session.scalars(select(model)):
            identity = inspect(obj).identity
            assert identity is not None
            rows[(model.__name__, identity)] = _columns(obj)
    return rows


def _add_and_flush(obj: Base) -> Any:
    def add(session: Session) -> None:
        session.add(obj)
        session.flush()

    return add


def _count(session: Session, model: type[Base]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_all_models_are_covered() -> None:
    assert {m.__name__ for m in ALL_MODELS} == {m.class_.__name__ for m in Base.registry.mappers}
    assert len(ALL_MODELS) == 23


def test_every_model_round_trips(database: Database) -> None:
    written = database.write(lambda s: (add_full_call(s), _snapshot(s))[1])

    # One row per model, and the builder left no column unset: all of them are exercised.
    assert sorted(name for name, _ in written) == sorted(
        [m.__name__ for m in ALL_MODELS] + ["Participant", "StreamParticipant", "Group"]
    )
    for (name, _), columns in written.items():
        unset = [key for key, value in columns.items() if value is None]
        assert unset == [], f"{name} has unset columns {unset}"

    read_back = database.read(_snapshot)
    assert read_back == written


def test_timestamps_come_back_aware_utc(database: Database) -> None:
    call_id = database.write(lambda s: add_full_call(s).id)
    call = database.read(lambda s: s.get_one(Call, call_id))
    # Written as 12:00:00.123456+02:00, read as the same instant in UTC, microseconds kept.
    assert call.started_at == T0
    assert call.started_at.tzinfo is UTC
    assert call.started_at.isoformat() == "2024-05-01T10:00:00.123456+00:00"
    assert call.ended_at is not None and call.ended_at.tzinfo is UTC


def test_order_by_timestamp_is_chronological_across_zones(database: Database) -> None:
    # 10:30+02:00 is earlier than 09:00Z; comparing local wall-clock text would lie.
    times = [
        datetime.fromisoformat("2024-05-01T10:30:00+02:00"),
        datetime.fromisoformat("2024-05-01T09:00:00+00:00"),
        datetime.fromisoformat("2024-05-01T08:45:00+00:00"),
    ]

    def add(session: Session) -> None:
        for started in times:
            session.add(Call(started_at=started))

    database.write(add)
    ordered = database.read(
        lambda s: [c.started_at for c in s.scalars(select(Call).order_by(Call.started_at))]
    )
    assert [t.isoformat() for t in ordered] == [
        "2024-05-01T08:30:00+00:00",
        "2024-05-01T08:45:00+00:00",
        "2024-05-01T09:00:00+00:00",
    ]


def test_defaults(database: Database) -> None:
    def add(session: Session) -> int:
        call = Call(started_at=T0)
        segment = Segment(call=call, sip_call_id="x@y", started_at=T0)
        Stream(segment=segment, media_index=0)
        MetadataEvent(segment=segment, received_at=T0, sip_method="INVITE", raw=b"")
        Recording(call=call, segment=segment)
        session.add(call)
        session.flush()
        return call.id

    before = utcnow()
    call_id = database.write(add)
    call = database.read(
        lambda s: s.scalars(
            select(Call).where(Call.id == call_id).execution_options(populate_existing=True)
        ).one()
    )
    assert call.state == "active"
    assert len(call.uid) == 32 and int(call.uid, 16) >= 0
    assert before <= call.created_at <= utcnow()

    def load(session: Session) -> tuple[Segment, Stream, MetadataEvent, Recording]:
        return (
            session.scalars(select(Segment)).one(),
            session.scalars(select(Stream)).one(),
            session.scalars(select(MetadataEvent)).one(),
            session.scalars(select(Recording)).one(),
        )

    segment, stream, event, recording = database.read(load)
    assert segment.state == "active"
    assert (stream.packets, stream.bytes, stream.lost, stream.srtp) == (0, 0, 0, False)
    assert stream.silent_stretches == []
    assert event.warnings == []
    assert (recording.kind, recording.format, recording.codec) == ("segment", "wav", "pcm_s16le")
    assert (recording.state, recording.attempts, recording.channel_map) == ("waiting", 0, [])
    assert len(recording.uid) == 32 and recording.uid != call.uid


def test_metadata_raw_keeps_exact_bytes(database: Database) -> None:
    database.write(add_full_call)
    event = database.read(lambda s: s.scalars(select(MetadataEvent)).one())
    assert event.raw == RAW_METADATA
    assert event.raw_text.endswith("</recording>\ufffd\ufffd")


def test_delete_call_cascades_to_everything(database: Database) -> None:
    call_id = database.write(lambda s: add_full_call(s).id)
    database.write(lambda s: s.delete(s.get_one(Call, call_id)))
    counts = database.read(lambda s: {m.__name__: _count(s, m) for m in ALL_MODELS})
    assert counts == {m.__name__: KEPT.get(m, 0) for m in ALL_MODELS}


def test_delete_cascades_in_the_database_itself(database: Database) -> None:
    # A bulk DELETE bypasses the ORM: only ON DELETE CASCADE (and on SQLite,
    # foreign_keys=ON) can remove the children.
    database.write(add_full_call)
    database.write(lambda s: s.execute(delete(Call)))
    counts = database.read(lambda s: {m.__name__: _count(s, m) for m in ALL_MODELS})
    assert counts == {m.__name__: KEPT.get(m, 0) for m in ALL_MODELS}


def test_deleting_a_segment_alone_keeps_its_recording(database: Database) -> None:
    database.write(add_full_call)
    database.write(lambda s: s.execute(delete(Segment)))
    recording = database.read(lambda s: s.scalars(select(Recording)).one())
    assert recording.segment_id is None
    assert recording.path == "recordings/2024/05/01/call-1.wav"
    assert database.read(lambda s: (_count(s, Stream), _count(s, Call))) == (0, 1)


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(StatementError, match=r"(?i)foreign key"):
        database.write(_add_and_flush(Segment(call_id=12345, sip_call_id="x", started_at=T0)))


def test_naive_datetime_is_refused(database: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime 2024-05-01T10:00:00"):
        database.write(_add_and_flush(Call(started_at=datetime(2024, 5, 1, 10))))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Call(started_at=T0, state="done"), "Call.state must be one of"),
        (lambda: Segment(state="recording"), "Segment.state must be one of"),
        (lambda: Recording(state="ok"), "Recording.state must be one of"),
        (lambda: PausedInterval(reason="mute"), "PausedInterval.reason must be one of"),
        (lambda: StreamParticipant(role="both"), "StreamParticipant.role must be one of"),
    ],
)
def test_unknown_states_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_unique_constraints(database: Database) -> None:
    call = database.write(add_full_call)
    segment_id = database.read(lambda s: s.scalars(select(Segment.id)).one())
    with pytest.raises(StatementError, match=r"(?i)unique"):
        database.write(_add_and_flush(Stream(segment_id=segment_id, media_index=0)))
    key = CallKey(call_id=call.id, kind="x-broadworks-correlation-info", value="corr-1")
    with pytest.raises(StatementError, match=r"(?i)unique"):
        database.write(_add_and_flush(key))
    later = T0 + timedelta(days=1)
    database.write(lambda s: s.add(Call(started_at=later)))
    assert database.read(lambda s: _count(s, Call)) == 2
