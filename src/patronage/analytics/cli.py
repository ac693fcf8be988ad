"""`patronage analytics …`: statistics from the command line."""

from __future__ import annotations

import typer
from rich.progress import Progress
from rich.table import Table

from patronage.analytics import refresh as refresh_steps
from patronage.analytics import service
from patronage.analytics.schemas import CustomerAnalyticsRead, KpiRead, RefreshRead
from patronage.console import console, friendly_errors
from patronage.db import transaction
from patronage.kit.money import from_minor

analytics = typer.Typer(
    help="Statistics and customer analytics: KPIs, features, RFM, CLV and churn risk.",
    no_args_is_help=True,
)


def kpi_table(kpis: KpiRead) -> Table:
    table = Table("KPI", "value", title=f"KPIs at {kpis.computed_at:%Y-%m-%d %H:%M} UTC")
    table.add_row("customers", f"{kpis.customers:,}")
    table.add_row("buyers", f"{kpis.buyers:,}")
    table.add_row("orders", f"{kpis.orders:,}")
    table.add_row("revenue", f"{from_minor(kpis.revenue_minor):,}")
    table.add_row("average order value", f"{from_minor(kpis.average_order_minor):,}")
    table.add_row("repeat-purchase rate", f"{kpis.repeat_purchase_rate:.1%}")
    table.add_row("computed in", f"{kpis.duration_ms:,} ms")
    return table


def month_table(kpis: KpiRead) -> Table:
    table = Table("month", "orders", "revenue", title="Revenue by month (UTC)")
    for m in kpis.revenue_by_month:
        if m.orders:
            table.add_row(m.month, f"{m.orders:,}", f"{from_minor(m.revenue_minor):,}")
    return table


@analytics.command("snapshot")
@friendly_errors
def snapshot(
    months: bool = typer.Option(False, "--months", help="also print revenue by month"),
) -> None:
    """Compute the KPIs now, store them as today's snapshot and print them."""
    with transaction() as session:
        kpis = service.take_snapshot(session)
    console.print(kpi_table(kpis))
    if months:
        console.print(month_table(kpis))


def refresh_table(result: RefreshRead) -> Table:
    table = Table(
        "", "value", title=f"Analytics refresh at {result.computed_at:%Y-%m-%d %H:%M} UTC"
    )
    table.add_row("customers", f"{result.customers:,}")
    table.add_row("buyers (RFM scored)", f"{result.buyers:,}")
    table.add_row("segment moves since the last refresh", f"{result.segment_moves:,}")
    model = result.details.get("model", {})
    for key in ("purchase_model", "spend_model"):
        info = model.get(key)
        if info:
            table.add_row(key.replace("_", " "), "fitted" if info["converged"] else info["message"])
    for code, n in result.details.get("not_scored", {}).items():
        table.add_row(f"not scored: {code}", f"{n:,}")
    if result.details.get("future_orders_ignored"):
        table.add_row(
            "orders in the future (ignored)", f"{result.details['future_orders_ignored']:,}"
        )
    table.add_row("computed in", f"{result.duration_ms:,} ms")
    return table


@analytics.command("refresh")
@friendly_errors
def refresh(
    discount_rate: float = typer.Option(0.01, help="monthly discount rate of the CLV"),
    margin: float = typer.Option(1.0, help="share of spend that is profit, in (0, 1]"),
) -> None:
    """Rebuild every customer's features, RFM and CLV / churn scores now."""
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("analytics refresh", total=len(refresh_steps.STEPS))
        done: list[str] = []

        def step(name: str) -> None:
            if done:
                bar.advance(task)
            done.append(name)
            bar.update(task, description=name)

        with transaction() as session:
            result = service.refresh_customer_analytics(
                session, discount_rate=discount_rate, margin=margin, progress=step
            )
        bar.update(task, completed=len(refresh_steps.STEPS))
    console.print(refresh_table(result))


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def customer_table(data: CustomerAnalyticsRead) -> Table:
    table = Table("", "value", title=f"Customer {data.customer_id}")
    if data.message:
        table.add_row("note", data.message)
        return table
    if data.rfm:
        rfm = data.rfm
        table.add_row("RFM", f"R{rfm.r} F{rfm.f} M{rfm.m} — {rfm.segment}")
    if data.scores:
        s = data.scores
        table.add_row("P(alive)", _fmt(s.p_alive, ".2f"))
        table.add_row("churn risk", _fmt(s.churn_risk, ".2f"))
        table.add_row("expected purchases 90 d", _fmt(s.expected_purchases_90d, ".2f"))
        table.add_row("expected purchases 365 d", _fmt(s.expected_purchases_365d, ".2f"))
        spend = None if s.expected_spend_minor is None else s.expected_spend_minor / 100
        clv = None if s.clv_minor is None else s.clv_minor / 100
        table.add_row("expected spend per purchase", _fmt(spend, ",.2f"))
        table.add_row("CLV 12 months", _fmt(clv, ",.2f"))
        table.add_row("why", s.reason)
    for key, value in (data.features or {}).items():
        table.add_row(key, "—" if value is None else str(value))
    return table


