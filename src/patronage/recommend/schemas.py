"""Request and response shapes of the recommendation API (and the console)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

MAX_ID = 2**63 - 1
MAX_LIMIT = 100
MAX_BASKET = 500


class Placement(StrEnum):
    ALSO_BOUGHT = "also_bought"
    UPSELL = "upsell"
    FOR_YOU = "for_you"
    CROSS_SELL = "cross_sell"
    BASKET = "basket"
    TRENDING = "trending"


class RecommendedItem(BaseModel):
    product_id: int
    name: str
    category_id: int | None
    price_minor: int
    score: float
    because_product_id: int | None = Field(
        description="the item this one is recommended for (none for a fallback item)"
    )
    explanation: str
    source: Literal["model", "fallback"]


class RecommendationList(BaseModel):
    recommendation_id: UUID = Field(
        description="send it as list_id with Product List Viewed / Product Clicked events"
    )
    placement: Placement
    model: str
    build_id: int | None = Field(description="the build served (none before the first build)")
    personalised: bool
    notice: str | None = Field(
        default=None, description="why the list is not personalised, when it is not"
    )
    items: list[RecommendedItem]


class BasketRequest(BaseModel):
    product_ids: list[int] = Field(min_length=1, max_length=MAX_BASKET)
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    category_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class BuildRead(BaseModel):
    id: int
    model: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    rows: int
    order_lines: int
    detail: str | None
    current: bool = False


class CtrRow(BaseModel):
    placement: str
    model: str
    impressions: int
    clicks: int
    ctr: float | None = Field(description="clicks / impressions; none without impressions")


class CtrReport(BaseModel):
    since: datetime
    rows: list[CtrRow]
