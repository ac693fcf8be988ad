"""analytics: customer features, RFM scores and segments, CLV / churn scores, refresh log

Derived tables, rebuilt whole by each analytics refresh; every row carries computed_at.

Revision ID: 0003_analytics
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_analytics"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_customer_features",
        sa.Column(
            "customer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("purchase_days", sa.Integer(), nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("t_days", sa.Integer(), nullable=True),
        sa.Column("total_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("aov_minor", sa.BigInteger(), nullable=True),
        sa.Column("avg_item_price_minor", sa.BigInteger(), nullable=True),
        sa.Column("distinct_categories", sa.Integer(), nullable=False),
        sa.Column("return_rate", sa.Float(), nullable=True),
        sa.Column("cancellation_rate", sa.Float(), nullable=True),
        sa.Column("discount_rate", sa.Float(), nullable=True),
        sa.Column("sessions_7d", sa.Integer(), nullable=False),
        sa.Column("sessions_30d", sa.Integer(), nullable=False),
        sa.Column("sessions_90d", sa.Integer(), nullable=False),
        sa.Column("product_views_7d", sa.Integer(), nullable=False),
        sa.Column("product_views_30d", sa.Integer(), nullable=False),
        sa.Column("product_views_90d", sa.Integer(), nullable=False),
        sa.Column("cart_adds", sa.Integer(), nullable=False),
        sa.Column("abandoned_carts", sa.Integer(), nullable=False),
        sa.Column("last_visit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("preferred_hour", sa.SmallInteger(), nullable=True),
        sa.Column("preferred_weekday", sa.SmallInteger(), nullable=True),
        sa.Column("preferred_channel", sa.String(length=16), nullable=True),
        sa.Column("preferred_device", sa.String(length=32), nullable=True),
        sa.Column("recommendation_clicks", sa.Integer(), nullable=False),
        sa.Column("support_contacts", sa.Integer(), nullable=False),
        sa.Column("reviews", sa.Integer(), nullable=False),
        sa.Column("avg_rating", sa.Float(), nullable=True),
        sa.Column("tenure_days", sa.Integer(), nullable=True),
        sa.Column("age_band", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_analytics_customer_features")),
    )
    op.create_table(
        "analytics_customer_scores",
        sa.Column(
            "customer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("churn_risk", sa.Float(), nullable=True),
        sa.Column("expected_purchases_90d", sa.Float(), nullable=True),
        sa.Column("expected_purchases_365d", sa.Float(), nullable=True),
        sa.Column("expected_spend_minor", sa.Float(), nullable=True),
        sa.Column("clv_minor", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "problems",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_analytics_customer_scores")),
    )
    op.create_table(
        "analytics_refreshes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("customers", sa.BigInteger(), nullable=False),
        sa.Column("buyers", sa.BigInteger(), nullable=False),
        sa.Column("segment_moves", sa.BigInteger(), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_refreshes")),
    )
    with op.batch_alter_table("analytics_refreshes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_refreshes_computed_at"), ["computed_at"], unique=False
        )

    op.create_table(
        "analytics_rfm",
        sa.Column(
            "customer_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("r", sa.SmallInteger(), nullable=False),
        sa.Column("f", sa.SmallInteger(), nullable=False),
        sa.Column("m", sa.SmallInteger(), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_analytics_rfm")),
    )
    with op.batch_alter_table("analytics_rfm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analytics_rfm_segment"), ["segment"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("analytics_rfm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_rfm_segment"))

    op.drop_table("analytics_rfm")
    with op.batch_alter_table("analytics_refreshes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_refreshes_computed_at"))

    op.drop_table("analytics_refreshes")
    op.drop_table("analytics_customer_scores")
    op.drop_table("analytics_customer_features")
