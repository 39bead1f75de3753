"""callvault's database layer: models, migrations, transactions and shared queries.

Use :class:`Database` for every transaction (``write`` / ``read``) and the functions
of :mod:`callvault.db.queries` inside them. Works on SQLite (embedded, one writer,
WAL readers) and PostgreSQL (scale-out).
"""

from callvault.db.database import (
    BUSY_TIMEOUT_MS,
    MIGRATIONS_DIR,
    SQLITE_FILENAME,
    Database,
    alembic_config,
)
from callvault.db.models import (
    CALL_STATES,
    PAUSE_REASONS,
    RECORDING_STATES,
    SEGMENT_STATES,
    STREAM_ROLES,
    Base,
    Call,
    CallKey,
    MetadataEvent,
    Participant,
    PausedInterval,
    Recording,
    Segment,
    Stream,
    StreamParticipant,
    UTCDateTime,
    new_uid,
    utcnow,
)
from callvault.db.queries import (
    MAX_CALL_KEY_VALUE_LENGTH,
    calls_as_json,
    find_or_create_call,
    normalise_call_key,
    recording_by_id,
    recordings_in_state,
    segments_in_state,
)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CALL_STATES",
    "MAX_CALL_KEY_VALUE_LENGTH",
    "MIGRATIONS_DIR",
    "PAUSE_REASONS",
    "RECORDING_STATES",
    "SEGMENT_STATES",
    "SQLITE_FILENAME",
    "STREAM_ROLES",
    "Base",
    "Call",
    "CallKey",
    "Database",
    "MetadataEvent",
    "Participant",
    "PausedInterval",
    "Recording",
    "Segment",
    "Stream",
    "StreamParticipant",
    "UTCDateTime",
    "alembic_config",
    "calls_as_json",
    "find_or_create_call",
    "new_uid",
    "normalise_call_key",
    "recording_by_id",
    "recordings_in_state",
    "segments_in_state",
    "utcnow",
]
