"""Web pages of collect: data sources and their write keys; consent changes by staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from patronage.auth import service as auth_service
from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.collect import service
from patronage.customers import service as customers_service
from patronage.customers.consent import Purpose
from patronage.db import SessionDep
from patronage.web.templating import render

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    session: Session,
    created: str | None = None,
    name: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "collect/sources.html",
        {
            "sources": auth_service.list_sources(session),
            "ingestion": service.ingestion_status(session),
            "created": created,
            "created_name": name,
        },
        status,
    )


@router.get("/collect")
def sources_page(
    request: Request,
    principal: Principal = require(Permission.SOURCES_MANAGE),
    session: Session = SessionDep,
) -> HTMLResponse:
    return _page(request, session)


@router.post("/collect/sources")
def create_source(
    request: Request,
    name: Annotated[str, Form(min_length=1, max_length=128)],
    principal: Principal = require(Permission.SOURCES_MANAGE),
    session: Session = SessionDep,
) -> HTMLResponse:
    source, key = auth_service.create_source(session, name)
    auth_service.audit(session, principal, "source.create", "source", str(source.id))
    return _page(request, session, key, source.name, 201)


@router.post("/collect/sources/{source_id}/revoke")
def revoke_source(
    source_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    principal: Principal = require(Permission.SOURCES_MANAGE),
    session: Session = SessionDep,
) -> Response:
    auth_service.revoke_source(session, source_id)
    service.forget_write_keys()
    auth_service.audit(session, principal, "source.revoke", "source", str(source_id))
    return RedirectResponse("/collect", status_code=303)


@router.post("/customers/{customer_id}/consent")
def change_consent(
    customer_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    purpose: Annotated[Purpose, Form()],
    granted: Annotated[bool, Form()],
    principal: Principal = require(Permission.CUSTOMERS_WRITE),
    session: Session = SessionDep,
) -> Response:
    customers_service.record_consent(
        session, customer_id, purpose, granted, f"staff:{principal.username}"[:64]
    )
    auth_service.audit(
        session,
        principal,
        "consent.change",
        "customer",
        str(customer_id),
        {"purpose": purpose.value, "granted": granted},
    )
    return RedirectResponse(f"/customers/{customer_id}", status_code=303)
