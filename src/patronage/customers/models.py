"""Customer profiles, their identities, consents, milestones and merges.

Personal data (email, phone, names, street address, birthday) is stored encrypted; email and
phone also get a keyed blind index for exact lookup. Traits used by analytics stay in clear.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patronage.config import get_cipher
from patronage.db import Base, BigId, Encrypted, Json, UTCDateTime
from patronage.kit.clock import utcnow

PII_FIELDS = ("email", "phone", "first_name", "last_name", "street", "birthday")


def _active_key() -> int:
    return get_cipher().keyring.active


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(Encrypted("customers.email"))
    email_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(16), index=True)
    phone: Mapped[str | None] = mapped_column(Encrypted("customers.phone"))
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(16), index=True)
    first_name: Mapped[str | None] = mapped_column(Encrypted("customers.first_name"))
    last_name: Mapped[str | None] = mapped_column(Encrypted("customers.last_name"))
    street: Mapped[str | None] = mapped_column(Encrypted("customers.street"))
    birthday: Mapped[str | None] = mapped_column(Encrypted("customers.birthday"))
    # the oldest key any field of the row is sealed with: new rows use the active key; an
    # update seals the changed field with the active key but keeps this value, so a rotation
    # still picks the row up and re-seals the older fields
    key_version: Mapped[int] = mapped_column(SmallInteger, default=_active_key, index=True)
    # in clear: coarse, non-identifying traits for analytics and segments
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    gender: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    region: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(64))
    postcode_prefix: Mapped[str | None] = mapped_column(String(4))
    signup_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    traits: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    is_anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Identity(Base):
    """Every id that points at a customer: anonymous ids, user ids, email / phone digests."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # anonymous_id | user_id | email | phone
    value: Mapped[str] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerMerge(Base):
    """A merge of one profile into another; recorded so nothing is silently lost."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_customer_id: Mapped[int] = mapped_column(BigInteger, index=True)
    into_customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(Base):
    """Append-only consent history; the newest row per purpose is the current state."""

    __tablename__ = "consents"
    __table_args__ = (Index(None, "customer_id", "purpose", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Milestone(Base):
    """Dates worth celebrating: birthday (month/day only), anniversaries, custom dates."""

    __tablename__ = "milestones"
    __table_args__ = (Index(None, "month", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # birthday | signup_anniversary | custom
    label: Mapped[str | None] = mapped_column(String(128))
    month: Mapped[int] = mapped_column(SmallInteger)
    day: Mapped[int] = mapped_column(SmallInteger)
    year: Mapped[int | None] = mapped_column(SmallInteger)
