"""recommend: builds, the current-build pointer, similar items, bought together, trending

Revision ID: 0003_recommend
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_recommend"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _build_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["build_id"],
        ["recommend_builds.id"],
        name=op.f(f"fk_{table}_build_id_recommend_builds"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "recommend_builds",
        sa.Column("id", BigId, nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("order_lines", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommend_builds")),
    )
    op.create_table(
        "recommend_current",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("build_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["recommend_builds.id"],
            name=op.f("fk_recommend_current_build_id_recommend_builds"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommend_current")),
    )
    op.create_table(
        "recommend_similar_items",
        sa.Column("build_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("neighbour_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        _build_fk("recommend_similar_items"),
        sa.PrimaryKeyConstraint(
            "build_id", "kind", "product_id", "rank", name=op.f("pk_recommend_similar_items")
        ),
    )
    op.create_table(
        "recommend_bought_together",
        sa.Column("build_id", BigId, nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("neighbour_id", sa.BigInteger(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("baskets", sa.BigInteger(), nullable=False),
        _build_fk("recommend_bought_together"),
        sa.PrimaryKeyConstraint(
            "build_id", "product_id", "rank", name=op.f("pk_recommend_bought_together")
        ),
    )
    op.create_table(
        "recommend_trending",
        sa.Column("build_id", BigId, nullable=False),
        sa.Column("category_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("buyers", sa.Float(), nullable=False),
        _build_fk("recommend_trending"),
        sa.PrimaryKeyConstraint(
            "build_id", "category_id", "rank", name=op.f("pk_recommend_trending")
        ),
    )


def downgrade() -> None:
    for table in (
        "recommend_trending",
        "recommend_bought_together",
        "recommend_similar_items",
        "recommend_current",
        "recommend_builds",
    ):
        op.drop_table(table)