@analytics.command("show")
@friendly_errors
def show(
    customer: int | None = typer.Argument(None, help="a customer id; without it, the overview"),
) -> None:
    """Show the latest refresh (segments, CLV) or one customer's figures and reasons."""
    with transaction() as session:
        if customer is not None:
            console.print(customer_table(service.customer_analytics(session, customer)))
            return
        latest = service.latest_refresh(session)
        if latest is None:
            console.print("No analytics refresh yet: run `patronage analytics refresh`.")
            return
        overview = service.rfm_overview(session)
        clv = service.clv_overview(session, top=10)
    console.print(refresh_table(latest))
    segments = Table("segment", "rule", "customers", title="RFM segments (first match wins)")
    for seg in overview.segments:
        segments.add_row(seg.segment, seg.rule, f"{seg.customers:,}")
    console.print(segments)
    top = Table("customer", "CLV 12 months", "P(alive)", "why", title="Top customers by CLV")
    for row in clv.top:
        top.add_row(
            str(row.customer_id),
            _fmt(None if row.clv_minor is None else row.clv_minor / 100, ",.2f"),
            _fmt(row.p_alive, ".2f"),
            row.reason,
        )
    console.print(top)


@analytics.command("validate")
@friendly_errors
def validate(
    holdout_days: int = typer.Option(180, help="days at the end kept out of the fit"),
) -> None:
    """Fit the purchase model without the last days, and compare its forecast with them."""
    with transaction() as session:
        report = service.validate_holdout(session, holdout_days)
    title = (
        f"Calibration to {report.calibration_end}, holdout to {report.observation_end}"
        f" ({report.customers:,} customers)"
    )
    table = Table(
        "repeat purchases in calibration", "customers", "actual", "predicted", title=title
    )
    for b in report.buckets:
        table.add_row(b.label, f"{b.customers:,}", f"{b.actual:,}", _fmt(b.predicted, ",.1f"))
    table.add_row(
        "total",
        f"{report.customers:,}",
        f"{report.total_actual:,}",
        _fmt(report.total_predicted, ",.1f"),
    )
    console.print(table)
    if not report.converged:
        console.print(f"model not fitted: {report.message}")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


@analytics.command("patterns")
@friendly_errors
def patterns() -> None:
    """Show repeat-purchase intervals, basket sizes, price bands and revenue concentration."""
    with transaction() as session:
        p = service.purchase_patterns(session)
    if p.message:
        console.print(f"{p.message}: run `patronage analytics refresh`.")
        return
    assert p.intervals is not None and p.baskets is not None
    gaps = Table("days between orders", "gaps", title="Time between orders")
    for b in p.intervals.buckets:
        gaps.add_row(b.label, f"{b.count:,}")
    console.print(gaps)
    console.print(
        f"repeat-purchase rate {_pct(p.intervals.repeat_purchase_rate)} "
        f"({p.intervals.repeat_buyers:,} of {p.intervals.buyers:,} buyers); "
        f"mean gap {_fmt(p.intervals.mean_days, ',.1f')} days"
    )
    baskets = Table("items", "orders", title="Basket size")
    for b in p.baskets.buckets:
        baskets.add_row(b.label, f"{b.count:,}")
    console.print(baskets)
    bands = Table("unit price", "items", "buyers", title="Price bands")
    for band in p.price_bands:
        upper = "" if band.upper_minor is None else f"{from_minor(band.upper_minor):,}"
        label = f"{from_minor(band.lower_minor):,} – {upper}".strip(" –")
        bands.add_row(label if upper else f"≥ {label}", f"{band.items:,}", f"{band.buyers:,}")
    console.print(bands)
    top = Table("top customers", "customers", "revenue share", title="Revenue concentration")
    for c in p.concentration:
        top.add_row(f"{c.top_percent} %", f"{c.customers:,}", _pct(c.revenue_share))
    console.print(top)


@analytics.command("cohorts")
@friendly_errors
def cohorts() -> None:
    """Show monthly acquisition cohorts and the share still buying k months later."""
    with transaction() as session:
        data = service.cohorts(session)
    if not data.rows:
        console.print("No cohorts yet: run `patronage analytics refresh`.")
        return
    table = Table("cohort", "buyers", *(f"+{k}" for k in range(data.months)), title="Retention")
    for row in data.rows:
        table.add_row(row.cohort, f"{row.customers:,}", *(_pct(r) for r in row.retention))
    console.print(table)


@analytics.command("funnel")
@friendly_errors
def funnel() -> None:
    """Show the view -> cart -> checkout -> order funnel and the abandonment at each step."""
    with transaction() as session:
        data = service.funnel(session)
    if not data.steps:
        console.print("No funnel yet: run `patronage analytics refresh`.")
        return
    table = Table(
        "step", "visitors", "of the first", "abandon here", title=f"Funnel, last {data.days} days"
    )
    for s in data.steps:
        table.add_row(s.label, f"{s.visitors:,}", _pct(s.of_first), _pct(s.abandonment))
    console.print(table)
