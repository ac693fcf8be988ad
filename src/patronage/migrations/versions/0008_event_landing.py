"""collect: event_landing, where the tracking API lands accepted messages for the processor

Revision ID: 0008_event_landing
Revises: 0007_personas
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_event_landing"
down_revision: str | None = "0007_personas"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_landing",
        sa.Column("id", BigId, nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("source_id", BigId, nullable=True),
        sa.Column("source_name", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("failed", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_landing")),
        sa.UniqueConstraint("message_id", name=op.f("uq_event_landing_message_id")),
    )


def downgrade() -> None:
    op.drop_table("event_landing")
