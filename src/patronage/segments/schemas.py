"""Request and response shapes of the segments API (and the console)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patronage.kit.pagination import PageMeta

Family = Literal["demographic", "geographic", "psychographic", "situational", "behavioural"]
FAMILIES: tuple[str, ...] = (
    "demographic",
    "geographic",
    "psychographic",
    "situational",
    "behavioural",
)

RULE_DOC = (
    "the rule: a JSON document of conditions (docs/segments.md), e.g. "
    '{"type": "and", "conditions": [{"type": "trait", "field": "country", "op": "eq", '
    '"value": "DE"}, {"type": "rfm", "segments": ["Champions"]}]}'
)


def _clean_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("a name is needed")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("a name may not contain control characters")
    return value


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=2000)
    family: Family | None = None
    rule: dict[str, Any] = Field(description=RULE_DOC)

    _name = field_validator("name")(_clean_name)

    @field_validator("description")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("the description may not contain a NUL character")
        return value


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    family: Family | None = None
    rule: dict[str, Any] | None = Field(default=None, description=RULE_DOC)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _clean_name(value)

    @field_validator("description")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("the description may not contain a NUL character")
        return value


class SegmentRead(BaseModel):
    id: int
    name: str
    description: str
    family: str | None
    builtin: bool
    rule: dict[str, Any]
    text: str = Field(description="the rule in words")
    size: int = Field(description="current members (at the last evaluation or change)")
    evaluated_at: datetime | None
    time_based: bool
    topics: list[str]
    created_by: str | None
    updated_by: str | None
    created_at: datetime
    updated_at: datetime


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] = Field(description=RULE_DOC)


class PreviewRead(BaseModel):
    count: int
    customers: int = Field(description="all live customers")
    sample: list[int] = Field(description="up to 20 member ids, smallest first")
    text: str
    warnings: list[str]
    duration_ms: int


class EvaluationRead(BaseModel):
    segment_id: int
    name: str
    size: int
    entered: int
    left: int
    duration_ms: int


class MemberRead(BaseModel):
    customer_id: int
    entered_at: datetime
    country: str | None = None
    city: str | None = None
    language: str | None = None
    gender: str | None = None
    pii_visible: bool = False
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class MemberPage(BaseModel):
    items: list[MemberRead]
    meta: PageMeta


class DayMoves(BaseModel):
    day: str
    entered: int
    left: int


class HistoryRead(BaseModel):
    segment_id: int
    days: list[DayMoves]


class MembershipRead(BaseModel):
    segment_id: int
    name: str
    entered_at: datetime


# -- personas and next category ----------------------------------------------------------------


class TraitRead(BaseModel):
    feature: str
    label: str = Field(description="the feature in words")
    z: float = Field(description="(cluster mean - overall mean) / overall standard deviation")
    phrase: str | None = Field(description="how the description says it")
    mean: float | None = Field(description="the cluster's mean of the feature (natural units)")
    overall: float | None = Field(description="every customer's mean of the feature")


class PersonaRead(BaseModel):
    id: int = Field(description="stable across refreshes (centroids matched to the last run)")
    name: str
    description: str
    active: bool
    size: int
    share: float = Field(description="share of the clustered customers")
    total_spend_minor: int
    mean_spend_minor: float
    total_clv_minor: float | None
    mean_clv_minor: float | None
    traits: list[TraitRead]
    computed_at: datetime


class SilhouetteRead(BaseModel):
    k: int
    silhouette: float


class PersonasRead(BaseModel):
    computed_at: datetime | None
    message: str | None = None
    k: int | None = None
    customers: int = 0
    silhouette: float | None = None
    silhouettes: list[SilhouetteRead] = []
    duration_ms: int | None = None
    personas: list[PersonaRead] = []


class CustomerPersonaRead(BaseModel):
    customer_id: int
    persona: PersonaRead | None
    computed_at: datetime | None


class NextCategoryRead(BaseModel):
    rank: int
    category_id: int
    name: str
    score: float


class CustomerNextCategoriesRead(BaseModel):
    customer_id: int
    computed_at: datetime | None
    categories: list[NextCategoryRead]


class NextCategoryRunRead(BaseModel):
    computed_at: datetime
    duration_ms: int
    customers: int = Field(description="customers with a prediction")
    categories: int
    transitions: int = Field(description="pairs of consecutive orders the model learnt from")
    k: int


class HitRateRead(BaseModel):
    k: int
    hit_rate: float = Field(description="share of customers with a new category in the top k")
    baseline_hit_rate: float = Field(description="the same for the most-popular baseline")
    recall: float = Field(description="mean share of their new categories in the top k")
    baseline_recall: float


class NextCategoryEvaluationRead(BaseModel):
    computed_at: datetime
    duration_ms: int
    holdout_days: int
    cut: datetime | None = Field(description="orders before it train, after it test")
    customers: int = Field(
        description="customers with orders before the cut and a new category after"
    )
    train_lines: int
    results: list[HitRateRead]
