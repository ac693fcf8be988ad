"""Derived recommendation tables, rebuilt by a job under a build id.

Every row belongs to a build; serving reads only the build named by the one-row
`recommend_current` pointer, which the rebuild flips in one transaction once every row of the
new build is written. Rows of older builds are deleted after the flip.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.db import Base, BigId, UTCDateTime


def _build_fk() -> ForeignKey:
    return ForeignKey("recommend_builds.id", ondelete="CASCADE")


class Build(Base):
    """One rebuild of every table: running, done (current or superseded) or failed."""

    __tablename__ = "recommend_builds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    order_lines: Mapped[int] = mapped_column(BigInteger, default=0)
    detail: Mapped[str | None] = mapped_column(String(255))


class Current(Base):
    """The pointer serving follows: one row (id 1) naming the build to read."""

    __tablename__ = "recommend_current"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    build_id: Mapped[int] = mapped_column(BigId, ForeignKey("recommend_builds.id"))


class SimilarItem(Base):
    """Item → related items: `kind` is also_bought, cross_sell or upsell; best rank first."""

    __tablename__ = "recommend_similar_items"

    build_id: Mapped[int] = mapped_column(BigId, _build_fk(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    neighbour_id: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(64))


class BoughtTogether(Base):
    """Same-basket association rules X → Y, ranked by confidence."""

    __tablename__ = "recommend_bought_together"

    build_id: Mapped[int] = mapped_column(BigId, _build_fk(), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    neighbour_id: Mapped[int] = mapped_column(BigInteger)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)
    baskets: Mapped[int] = mapped_column(BigInteger)


class Trending(Base):
    """Items ranked by distinct buyers in the last days; `category_id` 0 is the overall list."""

    __tablename__ = "recommend_trending"

    build_id: Mapped[int] = mapped_column(BigId, _build_fk(), primary_key=True)
    category_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigInteger)
    buyers: Mapped[float] = mapped_column(Float)
