"""Health check and the interactive API reference."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

from patronage.db import SessionDep
from patronage.errors import AppError
from patronage.web.templating import render

router = APIRouter()


class Health(BaseModel):
    status: str
    database: str


class Unavailable(AppError):
    status_code = 503
    code = "unavailable"


@router.get("/health", response_model=Health, tags=["health"])
def health(session: Session = SessionDep) -> Health:
    """Liveness and database reachability; the only API route without authentication."""
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("database unreachable") from exc
    return Health(status="ok", database="ok")


@router.get("/api/docs", include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI from vendored assets: works offline and under the app's CSP."""
    return render(request, "api_docs.html")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> RedirectResponse:
    """Browsers ask for /favicon.ico on their own; point them at the vendored icon."""
    return RedirectResponse("/static/favicon.svg", status_code=301)
