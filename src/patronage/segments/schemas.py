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
