"""The append-only event log (Segment spec messages)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from patronage.db import Base, BigId, Json, UTCDateTime
from patronage.kit.clock import utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index(None, "customer_id", "timestamp"),
        Index(None, "name", "timestamp"),
        Index(None, "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(16))  # identify|track|page|screen|group|alias
    name: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="SET NULL")
    )
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    source_id: Mapped[int | None] = mapped_column(BigId)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
