"""REST: segments, their preview, evaluation, members, history and CSV export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.db import SessionDep
from patronage.kit.ids import RowId
from patronage.kit.pagination import MAX_PAGE_SIZE, PageRequest
from patronage.segments import service
from patronage.segments.schemas import (
    CustomerNextCategoriesRead,
    CustomerPersonaRead,
    EvaluationRead,
    HistoryRead,
    MemberPage,
    MembershipRead,
    NextCategoryEvaluationRead,
    NextCategoryRunRead,
    PersonasRead,
    PreviewRead,
    PreviewRequest,
    SegmentCreate,
    SegmentRead,
    SegmentUpdate,
)

router = APIRouter(prefix="/api/segments", tags=["segments"])


@router.get("", response_model=list[SegmentRead])
def list_segments(
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> list[SegmentRead]:
    """Every segment with its size (the built-in families are created on the first call)."""
    return service.overview(session)


@router.post("", response_model=SegmentRead, status_code=201)
def create(
    body: SegmentCreate,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> SegmentRead:
    """Create a segment and evaluate it; invalid rules answer 422 with every problem's path."""
    return service.create_segment(session, body, principal.username)


@router.post("/preview", response_model=PreviewRead)
def preview(
    body: PreviewRequest,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> PreviewRead:
    """Count and a sample of the members of an unsaved rule (nothing is written)."""
    return service.preview(session, body.rule)


@router.post("/evaluate", response_model=list[EvaluationRead])
def evaluate_all(
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> list[EvaluationRead]:
    """Rebuild every segment now (entries and exits only are written)."""
    return service.evaluate(session)


@router.get("/customers/{customer_id}", response_model=list[MembershipRead])
def memberships(
    customer_id: RowId,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> list[MembershipRead]:
    """The segments a customer is in now."""
    return service.memberships_of(session, customer_id)


# -- personas and next category (declared before /{segment_id}: paths are matched in order) --


@router.get("/personas", response_model=PersonasRead)
def personas(
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> PersonasRead:
    """The personas of the latest clustering: words, size, value, distinguishing features."""
    return service.personas_overview(session)


@router.post("/personas/refresh", response_model=PersonasRead)
def refresh_personas(
    k_min: Annotated[int, Query(ge=2, le=50)] = 3,
    k_max: Annotated[int, Query(ge=2, le=50)] = 8,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> PersonasRead:
    """Re-cluster now (k chosen by silhouette in [k_min, k_max]); ids and names of personas
    matched to the previous run are kept."""
    return service.refresh_personas(session, k_min=k_min, k_max=k_max)


@router.get("/customers/{customer_id}/persona", response_model=CustomerPersonaRead)
def customer_persona(
    customer_id: RowId,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> CustomerPersonaRead:
    """The customer's persona in the latest clustering."""
    return service.persona_of(session, customer_id)


@router.get("/customers/{customer_id}/next-categories", response_model=CustomerNextCategoriesRead)
def customer_next_categories(
    customer_id: RowId,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> CustomerNextCategoriesRead:
    """The categories the customer is most likely to branch into next, best first."""
    return service.next_categories_of(session, customer_id)


@router.post("/next-category/refresh", response_model=NextCategoryRunRead)
def refresh_next_categories(
    k: Annotated[int, Query(ge=1, le=20)] = 3,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> NextCategoryRunRead:
    """Predict every buyer's next `k` categories now (replaces the previous predictions)."""
    return service.refresh_next_categories(session, k=k)


@router.post("/next-category/evaluate", response_model=NextCategoryEvaluationRead)
def evaluate_next_category(
    holdout_days: Annotated[int, Query(ge=1, le=3650)] = 90,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> NextCategoryEvaluationRead:
    """Holdout evaluation: hit rate @1/3/5 of the model and of the most-popular baseline on
    the last `holdout_days` days of orders, in the same run."""
    return service.evaluate_next_category(session, holdout_days)


@router.get("/next-category/evaluation", response_model=NextCategoryEvaluationRead | None)
def next_category_evaluation(
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> NextCategoryEvaluationRead | None:
    """The latest holdout evaluation (null before the first)."""
    return service.latest_evaluation(session)


@router.get("/{segment_id}", response_model=SegmentRead)
def get(
    segment_id: RowId,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> SegmentRead:
    return service.get_segment(session, segment_id)


@router.patch("/{segment_id}", response_model=SegmentRead)
def update(
    segment_id: RowId,
    body: SegmentUpdate,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> SegmentRead:
    """Change name, description, family or rule (a new rule is evaluated at once, with the
    segments that include this one)."""
    return service.update_segment(session, segment_id, body, principal.username)


@router.delete("/{segment_id}", status_code=204)
def delete(
    segment_id: RowId,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> Response:
    """Delete a segment and its history (409 while another segment includes it)."""
    service.delete_segment(session, segment_id)
    return Response(status_code=204)


@router.post("/{segment_id}/evaluate", response_model=list[EvaluationRead])
def evaluate(
    segment_id: RowId,
    principal: Principal = require(Permission.SEGMENTS_WRITE),
    session: Session = SessionDep,
) -> list[EvaluationRead]:
    """Rebuild one segment (and those including it)."""
    return service.evaluate(session, segment_id, dependents=True)


@router.get("/{segment_id}/members", response_model=MemberPage)
def members(
    segment_id: RowId,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> MemberPage:
    """Current members; names and email only for roles that may see personal data."""
    return service.members(session, principal, segment_id, PageRequest(page, size))


@router.get("/{segment_id}/history", response_model=HistoryRead)
def history(
    segment_id: RowId,
    days: Annotated[int, Query(ge=1, le=3660)] = 90,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> HistoryRead:
    """Entries and exits per UTC day."""
    return service.history(session, segment_id, days)


@router.get("/{segment_id}/export.csv", response_class=Response)
def export(
    segment_id: RowId,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> Response:
    """Current members as CSV, with only the columns the caller's role may see (audited)."""
    text, _ = service.export_for(session, principal, segment_id)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{segment_id}.csv"'},
    )
