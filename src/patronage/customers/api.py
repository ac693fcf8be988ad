"""REST: find customers, read one customer's 360 profile, create customers, consents."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from patronage.auth import service as auth_service
from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.customers import service
from patronage.customers.consent import Purpose
from patronage.customers.schemas import (
    ConsentState,
    CustomerCreate,
    CustomerPage,
    CustomerProfile,
    CustomerRead,
    CustomerSearch,
    CustomerSort,
)
from patronage.db import SessionDep
from patronage.kit.pagination import MAX_PAGE_SIZE, PageRequest

router = APIRouter(prefix="/api/customers", tags=["customers"])


@router.get("", response_model=CustomerPage)
def list_customers(
    q: Annotated[
        str | None,
        Query(max_length=255, description="#id or user id (emails and phones: POST …/search)"),
    ] = None,
    user_id: Annotated[str | None, Query(max_length=255)] = None,
    id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    signup_from: date | None = None,
    signup_to: Annotated[date | None, Query(description="inclusive")] = None,
    sort: CustomerSort = "id",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> CustomerPage:
    """Find customers by non-personal terms; filters combine, results are paginated."""
    query = service.CustomerQuery(
        q=q,
        user_id=user_id,
        customer_id=id,
        country=country,
        signup_from=signup_from,
        signup_to=signup_to,
        sort=sort,
    )
    service.refuse_personal_data_in_url(query)
    return service.browse(session, principal, query, PageRequest(page, size))


@router.post("/search", response_model=CustomerPage)
def search_customers(
    body: CustomerSearch,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> CustomerPage:
    """Find customers, also by email or phone (exact, through the blind index)."""
    query = service.CustomerQuery(
        q=body.q,
        email=body.email,
        phone=body.phone,
        user_id=body.user_id,
        customer_id=body.id,
        country=body.country,
        signup_from=body.signup_from,
        signup_to=body.signup_to,
        sort=body.sort,
    )
    return service.browse(session, principal, query, PageRequest(body.page, body.size))


@router.post("", response_model=CustomerRead, status_code=201)
def create_customer(
    body: CustomerCreate,
    principal: Principal = require(Permission.CUSTOMERS_WRITE),
    session: Session = SessionDep,
) -> CustomerRead:
    customer = service.create_customer(session, body)
    auth_service.audit(session, principal, "customer.create", "customer", str(customer.id))
    return service.to_read(customer, with_pii=principal.can(Permission.CUSTOMERS_PII))


@router.get("/{customer_id}", response_model=CustomerProfile)
def get_profile(
    customer_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> CustomerProfile:
    return service.profile_for(session, principal, customer_id)


class ConsentChange(BaseModel):
    purpose: Purpose
    granted: bool


@router.get("/{customer_id}/consents", response_model=list[ConsentState])
def get_consents(
    customer_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> list[ConsentState]:
    service.get_customer(session, customer_id)
    return service.consent_states(session, customer_id)


@router.post("/{customer_id}/consents", response_model=list[ConsentState], status_code=201)
def change_consent(
    customer_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: ConsentChange,
    principal: Principal = require(Permission.CUSTOMERS_WRITE),
    session: Session = SessionDep,
) -> list[ConsentState]:
    service.record_consent(
        session, customer_id, body.purpose, body.granted, f"staff:{principal.username}"
    )
    auth_service.audit(
        session,
        principal,
        "consent.change",
        "customer",
        str(customer_id),
        {"purpose": body.purpose.value, "granted": body.granted},
    )
    return service.consent_states(session, customer_id)
