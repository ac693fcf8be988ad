"""Web pages: the segment list, the builder (live count through HTMX), a segment's page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.customers.consent import Purpose
from patronage.db import SessionDep
from patronage.errors import AppError, ValidationFailed
from patronage.kit.ids import RowId
from patronage.kit.pagination import PageRequest
from patronage.segments import builder, service
from patronage.segments import rules as r
from patronage.segments.schemas import FAMILIES, SegmentCreate, SegmentUpdate
from patronage.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def _builder_context(session: Session | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "personas": service.persona_choices(session) if session is not None else [],
        "kinds": builder.KINDS,
        "ops": builder.OPS,
        "families": FAMILIES,
        "hints": builder.SUBJECT_HINTS,
        "purposes": [p.value for p in Purpose],
        **extra,
    }


def _problems(exc: AppError) -> list[str]:
    detail = exc.detail
    if isinstance(detail, list):
        return [f"{d.get('path', '$')}: {d.get('problem', d.get('msg', ''))}" for d in detail]
    return [str(detail)]


@router.get("/segments")
def page(
    request: Request,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    segments = service.overview(session)
    context = {
        "segments": segments,
        "trends": service.trends(session),
        "families": FAMILIES,
        "can_write": principal.can(Permission.SEGMENTS_WRITE),
    }
    return render(request, "segments/list.html", context)


@router.get("/segments/new")
def new(
    request: Request,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> HTMLResponse:
    context = _builder_context(session, rows=[builder.Row()], form={}, problems=[])
    return render(request, "segments/new.html", context)


@router.get("/segments/builder/row")
def builder_row(
    request: Request,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
) -> HTMLResponse:
    """HTMX: one more condition row (the page's datalist holds the subjects)."""
    return render(request, "segments/_row.html", _builder_context(row=builder.Row()))


def _persona_ids(session: Session) -> dict[str, int]:
    return {name: pid for pid, name in service.persona_choices(session)}


@router.post("/segments/preview")
async def preview(
    request: Request,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    """HTMX: count and sample of the rule being edited (rows or the JSON box)."""
    form = await request.form()
    raw = builder.rule_from_form(
        builder.rows_from_form(form),
        str(form.get("combine", "and")),
        str(form.get("rule_json", "")),
        _persona_ids(session),
    )
    try:
        result = service.preview(session, raw)
        return render(request, "segments/_preview.html", {"p": result, "problems": []})
    except ValidationFailed as exc:
        return render(request, "segments/_preview.html", {"p": None, "problems": _problems(exc)})


@router.post("/segments/new")
async def create(
    request: Request,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> Response:
    form = await request.form()
    rows = builder.rows_from_form(form)
    raw = builder.rule_from_form(
        rows, str(form.get("combine", "and")), str(form.get("rule_json", "")), _persona_ids(session)
    )
    try:
        rule = r.dump_rule(r.parse_rule(raw))
        family = str(form.get("family") or "") or None
        data = SegmentCreate(
            name=str(form.get("name", "")),
            description=str(form.get("description", "")),
            family=family,
            rule=rule,
        )
        created = service.create_segment(session, data, principal.username)
    except (AppError, ValueError) as exc:
        problems = _problems(exc) if isinstance(exc, AppError) else [_pydantic(exc)]
        context = _builder_context(
            session, rows=rows or [builder.Row()], form=form, problems=problems
        )
        return render(request, "segments/new.html", context, 422)
    return RedirectResponse(f"/segments/{created.id}", status_code=303)


def _pydantic(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors()
        )
    return "invalid input"


# -- personas and next category (before /segments/{segment_id}: paths match in order) -------


def _personas_page(
    request: Request, session: Session, principal: Principal, problems: list[str], status: int
) -> HTMLResponse:
    context = {
        "result": service.personas_overview(session),
        "can_write": principal.can(Permission.SEGMENTS_WRITE),
        "problems": problems,
    }
    return render(request, "segments/personas.html", context, status)


@router.get("/segments/personas")
def personas_page(
    request: Request,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    return _personas_page(request, session, principal, [], 200)


@router.post("/segments/personas/refresh")
def personas_refresh(
    request: Request,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> Response:
    try:
        service.refresh_personas(session)
    except ValidationFailed as exc:
        return _personas_page(request, session, principal, _problems(exc), 422)
    return RedirectResponse("/segments/personas", status_code=303)


@router.get("/segments/next-category")
def next_category_page(
    request: Request,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    context = {
        "run": service.latest_prediction(session),
        "evaluation": service.latest_evaluation(session),
        "can_write": principal.can(Permission.SEGMENTS_WRITE),
    }
    return render(request, "segments/next_category.html", context)


@router.post("/segments/next-category/refresh")
def next_category_refresh(
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> Response:
    service.refresh_next_categories(session)
    return RedirectResponse("/segments/next-category", status_code=303)


@router.post("/segments/next-category/evaluate")
def next_category_evaluate(
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> Response:
    service.evaluate_next_category(session)
    return RedirectResponse("/segments/next-category", status_code=303)


@router.get("/segments/customers/{customer_id}/insights")
def customer_insights(
    request: Request,
    customer_id: RowId,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    """HTMX fragment of the customer page: persona and likely next categories."""
    context = {
        "persona": service.persona_of(session, customer_id),
        "next": service.next_categories_of(session, customer_id),
    }
    return render(request, "segments/_customer.html", context)


@router.get("/segments/{segment_id}")
def detail(
    request: Request,
    segment_id: RowId,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HTMLResponse:
    segment = service.get_segment(session, segment_id)
    history = service.history(session, segment_id, 90)
    context = {
        "s": segment,
        "members": service.members(session, principal, segment_id, PageRequest(page, PAGE_SIZE)),
        "history": history,
        "history_data": [d.model_dump() for d in history.days],
        "can_write": principal.can(Permission.SEGMENTS_WRITE),
        "rule_json": builder.pretty(segment.rule),
    }
    return render(request, "segments/detail.html", context)


@router.get("/segments/{segment_id}/edit")
def edit(
    request: Request,
    segment_id: RowId,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> HTMLResponse:
    segment = service.get_segment(session, segment_id)
    context = _builder_context(
        session, s=segment, rule_json=builder.pretty(segment.rule), problems=[], form={}
    )
    return render(request, "segments/edit.html", context)


@router.post("/segments/{segment_id}/edit")
async def save(
    request: Request,
    segment_id: RowId,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> Response:
    form = await request.form()
    segment = service.get_segment(session, segment_id)
    text = str(form.get("rule_json", ""))
    try:
        data = SegmentUpdate(
            name=str(form.get("name", "")),
            description=str(form.get("description", "")),
            family=str(form.get("family") or "") or None,
            rule=r.dump_rule(r.parse_rule(text)),
        )
        service.update_segment(session, segment_id, data, principal.username)
    except (AppError, ValueError) as exc:
        problems = _problems(exc) if isinstance(exc, AppError) else [_pydantic(exc)]
        context = _builder_context(session, s=segment, rule_json=text, problems=problems, form=form)
        return render(request, "segments/edit.html", context, 422)
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.post("/segments/{segment_id}/delete")
def delete(
    segment_id: RowId,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> Response:
    service.delete_segment(session, segment_id)
    return RedirectResponse("/segments", status_code=303)


@router.post("/segments/{segment_id}/evaluate")
def evaluate(
    segment_id: RowId,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> Response:
    service.evaluate(session, segment_id, dependents=True)
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)
