"""REST: recommendation lists for products, customers and baskets; builds; click-through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patronage.auth.guard import require
from patronage.auth.roles import Permission
from patronage.auth.service import Principal
from patronage.db import SessionDep, transaction
from patronage.recommend import service
from patronage.recommend.schemas import (
    MAX_ID,
    MAX_LIMIT,
    BasketRequest,
    BuildRead,
    CtrReport,
    RecommendationList,
)

router = APIRouter(prefix="/api/recommend", tags=["recommend"])


def _list_json(fn: Callable[..., RecommendationList], *args: Any, **kwargs: Any) -> str:
    """The request's transaction: the list, serialised by its own model (FastAPI would
    validate it again and encode it through jsonable_encoder: 0.3 ms of a 4 ms request)."""
    with transaction() as session:
        return fn(session, *args, **kwargs).model_dump_json()


async def _served(fn: Callable[..., RecommendationList], *args: Any, **kwargs: Any) -> Response:
    """A list route's whole database work in ONE thread-pool hop.

    The routes are `async def` and take no session dependency: FastAPI would run a sync
    route, its sync session dependency's enter and its exit in three hops of the thread pool
    (besides authentication), each a hand-over between threads under the GIL. Authentication
    stays a dependency (`require`), answered from memory for a recently seen API token.
    """
    body = await run_in_threadpool(_list_json, fn, *args, **kwargs)
    return Response(body, media_type="application/json")


ProductId = Annotated[int, Path(ge=1, le=MAX_ID, description="internal product id")]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID, description="internal customer id")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items in the list")]
CategoryId = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="only items of this category")
]


@router.get("/products/{product_id}/also-bought", response_model=RecommendationList)
async def also_bought(
    product_id: ProductId,
    limit: Limit = 10,
    category_id: CategoryId = None,
    principal: Principal = require(Permission.CUSTOMERS_READ),
) -> Response:
    """Customers who bought this product also bought (topped up with trending items)."""
    return await _served(service.also_bought, product_id, limit=limit, category=category_id)


@router.get("/products/{product_id}/upsell", response_model=RecommendationList)
async def upsell(
    product_id: ProductId,
    limit: Limit = 10,
    category_id: CategoryId = None,
    principal: Principal = require(Permission.CUSTOMERS_READ),
) -> Response:
    """Dearer items of the product's category (higher price band), most similar first."""
    return await _served(service.upsell_for, product_id, limit=limit, category=category_id)


@router.get("/customers/{customer_id}/for-you", response_model=RecommendationList)
async def for_you(
    customer_id: CustomerId,
    limit: Limit = 10,
    category_id: CategoryId = None,
    principal: Principal = require(Permission.CUSTOMERS_READ),
) -> Response:
    """Personal list from the customer's purchases; trending without personalisation consent
    or history (`personalised` false, `notice` says why)."""
    return await _served(service.for_you, customer_id, limit=limit, category=category_id)


@router.get("/customers/{customer_id}/cross-sell", response_model=RecommendationList)
async def cross_sell(
    customer_id: CustomerId,
    limit: Limit = 10,
    category_id: CategoryId = None,
    principal: Principal = require(Permission.CUSTOMERS_READ),
) -> Response:
    """Complements from other categories than those bought; same consent rule as for-you."""
    return await _served(service.cross_sell_for, customer_id, limit=limit, category=category_id)


@router.post("/basket", response_model=RecommendationList)
async def basket(
    body: BasketRequest,
    principal: Principal = require(Permission.CUSTOMERS_READ),
) -> Response:
    """Frequently bought together with a basket of up to 500 products."""
    return await _served(
        service.basket, body.product_ids, limit=body.limit, category=body.category_id
    )


@router.get("/trending", response_model=RecommendationList)
async def trending(
    limit: Limit = 10,
    category_id: CategoryId = None,
    principal: Principal = require(Permission.CUSTOMERS_READ),
) -> Response:
    """Bought by the most customers in the last 30 days (overall or in one category)."""
    return await _served(service.trending_list, limit=limit, category=category_id)


@router.get("/ctr", response_model=CtrReport)
def click_through(
    days: Annotated[int, Query(ge=1, le=3660)] = 30,
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> CtrReport:
    """Impressions, clicks and click-through rate per placement and model, from the tracked
    Product List Viewed / Product Clicked events carrying a recommendation id as list_id."""
    return service.click_through(session, days=days)


@router.get("/builds", response_model=list[BuildRead])
def builds(
    principal: Principal = require(Permission.CUSTOMERS_READ),
    session: Session = SessionDep,
) -> list[BuildRead]:
    """The latest builds, newest first; `current` marks the one being served."""
    return service.builds(session)


@router.post("/builds", status_code=202)
def request_build(principal: Principal = require(Permission.JOBS_RUN)) -> dict[str, str]:
    """Queue a rebuild (a worker runs it; the tables flip when it is done)."""
    service.request_build()
    return {"status": "queued"}
