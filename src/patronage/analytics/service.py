"""Public functions of the analytics capability: the dashboard's KPIs and their snapshots.

Definitions (docs/dashboard.md): customers are profiles not merged into another; buyers are
customers with at least one non-cancelled order; revenue is the non-cancelled orders' totals
minus the refunds of those orders; the average order value is revenue / orders rounded half
to even; the repeat-purchase rate is the share of buyers with two or more non-cancelled
orders. Months are UTC calendar months; the last 24 including the current one.

A snapshot is keyed by its UTC day: taking one replaces any snapshot of the same day, so a
re-run nightly job (after a retry or a killed worker) never adds a second row.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from patronage.analytics import engine, features, refresh, rfm, scores
from patronage.analytics import repository as repo
from patronage.analytics.clv import HoldoutReport
from patronage.analytics.models import StatsSnapshot
from patronage.analytics.schemas import (
    BasketsRead,
    ClvBinRead,
    ClvOverviewRead,
    CohortRowRead,
    CohortsRead,
    ConcentrationRead,
    CustomerAnalyticsRead,
    FunnelRead,
    FunnelStepRead,
    IntervalsRead,
    KpiRead,
    MonthOrdersRead,
    MonthRevenueRead,
    PatternsRead,
    PriceBandRead,
    RefreshRead,
    RfmCellRead,
    RfmOverviewRead,
    RfmRead,
    ScoresRead,
    SegmentCountRead,
    TopCustomerRead,
)
from patronage.customers import service as customers_service
from patronage.errors import ValidationFailed
from patronage.kit.clock import utcnow
from patronage.orders import service as orders_service

MONTHS = 24
NIGHTLY_HOUR = 2  # UTC hour of the nightly snapshot


def month_keys(now: datetime, count: int = MONTHS) -> list[str]:
    """The `count` calendar months (UTC) ending with the one containing `now`, oldest first."""
    now = now.astimezone(UTC)
    index = now.year * 12 + now.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def _month_start(key: str) -> datetime:
    year, month = key.split("-")
    return datetime(int(year), int(month), 1, tzinfo=UTC)


def _div_half_even(numerator: int, denominator: int) -> int:
    """Integer division rounded half to even, exact for any size (no floats)."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def compute_kpis(session: Session, now: datetime | None = None) -> KpiRead:
    """The KPIs as of now, from SQL aggregates (one customer count, two order queries)."""
    now = (now or utcnow()).astimezone(UTC)
    started = time.perf_counter()
    keys = month_keys(now)
    customers = customers_service.count_customers(session)
    stats = orders_service.revenue_kpis(session, _month_start(keys[0]))
    found = {m.month: m for m in stats.months}
    months = [
        MonthRevenueRead(
            month=key,
            orders=found[key].orders if key in found else 0,
            revenue_minor=found[key].revenue_minor if key in found else 0,
        )
        for key in keys
    ]
    return KpiRead(
        computed_at=now,
        duration_ms=round((time.perf_counter() - started) * 1000),
        customers=customers,
        buyers=stats.buyers,
        orders=stats.orders,
        revenue_minor=stats.revenue_minor,
        average_order_minor=_div_half_even(stats.revenue_minor, stats.orders)
        if stats.orders
        else 0,
        repeat_purchase_rate=stats.repeat_buyers / stats.buyers if stats.buyers else 0.0,
        revenue_by_month=months,
    )


