"""Web pages: the dashboard at `/` and its "Refresh now" fragment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from patronage.analytics import service
from patronage.analytics.schemas import KpiRead
from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.db import SessionDep
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
