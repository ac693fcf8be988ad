from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from patronage.collect.schemas import EventRead
from patronage.customers.consent import Purpose
from patronage.kit.pagination import MAX_PAGE_SIZE, PageMeta
from patronage.orders.schemas import OrderRead

Gender = Literal["female", "male", "other", "unknown"]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(default=None, min_length=1, max_length=255)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=r"^\+?[\d\s().-]{5,32}$")
    first_name: str | None = Field(default=None, max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    street: str | None = Field(default=None, max_length=255)
    birthday: date | None = None
    gender: Gender | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    region: str | None = Field(default=None, max_length=64)
    city: str | None = Field(default=None, max_length=64)
    postcode: str | None = Field(default=None, max_length=16, description="only a prefix is kept")
    signup_at: datetime | None = None
    traits: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_nul(self) -> CustomerCreate:
        # PostgreSQL cannot store NUL in text; refuse it on every backend alike
        if _has_nul(self.model_dump()):
            raise ValueError("text must not contain NUL characters")
        return self


class IdentityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    value: str
    source: str | None
    first_seen_at: datetime


class ConsentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    purpose: str
    granted: bool
    source: str
    recorded_at: datetime


class ConsentState(BaseModel):
    purpose: Purpose
    granted: bool
    source: str = Field(description="'default' when the customer never said anything")
    recorded_at: datetime | None


class MilestoneRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    label: str | None
    month: int
    day: int
    year: int | None


class CustomerRead(BaseModel):
    id: int
    user_id: str | None
    pii_visible: bool = Field(description="false: personal fields are withheld for your role")
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    street: str | None = None
    birthday: date | None = None
    birth_year: int | None
    gender: str | None
    language: str | None
    country: str | None
    region: str | None
    city: str | None
    postcode_prefix: str | None
    signup_at: datetime | None
    is_anonymous: bool
    traits: dict[str, Any]
    created_at: datetime


CustomerSort = Literal["id", "-id", "signup_at", "-signup_at", "country", "-country"]


class CustomerSearch(BaseModel):
    """A search of the customer list whose terms may be personal (sent in a body, not a URL)."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, max_length=255, description="email, phone, #id, user id")
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    user_id: str | None = Field(default=None, max_length=255)
    id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    signup_from: date | None = None
    signup_to: date | None = Field(default=None, description="inclusive")
    sort: CustomerSort = "id"
    page: int = Field(default=1, ge=1, le=1_000_000)
    size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    meta: PageMeta


class MergeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    from_customer_id: int
    reason: str
    merged_at: datetime


class CustomerProfile(BaseModel):
    customer: CustomerRead
    identities: list[IdentityRead]
    consents: list[ConsentState]
    consent_history: list[ConsentRead]
    milestones: list[MilestoneRead]
    merges: list[MergeRead]
    orders: list[OrderRead]
    orders_total: int = Field(description="all orders of the customer; `orders` holds the latest")
    events: list[EventRead]
