"""REST: the dashboard's KPIs, and customer analytics (features, RFM, CLV / churn scores)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from patronage.analytics import service
from patronage.analytics.schemas import (
    ClvOverviewRead,
    CohortsRead,
    CustomerAnalyticsRead,
    FunnelRead,
    KpiRead,
    PatternsRead,
    RefreshRead,
    RfmOverviewRead,
)
from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.db import SessionDep
from patronage.kit.ids import RowId

router = APIRouter(prefix="/api/analytics", tags=["analytics"])


@router.get("/kpis", response_model=KpiRead)
def get_kpis(
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> KpiRead:
    """The latest statistics snapshot (taken nightly); the first call ever takes one."""
    return service.current_kpis(session)


@router.post("/snapshots", response_model=KpiRead, status_code=201)
def create_snapshot(
    principal: Principal = require(Permission.JOBS_RUN),
    session: Session = SessionDep,
) -> KpiRead:
    """Compute the KPIs now and store them as today's snapshot (replacing today's earlier one)."""
    return service.take_snapshot(session)


@router.post("/refresh", response_model=RefreshRead, status_code=201)
def refresh(
    principal: Principal = require(Permission.JOBS_RUN),
    session: Session = SessionDep,
) -> RefreshRead:
    """Rebuild every customer's features, RFM and CLV / churn scores now (as the nightly job)."""
    return service.refresh_customer_analytics(session)


@router.get("/customers/{customer_id}/scores", response_model=CustomerAnalyticsRead)
def customer_scores(
    customer_id: RowId,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> CustomerAnalyticsRead:
    """The customer's features, RFM scores and segment, CLV and churn risk with reasons."""
    return service.customer_analytics(session, customer_id)


@router.get("/rfm", response_model=RfmOverviewRead)
def rfm(
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> RfmOverviewRead:
    """Customers per (R, F) cell and per named segment, and the moves since the last refresh."""
    return service.rfm_overview(session)


@router.get("/clv", response_model=ClvOverviewRead)
def clv(
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> ClvOverviewRead:
    """CLV distribution (10 equal-width bins), top customers by CLV and by churn risk."""
    return service.clv_overview(session)


@router.get("/patterns", response_model=PatternsRead)
def patterns(
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> PatternsRead:
    """Repeat-purchase intervals, basket sizes, price bands, order timing (weekday x hour),
    monthly orders and AOV, and revenue concentration, from the latest refresh."""
    return service.purchase_patterns(session)


@router.get("/cohorts", response_model=CohortsRead)
def cohorts(
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> CohortsRead:
    """Monthly acquisition cohorts (first counted order) and their retention matrix."""
    return service.cohorts(session)


@router.get("/funnel", response_model=FunnelRead)
def funnel(
    principal: Principal = require(Permission.DASHBOARD_READ),
    session: Session = SessionDep,
) -> FunnelRead:
    """Visitors at each step of view -> cart -> checkout -> order, with the abandonment."""
    return service.funnel(session)
