"""segments: segments, segment_memberships (with history), segment_membership_events

Revision ID: 0006_segments
Revises: 0005_import_runs
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_segments"
down_revision: str | None = "0005_import_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rule", Json, nullable=False),
        sa.Column("family", sa.String(length=32), nullable=True),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("builtin_key", sa.String(length=64), nullable=True),
        sa.Column("topics", Json, nullable=False),
        sa.Column("time_based", sa.Boolean(), nullable=False),
        sa.Column("refs", Json, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("builtin_key", name=op.f("uq_segments_builtin_key")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_index(op.f("ix_segments_family"), "segments", ["family"], unique=False)
    op.create_table(
        "segment_memberships",
        sa.Column("id", BigId, nullable=False),
        sa.Column("segment_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_memberships_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_memberships_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_memberships")),
    )
    op.create_index(
        op.f("ix_segment_memberships_customer_id_left_at"),
        "segment_memberships",
        ["customer_id", "left_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_segment_memberships_segment_id_left_at_customer_id"),
        "segment_memberships",
        ["segment_id", "left_at", "customer_id"],
        unique=False,
    )
    op.create_table(
        "segment_membership_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("segment_id", BigId, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_membership_events_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_membership_events")),
    )
    op.create_index(
        op.f("ix_segment_membership_events_at"), "segment_membership_events", ["at"], unique=False
    )
    op.create_index(
        op.f("ix_segment_membership_events_segment_id_at"),
        "segment_membership_events",
        ["segment_id", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_segment_membership_events_segment_id_at"), table_name="segment_membership_events"
    )
    op.drop_index(op.f("ix_segment_membership_events_at"), table_name="segment_membership_events")
    op.drop_table("segment_membership_events")
    op.drop_index(
        op.f("ix_segment_memberships_segment_id_left_at_customer_id"),
        table_name="segment_memberships",
    )
    op.drop_index(
        op.f("ix_segment_memberships_customer_id_left_at"), table_name="segment_memberships"
    )
    op.drop_table("segment_memberships")
    op.drop_index(op.f("ix_segments_family"), table_name="segments")
    op.drop_table("segments")
