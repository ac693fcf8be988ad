"""The dashboard's KPIs as the API returns them. Amounts are integer minor units (cents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class MonthRevenueRead(BaseModel):
    month: str = Field(description="calendar month in UTC, 'YYYY-MM'", examples=["2025-06"])
    orders: int = Field(description="non-cancelled orders placed in the month")
    revenue_minor: int = Field(description="their totals minus their refunds")


class KpiRead(BaseModel):
    """One statistics snapshot: what the dashboard shows."""

    computed_at: datetime
    duration_ms: int = Field(description="time the computation took")
    customers: int = Field(description="customer profiles, not counting merged-away ones")
    buyers: int = Field(description="customers with at least one non-cancelled order")
    orders: int = Field(description="non-cancelled orders")
    revenue_minor: int = Field(description="non-cancelled orders' totals minus their refunds")
    average_order_minor: int = Field(
        description="revenue / orders, rounded half to even; 0 without orders"
    )
    repeat_purchase_rate: float = Field(
        description="share of buyers with two or more non-cancelled orders (0..1)"
    )
    revenue_by_month: list[MonthRevenueRead] = Field(
        description="the last 24 calendar months (UTC), oldest first, the current one last"
    )


# --- customer analytics: features, RFM, CLV / churn (docs/analytics.md) ---


class RefreshRead(BaseModel):
    """One analytics refresh: what it computed and what it could not."""

    computed_at: datetime
    duration_ms: int
    customers: int = Field(description="customers with a feature row (merged-away excluded)")
    buyers: int = Field(description="customers with an RFM score (at least one counted order)")
    segment_moves: int = Field(description="customers whose RFM segment changed since the last")
    details: dict[str, Any] = Field(
        description="model fit (parameters, convergence message), counts of customers not "
        "scored per reason, future orders ignored, segment moves (from, to, customers)"
    )


class RfmRead(BaseModel):
    r: int
    f: int
    m: int
    segment: str


class ScoresRead(BaseModel):
    """CLV / churn outputs; a value not computed is null and `reason` says why."""

    p_alive: float | None
    churn_risk: float | None
    expected_purchases_90d: float | None
    expected_purchases_365d: float | None
    expected_spend_minor: float | None = Field(description="expected value of one purchase")
    clv_minor: float | None = Field(description="discounted value of the next 12 months")
    reason: str
    problems: list[str]


class CustomerAnalyticsRead(BaseModel):
    customer_id: int
    computed_at: datetime | None = Field(description="the refresh these figures come from")
    message: str | None = Field(description="why there are no figures (e.g. no refresh yet)")
    features: dict[str, Any] | None
    rfm: RfmRead | None
    scores: ScoresRead | None


class RfmCellRead(BaseModel):
    r: int
    f: int
    customers: int


class SegmentCountRead(BaseModel):
    segment: str
    rule: str
    customers: int


class RfmOverviewRead(BaseModel):
    computed_at: datetime | None
    cells: list[RfmCellRead] = Field(description="customers per (R, F) score pair")
    segments: list[SegmentCountRead] = Field(description="in first-match order")
    segment_moves: int
    moves: list[dict[str, Any]]


class ClvBinRead(BaseModel):
    lower_minor: float
    upper_minor: float
    customers: int


class TopCustomerRead(BaseModel):
    customer_id: int
    clv_minor: float | None
    p_alive: float | None
    churn_risk: float | None
    reason: str


class ClvOverviewRead(BaseModel):
    computed_at: datetime | None
    scored: int = Field(description="customers with a CLV")
    total_clv_minor: float
    bins: list[ClvBinRead]
    top: list[TopCustomerRead]
    at_risk: list[TopCustomerRead] = Field(description="highest churn risk first")
    model: dict[str, Any]


# --- purchase patterns, cohorts, funnel (analytics/patterns.py, docs/analytics.md) ---


class CohortRowRead(BaseModel):
    cohort: str = Field(description="month of the first counted order, 'YYYY-MM' (UTC)")
    customers: int = Field(description="buyers whose first counted order was in that month")
    active: list[int] = Field(description="of them, buyers with an order in month k (k = 0..)")
    retention: list[float | None] = Field(description="active[k] / customers (null: no buyers)")


class CohortsRead(BaseModel):
    computed_at: datetime | None
    months: int = Field(description="how many cohorts (the latest months, oldest first)")
    rows: list[CohortRowRead]


class BucketRead(BaseModel):
    label: str
    count: int


class IntervalsRead(BaseModel):
    intervals: int = Field(description="gaps between consecutive counted orders of a customer")
    mean_days: float | None
    buckets: list[BucketRead] = Field(description="gaps per range of whole UTC days")
    buyers: int
    repeat_buyers: int = Field(description="buyers with two or more counted orders")
    repeat_purchase_rate: float | None


class BasketsRead(BaseModel):
    orders: int = Field(description="counted orders with items")
    mean_items: float | None
    buckets: list[BucketRead] = Field(description="orders per number of items")


class PriceBandRead(BaseModel):
    lower_minor: int
    upper_minor: int | None = Field(description="exclusive; null for the open last band")
    items: int = Field(description="items bought at a unit price in the band")
    buyers: int = Field(description="distinct customers who bought in the band")


class MonthOrdersRead(BaseModel):
    month: str
    orders: int
    revenue_minor: int
    average_order_minor: int | None = Field(description="revenue / orders, half to even")


class ConcentrationRead(BaseModel):
    top_percent: int
    customers: int
    revenue_share: float | None = Field(description="of the revenue of all buyers (0..1)")


class PatternsRead(BaseModel):
    """When and how customers buy, from the latest refresh."""

    computed_at: datetime | None
    message: str | None = Field(description="why there is nothing (e.g. no refresh yet)")
    intervals: IntervalsRead | None
    baskets: BasketsRead | None
    price_bands: list[PriceBandRead]
    timing: list[list[int]] = Field(
        description="counted orders per ISO weekday (row 0 = Monday) and UTC hour (0..23)"
    )
    monthly: list[MonthOrdersRead] = Field(description="the last 24 months, oldest first")
    concentration: list[ConcentrationRead]


class FunnelStepRead(BaseModel):
    event: str
    label: str
    visitors: int = Field(description="visitors who did this and every step before it")
    of_first: float | None = Field(description="visitors / visitors of the first step")
    abandonment: float | None = Field(description="1 - next step / this step (null: last)")


class FunnelRead(BaseModel):
    computed_at: datetime | None
    days: int = Field(description="events of the last `days` days before the refresh")
    steps: list[FunnelStepRead]
