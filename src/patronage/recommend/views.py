"""Web pages: the Recommendations page, its product lookup, the customer-page card."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.db import SessionDep
from patronage.errors import NotFound
from patronage.recommend import service
from patronage.recommend.schemas import MAX_ID
from patronage.web.templating import render

router = APIRouter(include_in_schema=False)

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/recommend")
def page(
    request: Request,
    product_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    queued: bool = False,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    context = {
        "builds": service.builds(session),
        "ctr": service.click_through(session, days=30),
        "can_build": principal.can(Permission.JOBS_RUN),
        "queued": queued,
        "product_id": product_id,
        **_lookup(session, product_id),
    }
    return render(request, "recommend/page.html", context)


def _lookup(session: Session, product_id: int | None) -> dict[str, object]:
    if product_id is None:
        return {"lists": None, "missing": None}
    try:
        return {"lists": service.show(session, product_id), "missing": None}
    except NotFound as exc:
        return {"lists": None, "missing": exc.detail}


@router.get("/recommend/lookup")
def lookup(
    request: Request,
    product_id: Annotated[int, Query(ge=1, le=MAX_ID)],
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    """HTMX: the three lists of one product."""
    context = {"product_id": product_id, **_lookup(session, product_id)}
    return render(request, "recommend/_lookup.html", context)


@router.post("/recommend/build")
def build_now(principal: Principal = require(Permission.JOBS_RUN)) -> Response:
    service.request_build()
    return RedirectResponse("/recommend?queued=true", status_code=303)


@router.get("/recommend/products/{product_id}")
def product_page(
    request: Request,
    product_id: Id,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    """The product page: also bought, upsell and bought together for one product."""
    try:
        product = service.product(session, product_id)
    except NotFound as exc:
        context = {"product": None, "lists": None, "missing": exc.detail}
        return render(request, "recommend/product.html", context, status_code=404)
    context = {"product": product, "lists": service.show(session, product_id), "missing": None}
    return render(request, "recommend/product.html", context)


@router.get("/recommend/customers/{customer_id}")
def customer_card(
    request: Request,
    customer_id: Id,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    """HTMX: the recommendations card of the customer page: for you and cross-sell, or one
    non-personalised list (trending, with the reason) for a customer without consent."""
    context = {"lists": service.customer_lists(session, customer_id, limit=5)}
    return render(request, "recommend/_customer.html", context)
