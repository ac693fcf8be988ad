"""collect: landed_batches (one row per tracking request) replaces event_landing (one per message)

Messages waiting in event_landing are carried over, each as a batch of one, in landing order:
nothing acknowledged is lost by the upgrade. Their sealed payload (one JSON object) is read
as a batch of one by the processor.

Revision ID: 0009_landed_batches
Revises: 0008_event_landing
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_landed_batches"
down_revision: str | None = "0008_event_landing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "landed_batches",
        sa.Column("id", BigId, nullable=False),
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("source_id", BigId, nullable=True),
        sa.Column("source_name", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("failed", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_landed_batches")),
        sa.UniqueConstraint("digest", name=op.f("uq_landed_batches_digest")),
    )
    # a carried-over row's digest is this prefix and its message id (its payload, one message
    # object, does not hold the id: collect.landing.decode reads it from here)
    op.execute(
        "INSERT INTO landed_batches "
        "(digest, source_id, source_name, received_at, messages, done, payload, failed) "
        "SELECT 'event_landing:' || message_id, source_id, source_name, received_at, 1, 0, "
        "payload, failed FROM event_landing ORDER BY id"
    )
    op.drop_table("event_landing")


def downgrade() -> None:
    """Back to a table of messages; batches still waiting are not carried back (drain the
    landing first: `patronage worker` or a running server does)."""
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
    op.drop_table("landed_batches")
