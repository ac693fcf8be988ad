"""segments: personas (runs, personas, members) and next-category predictions and runs

Revision ID: 0007_personas
Revises: 0006_segments
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_personas"
down_revision: str | None = "0006_segments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "segment_persona_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("computed_at", When, nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("customers", sa.BigInteger(), nullable=False),
        sa.Column("silhouette", sa.Float(), nullable=True),
        sa.Column("silhouettes", Json, nullable=False),
        sa.Column("model", Json, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_persona_runs")),
    )
    op.create_index(
        op.f("ix_segment_persona_runs_computed_at"), "segment_persona_runs", ["computed_at"]
    )
    op.create_table(
        "segment_personas",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("centroid", Json, nullable=False),
        sa.Column("traits", Json, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("total_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("mean_spend_minor", sa.Float(), nullable=False),
        sa.Column("total_clv_minor", sa.Float(), nullable=True),
        sa.Column("mean_clv_minor", sa.Float(), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("computed_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_personas")),
    )
    op.create_index(op.f("ix_segment_personas_active"), "segment_personas", ["active"])
    op.create_table(
        "segment_persona_members",
        sa.Column("customer_id", BigId, autoincrement=False, nullable=False),
        sa.Column("persona_id", BigId, nullable=False),
        sa.Column("computed_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_persona_members_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"],
            ["segment_personas.id"],
            name=op.f("fk_segment_persona_members_persona_id_segment_personas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_segment_persona_members")),
    )
    op.create_index(
        op.f("ix_segment_persona_members_persona_id"), "segment_persona_members", ["persona_id"]
    )
    op.create_table(
        "segment_next_categories",
        sa.Column("customer_id", BigId, autoincrement=False, nullable=False),
        sa.Column("rank", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("category_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("computed_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_next_categories_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "rank", name=op.f("pk_segment_next_categories")),
    )
    op.create_index(
        op.f("ix_segment_next_categories_category_id"), "segment_next_categories", ["category_id"]
    )
    op.create_table(
        "segment_next_category_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("computed_at", When, nullable=False),
        sa.Column("details", Json, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_next_category_runs")),
    )
    op.create_index(
        op.f("ix_segment_next_category_runs_kind_computed_at"),
        "segment_next_category_runs",
        ["kind", "computed_at"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_segment_next_category_runs_kind_computed_at"),
        table_name="segment_next_category_runs",
    )
    op.drop_table("segment_next_category_runs")
    op.drop_index(
        op.f("ix_segment_next_categories_category_id"), table_name="segment_next_categories"
    )
    op.drop_table("segment_next_categories")
    op.drop_index(
        op.f("ix_segment_persona_members_persona_id"), table_name="segment_persona_members"
    )
    op.drop_table("segment_persona_members")
    op.drop_index(op.f("ix_segment_personas_active"), table_name="segment_personas")
    op.drop_table("segment_personas")
    op.drop_index(op.f("ix_segment_persona_runs_computed_at"), table_name="segment_persona_runs")
    op.drop_table("segment_persona_runs")
