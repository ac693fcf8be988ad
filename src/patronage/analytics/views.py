"""Web pages: the dashboard at `/`, the Analytics section, the customer page's Scores card."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from patronage.analytics import service
from patronage.analytics.schemas import KpiRead
from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.db import SessionDep
from patronage.kit.ids import RowId
from patronage.web.templating import render

router = APIRouter(include_in_schema=False)


def _context(kpis: KpiRead, principal: Principal) -> dict[str, Any]:
    return {
        "k": kpis,
        "months": [m.model_dump() for m in kpis.revenue_by_month],
        "can_refresh": principal.can(Permission.JOBS_RUN),
    }


@router.get("/")
def dashboard(
    request: Request,
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    kpis = service.current_kpis(session)
    return render(request, "analytics/dashboard.html", _context(kpis, principal))


@router.post("/dashboard/refresh")
def refresh(
    request: Request,
    principal: Principal = require(Permission.JOBS_RUN),
    session: Session = SessionDep,
) -> HTMLResponse:
    """HTMX: take a snapshot now and return the KPI section to swap in."""
    kpis = service.take_snapshot(session)
    return render(request, "analytics/_kpis.html", _context(kpis, principal))


# --- the Analytics section (docs/analytics.md) ---

SEGMENT_COLOURS = (
    "#1b7f3b", "#2f9e44", "#5c940d", "#3056d3", "#4c6ef5", "#e8590c",
    "#f08c00", "#c92a2a", "#a61e4d", "#868e96", "#495057",
)  # fmt: skip


def _chart(kind: str, labels: list[str], datasets: list[dict[str, Any]], **options: Any) -> Any:
    """A Chart.js configuration, handed to static/js/analytics.js as JSON (no inline JS)."""
    return {"type": kind, "data": {"labels": labels, "datasets": datasets}, "options": options}


def _section(request: Request, principal: Principal, template: str, **context: Any) -> HTMLResponse:
    latest = context.pop("latest", None)
    return render(
        request,
        f"analytics/{template}.html",
        {"latest": latest, "can_refresh": principal.can(Permission.JOBS_RUN), **context},
    )


@router.get("/analytics")
def overview(
    request: Request,
    queued: bool = False,
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    latest = service.latest_refresh(session)
    return _section(request, principal, "overview", latest=latest, queued=queued)


@router.post("/analytics/refresh")
def refresh_analytics(principal: Principal = require(Permission.JOBS_RUN)) -> Response:
    """Queue a refresh for a worker (a big shop takes minutes) and come back to the page."""
    service.request_refresh()
    return RedirectResponse("/analytics?queued=true", status_code=303)


@router.get("/analytics/rfm")
def rfm_page(
    request: Request,
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    overview = service.rfm_overview(session)
    grid = {(c.r, c.f): c.customers for c in overview.cells}
    peak = max(grid.values(), default=0)
    chart = _chart(
        "bar",
        [s.segment for s in overview.segments],
        [
            {
                "label": "Customers",
                "data": [s.customers for s in overview.segments],
                "backgroundColor": list(SEGMENT_COLOURS),
            }
        ],
        indexAxis="y",
        plugins={"legend": {"display": False}},
    )
    return _section(
        request,
        principal,
        "rfm",
        o=overview,
        grid=grid,
        peak=peak,
        chart=chart,
        buyers=sum(s.customers for s in overview.segments),
    )


@router.get("/analytics/clv")
def clv_page(
    request: Request,
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    overview = service.clv_overview(session)
    chart = _chart(
        "bar",
        [f"{b.lower_minor / 100:,.0f}–{b.upper_minor / 100:,.0f}" for b in overview.bins],
        [{"label": "Customers", "data": [b.customers for b in overview.bins]}],
        plugins={"legend": {"display": False}},
    )
    return _section(request, principal, "clv", o=overview, chart=chart)


@router.get("/analytics/cohorts")
def cohorts_page(
    request: Request,
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    data = service.cohorts(session)
    return _section(request, principal, "cohorts", c=data)


@router.get("/analytics/funnel")
def funnel_page(
    request: Request,
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    data = service.funnel(session)
    chart = _chart(
        "bar",
        [s.label for s in data.steps],
        [{"label": "Visitors", "data": [s.visitors for s in data.steps]}],
        plugins={"legend": {"display": False}},
    )
    return _section(request, principal, "funnel", f=data, chart=chart)


@router.get("/analytics/patterns")
def patterns_page(
    request: Request,
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    data = service.purchase_patterns(session)
    peak = max((n for row in data.timing for n in row), default=0)
    intervals = _chart(
        "bar",
        [b.label for b in data.intervals.buckets] if data.intervals else [],
        [{"label": "Gaps", "data": [b.count for b in data.intervals.buckets]}]
        if data.intervals
        else [],
        plugins={"legend": {"display": False}},
    )
    return _section(request, principal, "patterns", p=data, peak=peak, intervals_chart=intervals)


@router.get("/analytics/customers/{customer_id}/scores")
def customer_scores_card(
    request: Request,
    customer_id: RowId,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    """HTMX: the "Scores" card of the customer page (RFM, CLV, churn risk and why)."""
    data = service.customer_analytics(session, customer_id)
    return render(request, "analytics/_customer_scores.html", {"a": data})
