"""Web pages: the customer list (search, filters, sorting, pages, export) and the customer 360.

Searches by email or phone are POSTed and answered directly, never redirected to a URL that
carries them: URLs end up in logs, proxies and browser history. Other filters redirect to a
plain GET URL that can be bookmarked and shared.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.customers import service
from patronage.db import SessionDep
from patronage.errors import ValidationFailed
from patronage.kit.pagination import MAX_PAGE_SIZE, PageRequest
from patronage.web.templating import render

router = APIRouter(include_in_schema=False)

Sort = Literal["id", "-id", "signup_at", "-signup_at", "country", "-country"]
Text = Annotated[str | None, Query(max_length=255)]
FormText = Annotated[str | None, Form(max_length=255)]
Day = Annotated[str | None, Query(max_length=10)]
FormDay = Annotated[str | None, Form(max_length=10)]


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _day(value: str | None) -> date | None:
    text = _blank(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationFailed("dates must look like 2024-01-31") from exc


def _query(
    q: str | None, country: str | None, signup_from: str | None, signup_to: str | None, sort: str
) -> service.CustomerQuery:
    # empty form fields arrive as "", which means "no filter"
    return service.CustomerQuery(
        q=_blank(q),
        country=_blank(country),
        signup_from=_day(signup_from),
        signup_to=_day(signup_to),
        sort=sort,
    )


def _list_page(
    request: Request,
    session: Session,
    principal: Principal,
    params: dict[str, str | int],
    query: service.CustomerQuery,
    page: int,
    size: int,
) -> HTMLResponse:
    result = service.browse(session, principal, query, PageRequest(page, size))
    return render(
        request,
        "customers/list.html",
        {
            "rows": result.items,
            "meta": result.meta,
            "params": params,
            "with_pii": principal.can(Permission.CUSTOMERS_PII),
            # personal search terms: navigate with POST forms so they never reach a URL
            "post_mode": query.uses_pii,
        },
    )


def _params(
    q: str | None,
    country: str | None,
    signup_from: str | None,
    signup_to: str | None,
    sort: str,
    size: int,
) -> dict[str, str | int]:
    return {
        "q": q or "",
        "country": country or "",
        "signup_from": signup_from or "",
        "signup_to": signup_to or "",
        "sort": sort,
        "size": size,
    }


@router.get("/customers")
def customer_list(
    request: Request,
    q: Text = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
    signup_from: Day = None,
    signup_to: Day = None,
    sort: Sort = "id",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    query = _query(q, country, signup_from, signup_to, sort)
    service.refuse_personal_data_in_url(query)
    params = _params(q, country, signup_from, signup_to, sort, size)
    return _list_page(request, session, principal, params, query, page, size)


@router.post("/customers")
def customer_search(
    request: Request,
    q: FormText = None,
    country: Annotated[str | None, Form(max_length=2)] = None,
    signup_from: FormDay = None,
    signup_to: FormDay = None,
    sort: Annotated[Sort, Form()] = "id",
    page: Annotated[int, Form(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Form(ge=1, le=MAX_PAGE_SIZE)] = 50,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> Response:
    query = _query(q, country, signup_from, signup_to, sort)
    params = _params(q, country, signup_from, signup_to, sort, size)
    if not query.uses_pii:
        filters = {k: v for k, v in {**params, "page": page}.items() if v not in ("", None)}
        return RedirectResponse("/customers?" + urlencode(filters), status_code=303)
    return _list_page(request, session, principal, params, query, page, size)


def _export(session: Session, principal: Principal, query: service.CustomerQuery) -> Response:
    text, _ = service.export_for(session, principal, query)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )


@router.get("/customers/export.csv")
def customer_export(
    q: Text = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
    signup_from: Day = None,
    signup_to: Day = None,
    sort: Sort = "id",
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> Response:
    query = _query(q, country, signup_from, signup_to, sort)
    service.refuse_personal_data_in_url(query)
    return _export(session, principal, query)


@router.post("/customers/export.csv")
def customer_export_post(
    q: FormText = None,
    country: Annotated[str | None, Form(max_length=2)] = None,
    signup_from: FormDay = None,
    signup_to: FormDay = None,
    sort: Annotated[Sort, Form()] = "id",
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> Response:
    return _export(session, principal, _query(q, country, signup_from, signup_to, sort))


@router.get("/customers/{customer_id}")
def customer_page(
    request: Request,
    customer_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    profile = service.profile_for(session, principal, customer_id)
    with_pii = principal.can(Permission.CUSTOMERS_PII)
    return render(request, "customers/profile.html", {"p": profile, "with_pii": with_pii})
