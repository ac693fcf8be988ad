"""join the analytics and recommend branches, which were developed side by side

Revision ID: 0004
Revises: 0003_analytics, 0003_recommend
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | Sequence[str] | None = ("0003_analytics", "0003_recommend")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
