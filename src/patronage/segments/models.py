"""Segments, their materialised memberships (with history) and the entry / exit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from patronage.db import Base, BigId, Json, UTCDateTime
from patronage.kit.clock import utcnow


class Segment(Base):
    """A named rule. Built-in ones (`builtin_key` set) are created automatically, editable."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    rule: Mapped[dict[str, Any]] = mapped_column(Json)
    # demographic | geographic | psychographic | situational | behavioural; NULL: custom
    family: Mapped[str | None] = mapped_column(String(32), index=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    builtin_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # derived from the rule (segment references followed): what can change an answer
    topics: Mapped[list[str]] = mapped_column(Json, default=list)
    time_based: Mapped[bool] = mapped_column(Boolean, default=False)
    refs: Mapped[list[int]] = mapped_column(Json, default=list)  # segments it names directly
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(255))
    updated_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SegmentMembership(Base):
    """A stay of a customer in a segment; the current ones have no `left_at`."""

    __tablename__ = "segment_memberships"
    __table_args__ = (
        Index(None, "segment_id", "left_at", "customer_id"),
        Index(None, "customer_id", "left_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SegmentMembershipEvent(Base):
    """Append-only log of entries and exits, for subscribers that poll (journeys) and charts."""

    __tablename__ = "segment_membership_events"
    __table_args__ = (Index(None, "segment_id", "at"), Index(None, "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))  # entered | left
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- personas (segments/personas.py) and next category (segments/nextcat.py) -------------------


class PersonaRun(Base):
    """One clustering run: the k chosen, silhouettes tried, and the scaler (no pickle)."""

    __tablename__ = "segment_persona_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    k: Mapped[int] = mapped_column(Integer)
    customers: Mapped[int] = mapped_column(BigInteger)
    silhouette: Mapped[float | None] = mapped_column(Float)
    silhouettes: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    # the fitted model as JSON: feature names, scaler mean / scale, centroids
    model: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    duration_ms: Mapped[int] = mapped_column(Integer)


class Persona(Base):
    """A cluster of customers; its id and name survive refreshes (Hungarian matching)."""

    __tablename__ = "segment_personas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    run_id: Mapped[int | None] = mapped_column(BigInteger)  # the latest run that found it
    centroid: Mapped[dict[str, float]] = mapped_column(Json, default=dict)  # unscaled units
    traits: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)  # by |z|
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    share: Mapped[float] = mapped_column(Float, default=0.0)
    total_spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    mean_spend_minor: Mapped[float] = mapped_column(Float, default=0.0)
    total_clv_minor: Mapped[float | None] = mapped_column(Float)
    mean_clv_minor: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonaMember(Base):
    """Each customer's persona in the latest run."""

    __tablename__ = "segment_persona_members"

    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    persona_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("segment_personas.id", ondelete="CASCADE"), index=True
    )
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NextCategory(Base):
    """The categories a customer is most likely to branch into next, best first."""

    __tablename__ = "segment_next_categories"

    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    rank: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    category_id: Mapped[int] = mapped_column(BigInteger, index=True)
    score: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NextCategoryRun(Base):
    """A prediction run (`predict`) or a holdout evaluation (`evaluate`) and its figures."""

    __tablename__ = "segment_next_category_runs"
    __table_args__ = (Index(None, "kind", "computed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    duration_ms: Mapped[int] = mapped_column(Integer)
