"""Media pipeline: payload types per stream; layout, options, file name, mixer window,
waveform peaks and timeline analysis per recording; runtime settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # server_default fills rows written before this revision; the ORM writes its own.
    with op.batch_alter_table("stream") as batch:
        batch.add_column(sa.Column("payload_types", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("recording") as batch:
        batch.add_column(sa.Column("layout", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("channel_rule", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("options", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("file_name", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("participant_key", sa.String(), nullable=True))
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("peaks", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("peaks_per_second", sa.Float(), nullable=True))
        batch.add_column(sa.Column("analysis", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "setting",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_setting")),
    )


def downgrade() -> None:
    op.drop_table("setting")
    with op.batch_alter_table("recording") as batch:
        for column in (
            "analysis",
            "peaks_per_second",
            "peaks",
            "not_before",
            "participant_key",
            "file_name",
            "options",
            "channel_rule",
            "layout",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("stream") as batch:
        batch.drop_column("payload_types")
