"""Initial schema: calls, call keys, segments, participants, streams, paused
intervals, metadata events and recordings.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool) -> sa.Column[Any]:
    # Every timestamp is timestamptz on PostgreSQL and naive UTC text on SQLite
    # (callvault.db.models.UTCDateTime converts on both sides).
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        _timestamp("started_at", nullable=False),
        _timestamp("ended_at", nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call")),
        sa.UniqueConstraint("uid", name=op.f("uq_call_uid")),
    )
    op.create_index("ix_call_started_at", "call", ["started_at"])

    op.create_table(
        "call_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_call_key_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_key")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_call_key_kind_value")),
    )
    op.create_index("ix_call_key_call_id", "call_key", ["call_id"])

    op.create_table(
        "segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("sip_call_id", sa.String(), nullable=False),
        sa.Column("local_tag", sa.String(), nullable=True),
        sa.Column("remote_tag", sa.String(), nullable=True),
        sa.Column("src_address", sa.String(), nullable=True),
        sa.Column("transport", sa.String(length=8), nullable=True),
        sa.Column("user_agent", sa.String(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        _timestamp("started_at", nullable=False),
        _timestamp("ended_at", nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("capture_path", sa.String(), nullable=True),
        sa.Column("node", sa.String(), nullable=True),
        sa.Column("metadata_namespace", sa.String(), nullable=True),
        sa.Column("recording_session_id", sa.String(), nullable=True),
        sa.Column("group_id", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_segment_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment")),
    )
    op.create_index("ix_segment_call_id", "segment", ["call_id"])
    op.create_index("ix_segment_sip_call_id", "segment", ["sip_call_id"])
    op.create_index("ix_segment_state", "segment", ["state"])

    op.create_table(
        "participant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("participant_key", sa.String(), nullable=False),
        sa.Column("aor", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        _timestamp("associated_at", nullable=True),
        _timestamp("disassociated_at", nullable=True),
        sa.Column("service_provider_id", sa.String(), nullable=True),
        sa.Column("group_id", sa.String(), nullable=True),
        sa.Column("user_id", sa.String(), nullable=True),
        _timestamp("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segment.id"],
            name=op.f("fk_participant_segment_id_segment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participant")),
        sa.UniqueConstraint(
            "segment_id",
            "participant_key",
            name=op.f("uq_participant_segment_id_participant_key"),
        ),
    )

    op.create_table(
        "stream",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("metadata_stream_id", sa.String(), nullable=True),
        sa.Column("media_index", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=True),
        sa.Column("payload_type", sa.Integer(), nullable=True),
        sa.Column("clock_rate", sa.Integer(), nullable=True),
        sa.Column("local_port", sa.Integer(), nullable=True),
        sa.Column("remote_address", sa.String(), nullable=True),
        sa.Column("srtp", sa.Boolean(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("ssrc", sa.BigInteger(), nullable=True),
        sa.Column("packets", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("lost", sa.BigInteger(), nullable=False),
        sa.Column("reordered", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("jitter_ms", sa.Float(), nullable=True),
        sa.Column("ssrc_changes", sa.Integer(), nullable=False),
        sa.Column("garbage", sa.BigInteger(), nullable=False),
        _timestamp("first_packet_at", nullable=True),
        _timestamp("last_packet_at", nullable=True),
        sa.Column("silent_stretches", sa.JSON(), nullable=False),
        _timestamp("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segment.id"],
            name=op.f("fk_stream_segment_id_segment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream")),
        sa.UniqueConstraint(
            "segment_id", "media_index", name=op.f("uq_stream_segment_id_media_index")
        ),
    )

    op.create_table(
        "stream_participant",
        sa.Column("stream_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_stream_participant_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["stream.id"],
            name=op.f("fk_stream_participant_stream_id_stream"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "stream_id", "participant_id", "role", name=op.f("pk_stream_participant")
        ),
    )
    op.create_index(
        "ix_stream_participant_participant_id", "stream_participant", ["participant_id"]
    )

    op.create_table(
        "paused_interval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream_id", sa.Integer(), nullable=False),
        _timestamp("started_at", nullable=False),
        _timestamp("ended_at", nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["stream.id"],
            name=op.f("fk_paused_interval_stream_id_stream"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paused_interval")),
    )
    op.create_index("ix_paused_interval_stream_id", "paused_interval", ["stream_id"])

    op.create_table(
        "metadata_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        _timestamp("received_at", nullable=False),
        sa.Column("sip_method", sa.String(length=16), nullable=False),
        sa.Column("cseq", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.String(), nullable=True),
        sa.Column("datamode", sa.String(length=16), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segment.id"],
            name=op.f("fk_metadata_event_segment_id_segment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadata_event")),
    )
    op.create_index("ix_metadata_event_segment_id", "metadata_event", ["segment_id"])

    op.create_table(
        "recording",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("channel_map", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("started_at", nullable=True),
        _timestamp("ready_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_recording_call_id_call"), ondelete="CASCADE"
        ),
        # SET NULL: a stored artifact outlives a segment row deleted on its own.
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segment.id"],
            name=op.f("fk_recording_segment_id_segment"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording")),
        sa.UniqueConstraint("uid", name=op.f("uq_recording_uid")),
    )
    op.create_index("ix_recording_call_id", "recording", ["call_id"])
    op.create_index("ix_recording_segment_id", "recording", ["segment_id"])
    op.create_index("ix_recording_state", "recording", ["state"])


def downgrade() -> None:
    # Children first; dropping a table drops its indexes.
    for table in (
        "recording",
        "metadata_event",
        "paused_interval",
        "stream_participant",
        "stream",
        "participant",
        "segment",
        "call_key",
        "call",
    ):
        op.drop_table(table)
