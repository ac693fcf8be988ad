"""Segments, their materialised memberships (with history) and the entry / exit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text
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