def _day_of(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def take_snapshot(session: Session, now: datetime | None = None) -> KpiRead:
    """Compute the KPIs and store them as the day's snapshot, replacing an earlier one."""
    kpis = compute_kpis(session, now)
    start, end = _day_of(kpis.computed_at)
    # computed before taking the lock: writers wait only for the delete and the insert
    repo.lock_snapshots(session)
    repo.delete_between(session, start, end)
    repo.add(
        session,
        StatsSnapshot(
            computed_at=kpis.computed_at,
            customers=kpis.customers,
            buyers=kpis.buyers,
            orders=kpis.orders,
            revenue_minor=kpis.revenue_minor,
            average_order_minor=kpis.average_order_minor,
            repeat_purchase_rate=kpis.repeat_purchase_rate,
            duration_ms=kpis.duration_ms,
            revenue_by_month=[m.model_dump() for m in kpis.revenue_by_month],
        ),
    )
    return kpis


def latest_snapshot(session: Session) -> KpiRead | None:
    row = repo.latest_snapshot(session)
    return KpiRead.model_validate(row, from_attributes=True) if row is not None else None


def current_kpis(session: Session) -> KpiRead:
    """The latest snapshot; the first time ever, one taken now."""
    return latest_snapshot(session) or take_snapshot(session)


def snapshots_on(session: Session, day: datetime) -> int:
    """How many snapshots the UTC day of `day` has (0 or 1)."""
    return repo.count_between(session, *_day_of(day))


def last_nightly_run(now: datetime | None = None) -> datetime:
    """When the nightly snapshot was last due (02:00 UTC today, or yesterday before that)."""
    now = (now or utcnow()).astimezone(UTC)
    due = now.replace(hour=NIGHTLY_HOUR, minute=0, second=0, microsecond=0)
    return due if now >= due else due - timedelta(days=1)


def nightly_missed(session: Session, now: datetime | None = None) -> bool:
    """True when no snapshot was taken since the nightly run was last due."""
    latest = repo.latest_snapshot(session)
    return latest is None or latest.computed_at < last_nightly_run(now)


# --- customer analytics: features, RFM, CLV / churn scores (docs/analytics.md) ---

CLV_BINS = 10


def refresh_customer_analytics(
    session: Session,
    now: datetime | None = None,
    *,
    discount_rate: float = 0.01,
    margin: float = 1.0,
    progress: refresh.Progress | None = None,
) -> RefreshRead:
    """Rebuild features, RFM and CLV / churn scores for every customer (one transaction)."""
    if not (0 <= discount_rate < 1):
        raise ValidationFailed("discount rate must be in [0, 1) (monthly)")
    if not (0 < margin <= 1):
        raise ValidationFailed("margin must be in (0, 1] (share of spend that is profit)")
    row = refresh.run(session, now, discount_rate=discount_rate, margin=margin, progress=progress)
    return _refresh_read(row)


def _refresh_read(row: Any) -> RefreshRead:
    details = {k: v for k, v in row.details.items() if k != "patterns"}
    read = RefreshRead.model_validate(row, from_attributes=True)
    return read.model_copy(update={"details": details})


def request_refresh() -> None:
    """Queue an analytics refresh for a worker."""
    from patronage.analytics import tasks  # the job module imports this one

    tasks.refresh_now()


def latest_refresh(session: Session) -> RefreshRead | None:
    row = repo.latest_refresh(session)
    return _refresh_read(row) if row is not None else None


def _patterns(session: Session) -> tuple[datetime | None, dict[str, Any]]:
    latest = repo.latest_refresh(session)
    if latest is None:
        return None, {}
    return latest.computed_at, dict(latest.details.get("patterns") or {})


_NO_PATTERNS = "no analytics refresh has computed purchase patterns yet"


def purchase_patterns(session: Session) -> PatternsRead:
    """Repeat intervals, basket sizes, price bands, timing, monthly AOV, revenue concentration."""
    at, found = _patterns(session)
    monthly = [
        MonthOrdersRead(
            **m,
            average_order_minor=_div_half_even(m["revenue_minor"], m["orders"])
            if m["orders"]
            else None,
        )
        for m in found.get("monthly", [])
    ]
    return PatternsRead(
        computed_at=at,
        message=None if found else _NO_PATTERNS,
        intervals=IntervalsRead(**found["intervals"]) if found else None,
        baskets=BasketsRead(**found["baskets"]) if found else None,
        price_bands=[PriceBandRead(**b) for b in found.get("price_bands", [])],
        timing=found.get("timing", []),
        monthly=monthly,
        concentration=[ConcentrationRead(**c) for c in found.get("concentration", [])],
    )


def cohorts(session: Session) -> CohortsRead:
    """Monthly acquisition cohorts and their retention, from the latest refresh."""
    at, found = _patterns(session)
    data = found.get("cohorts", {"months": 0, "rows": []})
    return CohortsRead(
        computed_at=at,
        months=data["months"],
        rows=[CohortRowRead(**r) for r in data["rows"]],
    )


def funnel(session: Session) -> FunnelRead:
    """View -> cart -> checkout -> order, with the abandonment at each step."""
    at, found = _patterns(session)
    data = found.get("funnel", {"days": 0, "steps": []})
    return FunnelRead(
        computed_at=at, days=data["days"], steps=[FunnelStepRead(**s) for s in data["steps"]]
    )


_FEATURE_SKIP = {"customer_id", "computed_at"}


def customer_analytics(session: Session, customer_id: int) -> CustomerAnalyticsRead:
    """A customer's features, RFM and scores from the latest refresh."""
    customers_service.get_customer(session, customer_id)  # NotFound for an unknown id
    feats, rfm_row, score = repo.customer_rows(session, customer_id)
    if feats is None:
        latest = repo.latest_refresh(session)
        message = (
            "no analytics refresh has run yet"
            if latest is None
            else "not in the latest refresh (the customer is newer, or merged into another)"
        )
        return CustomerAnalyticsRead(
            customer_id=customer_id,
            computed_at=None,
            message=message,
            features=None,
            rfm=None,
            scores=None,
        )
    return CustomerAnalyticsRead(
        customer_id=customer_id,
        computed_at=feats.computed_at,
        message=None,
        features={
            c.key: getattr(feats, c.key)
            for c in feats.__table__.columns
            if c.key not in _FEATURE_SKIP
        },
        rfm=RfmRead.model_validate(rfm_row, from_attributes=True) if rfm_row else None,
        scores=ScoresRead.model_validate(score, from_attributes=True) if score else None,
    )


def rfm_overview(session: Session) -> RfmOverviewRead:
    latest = repo.latest_refresh(session)
    counts = repo.segment_counts(session)
    return RfmOverviewRead(
        computed_at=latest.computed_at if latest else None,
        cells=[RfmCellRead(r=r, f=f, customers=n) for r, f, n in sorted(repo.rfm_grid(session))],
        segments=[
            SegmentCountRead(segment=name, rule=rule, customers=counts.get(name, 0))
            for name, rule, _ in rfm.SEGMENTS
        ],
        segment_moves=latest.segment_moves if latest else 0,
        moves=list(latest.details.get("moves", [])) if latest else [],
    )


def _bins(values: list[float], count: int) -> list[ClvBinRead]:
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi <= lo:
        return [ClvBinRead(lower_minor=lo, upper_minor=hi, customers=len(values))]
    width = (hi - lo) / count
    counts = [0] * count
    for v in values:
        counts[min(count - 1, int((v - lo) / width))] += 1
    return [
        ClvBinRead(lower_minor=lo + i * width, upper_minor=lo + (i + 1) * width, customers=n)
        for i, n in enumerate(counts)
    ]


def _top(rows: list[Any]) -> list[TopCustomerRead]:
    return [TopCustomerRead.model_validate(r, from_attributes=True) for r in rows]


def clv_overview(session: Session, top: int = 20) -> ClvOverviewRead:
    latest = repo.latest_refresh(session)
    values = repo.clv_values(session)
    return ClvOverviewRead(
        computed_at=latest.computed_at if latest else None,
        scored=len(values),
        total_clv_minor=float(sum(values)),
        bins=_bins(values, CLV_BINS),
        top=_top(repo.top_clv(session, top)),
        at_risk=_top(repo.top_churn_risk(session, top)),
        model=dict(latest.details.get("model", {})) if latest else {},
    )


def validate_holdout(
    session: Session, holdout_days: int = 180, now: datetime | None = None
) -> HoldoutReport:
    """Calibration / holdout check of the purchase model on the shop's own orders."""
    if holdout_days < 7:
        raise ValidationFailed("the holdout must be at least 7 days")
    now = (now or utcnow()).astimezone(UTC)
    with engine.open_store(session) as store:
        tx = store.arrow(features.transactions(store.tables, features.to_us(now)))
    return scores.holdout(tx, now, holdout_days)


ANALYTICS_HOUR = 3  # UTC hour of the nightly analytics refresh


def analytics_refresh_missed(session: Session, now: datetime | None = None) -> bool:
    """True when no analytics refresh ran since 03:00 UTC was last due."""
    now = (now or utcnow()).astimezone(UTC)
    due = now.replace(hour=ANALYTICS_HOUR, minute=0, second=0, microsecond=0)
    due = due if now >= due else due - timedelta(days=1)
    latest = repo.latest_refresh(session)
    return latest is None or latest.computed_at < due
