"""Derived statistics. Rebuilt by jobs; every row says when it was computed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patronage.db import Base, BigId, Json, UTCDateTime


class StatsSnapshot(Base):
    """The dashboard's KPIs, taken nightly (and on demand)."""

    __tablename__ = "stats_snapshots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    customers: Mapped[int] = mapped_column(BigInteger)
    buyers: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(BigInteger)
    revenue_minor: Mapped[int] = mapped_column(BigInteger)
    average_order_minor: Mapped[int] = mapped_column(BigInteger)
    repeat_purchase_rate: Mapped[float] = mapped_column(Float)
    duration_ms: Mapped[int] = mapped_column(Integer)
    revenue_by_month: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)


class CustomerFeatures(Base):
    """One row per customer (merged-away profiles excluded); rebuilt whole by each refresh."""

    __tablename__ = "analytics_customer_features"

    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    orders: Mapped[int] = mapped_column(Integer)
    purchase_days: Mapped[int] = mapped_column(Integer)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    t_days: Mapped[int | None] = mapped_column(Integer)
    total_spend_minor: Mapped[int] = mapped_column(BigInteger)
    aov_minor: Mapped[int | None] = mapped_column(BigInteger)
    avg_item_price_minor: Mapped[int | None] = mapped_column(BigInteger)
    distinct_categories: Mapped[int] = mapped_column(Integer)
    return_rate: Mapped[float | None] = mapped_column(Float)
    cancellation_rate: Mapped[float | None] = mapped_column(Float)
    discount_rate: Mapped[float | None] = mapped_column(Float)
    sessions_7d: Mapped[int] = mapped_column(Integer)
    sessions_30d: Mapped[int] = mapped_column(Integer)
    sessions_90d: Mapped[int] = mapped_column(Integer)
    product_views_7d: Mapped[int] = mapped_column(Integer)
    product_views_30d: Mapped[int] = mapped_column(Integer)
    product_views_90d: Mapped[int] = mapped_column(Integer)
    cart_adds: Mapped[int] = mapped_column(Integer)
    abandoned_carts: Mapped[int] = mapped_column(Integer)
    last_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    preferred_hour: Mapped[int | None] = mapped_column(SmallInteger)
    preferred_weekday: Mapped[int | None] = mapped_column(SmallInteger)  # ISO: 1 = Monday
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    preferred_device: Mapped[str | None] = mapped_column(String(32))
    recommendation_clicks: Mapped[int] = mapped_column(Integer)
    support_contacts: Mapped[int] = mapped_column(Integer)
    reviews: Mapped[int] = mapped_column(Integer)
    avg_rating: Mapped[float | None] = mapped_column(Float)
    tenure_days: Mapped[int | None] = mapped_column(Integer)
    age_band: Mapped[str | None] = mapped_column(String(8))


class RfmScore(Base):
    """RFM quintile scores and named segment of each customer with at least one order."""

    __tablename__ = "analytics_rfm"

    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    r: Mapped[int] = mapped_column(SmallInteger)
    f: Mapped[int] = mapped_column(SmallInteger)
    m: Mapped[int] = mapped_column(SmallInteger)
    segment: Mapped[str] = mapped_column(String(32), index=True)


class CustomerScore(Base):
    """CLV and churn scores; a value that could not be computed is NULL and `reason` says why."""

    __tablename__ = "analytics_customer_scores"

    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    p_alive: Mapped[float | None] = mapped_column(Float)
    churn_risk: Mapped[float | None] = mapped_column(Float)
    expected_purchases_90d: Mapped[float | None] = mapped_column(Float)
    expected_purchases_365d: Mapped[float | None] = mapped_column(Float)
    expected_spend_minor: Mapped[float | None] = mapped_column(Float)
    clv_minor: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    problems: Mapped[list[str]] = mapped_column(Json, default=list)


class AnalyticsRefresh(Base):
    """One row per refresh: what it computed, the model fit, and the segment moves."""

    __tablename__ = "analytics_refreshes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    customers: Mapped[int] = mapped_column(BigInteger)
    buyers: Mapped[int] = mapped_column(BigInteger)
    segment_moves: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
