"""collect: idempotency keys on payments and refunds

Tracked e-commerce events (and imports) report payments and refunds more than once when a
client retries; a unique external id lets every writer upsert instead of adding a copy.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("payments", "refunds"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("external_id", sa.String(length=128), nullable=True))
            batch_op.create_unique_constraint(
                batch_op.f(f"uq_{table}_external_id"), ["external_id"]
            )


def downgrade() -> None:
    for table in ("refunds", "payments"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"uq_{table}_external_id"), type_="unique")
            batch_op.drop_column("external_id")
